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

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::clock::Day;
use crate::error::Error;
use crate::ids::{EventId, PaymentId, PspId};
use crate::psp::{PspError, ReportChunks};
use crate::store::{item, Attr, ItemExt, Key, Query, SkRange, Write};

use crate::domain::deposits::payment::{Payment, PaymentStatus};
use crate::domain::deposits::{self, Applied};
use crate::domain::recon::cases::{self, LineCase};
use crate::domain::recon::matcher::{BucketMatcher, Class, Finding, Theirs, HEAL_PREFIX};
use crate::domain::recon::report::{self, Totals};
use crate::domain::recon::report::{DayReport, MalformedReport};
use crate::domain::recon::spill::{encode_line, Spill, SpillReader};
use crate::domain::Ctx;
use crate::psp::event::PspEvent;
use crate::psp::settlement::{ReportReader, SettledLine};
use crate::schema::keys;
use crate::schema::recon_index::{self, bucket_parts, key_id, match_key, Kind, Record, BUCKETS};

/// Malformed-line messages kept per run (the count of the rest is kept).
const MAX_ERRORS: usize = 50;
/// Bytes read per chunk from a file.
const FILE_CHUNK: usize = 256 * 1024;

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

/// Where the report comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The PSP's settlement API, through its connector.
    Psp,
    /// A file (e.g. a report dropped in a bucket and mounted or downloaded).
    Path(PathBuf),
    /// An `http://` URL (a pre-signed object URL, say).
    Url(String),
}

impl Source {
    pub fn parse(s: &str) -> Source {
        match s {
            "psp" => Source::Psp,
            u if u.starts_with("http://") || u.starts_with("https://") => Source::Url(u.to_owned()),
            p => Source::Path(PathBuf::from(p.strip_prefix("file://").unwrap_or(p))),
        }
    }
}

fn psp_error(e: PspError) -> Error {
    match e {
        PspError::NotFound(_) => Error::NotFound {
            what: "settlement report",
        },
        other => Error::Unavailable(other.to_string()),
    }
}

struct FileChunks(tokio::fs::File);

#[async_trait]
impl ReportChunks for FileChunks {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, PspError> {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0; FILE_CHUNK];
        let n = self
            .0
            .read(&mut buf)
            .await
            .map_err(|e| PspError::Unavailable(format!("reading the report: {e}")))?;
        buf.truncate(n);
        Ok((n > 0).then(|| Bytes::from(buf)))
    }
}

struct UrlChunks(reqwest::Response);

#[async_trait]
impl ReportChunks for UrlChunks {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, PspError> {
        self.0
            .chunk()
            .await
            .map_err(|e| PspError::Unavailable(format!("reading the report: {e}")))
    }
}

/// Open the day's report as a stream of chunks.
pub async fn open_report(
    ctx: &Ctx,
    run: &DayRun,
    src: &Source,
) -> Result<Box<dyn ReportChunks>, Error> {
    match src {
        Source::Psp => {
            let psp = ctx
                .psps
                .get(&run.psp)
                .ok_or(Error::NotFound { what: "PSP" })?;
            psp.settlement_report(run.day).await.map_err(psp_error)
        }
        Source::Path(p) => {
            let f = tokio::fs::File::open(p)
                .await
                .map_err(|e| Error::validation("source", format!("{}: {e}", p.display())))?;
            Ok(Box::new(FileChunks(f)))
        }
        Source::Url(u) => {
            let resp = reqwest::get(u.as_str())
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| Error::Unavailable(format!("fetching the report: {e}")))?;
            Ok(Box::new(UrlChunks(resp)))
        }
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
    let mut reader = ReportReader::new();
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

fn finding(class: Class, ours: Option<Record>) -> Finding<'static> {
    Finding::of(class, ours.map(std::borrow::Cow::Owned))
}

/// A settled capture we still hold pending: apply it through the webhook's
/// own path, so a late webhook finds it captured and credits nothing.
async fn heal(
    ctx: &Ctx,
    run: &DayRun,
    p: &Payment,
    t: &Theirs,
    ours: Record,
) -> Result<(Finding<'static>, Option<String>), Error> {
    let event_id = ours.event_id.clone();
    let ev = PspEvent {
        psp: run.psp.clone(),
        event_id: EventId::parse(&event_id).map_err(|e| Error::Internal(e.to_string()))?,
        payment_id: p.id.clone(),
        status: PaymentStatus::Captured,
        amount_minor: t.gross_minor,
        currency: t.currency,
        occurred_ms: run.day.start_ms(),
    };
    match deposits::apply_event(ctx, &ev).await {
        Ok(Applied::Moved(_)) => {
            tracing::info!(payment_id = %p.id, psp = %run.psp, day = %run.day, "reconciliation applied a capture the webhook never brought");
            let mut f = finding(Class::MissingInWallet, Some(ours));
            f.healed = true;
            Ok((
                f,
                Some("healed: the capture was applied from the settlement line".into()),
            ))
        }
        // The webhook won the race: the capture is in, once.
        Ok(_) => Ok((finding(Class::Matched, Some(ours)), None)),
        Err(e) => Err(if e.retryable {
            Error::Unavailable(e.reason)
        } else {
            Error::Internal(e.reason)
        }),
    }
}

