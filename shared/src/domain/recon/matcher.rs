//! The pure part of reconciliation: one bucket of a PSP-day at a time, our
//! records in memory (a bucket is a 1/32 slice of the day), the PSP's lines
//! streamed past them. Every line and every record gets exactly one class.
//! No I/O here, so the store-backed run and the file-to-file bench share it.

use std::borrow::{Borrow, Cow};
use std::cell::Cell;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hash, Hasher};

use crate::money::Currency;

use crate::domain::policy::FeeRule;
use crate::schema::recon_index::{Kind, Record, RecordRef};

/// The event-id prefix of a capture applied by reconciliation.
pub const HEAL_PREFIX: &str = "recon:";

/// How a line (or one of our records) reconciles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Matched,
    AmountMismatch,
    CurrencyMismatch,
    /// The PSP settled it; our wallet has no such movement.
    MissingInWallet,
    /// We moved money; the PSP did not settle it.
    MissingAtPsp,
    /// The same key settled twice in the report.
    Duplicate,
    /// The PSP settled a payment we hold as declined, failed or expired.
    StatusMismatch,
    /// An account fee line (no payment behind it).
    Fee,
    /// A fee outside the PSP's fee schedule (beyond the tolerance).
    FeeMismatch,
}

impl Class {
    pub const ALL: [Class; 9] = [
        Class::Matched,
        Class::AmountMismatch,
        Class::CurrencyMismatch,
        Class::MissingInWallet,
        Class::MissingAtPsp,
        Class::Duplicate,
        Class::StatusMismatch,
        Class::Fee,
        Class::FeeMismatch,
    ];
    pub fn as_str(&self) -> &'static str {
        match self {
            Class::Matched => "matched",
            Class::AmountMismatch => "amount_mismatch",
            Class::CurrencyMismatch => "currency_mismatch",
            Class::MissingInWallet => "missing_in_wallet",
            Class::MissingAtPsp => "missing_at_psp",
            Class::Duplicate => "duplicate",
            Class::StatusMismatch => "status_mismatch",
            Class::Fee => "fee",
            Class::FeeMismatch => "fee_mismatch",
        }
    }
    pub fn parse(s: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.as_str() == s)
    }
    /// A mismatch an operator must see.
    pub fn opens_case(&self) -> bool {
        !matches!(self, Class::Matched | Class::Fee)
    }
}

/// One settled line, as matching needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theirs {
    pub line: u64,
    pub kind: Kind,
    pub key: String,
    pub reference: String,
    pub payment_id: String,
    pub gross_minor: i64,
    pub fee_minor: i64,
    pub currency: Currency,
}

impl Theirs {
    /// A blank line to decode over.
    pub fn empty() -> Theirs {
        Theirs {
            line: 0,
            kind: Kind::Fee,
            key: String::new(),
            reference: String::new(),
            payment_id: String::new(),
            gross_minor: 0,
            fee_minor: 0,
            currency: Currency::EUR,
        }
    }

    pub fn net_minor(&self) -> i64 {
        self.gross_minor.saturating_sub(self.fee_minor)
    }
}

impl FeeRule {
    pub fn expected(&self, kind: Kind, gross_minor: i64) -> Option<i64> {
        match kind {
            Kind::Payment => {
                let scaled = i128::from(gross_minor.checked_abs()?) * i128::from(self.bps);
                let pct = i64::try_from((scaled + 5_000) / 10_000).ok()?;
                pct.checked_add(self.fixed_minor)
            }
            Kind::Chargeback | Kind::Payout => Some(self.fixed_minor),
            Kind::Refund => Some(0),
            Kind::Fee => None,
        }
    }
}

/// One of our records as matching (and the report's tally) reads it: the
/// store's [`Record`], or a record borrowing a spill file's bytes.
pub trait Booked: Clone {
    fn fields(&self) -> RecordRef<'_>;
}

impl Booked for Record {
    fn fields(&self) -> RecordRef<'_> {
        Record::fields(self)
    }
}

impl Booked for RecordRef<'_> {
    fn fields(&self) -> RecordRef<'_> {
        *self
    }
}

