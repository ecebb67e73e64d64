//! Running one PSP-day (or one shard of it): read the report once —
//! checking every line and spilling each to its bucket — and refuse the
//! whole report if any line is malformed, before anything is applied; then
//! match bucket by bucket against our index, open cases, heal proven
//! captures through the wallet's own event path, and keep the shard's
//! totals. When every shard of the day is in, the report is merged.
//!
//! | item          | pk                     | sk                        |
//! |---------------|------------------------|---------------------------|
//! | shard result  | `RECONRUN#<psp>#<day>` | `SHARD#<of>#<shard:02>`   |
//! | day report    | `RECONRUN#<psp>#<day>` | `REPORT`                  |

use std::path::{Path, PathBuf};

use crate::clock::Day;
use crate::error::Error;
use crate::ids::PspId;
use crate::store::{Query, SkRange};

use crate::domain::recon::cases::{self, LineCase};
use crate::domain::recon::matcher::{BucketMatcher, Class, Finding, Theirs};
use crate::domain::recon::report::DayReport;
use crate::domain::recon::report::{Tally, Totals};
use crate::domain::recon::spill::{encode_line, Spill, SpillReader};
use crate::domain::Ctx;
use crate::psp::settlement::{PayloopFormat, ReportReader, SettledLine};
use crate::schema::recon_index::{self, bucket_parts, key_id, match_key, Kind, Record, BUCKETS};

use crate::domain::recon::heal::look_closer;
use crate::domain::recon::merge::save_shard;
pub use crate::domain::recon::merge::{merge, stored_report};
use crate::domain::recon::source::psp_error;
pub use crate::domain::recon::source::{open_report, Source};

/// Malformed-line messages kept per run (the count of the rest is kept).
const MAX_ERRORS: usize = 50;

/// One shard of one PSP-day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRun {
    pub psp: PspId,
    pub day: Day,
    pub shards: u32,
    pub shard: u32,
}

impl DayRun {
    pub fn new(psp: PspId, day: Day, shards: u32, shard: u32) -> Result<DayRun, Error> {
        if shards == 0 || shards > BUCKETS {
            return Err(Error::validation(
                "shards",
                format!("must be 1 to {BUCKETS}"),
            ));
        }
        if shard >= shards {
            return Err(Error::validation("shard", "must be below shards"));
        }
        Ok(DayRun {
            psp,
            day,
            shards,
            shard,
        })
    }

    /// The buckets this shard owns.
    pub fn buckets(&self) -> Vec<u32> {
        (0..BUCKETS)
            .filter(|b| b % self.shards == self.shard)
            .collect()
    }
}

/// Sees every classification (tests, `payloop reconcile --lines`).
pub trait Observer: Send {
    fn line(&mut self, line: u64, key: &str, class: Class);
    fn record(&mut self, key: &str, class: Class);
}

/// Sees nothing.
pub struct Quiet;

impl Observer for Quiet {
    fn line(&mut self, _: u64, _: &str, _: Class) {}
    fn record(&mut self, _: &str, _: Class) {}
}

/// What a shard did.
#[derive(Debug, Clone, PartialEq)]
pub enum ShardOutcome {
    /// Nothing applied: these lines are wrong (and `more` beyond them).
    Malformed {
        errors: Vec<String>,
        more: u64,
    },
    Done {
        totals: Totals,
        cases_opened: u64,
    },
}

/// A checked report line as matching sees it.
pub fn theirs(l: SettledLine) -> Option<Theirs> {
    let kind = Kind::parse(l.kind)?;
    Some(Theirs {
        line: l.line,
        kind,
        key: match_key(kind, &l.payment_id, &l.reference),
        reference: l.reference,
        payment_id: l.payment_id,
        gross_minor: l.gross_minor,
        fee_minor: l.fee_minor,
        currency: l.currency,
    })
}

/// Malformed lines found while spilling.
#[derive(Default)]
struct Problems {
    errors: Vec<String>,
    more: u64,
}

