"""The same reconciliation match as `payloop bench recon`, done by DuckDB:
report lines joined to the ledger export by match key, every line and
ledger record classified, counts per class printed as one JSON line with
the wall time and this process's peak RSS.

usage: recon_duckdb.py REPORT LEDGER THREADS FEE_BPS FEE_FIXED TOLERANCE
"""
import json
import resource
import sys
import time

import duckdb

report, ledger, threads, bps, fixed, tol = sys.argv[1:7]
start = time.monotonic()
con = duckdb.connect()
con.execute(f"SET threads = {int(threads)}")
con.execute("SET preserve_insertion_order = false")
query = f"""
WITH rep AS (
    SELECT type,
           type || ':' || CASE WHEN type IN ('payment', 'chargeback') THEN payment_id ELSE reference END AS key,
           currency,
           CAST(gross * 100 AS BIGINT) AS g,
           CAST(fee * 100 AS BIGINT) AS f
    FROM read_csv('{report}', header = true, auto_detect = false,
                  columns = {{'reference': 'VARCHAR', 'payment_id': 'VARCHAR', 'type': 'VARCHAR',
                             'gross': 'DECIMAL(18,2)', 'fee': 'DECIMAL(18,2)', 'net': 'DECIMAL(18,2)',
                             'currency': 'VARCHAR', 'settled_date': 'DATE'}})
),
r AS (SELECT *, row_number() OVER (PARTITION BY key) AS rn FROM rep),
l AS (
    SELECT * FROM read_csv('{ledger}', header = true, auto_detect = false,
                           columns = {{'key': 'VARCHAR', 'kind': 'VARCHAR', 'payment_id': 'VARCHAR',
                                      'gross_minor': 'BIGINT', 'currency': 'VARCHAR', 'method': 'VARCHAR',
                                      'event_id': 'VARCHAR'}})
),
lines AS (
    SELECT CASE
        WHEN r.rn > 1 THEN 'duplicate'
        WHEN l.key IS NULL AND r.type = 'fee' THEN 'fee'
        WHEN l.key IS NULL THEN 'missing_in_wallet'
        WHEN l.currency <> r.currency THEN 'currency_mismatch'
        WHEN l.gross_minor <> r.g THEN 'amount_mismatch'
        WHEN r.type = 'payment' AND abs(r.f - ((abs(r.g) * {int(bps)} + 5000) // 10000 + {int(fixed)})) > {int(tol)} THEN 'fee_mismatch'
        WHEN r.type = 'chargeback' AND abs(r.f - {int(fixed)}) > {int(tol)} THEN 'fee_mismatch'
        WHEN r.type = 'refund' AND abs(r.f) > {int(tol)} THEN 'fee_mismatch'
        ELSE 'matched' END AS class
    FROM r LEFT JOIN l ON r.key = l.key
)
SELECT class, count(*) FROM lines GROUP BY class
UNION ALL
SELECT 'missing_at_psp', count(*) FROM l WHERE NOT EXISTS (SELECT 1 FROM rep WHERE rep.key = l.key)
"""
counts = {k: int(v) for k, v in con.execute(query).fetchall()}
wall_ms = (time.monotonic() - start) * 1000
rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"engine": "duckdb " + duckdb.__version__, "wall_ms": wall_ms, "rss_kb": rss_kb, "classes": counts}))
