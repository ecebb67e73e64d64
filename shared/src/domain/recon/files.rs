//! File-to-file matching: a settlement report against an export of our
//! index (`key,kind,payment_id,gross_minor,currency,method,event_id`), with
//! the same reader, spill encoding and matcher as the store-backed run, on
//! two threads: each reads one half of each file (split at a line end) into
//! its own block spills (one file per half and side, partitioned by
//! [`Layout`]), then each matches half of the partitions. Memory per thread:
//! a 1 MiB read buffer; the block buffers while spilling (4 MiB, 32 MiB at
//! most at 8192 partitions); then one partition's records (about 4 MiB of
//! the export up to 32 GB of it, a 1/8192 share beyond), its lines
//! streamed a block at a time. The rest is on disk. Used by
//! `payloop bench recon`; no store, no heals.

use std::fs::File;
use std::hash::BuildHasher;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use crate::money::Currency;

use crate::domain::policy::FeeRule;
use crate::domain::recon::matcher::{BucketMatcher, Class, KeyHash, Theirs};
use crate::domain::recon::report::{Tally, Totals};
use crate::domain::recon::spill::{
    emptied, encode_line, encode_record, records_into, BlockSpill, Spillable, Spilled,
};
use crate::psp::settlement::{PayloopFormat, ReportError, ReportReader, MAX_LINE};
use crate::schema::recon_index::{key_id, Kind, RecordRef};
use crate::text::{split_fields, LineError, LineSplitter};

pub const LEDGER_HEADER: &str = "key,kind,payment_id,gross_minor,currency,method,event_id";
const CHUNK: usize = 1 << 20;
/// How a file-to-file match partitions: at least 128 partitions (finer
/// than the store's 32 buckets), more as the export grows so that one
/// partition holds about [`PART_BYTES`] of it (one partition's records is
/// what matching holds), up to [`MAX_PARTS`]; blocks shrink as partitions
/// multiply so that a spill's block buffers stay near [`BUFFERS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    parts: u32,
    block: usize,
}

const MIN_PARTS: u32 = 128;
const MAX_PARTS: u32 = 8192;
const PART_BYTES: u64 = 4 << 20;
const BUFFERS: usize = 4 << 20;

impl Layout {
    fn for_export(ledger_bytes: u64) -> Layout {
        let parts = (ledger_bytes / PART_BYTES).clamp(u64::from(MIN_PARTS), u64::from(MAX_PARTS));
        let parts = u32::try_from(parts).unwrap_or(MAX_PARTS);
        Layout {
            parts,
            block: (BUFFERS / parts as usize).clamp(4 << 10, 32 << 10),
        }
    }
}

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

/// The spill names of the two halves of each file.
const THEIRS: [&str; 2] = ["theirs0", "theirs1"];
const OURS: [&str; 2] = ["ours0", "ours1"];

/// A file's partition of a match key: a word-at-a-time hash (the
/// partitions live for one run, so nothing needs FNV's stability).
fn part_of(key: &str, parts: u32) -> u32 {
    const PARTITIONS: KeyHash = KeyHash::with_seed(0x9a27_11c3_5e0d_4b61);
    (PARTITIONS.hash_one(key) % u64::from(parts.max(1))) as u32
}

/// What reading one half of a file found: its lines (relative to the
/// half's start) and its malformed lines, numbered the same way.
struct HalfRead<E> {
    lines: u64,
    errors: Vec<E>,
}

impl<E> HalfRead<E> {
    fn new() -> Self {
        HalfRead {
            lines: 0,
            errors: Vec::new(),
        }
    }

    fn refuse(&mut self, e: E) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(e);
        }
    }
}

/// At most this many malformed lines are listed per file.
const MAX_ERRORS: usize = 50;

/// Split `path` at the first line end after its middle: two byte ranges of
/// whole lines (the second may be empty).
fn halves(path: &Path) -> io::Result<[Range<u64>; 2]> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut cut = len / 2;
    f.seek(SeekFrom::Start(cut))?;
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
            cut = len;
            break;
        };
        if let Some(i) = memchr::memchr(b'\n', chunk) {
            cut += i as u64 + 1;
            break;
        }
        cut += n as u64;
    }
    Ok([0..cut, cut..len])
}

/// Feed the bytes of `range` of `path` to `each`, a chunk at a time.
fn read_range(
    path: &Path,
    range: &Range<u64>,
    mut each: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(range.start))?;
    let mut f = f.take(range.end.saturating_sub(range.start));
    let mut buf = vec![0; CHUNK];
    loop {
        let n = f.read(&mut buf)?;
        match buf.get(..n) {
            Some(chunk) if !chunk.is_empty() => each(chunk)?,
            _ => return Ok(()),
        }
    }
}

