//! Per-bucket spill files: the one pass over a report (or a ledger export)
//! writes each line to its bucket's file in a compact binary form, so that
//! matching then holds one bucket in memory, never the day.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::money::Currency;

use crate::domain::recon::matcher::Theirs;
use crate::psp::settlement::LineRef;
use crate::schema::recon_index::{key_id, Kind, RecordRef, BUCKETS};

/// A string longer than this in a spill file means a corrupt file.
const MAX_FIELD: usize = 64 * 1024;

/// Something that can be written to and read back from a spill file.
pub trait Spillable: Sized {
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(r: &mut impl Read) -> io::Result<Option<Self>>;
    /// Decode over `into`, reusing its allocations; `false` at the end.
    fn decode_into(r: &mut impl Read, into: &mut Self) -> io::Result<bool> {
        match Self::decode(r)? {
            Some(v) => {
                *into = v;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

// The encoding is compact (spill bytes are written and read back once
// each): integers as LEB128 varints (signed ones zigzagged), strings as a
// varint length and their bytes, and nothing that can be derived: a line's
// match key is rebuilt from its kind and id, a record's payment id is
// taken from its key when the key ends with it.

/// A checked report line, encoded exactly as its [`Theirs`] would be,
/// without building one (the streaming pass allocates nothing per line).
pub fn encode_line(out: &mut Vec<u8>, l: &LineRef<'_>, kind: Kind) {
    out.push(kind_byte(kind));
    put_varint(out, l.line);
    out.extend_from_slice(l.currency.code().as_bytes());
    put_signed(out, l.gross_minor);
    put_signed(out, l.fee_minor);
    put_str(out, l.reference);
    put_str(out, l.payment_id);
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_signed(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn get_varint(r: &mut impl Read) -> io::Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let [b] = get::<1>(r)?;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(corrupt("varint too long"))
}

fn get_signed(r: &mut impl Read) -> io::Result<i64> {
    let z = get_varint(r)?;
    Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
}

fn field_len(len: u64) -> io::Result<usize> {
    usize::try_from(len)
        .ok()
        .filter(|n| *n <= MAX_FIELD)
        .ok_or_else(|| corrupt("field too long"))
}

/// Read a string over `into`, reusing its buffer.
fn get_str_into(r: &mut impl Read, into: &mut String) -> io::Result<()> {
    let len = field_len(get_varint(r)?)?;
    let mut buf = std::mem::take(into).into_bytes();
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(&mut buf)?;
    *into = String::from_utf8(buf).map_err(|_| corrupt("field is not UTF-8"))?;
    Ok(())
}

fn get<const N: usize>(r: &mut impl Read) -> io::Result<[u8; N]> {
    let mut b = [0; N];
    r.read_exact(&mut b)?;
    Ok(b)
}

/// The first byte of a value: `None` at a clean end of file.
fn first_byte(r: &mut impl Read) -> io::Result<Option<u8>> {
    let mut b = [0u8; 1];
    match r.read(&mut b)? {
        0 => Ok(None),
        _ => Ok(Some(b[0])),
    }
}

fn kind_byte(k: Kind) -> u8 {
    match k {
        Kind::Payment => 1,
        Kind::Refund => 2,
        Kind::Chargeback => 3,
        Kind::Fee => 4,
        Kind::Payout => 5,
    }
}

fn kind_of(b: u8) -> io::Result<Kind> {
    match b {
        1 => Ok(Kind::Payment),
        2 => Ok(Kind::Refund),
        3 => Ok(Kind::Chargeback),
        4 => Ok(Kind::Fee),
        5 => Ok(Kind::Payout),
        _ => Err(corrupt("bad kind")),
    }
}

/// A currency code, looked up only when it is not `last`'s.
fn currency_after(code: [u8; 3], last: Option<Currency>) -> io::Result<Currency> {
    match last {
        // Most values share the previous one's currency: no lookup.
        Some(c) if c.code().as_bytes() == code => Ok(c),
        _ => std::str::from_utf8(&code)
            .ok()
            .and_then(|c| Currency::parse(c).ok())
            .ok_or_else(|| corrupt("bad currency")),
    }
}

/// A spilled line: its [`Theirs::key`] must be its kind and id
/// ([`crate::schema::recon_index::match_key`]), which decoding rebuilds.
impl Spillable for Theirs {
    fn encode(&self, out: &mut Vec<u8>) {
        debug_assert_eq!(
            self.key,
            crate::schema::recon_index::match_key(self.kind, &self.payment_id, &self.reference)
        );
        out.push(kind_byte(self.kind));
        put_varint(out, self.line);
        out.extend_from_slice(self.currency.code().as_bytes());
        put_signed(out, self.gross_minor);
        put_signed(out, self.fee_minor);
        put_str(out, &self.reference);
        put_str(out, &self.payment_id);
    }
    fn decode(r: &mut impl Read) -> io::Result<Option<Self>> {
        let mut t = Theirs::empty();
        Ok(Self::decode_into(r, &mut t)?.then_some(t))
    }
    fn decode_into(r: &mut impl Read, t: &mut Self) -> io::Result<bool> {
        let Some(k) = first_byte(r)? else {
            return Ok(false);
        };
        t.kind = kind_of(k)?;
        t.line = get_varint(r)?;
        t.currency = currency_after(get::<3>(r)?, Some(t.currency))?;
        t.gross_minor = get_signed(r)?;
        t.fee_minor = get_signed(r)?;
        get_str_into(r, &mut t.reference)?;
        get_str_into(r, &mut t.payment_id)?;
        t.key.clear();
        t.key.push_str(t.kind.as_str());
        t.key.push(':');
        t.key.push_str(key_id(t.kind, &t.payment_id, &t.reference));
        Ok(true)
    }
}

/// A record's key is `<kind>:<payment id>`: the payment id is not stored.
const PAYMENT_ID_IN_KEY: u8 = 1;

/// The payment id a `<kind>:<id>` key ends with.
fn id_in_key(kind: Kind, key: &str) -> Option<&str> {
    key.strip_prefix(kind.as_str())?.strip_prefix(':')
}

/// One of our records, for [`records_in`].
pub fn encode_record(out: &mut Vec<u8>, r: &RecordRef<'_>) {
    let in_key = id_in_key(r.kind, r.key) == Some(r.payment_id);
    out.push(kind_byte(r.kind));
    out.extend_from_slice(r.currency.code().as_bytes());
    put_signed(out, r.gross_minor);
    out.push(if in_key { PAYMENT_ID_IN_KEY } else { 0 });
    put_str(out, r.key);
    if !in_key {
        put_str(out, r.payment_id);
    }
    put_str(out, r.method);
    put_str(out, r.event_id);
}

/// The records of a spilled partition read whole, borrowing its bytes: no
/// allocation per record.
pub fn records_in(bytes: &[u8]) -> io::Result<Vec<RecordRef<'_>>> {
    let mut out = Vec::new();
    records_into(bytes, &mut out)?;
    Ok(out)
}

/// [`records_in`] appending to `out` (whose allocation a caller reuses).
pub fn records_into<'a>(mut bytes: &'a [u8], out: &mut Vec<RecordRef<'a>>) -> io::Result<()> {
    let mut last: Option<Currency> = None;
    while let Some((&k, rest)) = bytes.split_first() {
        bytes = rest;
        let kind = kind_of(k)?;
        let currency = currency_after(take::<3>(&mut bytes)?, last)?;
        last = Some(currency);
        let gross_minor = get_signed(&mut bytes)?;
        let [flags] = take::<1>(&mut bytes)?;
        let key = take_str(&mut bytes)?;
        let payment_id = match flags {
            PAYMENT_ID_IN_KEY => id_in_key(kind, key).ok_or_else(|| corrupt("bad key"))?,
            0 => take_str(&mut bytes)?,
            _ => return Err(corrupt("bad flags")),
        };
        out.push(RecordRef {
            kind,
            currency,
            gross_minor,
            key,
            payment_id,
            method: take_str(&mut bytes)?,
            event_id: take_str(&mut bytes)?,
        });
    }
    Ok(())
}

/// `v` emptied, its allocation kept for records borrowing other bytes
/// (the standard library collects an emptied vector's iterator in place).
pub fn emptied<'b>(mut v: Vec<RecordRef<'_>>) -> Vec<RecordRef<'b>> {
    v.clear();
    // A filter would keep the old lifetime; the map to nothing changes it.
    #[allow(clippy::unnecessary_filter_map)]
    v.into_iter().filter_map(|_| None).collect()
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("spill: {what}"))
}

