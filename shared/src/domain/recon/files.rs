//! File-to-file matching: a settlement report against an export of our
//! index (`key,kind,payment_id,gross_minor,currency,method,event_id`), with
//! the same reader, spill files and matcher as the store-backed run, on two
//! threads (the two files spill side by side; then buckets are matched in
//! two halves). Used by `payloop bench recon`; no store, no heals.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::money::Currency;

use crate::domain::policy::FeeRule;
use crate::domain::recon::matcher::{BucketMatcher, Class, Theirs};
use crate::domain::recon::report::{Tally, Totals};
use crate::domain::recon::spill::{
    encode_line, encode_record, read_whole, records_in, RecordRef, Spill, SpillReader,
};
use crate::psp::settlement::{ReportReader, MAX_LINE};
use crate::schema::recon_index::{bucket_in, bucket_parts_in, key_id, Kind};
use crate::text::{split_fields, LineError, LineSplitter};

pub const LEDGER_HEADER: &str = "key,kind,payment_id,gross_minor,currency,method,event_id";
const CHUNK: usize = 1 << 20;
/// Partitions of a file-to-file match: finer than the store's 32 buckets, so
/// one partition's hash table stays cache-sized at tens of millions of lines.
const PARTS: u32 = 128;

/// What matching two files found.
#[derive(Debug)]
pub enum FileOutcome {
    Malformed(Vec<String>),
    Done(Totals),
}

fn bad(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// One ledger export line, borrowing its text; `last` is the previous
/// line's currency (most lines share it: no table lookup).
pub fn parse_ledger_line<'a>(
    text: &'a str,
    last: &mut Option<Currency>,
) -> Result<RecordRef<'a>, String> {
    let f: [&str; 7] = split_fields(text, b',').map_err(|n| format!("has {n} fields, not 7"))?;
    Ok(RecordRef {
        key: f[0],
        kind: Kind::parse(f[1]).ok_or("kind: unknown")?,
        payment_id: f[2],
        gross_minor: f[3].parse().map_err(|_| "gross_minor: not an integer")?,
        currency: match *last {
            Some(c) if c.code() == f[4] => c,
            _ => {
                let c = Currency::parse(f[4]).map_err(|e| format!("currency: {e}"))?;
                *last = Some(c);
                c
            }
        },
        method: f[5],
        event_id: f[6],
    })
}

fn spill_report(path: &Path, dir: &Path, all: &[u32]) -> io::Result<Result<u64, Vec<String>>> {
    let mut f = File::open(path)?;
    let mut reader = ReportReader::new();
    let mut spill = Spill::create_parts(dir, "theirs", PARTS, all)?;
    let mut errors = Vec::new();
    let mut failed: Option<io::Error> = None;
    let mut buf = vec![0; CHUNK];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        reader.push_with(&buf[..n], |parsed| {
            let checked =
                parsed
                    .map_err(|e| e.to_string())
                    .and_then(|l| match Kind::parse(l.kind) {
                        Some(k) => Ok((l, k)),
                        None => Err(format!("line {}: type: unknown", l.line)),
                    });
            match checked {
                Ok((l, kind)) if errors.is_empty() && failed.is_none() => {
                    let b = bucket_parts_in(PARTS, kind, key_id(kind, l.payment_id, l.reference));
                    if let Err(e) = spill.push_with(b, |out| encode_line(out, &l, kind)) {
                        failed = Some(e);
                    }
                }
                Ok(_) => {}
                Err(e) if errors.len() < 50 => errors.push(e),
                Err(_) => {}
            }
        });
        if let Some(e) = failed.take() {
            return Err(e);
        }
    }
    let lines = reader.finish();
    spill.finish()?;
    match (lines, errors.is_empty()) {
        (Ok(n), true) => Ok(Ok(n)),
        (Ok(_), false) => Ok(Err(errors)),
        (Err(e), _) => {
            errors.push(e.to_string());
            Ok(Err(errors))
        }
    }
}

