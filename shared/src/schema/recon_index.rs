//! Our side of a settlement day: one small index item per money movement a
//! PSP will settle (a captured deposit, a chargeback, a refund), written in
//! the SAME transaction as the movement, or (a capture, on the hot path) put
//! once right after it commits, on every delivery of the capture until one
//! succeeds: the message is acknowledged only then, so the index is exact. A day's
//! records of one PSP are spread over [`BUCKETS`] partitions by a hash of
//! their match key; a reconciliation shard reads only its buckets.
//!
//! | item         | pk                              | sk          |
//! |--------------|---------------------------------|-------------|
//! | settle index | `RECON#<psp>#<day>#<bucket:02>` | `<key>`     |
//!
//! The match key is what both sides know: `payment:<payment_id>`,
//! `chargeback:<payment_id>`, `refund:<PSP refund reference>`,
//! `payout:<payout_id>`, `fee:<PSP reference>` (PSP-side only).

use crate::clock::Day;
use crate::ids::PspId;
use crate::money::Currency;
use crate::store::{item, Attr, Cond, Item, ItemExt, Key, Write};

/// Partitions of one PSP-day; a reconciliation runs 1..=BUCKETS shards.
pub const BUCKETS: u32 = 32;

/// What a settled line or one of our records is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Payment,
    Refund,
    Chargeback,
    Fee,
    /// A withdrawal paid out (the line's `payment_id` is our payout id).
    Payout,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Payment => "payment",
            Kind::Refund => "refund",
            Kind::Chargeback => "chargeback",
            Kind::Fee => "fee",
            Kind::Payout => "payout",
        }
    }
    pub fn parse(s: &str) -> Option<Kind> {
        [
            Kind::Payment,
            Kind::Refund,
            Kind::Chargeback,
            Kind::Fee,
            Kind::Payout,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// The id part of a match key: our payment id, or the PSP's reference.
pub fn key_id<'a>(kind: Kind, payment_id: &'a str, reference: &'a str) -> &'a str {
    match kind {
        Kind::Payment | Kind::Chargeback | Kind::Payout => payment_id,
        Kind::Refund | Kind::Fee => reference,
    }
}

/// The match key of a line or record: `<kind>:<id>`.
pub fn match_key(kind: Kind, payment_id: &str, reference: &str) -> String {
    format!("{}:{}", kind.as_str(), key_id(kind, payment_id, reference))
}

/// FNV-1a: stable across processes and versions (the bucket is stored).
pub fn bucket(key: &str) -> u32 {
    bucket_in(BUCKETS, key)
}

/// The bucket of `<kind>:<id>` without building the key.
pub fn bucket_parts(kind: Kind, id: &str) -> u32 {
    bucket_parts_in(BUCKETS, kind, id)
}

/// The same hash over `parts` partitions (file-to-file matching splits finer).
pub fn bucket_in(parts: u32, key: &str) -> u32 {
    bucket_of(parts, key.bytes())
}

pub fn bucket_parts_in(parts: u32, kind: Kind, id: &str) -> u32 {
    bucket_of(parts, kind.as_str().bytes().chain([b':']).chain(id.bytes()))
}

fn bucket_of(parts: u32, bytes: impl Iterator<Item = u8>) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // Fold the high bits in: the low bits of FNV alone spread short keys badly.
    ((h ^ (h >> 32)) % u64::from(parts.max(1))) as u32
}

pub fn partition(psp: &PspId, day: Day, bucket: u32) -> String {
    crate::schema::keys::recon_index_pk(psp, day, bucket)
}

/// One of our records, as the index holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    pub kind: Kind,
    pub payment_id: String,
    /// Signed like the PSP's gross: refunds and chargebacks negative.
    pub gross_minor: i64,
    pub currency: Currency,
    pub method: String,
    /// The event that moved the money (a reconciliation heal has its own prefix).
    pub event_id: String,
}

/// A record's fields, borrowed (from a [`Record`], a ledger export line, a
/// spill file's bytes).
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub key: &'a str,
    pub kind: Kind,
    pub payment_id: &'a str,
    pub gross_minor: i64,
    pub currency: Currency,
    pub method: &'a str,
    pub event_id: &'a str,
}

impl Record {
    /// Its fields, borrowed.
    pub fn fields(&self) -> RecordRef<'_> {
        RecordRef {
            key: &self.key,
            kind: self.kind,
            payment_id: &self.payment_id,
            gross_minor: self.gross_minor,
            currency: self.currency,
            method: &self.method,
            event_id: &self.event_id,
        }
    }

    /// The index put for a movement's transaction.
    pub fn write(&self, psp: &PspId, day: Day) -> Write {
        self.put(psp, day, None)
    }

    fn put(&self, psp: &PspId, day: Day, cond: Option<Cond>) -> Write {
        let key = Key::new(partition(psp, day, bucket(&self.key)), self.key.clone());
        Write::Put {
            item: item(
                &key,
                [
                    ("kind", Attr::from(self.kind.as_str())),
                    ("payment_id", Attr::from(self.payment_id.as_str())),
                    ("gross", Attr::N(self.gross_minor)),
                    ("currency", Attr::from(self.currency.code())),
                    ("method", Attr::from(self.method.as_str())),
                    ("event_id", Attr::from(self.event_id.as_str())),
                ],
            ),
            cond,
        }
    }

    /// The index put made after its movement committed: once per key (a
    /// redelivery's put finds it and changes nothing).
    pub fn write_once(&self, psp: &PspId, day: Day) -> Write {
        self.put(psp, day, Some(Cond::NotExists))
    }

    pub fn from_item(it: &Item) -> Option<Record> {
        Some(Record {
            key: it.str_attr("sk")?.to_owned(),
            kind: Kind::parse(it.str_attr("kind")?)?,
            payment_id: it.str_attr("payment_id")?.to_owned(),
            gross_minor: it.int_attr("gross")?,
            currency: Currency::parse(it.str_attr("currency")?).ok()?,
            method: it.str_attr("method")?.to_owned(),
            event_id: it.str_attr("event_id").unwrap_or("").to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_buckets_are_stable_and_spread() {
        assert_eq!(match_key(Kind::Payment, "pay_1", "r"), "payment:pay_1");
        assert_eq!(match_key(Kind::Refund, "pay_1", "rf9"), "refund:rf9");
        let mut seen = [0u32; BUCKETS as usize];
        for i in 0..32_000 {
            seen[bucket(&format!("payment:pay_{i:08}")) as usize] += 1;
        }
        assert!(
            seen.iter().all(|n| (700..1300).contains(n)),
            "uneven buckets: {seen:?}"
        );
        assert_eq!(
            bucket("payment:pay_x"),
            bucket_parts(Kind::Payment, "pay_x")
        );
    }
}