fn take<const N: usize>(bytes: &mut &[u8]) -> io::Result<[u8; N]> {
    let (head, rest) = bytes
        .split_first_chunk::<N>()
        .ok_or_else(|| corrupt("truncated"))?;
    *bytes = rest;
    Ok(*head)
}

fn take_str<'a>(bytes: &mut &'a [u8]) -> io::Result<&'a str> {
    let len = field_len(get_varint(bytes)?)?;
    if len > bytes.len() {
        return Err(corrupt("truncated"));
    }
    let (text, rest) = bytes.split_at(len);
    *bytes = rest;
    std::str::from_utf8(text).map_err(|_| corrupt("field is not UTF-8"))
}

/// One file per bucket under `dir`, named `<name>-<bucket>`.
pub struct Spill {
    dir: PathBuf,
    name: &'static str,
    writers: Vec<Option<BufWriter<File>>>,
    buf: Vec<u8>,
}

impl Spill {
    /// Files for the given buckets only; the rest are not this shard's.
    pub fn create(dir: &Path, name: &'static str, buckets: &[u32]) -> io::Result<Spill> {
        Spill::create_parts(dir, name, BUCKETS, buckets)
    }

    /// Over `parts` partitions (bucket numbers below it).
    pub fn create_parts(
        dir: &Path,
        name: &'static str,
        parts: u32,
        buckets: &[u32],
    ) -> io::Result<Spill> {
        let mut writers: Vec<Option<BufWriter<File>>> = (0..parts).map(|_| None).collect();
        for &b in buckets {
            let f = File::create(path(dir, name, b))?;
            if let Some(slot) = writers.get_mut(b as usize) {
                *slot = Some(BufWriter::with_capacity(64 * 1024, f));
            }
        }
        Ok(Spill {
            dir: dir.to_owned(),
            name,
            writers,
            buf: Vec::with_capacity(256),
        })
    }