/// One half of the report into the `name` spill. The first half starts
/// with the header; the second numbers its lines as if it followed it.
fn spill_report(
    path: &Path,
    range: &Range<u64>,
    first: bool,
    spill: &mut BlockSpill,
) -> io::Result<HalfRead<ReportError>> {
    let mut reader = match first {
        true => ReportReader::new(),
        false => ReportReader::after_header(PayloopFormat::default()),
    };
    let mut out = HalfRead::new();
    let mut key = String::with_capacity(64);
    read_range(path, range, |chunk| {
        let mut failed = None;
        reader.push_with(chunk, |parsed| {
            let checked = parsed.and_then(|l| match Kind::parse(l.kind) {
                Some(k) => Ok((l, k)),
                None => Err(ReportError::BadField {
                    line: l.line,
                    field: "type",
                    reason: "unknown".into(),
                }),
            });
            match checked {
                Ok((l, kind)) if out.errors.is_empty() && failed.is_none() => {
                    key.clear();
                    key.push_str(kind.as_str());
                    key.push(':');
                    key.push_str(key_id(kind, l.payment_id, l.reference));
                    let part = part_of(&key, spill.parts());
                    let pushed = spill.push_with(part, |o| encode_line(o, &l, kind));
                    failed = pushed.err();
                }
                Ok(_) => {}
                Err(e) => out.refuse(e),
            }
        });
        failed.map_or(Ok(()), Err)
    })?;
    out.lines = reader.lines();
    if first && out.lines == 0 {
        out.refuse(ReportError::Empty);
    }
    if reader.has_partial() {
        out.refuse(ReportError::Truncated {
            line: out.lines + 1,
        });
    }
    Ok(out)
}

/// One half of the ledger export into the `name` spill (the first half
/// holds the header).
fn spill_ledger(
    path: &Path,
    range: &Range<u64>,
    first: bool,
    spill: &mut BlockSpill,
) -> io::Result<HalfRead<(u64, String)>> {
    let mut lines = LineSplitter::new(MAX_LINE);
    let mut last = None;
    let mut out = HalfRead::new();
    read_range(path, range, |chunk| {
        let mut failed = None;
        lines.push(chunk, |text| {
            out.lines += 1;
            let n = out.lines;
            let refused = match text {
                Ok(t) if first && n == 1 => {
                    (t != LEDGER_HEADER).then(|| format!("the header must be `{LEDGER_HEADER}`"))
                }
                Ok(t) => match parse_ledger_line(t, &mut last) {
                    Ok(rec) if out.errors.is_empty() && failed.is_none() => {
                        let part = part_of(rec.key, spill.parts());
                        let pushed = spill.push_with(part, |o| encode_record(o, &rec));
                        failed = pushed.err();
                        None
                    }
                    Ok(_) => None,
                    Err(e) => Some(e),
                },
                Err(LineError::NotUtf8) => Some("is not UTF-8".to_owned()),
                Err(LineError::TooLong) => Some(format!("longer than {MAX_LINE} bytes")),
            };
            if let Some(e) = refused {
                out.refuse((n, e));
            }
        });
        failed.map_or(Ok(()), Err)
    })?;
    if lines.has_partial() {
        out.refuse((out.lines + 1, "truncated (no end of line)".into()));
    }
    Ok(out)
}

