"""The same reconciliation match as `payloop bench recon`, done by Polars
(lazy frames, its streaming-capable engine): report lines joined to the
ledger export by match key, every line and ledger record classified, counts
per class printed as one JSON line with the wall time and this process's
peak RSS. The thread count is set before Polars is imported (its pool is
fixed at start).

usage: recon_polars.py REPORT LEDGER THREADS FEE_BPS FEE_FIXED TOLERANCE
"""
import json
import os
import resource
import sys
import time

report, ledger, threads, bps, fixed, tol = sys.argv[1:7]
os.environ["POLARS_MAX_THREADS"] = str(int(threads))
import polars as pl  # noqa: E402  (after the thread count)

bps, fixed, tol = int(bps), int(fixed), int(tol)
start = time.monotonic()


def minor(col):
    # Amounts carry exactly the currency's two decimals: the digits without
    # the point are the minor units (no float on the way).
    return pl.col(col).str.replace(".", "", literal=True).cast(pl.Int64)


text = pl.String
rep = pl.scan_csv(
    report,
    schema={
        "reference": text, "payment_id": text, "type": text, "gross": text,
        "fee": text, "net": text, "currency": text, "settled_date": text,
    },
).select(
    pl.col("type"),
    (
        pl.col("type") + ":" +
        pl.when(pl.col("type").is_in(["payment", "chargeback"]))
        .then(pl.col("payment_id")).otherwise(pl.col("reference"))
    ).alias("key"),
    pl.col("currency"),
    minor("gross").alias("g"),
    minor("fee").alias("f"),
)
led = pl.scan_csv(
    ledger,
    schema={
        "key": text, "kind": text, "payment_id": text, "gross_minor": pl.Int64,
        "currency": text, "method": text, "event_id": text,
    },
).select(pl.col("key"), pl.col("gross_minor"), pl.col("currency").alias("l_currency"))

t, g, f = pl.col("type"), pl.col("g"), pl.col("f")
expected_payment_fee = (g.abs() * bps + 5000) // 10000 + fixed
lines = (
    rep.with_columns(pl.col("key").is_first_distinct().alias("first"))
    .join(led, on="key", how="left")
    .select(
        pl.when(~pl.col("first")).then(pl.lit("duplicate"))
        .when(pl.col("l_currency").is_null() & (t == "fee")).then(pl.lit("fee"))
        .when(pl.col("l_currency").is_null()).then(pl.lit("missing_in_wallet"))
        .when(pl.col("l_currency") != pl.col("currency")).then(pl.lit("currency_mismatch"))
        .when(pl.col("gross_minor") != g).then(pl.lit("amount_mismatch"))
        .when((t == "payment") & ((f - expected_payment_fee).abs() > tol)).then(pl.lit("fee_mismatch"))
        .when((t == "chargeback") & ((f - fixed).abs() > tol)).then(pl.lit("fee_mismatch"))
        .when((t == "refund") & (f.abs() > tol)).then(pl.lit("fee_mismatch"))
        .otherwise(pl.lit("matched"))
        .alias("class")
    )
    .group_by("class")
    .len()
)
unsettled = led.join(rep.select("key").unique(), on="key", how="anti").select(pl.len())
by_class, missing = pl.collect_all([lines, unsettled])
counts = {row[0]: int(row[1]) for row in by_class.iter_rows()}
counts["missing_at_psp"] = int(missing.item())
wall_ms = (time.monotonic() - start) * 1000
rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"engine": "polars " + pl.__version__, "wall_ms": wall_ms, "rss_kb": rss_kb, "classes": counts}))
