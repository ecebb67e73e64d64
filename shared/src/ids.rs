//! Newtype ids, parsed at the edge. Generated ids are ULIDs: unique and
//! sortable by creation time.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct IdError {
    pub reason: &'static str,
}

fn check_chars(s: &str, min: usize, max: usize, extra: &[u8]) -> Result<(), IdError> {
    if s.len() < min || s.len() > max {
        return Err(IdError {
            reason: "has the wrong length",
        });
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    {
        return Err(IdError {
            reason: "contains characters that are not allowed",
        });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr, $extra:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check_chars(s, $min, $max, $extra)?;
                Ok(Self(s.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// Our payment id: `pay_` + ULID.
    PaymentId, 5, 64, b"_"
);
id_type!(
    /// A unique money-movement id (ledger entry key).
    TxnId, 1, 64, b"_-"
);
id_type!(
    /// A PSP's event id, unique per PSP.
    EventId, 1, 128, b"_-.:"
);
id_type!(
    /// The player (wallet owner); an opaque platform id, never a name or e-mail.
    PlayerId, 1, 64, b"_-"
);
id_type!(
    /// A PSP route name, e.g. `sandbox`.
    PspId, 1, 32, b"_-"
);
id_type!(
    /// A reconciliation / investigation case.
    CaseId, 1, 200, b"_-#:."
);

/// The client's `Idempotency-Key`: 1..=255 visible ASCII characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.is_empty() || s.len() > 255 {
            return Err(IdError {
                reason: "must be 1 to 255 characters",
            });
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IdError {
                reason: "must be visible ASCII without spaces",
            });
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({})", self.0)
    }
}

impl PaymentId {
    pub fn generate() -> Self {
        Self(format!("pay_{}", fresh_ulid()))
    }
    /// The payment id for a ULID reserved by the idempotency engine.
    pub fn from_reserved(ulid_text: &str) -> Result<Self, crate::Error> {
        let u = ulid::Ulid::from_string(ulid_text)
            .map_err(|_| crate::Error::Internal("reserved id is not a ULID".into()))?;
        Ok(Self(format!("pay_{u}")))
    }
    /// The deterministic ledger id of this payment's deposit credit: the same
    /// payment can never be credited under two txn ids.
    pub fn deposit_txn_id(&self) -> TxnId {
        let tail = self.0.strip_prefix("pay_").unwrap_or(&self.0);
        TxnId(format!("dep_{tail}"))
    }
}

/// A fresh time-sortable unique id with a prefix (`dlv_…`, `own_…`).
pub fn new_ulid(prefix: &str) -> String {
    format!("{prefix}_{}", fresh_ulid())
}

/// Deterministic ids for the simulator: on a thread that set one, ULIDs take
/// their time from the (virtual) clock and their "random" part from a
/// counter, so a seeded scenario produces the same ids, in the same order,
/// every run.
struct SeededIds {
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    next: u128,
}

thread_local! {
    static SEEDED_IDS: std::cell::RefCell<Option<SeededIds>> = const { std::cell::RefCell::new(None) };
}

/// Make this thread's ids deterministic (until [`unseed_ids`]).
pub fn seed_ids(clock: std::sync::Arc<dyn crate::clock::Clock>, seed: u64) {
    SEEDED_IDS.with(|s| {
        *s.borrow_mut() = Some(SeededIds {
            clock,
            next: u128::from(seed) << 32,
        })
    });
}

pub fn unseed_ids() {
    SEEDED_IDS.with(|s| *s.borrow_mut() = None);
}

/// A new ULID: random, or from this thread's seeded source.
pub fn fresh_ulid() -> ulid::Ulid {
    SEEDED_IDS.with(|s| match s.borrow_mut().as_mut() {
        Some(g) => {
            g.next = g.next.wrapping_add(1);
            let ms = u64::try_from(g.clock.now_ms()).unwrap_or(0);
            ulid::Ulid::from_parts(ms, g.next)
        }
        None => ulid::Ulid::new(),
    })
}

/// The time (epoch ms) inside an id that ends in a ULID (`pay_<ULID>`,
/// `po_<ULID>`): when its request was first reserved, the same on every
/// retry of that request.
pub fn ulid_time_ms(id: &str) -> Option<i64> {
    let tail = id.rsplit('_').next()?;
    let u = ulid::Ulid::from_string(tail).ok()?;
    i64::try_from(u.timestamp_ms()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique_and_time_sortable() {
        let mut ids: Vec<PaymentId> = (0..1000).map(|_| PaymentId::generate()).collect();
        let before = ids.clone();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 1000);
        // ULIDs generated in one millisecond may not sort by order of creation,
        // but ids from different milliseconds must.
        let a = PaymentId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = PaymentId::generate();
        assert!(a < b);
        assert!(before.iter().all(|p| PaymentId::parse(p.as_str()).is_ok()));
    }

    #[test]
    fn parsing_rejects_junk() {
        assert!(PlayerId::parse("").is_err());
        assert!(PlayerId::parse("bob smith").is_err());
        assert!(PlayerId::parse(&"x".repeat(65)).is_err());
        assert!(EventId::parse("evt_1.2:3").is_ok());
        assert!(IdempotencyKey::parse("a b").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("order-42").is_ok());
    }

    #[test]
    fn deposit_txn_id_is_deterministic() {
        let p = PaymentId::parse("pay_01ABC").unwrap();
        assert_eq!(p.deposit_txn_id().as_str(), "dep_01ABC");
    }
}