/// Both halves of both files, each thread one half of each; then the
/// malformed lines of both files in order, numbered from each file's start.
fn spill_both(
    report: &Path,
    ledger: &Path,
    tmp: &Path,
    at: Layout,
) -> io::Result<(Vec<String>, Spills)> {
    let (rh, lh) = (halves(report)?, halves(ledger)?);
    type Halves = (
        HalfRead<ReportError>,
        HalfRead<(u64, String)>,
        Spilled,
        Spilled,
    );
    let run = |half: usize| -> io::Result<Halves> {
        let first = half == 0;
        let mut theirs = BlockSpill::create(tmp.join(THEIRS[half]), at.parts, at.block)?;
        let r = spill_report(report, &rh[half], first, &mut theirs)?;
        // Finished first: its block buffers go before the ledger's come.
        let theirs = theirs.finish()?;
        let mut ours = BlockSpill::create(tmp.join(OURS[half]), at.parts, at.block)?;
        let l = spill_ledger(ledger, &lh[half], first, &mut ours)?;
        Ok((r, l, theirs, ours.finish()?))
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| run(0));
        let b = s.spawn(|| run(1));
        (a.join(), b.join())
    });
    let (r0, l0, theirs0, ours0) = a.map_err(|_| bad("a file reader panicked"))??;
    let (r1, l1, theirs1, ours1) = b.map_err(|_| bad("a file reader panicked"))??;
    // The second half of the report numbered its first line 2.
    let report_shift = r0.lines.saturating_sub(1);
    let mut errors: Vec<String> = r0.errors.iter().map(ToString::to_string).collect();
    errors.extend(
        r1.errors
            .into_iter()
            .map(|e| e.shifted(report_shift).to_string()),
    );
    let ledger_lines = l0.lines;
    errors.extend(
        l0.errors
            .into_iter()
            .map(|(n, e)| format!("ledger line {n}: {e}")),
    );
    errors.extend(
        l1.errors
            .into_iter()
            .map(|(n, e)| format!("ledger line {}: {e}", n + ledger_lines)),
    );
    errors.truncate(2 * MAX_ERRORS);
    let spills = Spills {
        theirs: [theirs0, theirs1],
        ours: [ours0, ours1],
        report_shift,
    };
    Ok((errors, spills))
}

/// Both halves of both files, partitioned.
struct Spills {
    theirs: [Spilled; 2],
    ours: [Spilled; 2],
    /// What the second half of the report adds to its line numbers.
    report_shift: u64,
}

fn match_buckets(
    spills: &Spills,
    buckets: &[u32],
    fees: Option<FeeRule>,
    tol: i64,
) -> io::Result<Totals> {
    let mut totals = Totals::default();
    let (mut bytes, mut block) = (Vec::new(), Vec::new());
    // One allocation for every partition's records (fresh ones each time
    // had the kernel zeroing new pages for a tenth of the run).
    let mut spare = Vec::new();
    for &b in buckets {
        // A partition is a bounded slice of the export: read whole, records borrow it.
        bytes.clear();
        for half in &spills.ours {
            half.read_part(b, &mut bytes)?;
        }
        let mut ours = emptied(std::mem::take(&mut spare));
        records_into(&bytes, &mut ours)?;
        let mut tally = Tally::default();
        tally.records(ours.len() as u64);
        let mut m = BucketMatcher::new(&ours, fees, tol);
        let mut t = Theirs::empty();
        // The first half's lines come first: duplicates are found in report order.
        for (half, shift) in spills.theirs.iter().zip([0, spills.report_shift]) {
            half.blocks_of(b, &mut block, |mut lines| {
                while Theirs::decode_into(&mut lines, &mut t)? {
                    t.line += shift;
                    let f = m.line(&t);
                    let method = f.ours.as_ref().map_or("unknown", |r| r.method);
                    tally.line(&t, f.class, method, f.healed).map_err(bad)?;
                }
                Ok(())
            })?;
        }
        for r in m.unsettled() {
            tally.unsettled(r).map_err(bad)?;
        }
        tally.fold_into(&mut totals).map_err(bad)?;
        spare = emptied(ours);
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
    let at = Layout::for_export(std::fs::metadata(ledger)?.len());
    let all: Vec<u32> = (0..at.parts).collect();
    let (errors, spills) = spill_both(report, ledger, tmp, at)?;
    if !errors.is_empty() {
        return Ok(FileOutcome::Malformed(errors));
    }
    let (even, odd): (Vec<u32>, Vec<u32>) = all.iter().partition(|b| *b % 2 == 0);
    let (x, y) = std::thread::scope(|s| {
        let a = s.spawn(|| match_buckets(&spills, &even, fees, tolerance_minor));
        let b = s.spawn(|| match_buckets(&spills, &odd, fees, tolerance_minor));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_grow_with_the_export_and_their_buffers_do_not() {
        let small = Layout::for_export(100 << 20);
        assert_eq!(
            small,
            Layout {
                parts: 128,
                block: 32 << 10
            }
        );
        let ten_million = Layout::for_export(1 << 30);
        assert_eq!(
            ten_million,
            Layout {
                parts: 256,
                block: 16 << 10
            }
        );
        let huge = Layout::for_export(1 << 40);
        assert_eq!(
            huge,
            Layout {
                parts: 8192,
                block: 4 << 10
            }
        );
        for at in [small, ten_million, huge] {
            assert!(at.parts as usize * at.block <= 32 << 20, "{at:?}");
        }
        // Every key lands in a partition that exists.
        for parts in [1, 128, 8192] {
            assert!((0..1000).all(|i| part_of(&format!("payment:pay_{i}"), parts) < parts));
        }
    }
}