impl Problems {
    fn push(&mut self, e: String) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(e);
        } else {
            self.more += 1;
        }
    }
}

/// Pass 1: read the whole report, check every line, spill this shard's.
async fn spill_report(
    ctx: &Ctx,
    run: &DayRun,
    src: &Source,
    dir: &Path,
) -> Result<Problems, Error> {
    let mut chunks = open_report(ctx, run, src).await?;
    let format = match ctx.psps.get(&run.psp) {
        Some(c) => c.report_format(),
        None => Box::new(PayloopFormat::default()),
    };
    let mut reader = ReportReader::with_format(format);
    let mut spill = Spill::create(dir, "theirs", &run.buckets()).map_err(io)?;
    let mut bad = Problems::default();
    let mut failed: Option<std::io::Error> = None;
    while let Some(chunk) = chunks.next_chunk().await.map_err(psp_error)? {
        reader.push_with(&chunk, |parsed| {
            let (line, kind) = match parsed {
                Ok(l) if l.settled_date != run.day => {
                    bad.push(format!("line {}: settled_date: not {}", l.line, run.day));
                    return;
                }
                Ok(l) => match Kind::parse(l.kind) {
                    Some(k) => (l, k),
                    None => return bad.push(format!("line {}: type: unknown", l.line)),
                },
                Err(e) => return bad.push(e.to_string()),
            };
            if bad.errors.is_empty() && failed.is_none() {
                let b = bucket_parts(kind, key_id(kind, line.payment_id, line.reference));
                if let Err(e) = spill.push_with(b, |out| encode_line(out, &line, kind)) {
                    failed = Some(e);
                }
            }
        });
        if let Some(e) = failed.take() {
            return Err(io(e));
        }
    }
    if reader.skipped() > 0 {
        tracing::info!(psp = %run.psp, day = %run.day, skipped = reader.skipped(), "report lines that move no player's money");
    }
    if let Err(e) = reader.finish() {
        bad.push(e.to_string());
    }
    spill.finish().map_err(io)?;
    Ok(bad)
}

fn io(e: std::io::Error) -> Error {
    Error::Internal(format!("reconciliation spill: {e}"))
}

/// Pages of one bucket read at most: 1000 × 10 000 = 10 M records, 320 M a day.
const MAX_BUCKET_PAGES: usize = 10_000;

/// Our records of one bucket (a bounded slice of the day), page by page.
pub async fn load_bucket(ctx: &Ctx, psp: &PspId, day: Day, b: u32) -> Result<Vec<Record>, Error> {
    let mut q = Query::new(recon_index::partition(psp, day, b), SkRange::All, 1000);
    let mut out = Vec::new();
    for _ in 0..MAX_BUCKET_PAGES {
        let page = ctx.store.query(&q).await?;
        out.extend(page.items.iter().filter_map(Record::from_item));
        match page.next {
            Some(next) => q.after = Some(next),
            None => return Ok(out),
        }
    }
    Err(Error::Internal(format!(
        "bucket {b} of {psp} {day} holds more than {MAX_BUCKET_PAGES} pages: raise the bound"
    )))
}

pub(crate) fn finding(class: Class, ours: Option<Record>) -> Finding<'static> {
    Finding::of(class, ours.map(std::borrow::Cow::Owned))
}