    /// Whether this spill keeps the bucket (the shard owns it).
    pub fn keeps(&self, bucket: u32) -> bool {
        matches!(self.writers.get(bucket as usize), Some(Some(_)))
    }

    /// Append whatever `encode` writes to the bucket's file.
    pub fn push_with(&mut self, bucket: u32, encode: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        let Some(Some(w)) = self.writers.get_mut(bucket as usize) else {
            return Ok(());
        };
        self.buf.clear();
        encode(&mut self.buf);
        w.write_all(&self.buf)
    }

    pub fn push(&mut self, bucket: u32, v: &impl Spillable) -> io::Result<()> {
        let Some(Some(w)) = self.writers.get_mut(bucket as usize) else {
            return Ok(());
        };
        self.buf.clear();
        v.encode(&mut self.buf);
        w.write_all(&self.buf)
    }

    /// Flush every file; returns the directory and name to read back.
    pub fn finish(self) -> io::Result<(PathBuf, &'static str)> {
        // Scratch files: flushed, not synced (a crash re-runs the shard).
        for mut w in self.writers.into_iter().flatten() {
            w.flush()?;
        }
        Ok((self.dir, self.name))
    }
}

fn path(dir: &Path, name: &str, bucket: u32) -> PathBuf {
    dir.join(format!("{name}-{bucket:03}"))
}

/// Read back one bucket's file, value by value.
pub struct SpillReader<T> {
    r: BufReader<File>,
    _t: std::marker::PhantomData<T>,
}

impl<T: Spillable> SpillReader<T> {
    pub fn open(dir: &Path, name: &str, bucket: u32) -> io::Result<Self> {
        Ok(SpillReader {
            r: BufReader::with_capacity(64 * 1024, File::open(path(dir, name, bucket))?),
            _t: std::marker::PhantomData,
        })
    }
}

impl<T: Spillable> SpillReader<T> {
    /// The next value over `into` (no allocation once warm); `false` at the end.
    pub fn next_into(&mut self, into: &mut T) -> io::Result<bool> {
        T::decode_into(&mut self.r, into)
    }
}

impl<T: Spillable> Iterator for SpillReader<T> {
    type Item = io::Result<T>;
    fn next(&mut self) -> Option<io::Result<T>> {
        T::decode(&mut self.r).transpose()
    }
}

/// Many partitions spilled into ONE file: each partition's values gather
/// in a buffer that is written as a block when it fills, and the index
/// says where each partition's blocks are. With a hundred partitions and
/// more, creating one file each costs more than writing them does.
/// Memory: one block per partition.
pub struct BlockSpill {
    path: PathBuf,
    file: File,
    /// A partition's buffer is written when it reaches this size.
    block: usize,
    end: u64,
    bufs: Vec<Vec<u8>>,
    blocks: Vec<Vec<(u64, u32)>>,
}

impl BlockSpill {
    pub fn create(path: PathBuf, parts: u32, block: usize) -> io::Result<BlockSpill> {
        Ok(BlockSpill {
            file: File::create(&path)?,
            path,
            block: block.max(1),
            end: 0,
            bufs: (0..parts).map(|_| Vec::new()).collect(),
            blocks: (0..parts).map(|_| Vec::new()).collect(),
        })
    }