fn spill_ledger(path: &Path, dir: &Path, all: &[u32]) -> io::Result<Result<u64, Vec<String>>> {
    let mut f = File::open(path)?;
    let mut spill = Spill::create_parts(dir, "ours", PARTS, all)?;
    let mut lines = LineSplitter::new(MAX_LINE);
    let mut last = None;
    let mut n = 0u64;
    let mut errors = Vec::new();
    let mut failed: Option<io::Error> = None;
    let mut buf = vec![0; CHUNK];
    loop {
        let read = f.read(&mut buf)?;
        if read == 0 {
            break;
        }
        lines.push(&buf[..read], |text| {
            n += 1;
            let parsed = match text {
                Ok(t) if n == 1 => (t != LEDGER_HEADER)
                    .then(|| format!("the header must be `{LEDGER_HEADER}`")),
                Ok(t) => match parse_ledger_line(t, &mut last) {
                    Ok(rec) if errors.is_empty() && failed.is_none() => {
                        let b = bucket_in(PARTS, rec.key);
                        if let Err(e) = spill.push_with(b, |out| encode_record(out, &rec)) {
                            failed = Some(e);
                        }
                        None
                    }
                    Ok(_) => None,
                    Err(e) => Some(e),
                },
                Err(LineError::NotUtf8) => Some("is not UTF-8".to_owned()),
                Err(LineError::TooLong) => Some(format!("longer than {MAX_LINE} bytes")),
            };
            if let Some(e) = parsed.filter(|_| errors.len() < 50) {
                errors.push(format!("ledger line {n}: {e}"));
            }
        });
        if let Some(e) = failed.take() {
            return Err(e);
        }
    }
    if lines.has_partial() && errors.len() < 50 {
        errors.push(format!("ledger line {}: truncated (no end of line)", n + 1));
    }
    spill.finish()?;
    Ok(if errors.is_empty() {
        Ok(n.saturating_sub(1))
    } else {
        Err(errors)
    })
}

fn match_buckets(
    dir: &Path,
    buckets: &[u32],
    fees: Option<FeeRule>,
    tol: i64,
) -> io::Result<Totals> {
    let mut totals = Totals::default();
    for &b in buckets {
        // A partition is 1/PARTS of the export: read whole, records borrow it.
        let bytes = read_whole(dir, "ours", b)?;
        let ours = records_in(&bytes)?;
        let mut tally = Tally::default();
        tally.records(ours.len() as u64);
        let mut m = BucketMatcher::new(ours, fees, tol);
        let mut lines = SpillReader::<Theirs>::open(dir, "theirs", b)?;
        let mut t = Theirs::empty();
        while lines.next_into(&mut t)? {
            let f = m.line(&t);
            let method = f.ours.as_ref().map_or("unknown", |r| r.method);
            tally.line(&t, f.class, method, f.healed).map_err(bad)?;
        }
        for r in m.unsettled() {
            tally.unsettled(&r).map_err(bad)?;
        }
        tally.fold_into(&mut totals).map_err(bad)?;
    }
    Ok(totals)
}

/// Match `report` against `ledger`, spilling under `tmp`.
pub fn match_files(
    report: &Path,
    ledger: &Path,
    fees: Option<FeeRule>,
    tolerance_minor: i64,
    tmp: &Path,
) -> io::Result<FileOutcome> {
    let all: Vec<u32> = (0..PARTS).collect();
    let (theirs, ours) = std::thread::scope(|s| {
        let a = s.spawn(|| spill_report(report, tmp, &all));
        let b = s.spawn(|| spill_ledger(ledger, tmp, &all));
        (a.join(), b.join())
    });
    let theirs = theirs.map_err(|_| bad("report reader panicked"))??;
    let ours = ours.map_err(|_| bad("ledger reader panicked"))??;
    let mut errors = Vec::new();
    if let Err(e) = theirs {
        errors.extend(e);
    }
    if let Err(e) = ours {
        errors.extend(e);
    }
    if !errors.is_empty() {
        return Ok(FileOutcome::Malformed(errors));
    }
    let (even, odd): (Vec<u32>, Vec<u32>) = all.iter().partition(|b| *b % 2 == 0);
    let (x, y) = std::thread::scope(|s| {
        let a = s.spawn(|| match_buckets(tmp, &even, fees, tolerance_minor));
        let b = s.spawn(|| match_buckets(tmp, &odd, fees, tolerance_minor));
        (a.join(), b.join())
    });
    let mut totals = x.map_err(|_| bad("matcher panicked"))??;
    totals
        .merge(&y.map_err(|_| bad("matcher panicked"))??)
        .map_err(bad)?;
    Ok(FileOutcome::Done(totals))
}

/// Class counts of a finished match, for comparing with another engine.
pub fn class_counts(t: &Totals) -> Vec<(&'static str, u64)> {
    Class::ALL
        .iter()
        .map(|c| (c.as_str(), t.count(*c)))
        .collect()
}