/// What matching decided about one line or record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding<'a, R: Clone = Record> {
    pub class: Class,
    /// Our side, when we have one (borrowed from the bucket: no copy per line).
    pub ours: Option<Cow<'a, R>>,
    /// Set for a line settled into the wallet by an earlier reconciliation.
    pub healed: bool,
    /// What the fee schedule expected, for a fee mismatch.
    pub expected_fee_minor: Option<i64>,
}

impl<'a, R: Clone> Finding<'a, R> {
    pub fn of(class: Class, ours: Option<Cow<'a, R>>) -> Finding<'a, R> {
        Finding {
            class,
            ours,
            healed: false,
            expected_fee_minor: None,
        }
    }
}

/// A folded-multiply hash over 16-byte blocks (one 64×64→128-bit multiply
/// per block, its halves folded), seeded per table from the standard
/// library's random state: several times faster than SipHash on match keys
/// (every line and record is hashed, and was an eighth of a file match's
/// CPU with one multiply per 8 bytes), and the seed keeps a report from
/// choosing its collisions in advance. Not for secrets.
#[derive(Clone, Copy)]
pub struct KeyHash {
    seed: u64,
}

impl KeyHash {
    /// A fixed seed: for partitioning within one run, never for a table a
    /// report's lines fill.
    pub const fn with_seed(seed: u64) -> KeyHash {
        KeyHash { seed }
    }

    pub fn new() -> KeyHash {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x5eed);
        KeyHash { seed: h.finish() }
    }
}

impl Default for KeyHash {
    fn default() -> Self {
        KeyHash::new()
    }
}

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher { h: self.seed }
    }
}

pub struct KeyHasher {
    h: u64,
}

const K: u64 = 0x9e37_79b9_7f4a_7c15;
/// Mixed into each block's second word, so a block of zeros still moves
/// the state.
const K2: u64 = 0xd6e8_feb8_6659_fd93;

/// The 128-bit product's halves, folded into 64 bits.
fn folded_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a).wrapping_mul(u128::from(b));
    (p as u64) ^ ((p >> 64) as u64)
}

fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = bytes.len().min(8);
    w[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(w)
}

impl KeyHasher {
    fn mix(&mut self, word: u64) {
        self.h = (self.h.rotate_left(5) ^ word).wrapping_mul(K);
    }

    fn block(&mut self, lo: u64, hi: u64) {
        self.h = folded_mul(lo ^ self.h, hi ^ K2);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut blocks = bytes.chunks_exact(16);
        for b in &mut blocks {
            let (lo, hi) = b.split_at(8);
            self.block(word(lo), word(hi));
        }
        let rest = blocks.remainder();
        if !rest.is_empty() {
            let (lo, hi) = rest.split_at(rest.len().min(8));
            // The length in the top byte: "ab" and "ab\0" differ.
            self.block(word(lo), word(hi) ^ ((rest.len() as u64) << 56));
        }
    }
    fn write_u8(&mut self, b: u8) {
        self.mix(u64::from(b));
    }
    fn finish(&self) -> u64 {
        // Final avalanche, so the table's low bits depend on every word.
        let mut z = self.h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// One of our records in a bucket, found by its key (no copy of the key is
/// made, nor of the record: the table holds a reference, 16 bytes a slot),
/// and whether a line settled it.
struct Entry<'a, R> {
    record: &'a R,
    seen: Cell<bool>,
}

impl<R: Booked> Borrow<str> for Entry<'_, R> {
    fn borrow(&self) -> &str {
        self.record.fields().key
    }
}

impl<R: Booked> Hash for Entry<'_, R> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.record.fields().key.hash(state);
    }
}

impl<R: Booked> PartialEq for Entry<'_, R> {
    fn eq(&self, other: &Self) -> bool {
        self.record.fields().key == other.record.fields().key
    }
}

impl<R: Booked> Eq for Entry<'_, R> {}

/// Matches a bucket's report lines against its records, which it borrows.
#[allow(clippy::mutable_key_type)]
pub struct BucketMatcher<'a, R = Record> {
    ours: HashSet<Entry<'a, R>, KeyHash>,
    unmatched: HashSet<String, KeyHash>,
    fees: Option<FeeRule>,
    tolerance_minor: i64,
}