/// A settled payment with no record of ours: what does our payment say?
/// A capture we never heard of is applied through the wallet's own event
/// path (idempotent: a late webhook then finds it captured).
async fn look_closer(
    ctx: &Ctx,
    run: &DayRun,
    t: &Theirs,
) -> Result<(Finding<'static>, Option<String>), Error> {
    let missing = |why: &str| Ok((finding(Class::MissingInWallet, None), Some(why.to_owned())));
    let Ok(pid) = PaymentId::parse(&t.payment_id) else {
        return missing("no payment with this id");
    };
    let Some(it) = ctx.store.get(&keys::payment(&pid)).await? else {
        return missing("no payment with this id");
    };
    let p = Payment::from_item(&it)?;
    let event_id = format!("{HEAL_PREFIX}{}:{}", run.day, p.id);
    let ours = Record {
        key: t.key.clone(),
        kind: Kind::Payment,
        payment_id: p.id.to_string(),
        gross_minor: p.amount.minor(),
        currency: p.amount.currency(),
        method: p.method.clone(),
        event_id: event_id.clone(),
    };
    if p.psp != run.psp {
        return missing(&format!("the payment went through {}", p.psp));
    }
    if p.amount.currency() != t.currency {
        return Ok((finding(Class::CurrencyMismatch, Some(ours)), None));
    }
    if p.amount.minor() != t.gross_minor {
        return Ok((finding(Class::AmountMismatch, Some(ours)), None));
    }
    let status = p.status;
    if status.is_final() {
        let credited = matches!(status, PaymentStatus::Captured | PaymentStatus::ChargedBack);
        let class = if credited {
            Class::Matched
        } else {
            Class::StatusMismatch
        };
        return Ok((
            finding(class, Some(ours)),
            Some(format!("our status is {}", status.as_str())),
        ));
    }
    heal(ctx, run, &p, t, ours).await
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
    totals.records += records.len() as u64;
    let policy = &ctx.policies.recon;
    let mut m = BucketMatcher::new(
        records,
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
            totals.records += u64::from(f.healed);
        }
        let method = f.ours.as_ref().map_or("unknown", |r| r.method.as_str());
        totals.line(&t, f.class, method, f.healed)?;
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
        totals.unsettled(&r)?;
        obs.record(&r.key, Class::MissingAtPsp);
        let case = LineCase {
            psp: &run.psp,
            day: run.day,
            class: Class::MissingAtPsp,
            key: &r.key,
            theirs: None,
            ours: Some(&r),
            detail: None,
            healed: false,
        };
        opened += u64::from(cases::open(ctx, &case).await?);
    }
    Ok(opened)
}

fn run_pk(psp: &PspId, day: Day) -> String {
    format!("RECONRUN#{psp}#{day}")
}

fn shard_sk(shards: u32, shard: u32) -> String {
    format!("SHARD#{shards:02}#{shard:02}")
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

async fn save_shard(ctx: &Ctx, run: &DayRun, outcome: &ShardOutcome) -> Result<(), Error> {
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
    let key = Key::new(run_pk(&run.psp, run.day), shard_sk(run.shards, run.shard));
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
enum ShardDoc {
    Malformed { errors: Vec<String>, more: u64 },
    Done { totals: Totals },
}

/// The day's report from its shards' results: the first malformed shard
/// refuses the day, else the shards' totals add up.
fn merged_report(
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
        run_pk(psp, day),
        SkRange::Prefix(format!("SHARD#{shards:02}#")),
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
    let key = Key::new(run_pk(psp, day), "REPORT");
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
fn summary(psp: &PspId, day: Day, r: &DayReport) {
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
        .get(&Key::new(run_pk(psp, day), "REPORT"))
        .await?
        .ok_or(Error::NotFound {
            what: "reconciliation report",
        })?;
    it.str_attr("doc")
        .and_then(|d| serde_json::from_str(d).ok())
        .ok_or_else(|| Error::Internal("unreadable reconciliation report".into()))
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
