//! The embedded store's log record: the items one commit puts and the keys
//! it deletes, in a compact binary form (JSON was a tenth of the server's
//! CPU under load, most of it escaping strings).
//!
//! A frame starts with its format byte: [`BINARY_V1`], or `{` for a JSON
//! record written by an older version (still read, never written).
//!
//! Binary v1: `puts: n, item*` then `dels: n, (pk, sk)*`, where
//! `item = n, (name, attr)*`, a string is `len, UTF-8 bytes`, a count or a
//! length is a LEB128 varint, and an attr is a tag byte then its value:
//! `0 S string | 1 N i64 LE | 2 B u8 | 3 M n, (name, attr)* | 4 L n, attr*`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{item_size, Attr, Item, Key};

pub const BINARY_V1: u8 = 1;
/// Maps and lists nest at most this deep (DynamoDB allows 32).
const MAX_DEPTH: usize = 32;

#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
pub struct Record {
    pub puts: Vec<Item>,
    pub dels: Vec<Key>,
}

impl Record {
    /// The whole record at once: the reference the tests hold
    /// [`encode_packed`] to (the store packs each item as it commits it).
    #[cfg(test)]
    pub fn encode(&self) -> Vec<u8> {
        let guess: usize = self.puts.iter().map(|i| item_size(i) + 4 * i.len()).sum();
        let mut out = Vec::with_capacity(16 + guess + 64 * self.dels.len());
        out.push(BINARY_V1);
        varint(&mut out, self.puts.len());
        for item in &self.puts {
            map(&mut out, item);
        }
        varint(&mut out, self.dels.len());
        for k in &self.dels {
            string(&mut out, &k.pk);
            string(&mut out, &k.sk);
        }
        out
    }

    pub fn decode(frame: &[u8]) -> Result<Record, String> {
        match frame.first() {
            Some(&BINARY_V1) => {
                let mut r = Reader {
                    bytes: frame,
                    at: 1,
                };
                let rec = r.record()?;
                if r.at != frame.len() {
                    return Err(format!("{} bytes after the record", frame.len() - r.at));
                }
                Ok(rec)
            }
            Some(b'{') => serde_json::from_slice(frame).map_err(|e| e.to_string()),
            Some(other) => Err(format!("unknown record format {other}")),
            None => Err("empty record".into()),
        }
    }
}

/// One item in the record encoding (the bytes a put has in a frame): what
/// the embedded table keeps, a fifth of the item's size as a tree.
pub fn encode_item(item: &Item) -> Vec<u8> {
    let mut out = Vec::with_capacity(item_size(item) + 4 * item.len() + 4);
    map(&mut out, item);
    out
}

/// The item `encode_item` wrote; every byte of `bytes` must belong to it.
pub fn decode_item(bytes: &[u8]) -> Result<Item, String> {
    let mut r = Reader { bytes, at: 0 };
    let item = r.map(0)?;
    if r.at != bytes.len() {
        return Err(format!("{} bytes after the item", bytes.len() - r.at));
    }
    Ok(item)
}

/// The frame of a record whose puts are already encoded by `encode_item`:
/// byte for byte what [`Record::encode`] gives for the same items.
pub fn encode_packed<'a>(
    puts: impl ExactSizeIterator<Item = &'a [u8]> + Clone,
    dels: &[Key],
) -> Vec<u8> {
    let bytes: usize = puts.clone().map(<[u8]>::len).sum();
    let mut out = Vec::with_capacity(16 + bytes + 64 * dels.len());
    out.push(BINARY_V1);
    varint(&mut out, puts.len());
    for p in puts {
        out.extend_from_slice(p);
    }
    varint(&mut out, dels.len());
    for k in dels {
        string(&mut out, &k.pk);
        string(&mut out, &k.sk);
    }
    out
}