#[allow(clippy::mutable_key_type)]
impl<'a, R: Booked> BucketMatcher<'a, R> {
    /// Of two records with one key, the later is matched (as a store's
    /// last write is what it holds).
    pub fn new(records: &'a [R], fees: Option<FeeRule>, tolerance_minor: i64) -> Self {
        let hash = KeyHash::new();
        let mut ours = HashSet::with_capacity_and_hasher(records.len(), hash);
        for record in records {
            ours.replace(Entry {
                record,
                seen: Cell::new(false),
            });
        }
        BucketMatcher {
            ours,
            unmatched: HashSet::with_hasher(hash),
            fees,
            tolerance_minor,
        }
    }

    pub fn line(&mut self, t: &Theirs) -> Finding<'a, R> {
        let Some(&Entry {
            record: rec,
            ref seen,
        }) = self.ours.get(t.key.as_str())
        else {
            let first = self.unmatched.insert(t.key.clone());
            return match (first, t.kind) {
                (false, _) => Finding::of(Class::Duplicate, None),
                (true, Kind::Fee) => Finding::of(Class::Fee, None),
                (true, _) => Finding::of(Class::MissingInWallet, None),
            };
        };
        let first = !seen.replace(true);
        let ours = Some(Cow::Borrowed(rec));
        if !first {
            return Finding::of(Class::Duplicate, ours);
        }
        if rec.fields().currency != t.currency {
            return Finding::of(Class::CurrencyMismatch, ours);
        }
        if rec.fields().gross_minor != t.gross_minor {
            return Finding::of(Class::AmountMismatch, ours);
        }
        if let Some(expected) = self.fees.and_then(|f| f.expected(t.kind, t.gross_minor)) {
            if (t.fee_minor - expected).abs() > self.tolerance_minor {
                let mut f = Finding::of(Class::FeeMismatch, ours);
                f.expected_fee_minor = Some(expected);
                return f;
            }
        }
        if rec.fields().event_id.starts_with(HEAL_PREFIX) {
            let mut f = Finding::of(Class::MissingInWallet, ours);
            f.healed = true;
            return f;
        }
        Finding::of(Class::Matched, ours)
    }

    pub fn unsettled(self) -> impl Iterator<Item = &'a R> {
        self.ours
            .into_iter()
            .filter_map(|e| (!e.seen.get()).then_some(e.record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::recon_index::match_key;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn rec(key: &str, gross: i64) -> Record {
        Record {
            key: key.into(),
            kind: Kind::Payment,
            payment_id: key.trim_start_matches("payment:").into(),
            gross_minor: gross,
            currency: eur(),
            method: "card".into(),
            event_id: "evt_1".into(),
        }
    }

    fn line(n: u64, kind: Kind, id: &str, gross: i64, fee: i64) -> Theirs {
        Theirs {
            line: n,
            kind,
            key: match_key(kind, id, id),
            reference: id.into(),
            payment_id: id.into(),
            gross_minor: gross,
            fee_minor: fee,
            currency: eur(),
        }
    }

    #[test]
    fn every_class_is_decided_by_the_rules() {
        let rule = FeeRule {
            bps: 150,
            fixed_minor: 0,
        };
        let mut healed = rec("payment:h", 1000);
        healed.event_id = format!("{HEAL_PREFIX}x");
        let records = [
            rec("payment:a", 1000),
            rec("payment:b", 1000),
            rec("payment:c", 1000),
            rec("payment:d", 1000),
            rec("payment:gone", 500),
            healed,
        ];
        let mut m = BucketMatcher::new(&records, Some(rule), 1);
        let class = |m: &mut BucketMatcher, t: Theirs| m.line(&t).class;
        assert_eq!(
            class(&mut m, line(2, Kind::Payment, "a", 1000, 15)),
            Class::Matched
        );
        assert_eq!(
            class(&mut m, line(3, Kind::Payment, "a", 1000, 15)),
            Class::Duplicate
        );
        assert_eq!(
            class(&mut m, line(4, Kind::Payment, "b", 1001, 15)),
            Class::AmountMismatch
        );
        let mut usd = line(5, Kind::Payment, "c", 1000, 15);
        usd.currency = Currency::parse("USD").unwrap();
        assert_eq!(class(&mut m, usd), Class::CurrencyMismatch);
        assert_eq!(
            class(&mut m, line(6, Kind::Payment, "d", 1000, 14)),
            Class::Matched,
            "within 1"
        );
        assert_eq!(
            class(&mut m, line(7, Kind::Payment, "x", 1000, 15)),
            Class::MissingInWallet
        );
        assert_eq!(
            class(&mut m, line(8, Kind::Payment, "x", 1000, 15)),
            Class::Duplicate
        );
        assert_eq!(class(&mut m, line(9, Kind::Fee, "f1", 0, 250)), Class::Fee);
        assert_eq!(
            class(&mut m, line(10, Kind::Fee, "f1", 0, 250)),
            Class::Duplicate
        );
        let h = m.line(&line(11, Kind::Payment, "h", 1000, 15));
        assert_eq!(h.ours.as_deref(), Some(&records[5]), "borrows the record");
        assert_eq!((h.class, h.healed), (Class::MissingInWallet, true));
        let left: Vec<&str> = m.unsettled().map(|r| r.key.as_str()).collect();
        assert_eq!(left, ["payment:gone"]);
    }

    #[test]
    fn classes_index_their_own_slot_and_key_hashes_depend_on_every_byte() {
        for (i, c) in Class::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i, "{c:?}");
        }
        let h = KeyHash::new();
        let hash = |s: &str| h.hash_one(s);
        assert_eq!(hash("payment:pay_1"), hash("payment:pay_1"));
        let keys = [
            "payment:pay_1",
            "payment:pay_2",
            "refund:pay_1",
            "payment:pay_10",
            "payment:pay_1 ",
        ];
        let distinct: HashSet<u64> = keys.iter().map(|k| hash(k)).collect();
        assert_eq!(distinct.len(), keys.len());
        assert_ne!(
            KeyHash::new().hash_one("a"),
            KeyHash::new().hash_one("a"),
            "seeded per table"
        );
        // Keys that differ in one byte anywhere, or only in length, spread
        // over a table's low bits (its bucket index) and high bits (its tag).
        let mut keys: Vec<String> = (0..4096).map(|i| format!("payment:pay_{i:026}")).collect();
        keys.extend((0..40).map(|n| "x".repeat(n)));
        keys.extend((0..40).map(|n| format!("{}\0", "x".repeat(n))));
        let hashes: Vec<u64> = keys.iter().map(|k| hash(k)).collect();
        let distinct: HashSet<u64> = hashes.iter().copied().collect();
        assert_eq!(distinct.len(), keys.len(), "no collision");
        for bits in [|h: u64| h & 0xff, |h: u64| h >> 56] {
            let mut per = [0usize; 256];
            for h in &hashes[..4096] {
                per[bits(*h) as usize] += 1;
            }
            // 16 expected per value; far from it only if the bits are stuck.
            assert!(per.iter().all(|n| (2..=40).contains(n)), "{per:?}");
        }
    }

    #[test]
    fn fees_outside_the_tolerance_are_mismatches() {
        let rule = FeeRule {
            bps: 150,
            fixed_minor: 10,
        };
        assert_eq!(
            rule.expected(Kind::Payment, 333),
            Some(15),
            "4.995 → 5, +10"
        );
        assert_eq!(rule.expected(Kind::Chargeback, -1000), Some(10));
        assert_eq!(rule.expected(Kind::Refund, -1000), Some(0));
        let records = [rec("payment:a", 10_000)];
        let mut m = BucketMatcher::new(&records, Some(rule), 2);
        let f = m.line(&line(2, Kind::Payment, "a", 10_000, 163));
        assert_eq!(
            (f.class, f.expected_fee_minor),
            (Class::FeeMismatch, Some(160))
        );
        let mut lax = BucketMatcher::new(&records, None, 0);
        assert_eq!(
            lax.line(&line(2, Kind::Payment, "a", 10_000, 999)).class,
            Class::Matched
        );
    }
}
