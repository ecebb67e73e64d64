//! Shard results and the day's report: each shard stores its totals (or
//! its malformed lines); the shard that sees them all merges the day.
//!
//! | item          | pk                     | sk                        |
//! |---------------|------------------------|---------------------------|
//! | shard result  | `RECONRUN#<psp>#<day>` | `SHARD#<of>#<shard:02>`   |
//! | day report    | `RECONRUN#<psp>#<day>` | `REPORT`                  |

use serde::{Deserialize, Serialize};

use crate::clock::Day;
use crate::error::Error;
use crate::ids::PspId;
use crate::store::{item, Attr, ItemExt, Query, SkRange, Write};

use crate::domain::recon::report::{self, Totals};
use crate::domain::recon::report::{DayReport, MalformedReport};
use crate::domain::Ctx;
use crate::schema::keys;
use crate::schema::recon_index::BUCKETS;

use crate::domain::recon::run::*;

pub(crate) async fn save_shard(
    ctx: &Ctx,
    run: &DayRun,
    outcome: &ShardOutcome,
) -> Result<(), Error> {
    let doc = match outcome {
        ShardOutcome::Malformed { errors, more } => ShardDoc::Malformed {
            errors: errors.clone(),
            more: *more,
        },
        ShardOutcome::Done { totals, .. } => ShardDoc::Done {
            totals: totals.clone(),
        },
    };
    let doc = serde_json::to_string(&doc).map_err(|e| Error::Internal(e.to_string()))?;
    let key = keys::recon_shard_result(&run.psp, run.day, run.shards, run.shard);
    let put = Write::Put {
        item: item(
            &key,
            [("doc", Attr::from(doc)), ("at_ms", Attr::N(ctx.now_ms()))],
        ),
        cond: None,
    };
    Ok(ctx.store.write(put).await?)
}

/// A shard's stored result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub(crate) enum ShardDoc {
    Malformed { errors: Vec<String>, more: u64 },
    Done { totals: Totals },
}

/// The day's report from its shards' results: the first malformed shard
/// refuses the day, else the shards' totals add up.
pub(crate) fn merged_report(
    psp: &str,
    date: &str,
    shards: u32,
    docs: &[ShardDoc],
) -> Result<DayReport, Error> {
    let mut all = Totals::default();
    for d in docs {
        match d {
            ShardDoc::Malformed { errors, more } => {
                return Ok(DayReport::Malformed(MalformedReport {
                    psp: psp.to_owned(),
                    date: date.to_owned(),
                    errors: errors.clone(),
                    more_errors: *more,
                }))
            }
            ShardDoc::Done { totals } => all.merge(totals)?,
        }
    }
    let mut r = report::day_report(psp, date, &all);
    r.csv = Some(report::to_csv(&all));
    r.shards = Some(shards);
    Ok(DayReport::Complete(r))
}

/// When every shard of the day is in, merge them into the day's report
/// (stored, and returned); `None` while shards are outstanding.
pub async fn merge(
    ctx: &Ctx,
    psp: &PspId,
    day: Day,
    shards: u32,
) -> Result<Option<DayReport>, Error> {
    let q = Query::new(
        keys::recon_run_pk(psp, day),
        SkRange::Prefix(keys::recon_shard_prefix(shards)),
        BUCKETS as usize,
    );
    let page = ctx.store.query(&q).await?;
    if page.items.len() < shards as usize {
        return Ok(None);
    }
    let docs: Vec<ShardDoc> = page
        .items
        .iter()
        .map(|it| {
            serde_json::from_str(it.str_attr("doc").unwrap_or_default())
                .map_err(|e| Error::Internal(format!("shard result: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let report = merged_report(psp.as_str(), &day.to_string(), shards, &docs)?;
    let doc = serde_json::to_string(&report).map_err(|e| Error::Internal(e.to_string()))?;
    let key = keys::recon_day_report(psp, day);
    let put = Write::Put {
        item: item(
            &key,
            [("doc", Attr::from(doc)), ("at_ms", Attr::N(ctx.now_ms()))],
        ),
        cond: None,
    };
    ctx.store.write(put).await?;
    summary(psp, day, &report);
    Ok(Some(report))
}

/// The one log line per reconciled day (no PII: counts and amounts only).
pub(crate) fn summary(psp: &PspId, day: Day, r: &DayReport) {
    match r {
        DayReport::Complete(r) => tracing::info!(
            psp = %psp, date = %day, status = "complete",
            lines = r.lines, records = r.records,
            matched = r.classes.get("matched").copied().unwrap_or(0),
            mismatches = r.mismatches, healed = r.healed,
            "reconciliation summary"
        ),
        DayReport::Malformed(r) => tracing::info!(
            psp = %psp, date = %day, status = "malformed", errors = r.errors.len(),
            "reconciliation summary"
        ),
    }
}

/// The stored report of a day.
pub async fn stored_report(ctx: &Ctx, psp: &PspId, day: Day) -> Result<DayReport, Error> {
    let it = ctx
        .store
        .get(&keys::recon_day_report(psp, day))
        .await?
        .ok_or(Error::NotFound {
            what: "reconciliation report",
        })?;
    it.str_attr("doc")
        .and_then(|d| serde_json::from_str(d).ok())
        .ok_or_else(|| Error::Internal("unreadable reconciliation report".into()))
}