    /// Append whatever `encode` writes to partition `part` (values never
    /// straddle blocks).
    pub fn push_with(&mut self, part: u32, encode: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        let Some(buf) = self.bufs.get_mut(part as usize) else {
            return Ok(());
        };
        if buf.capacity() == 0 {
            buf.reserve_exact(self.block + 512);
        }
        encode(buf);
        if buf.len() >= self.block {
            self.write_block(part as usize)?;
        }
        Ok(())
    }

    pub fn parts(&self) -> u32 {
        u32::try_from(self.bufs.len()).unwrap_or(u32::MAX)
    }

    fn write_block(&mut self, part: usize) -> io::Result<()> {
        let (Some(buf), Some(blocks)) = (self.bufs.get_mut(part), self.blocks.get_mut(part)) else {
            return Ok(());
        };
        if buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(buf)?;
        let len = u32::try_from(buf.len()).map_err(|_| corrupt("block too large"))?;
        blocks.push((self.end, len));
        self.end += u64::from(len);
        buf.clear();
        Ok(())
    }

    /// Write what is left of every partition; the file is then read back
    /// by partition (it is scratch: flushed, not synced).
    pub fn finish(mut self) -> io::Result<Spilled> {
        for part in 0..self.bufs.len() {
            self.write_block(part)?;
        }
        self.file.flush()?;
        Ok(Spilled {
            file: File::open(&self.path)?,
            blocks: self.blocks,
        })
    }
}

/// A finished [`BlockSpill`], read back a partition at a time (from any
/// thread: reads are positioned, the handle has no cursor to share).
pub struct Spilled {
    file: File,
    blocks: Vec<Vec<(u64, u32)>>,
}

impl Spilled {
    /// Hand each block of partition `part` to `each`, in the order written,
    /// through `buf` (one block in memory at a time).
    pub fn blocks_of(
        &self,
        part: u32,
        buf: &mut Vec<u8>,
        mut each: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        for &(at, len) in self.blocks.get(part as usize).into_iter().flatten() {
            buf.clear();
            buf.resize(len as usize, 0);
            self.file.read_exact_at(buf, at)?;
            each(buf)?;
        }
        Ok(())
    }