/// Pass 2 for one bucket.
async fn match_bucket(
    ctx: &Ctx,
    run: &DayRun,
    dir: &Path,
    b: u32,
    totals: &mut Totals,
    obs: &mut dyn Observer,
) -> Result<u64, Error> {
    let records = load_bucket(ctx, &run.psp, run.day, b).await?;
    let mut tally = Tally::default();
    tally.records(records.len() as u64);
    let policy = &ctx.policies.recon;
    let mut m = BucketMatcher::new(
        &records,
        policy.fees.get(&run.psp).copied(),
        policy.tolerance_minor,
    );
    let mut opened = 0;
    let mut lines = SpillReader::<Theirs>::open(dir, "theirs", b).map_err(io)?;
    let mut t = Theirs::empty();
    while lines.next_into(&mut t).map_err(io)? {
        let mut f = m.line(&t);
        let mut detail = f.expected_fee_minor.map(|e| {
            format!(
                "the fee schedule expects {}",
                crate::money::format_minor(e, t.currency)
            )
        });
        if f.class == Class::MissingInWallet && !f.healed && t.kind == Kind::Payment {
            (f, detail) = look_closer(ctx, run, &t).await?;
            // A heal wrote a record to this bucket: count it as a re-run will.
            tally.records(u64::from(f.healed));
        }
        let method = f.ours.as_ref().map_or("unknown", |r| r.method.as_str());
        tally.line(&t, f.class, method, f.healed)?;
        obs.line(t.line, &t.key, f.class);
        if f.class.opens_case() {
            let case = LineCase {
                psp: &run.psp,
                day: run.day,
                class: f.class,
                key: &t.key,
                theirs: Some(&t),
                ours: f.ours.as_deref(),
                detail,
                healed: f.healed,
            };
            opened += u64::from(cases::open(ctx, &case).await?);
        }
    }
    for r in m.unsettled() {
        tally.unsettled(r)?;
        obs.record(&r.key, Class::MissingAtPsp);
        let case = LineCase {
            psp: &run.psp,
            day: run.day,
            class: Class::MissingAtPsp,
            key: &r.key,
            theirs: None,
            ours: Some(r),
            detail: None,
            healed: false,
        };
        opened += u64::from(cases::open(ctx, &case).await?);
    }
    tally.fold_into(totals)?;
    Ok(opened)
}

/// A shard's private scratch directory (its bucket spill files), removed
/// with everything in it when the shard is done, however it ends.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> std::io::Result<ScratchDir> {
        let dir = std::env::temp_dir().join(crate::ids::new_ulid("payloop-recon"));
        std::fs::create_dir(&dir)?;
        Ok(ScratchDir(dir))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(error = %e, "could not remove a reconciliation scratch directory");
        }
    }
}

/// Run one shard: check and spill, then (only for a clean report) match.
pub async fn run_shard(
    ctx: &Ctx,
    run: &DayRun,
    src: &Source,
    obs: &mut dyn Observer,
) -> Result<ShardOutcome, Error> {
    let dir = ScratchDir::new().map_err(io)?;
    let bad = spill_report(ctx, run, src, dir.path()).await?;
    let outcome = if bad.errors.is_empty() {
        let mut totals = Totals::default();
        let mut cases_opened = 0;
        for b in run.buckets() {
            cases_opened += match_bucket(ctx, run, dir.path(), b, &mut totals, obs).await?;
        }
        let classes: Vec<(&str, u64)> = totals
            .classes
            .iter()
            .map(|(c, n)| (c.as_str(), *n))
            .collect();
        crate::domain::observe::recon_classes(ctx, run.psp.as_str(), &classes, cases_opened);
        ShardOutcome::Done {
            totals,
            cases_opened,
        }
    } else {
        ShardOutcome::Malformed {
            errors: bad.errors,
            more: bad.more,
        }
    };
    save_shard(ctx, run, &outcome).await?;
    Ok(outcome)
}

/// The whole day in this process, shard after shard (local runs, tests and
/// a Lambda configured with one shard); returns the merged report.
pub async fn reconcile_day(
    ctx: &Ctx,
    psp: &PspId,
    day: Day,
    shards: u32,
    src: &Source,
    obs: &mut dyn Observer,
) -> Result<DayReport, Error> {
    for shard in 0..shards {
        let run = DayRun::new(psp.clone(), day, shards, shard)?;
        run_shard(ctx, &run, src, obs).await?;
    }
    merge(ctx, psp, day, shards)
        .await?
        .ok_or_else(|| Error::Internal("a shard result is missing after the run".into()))
}