fn varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn string(out: &mut Vec<u8>, s: &str) {
    varint(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn map(out: &mut Vec<u8>, m: &BTreeMap<String, Attr>) {
    varint(out, m.len());
    for (name, a) in m {
        string(out, name);
        attr(out, a);
    }
}

fn attr(out: &mut Vec<u8>, a: &Attr) {
    match a {
        Attr::S(s) => {
            out.push(0);
            string(out, s);
        }
        Attr::N(n) => {
            out.push(1);
            out.extend_from_slice(&n.to_le_bytes());
        }
        Attr::B(b) => {
            out.push(2);
            out.push(u8::from(*b));
        }
        Attr::M(m) => {
            out.push(3);
            map(out, m);
        }
        Attr::L(l) => {
            out.push(4);
            varint(out, l.len());
            for v in l {
                attr(out, v);
            }
        }
    }
}

/// Reads a binary record; every length is checked against what is left,
/// so no input can over-allocate or panic.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn record(&mut self) -> Result<Record, String> {
        let n = self.count()?;
        let mut puts = Vec::with_capacity(n);
        for _ in 0..n {
            puts.push(self.map(0)?);
        }
        let n = self.count()?;
        let mut dels = Vec::with_capacity(n);
        for _ in 0..n {
            let pk = self.string()?;
            dels.push(Key::new(pk, self.string()?));
        }
        Ok(Record { puts, dels })
    }

    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.bytes.get(self.at).ok_or("record cut short")?;
        self.at += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).ok_or("length overflows")?;
        let s = self.bytes.get(self.at..end).ok_or("record cut short")?;
        self.at = end;
        Ok(s)
    }

    fn varint(&mut self) -> Result<usize, String> {
        let mut n: usize = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= usize::from(b & 0x7f)
                .checked_shl(shift)
                .ok_or("varint too long")?;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err("varint too long".into())
    }

    /// A count of things still to read: each takes at least one byte.
    fn count(&mut self) -> Result<usize, String> {
        let n = self.varint()?;
        if n > self.bytes.len() - self.at {
            return Err(format!("count {n} exceeds the record"));
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.varint()?;
        let raw = self.take(n)?;
        String::from_utf8(raw.to_vec()).map_err(|_| "string is not UTF-8".to_owned())
    }

    fn map(&mut self, depth: usize) -> Result<BTreeMap<String, Attr>, String> {
        let n = self.count()?;
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.string()?;
            pairs.push((name, self.attr(depth)?));
        }
        // Written in key order: built in bulk, not one insert at a time.
        Ok(pairs.into_iter().collect())
    }

    fn attr(&mut self, depth: usize) -> Result<Attr, String> {
        if depth > MAX_DEPTH {
            return Err("attributes nest too deep".into());
        }
        Ok(match self.byte()? {
            0 => Attr::S(self.string()?),
            1 => {
                let raw = self.take(8)?;
                let mut le = [0u8; 8];
                le.copy_from_slice(raw);
                Attr::N(i64::from_le_bytes(le))
            }
            2 => match self.byte()? {
                0 => Attr::B(false),
                1 => Attr::B(true),
                b => return Err(format!("bad bool {b}")),
            },
            3 => Attr::M(self.map(depth + 1)?),
            4 => {
                let n = self.count()?;
                let mut l = Vec::with_capacity(n);
                for _ in 0..n {
                    l.push(self.attr(depth + 1)?);
                }
                Attr::L(l)
            }
            t => return Err(format!("unknown attribute tag {t}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::item;

    fn sample() -> Record {
        let key = Key::new("PAY#p1", "A");
        let mut nested = BTreeMap::new();
        nested.insert(
            "ünï \"q\"".to_owned(),
            Attr::L(vec![Attr::N(-1), Attr::B(true)]),
        );
        let it = item(
            &key,
            [
                ("amount", Attr::N(i64::MIN)),
                ("big", Attr::N(i64::MAX)),
                ("s", Attr::S("x".repeat(300))),
                ("m", Attr::M(nested)),
                ("empty", Attr::S(String::new())),
                ("f", Attr::B(false)),
            ],
        );
        Record {
            puts: vec![it, Item::new()],
            dels: vec![
                Key::new("Q#events", "000000000000001#msg"),
                Key::new("", ""),
            ],
        }
    }

    #[test]
    fn binary_round_trips_every_attribute_kind() {
        let rec = sample();
        let bytes = rec.encode();
        assert_eq!(bytes[0], BINARY_V1);
        assert_eq!(Record::decode(&bytes).unwrap(), rec);
    }

    #[test]
    fn items_packed_one_by_one_make_the_same_frame_and_decode_alone() {
        let rec = sample();
        let packed: Vec<Vec<u8>> = rec.puts.iter().map(encode_item).collect();
        let frame = encode_packed(packed.iter().map(Vec::as_slice), &rec.dels);
        assert_eq!(frame, rec.encode());
        for (bytes, item) in packed.iter().zip(&rec.puts) {
            assert_eq!(&decode_item(bytes).unwrap(), item);
            for cut in 0..bytes.len() {
                assert!(decode_item(&bytes[..cut]).is_err(), "cut at {cut}");
            }
            let mut trailing = bytes.clone();
            trailing.push(0);
            assert!(decode_item(&trailing).is_err());
        }
    }

    #[test]
    fn json_records_of_older_logs_are_still_read() {
        let rec = sample();
        let json = serde_json::to_vec(&rec).unwrap();
        assert_eq!(Record::decode(&json).unwrap(), rec);
    }

    #[test]
    fn every_cut_or_bad_byte_is_an_error_not_a_panic() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(Record::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for at in 1..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0xff;
            let _ = Record::decode(&bad);
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(Record::decode(&trailing).is_err());
        assert!(Record::decode(&[9]).is_err());
        // A huge count with nothing behind it allocates nothing.
        assert!(Record::decode(&[BINARY_V1, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        // Nesting past the bound.
        let mut deep = vec![BINARY_V1, 1, 1, 1, b'a'];
        for _ in 0..100 {
            deep.extend_from_slice(&[4, 1]);
        }
        deep.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(Record::decode(&deep).is_err());
    }
}