    /// All of partition `part`, appended to `into`.
    pub fn read_part(&self, part: u32, into: &mut Vec<u8>) -> io::Result<()> {
        let mut buf = Vec::new();
        self.blocks_of(part, &mut buf, |block| {
            into.extend_from_slice(block);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_records_read_back_exactly_per_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let eur = Currency::parse("EUR").unwrap();
        let t = Theirs {
            line: 7,
            kind: Kind::Refund,
            key: "refund:r1".into(),
            reference: "r1".into(),
            payment_id: "pay_1".into(),
            gross_minor: -250,
            fee_minor: 0,
            currency: eur,
        };
        let mut a = Spill::create(dir.path(), "theirs", &[3, 5]).unwrap();
        assert!(a.keeps(5) && !a.keeps(4));
        a.push(3, &t).unwrap();
        a.push(3, &t).unwrap();
        a.push(4, &t).unwrap(); // not kept
        a.finish().unwrap();
        let back: Vec<Theirs> = SpillReader::open(dir.path(), "theirs", 3)
            .unwrap()
            .collect::<io::Result<_>>()
            .unwrap();
        assert_eq!(back, vec![t.clone(), t]);
        assert_eq!(
            SpillReader::<Theirs>::open(dir.path(), "theirs", 5)
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn records_read_back_borrowing_the_bytes_whatever_their_fields() {
        let eur = Currency::parse("EUR").unwrap();
        let usd = Currency::parse("USD").unwrap();
        let rec = |key, kind, payment_id, gross_minor, currency| RecordRef {
            key,
            kind,
            payment_id,
            gross_minor,
            currency,
            method: "card",
            event_id: "evt_9",
        };
        let all = [
            // The payment id in the key (not stored), and not.
            rec("payment:pay_1", Kind::Payment, "pay_1", 1000, eur),
            rec("refund:rf_1", Kind::Refund, "pay_1", -250, eur),
            rec("payment:pay:x", Kind::Payment, "pay:x", i64::MAX, usd),
            rec("payment:other", Kind::Payment, "pay_2", i64::MIN, usd),
            rec("chargeback:pay_3", Kind::Chargeback, "pay_3", 0, eur),
        ];
        let mut bytes = Vec::new();
        for r in &all {
            encode_record(&mut bytes, r);
        }
        let back = records_in(&bytes).unwrap();
        // Emptied for other bytes, a vector keeps its allocation, and
        // decoding into it again gives the same records.
        let mut first = Vec::with_capacity(64);
        records_into(&bytes, &mut first).unwrap();
        let copy = bytes.clone();
        let mut again = emptied(first);
        assert_eq!((again.len(), again.capacity()), (0, 64), "allocation kept");
        records_into(&copy, &mut again).unwrap();
        assert_eq!(again.capacity(), 64, "no new allocation");
        let keys = |v: &[RecordRef<'_>]| {
            v.iter()
                .map(|r| (r.key.to_owned(), r.gross_minor))
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&again), keys(&back));
        let fields = |r: &RecordRef<'_>| {
            (
                r.key.to_owned(),
                r.kind,
                r.payment_id.to_owned(),
                r.gross_minor,
                r.currency,
                r.method.to_owned(),
                r.event_id.to_owned(),
            )
        };
        let want: Vec<_> = all.iter().map(fields).collect();
        assert_eq!(back.iter().map(fields).collect::<Vec<_>>(), want);
        // A cut record is an error, never a panic or a short read taken as
        // whole (cuts at a record's end are whole records).
        let mut one = Vec::new();
        encode_record(&mut one, &all[1]);
        for cut in 1..one.len() {
            assert!(records_in(&one[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn a_block_spill_gives_back_each_partition_in_order_and_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = BlockSpill::create(dir.path().join("blocks"), 3, 32 << 10).unwrap();
        // Partition 1 fills several blocks, 2 one short block, 0 nothing;
        // a partition beyond the count is ignored.
        let value = |i: u32| format!("value {i};").into_bytes();
        for i in 0..20_000u32 {
            spill.push_with(1, |o| o.extend(value(i))).unwrap();
            if i % 1000 == 0 {
                spill.push_with(2, |o| o.extend(value(i))).unwrap();
            }
        }
        spill.push_with(7, |o| o.extend(b"lost")).unwrap();
        let spilled = spill.finish().unwrap();
        let want =
            |step: usize| -> Vec<u8> { (0..20_000u32).step_by(step).flat_map(value).collect() };
        let mut got = Vec::new();
        spilled.read_part(1, &mut got).unwrap();
        assert_eq!(got, want(1));
        let (mut blocks, mut buf) = (0, Vec::new());
        spilled
            .blocks_of(1, &mut buf, |b| {
                blocks += 1;
                // No value straddles two blocks.
                assert!(b.ends_with(b";"));
                Ok(())
            })
            .unwrap();
        assert!(blocks > 3, "{blocks} blocks");
        got.clear();
        spilled.read_part(2, &mut got).unwrap();
        assert_eq!(got, want(1000));
        got.clear();
        spilled.read_part(0, &mut got).unwrap();
        spilled.read_part(7, &mut got).unwrap();
        assert!(got.is_empty());
    }

    #[test]
    fn a_report_line_spills_as_its_theirs_and_decodes_over_a_used_one() {
        use crate::domain::recon::run::theirs;
        use crate::psp::settlement::ReportReader;
        let dir = tempfile::tempdir().unwrap();
        let text = "reference,payment_id,type,gross,fee,net,currency,settled_date\n\
                    rf_9,pay_1,refund,-2.50,0.00,-2.50,EUR,2026-11-20\n\
                    ref_1,pay_1,payment,10.00,0.15,9.85,EUR,2026-11-20\n";
        let mut spill = Spill::create(dir.path(), "theirs", &[0]).unwrap();
        let mut owned = Vec::new();
        ReportReader::new().push_with(text.as_bytes(), |l| {
            let l = l.unwrap();
            let kind = Kind::parse(l.kind).unwrap();
            spill
                .push_with(0, |out| encode_line(out, &l, kind))
                .unwrap();
            owned.push(theirs(l.to_line()).unwrap());
        });
        spill.finish().unwrap();
        let mut r = SpillReader::<Theirs>::open(dir.path(), "theirs", 0).unwrap();
        let mut t = Theirs::empty();
        for want in &owned {
            assert!(r.next_into(&mut t).unwrap());
            assert_eq!(&t, want);
        }
        assert!(!r.next_into(&mut t).unwrap());
        assert_eq!(owned[0].key, "refund:rf_9");
        assert_eq!(owned[1].key, "payment:pay_1");
    }
}
