//! Chaos knobs of a sandbox PSP, set at runtime over its admin endpoint.
//! Rates are whole percentages; delays are milliseconds.

use serde::{Deserialize, Serialize};

/// The longest delay or latency a knob may add.
pub const MAX_DELAY_MS: u64 = 60_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Chaos {
    /// Share of webhook events delivered twice (same event id).
    pub duplicate_pct: u8,
    /// Share of event batches sent in reverse order, with jitter up to `delay_ms`.
    pub reorder_pct: u8,
    /// Wait before a webhook's first attempt.
    pub delay_ms: u64,
    /// Share of delivery attempts lost in transit (the PSP retries).
    pub drop_pct: u8,
    /// Share of delivery attempts signed with a wrong secret.
    pub wrong_signature_pct: u8,
    /// Share of API calls answered 503.
    pub api_error_pct: u8,
    /// Added to every API call.
    pub api_latency_ms: u64,
    /// Everything (API and checkout) answers 503.
    pub outage: bool,
}

/// A partial update: only the fields sent change.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosPatch {
    duplicate_pct: Option<u8>,
    reorder_pct: Option<u8>,
    delay_ms: Option<u64>,
    drop_pct: Option<u8>,
    wrong_signature_pct: Option<u8>,
    api_error_pct: Option<u8>,
    api_latency_ms: Option<u64>,
    outage: Option<bool>,
}

/// A knob's name and why its value was refused.
pub type ChaosError = (&'static str, String);

fn pct(name: &'static str, v: Option<u8>, slot: &mut u8) -> Result<(), ChaosError> {
    match v {
        Some(p) if p > 100 => Err((name, "must be 0 to 100".into())),
        Some(p) => {
            *slot = p;
            Ok(())
        }
        None => Ok(()),
    }
}

fn ms(name: &'static str, v: Option<u64>, slot: &mut u64) -> Result<(), ChaosError> {
    match v {
        Some(d) if d > MAX_DELAY_MS => Err((name, format!("must be 0 to {MAX_DELAY_MS}"))),
        Some(d) => {
            *slot = d;
            Ok(())
        }
        None => Ok(()),
    }
}

impl Chaos {
    /// Apply a patch: all of it, or none of it when a value is out of range.
    pub fn patched(&self, p: ChaosPatch) -> Result<Chaos, ChaosError> {
        let mut c = self.clone();
        pct("duplicate_pct", p.duplicate_pct, &mut c.duplicate_pct)?;
        pct("reorder_pct", p.reorder_pct, &mut c.reorder_pct)?;
        ms("delay_ms", p.delay_ms, &mut c.delay_ms)?;
        pct("drop_pct", p.drop_pct, &mut c.drop_pct)?;
        pct(
            "wrong_signature_pct",
            p.wrong_signature_pct,
            &mut c.wrong_signature_pct,
        )?;
        pct("api_error_pct", p.api_error_pct, &mut c.api_error_pct)?;
        ms("api_latency_ms", p.api_latency_ms, &mut c.api_latency_ms)?;
        if let Some(o) = p.outage {
            c.outage = o;
        }
        Ok(c)
    }
}

/// True with probability `pct`%.
pub fn roll(pct: u8) -> bool {
    pct > 0 && rand::random_range(0..100u8) < pct
}

/// A random wait in `0..=max_ms`.
pub fn jitter_ms(max_ms: u64) -> u64 {
    if max_ms == 0 {
        0
    } else {
        rand::random_range(0..=max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_apply_whole_or_not_at_all() {
        let c = Chaos::default();
        let p: ChaosPatch =
            serde_json::from_str(r#"{"duplicate_pct": 30, "delay_ms": 5}"#).unwrap();
        let c = c.patched(p).unwrap();
        assert_eq!((c.duplicate_pct, c.delay_ms, c.drop_pct), (30, 5, 0));
        let p: ChaosPatch =
            serde_json::from_str(r#"{"drop_pct": 10, "reorder_pct": 101}"#).unwrap();
        assert_eq!(c.patched(p).unwrap_err().0, "reorder_pct");
        assert!(serde_json::from_str::<ChaosPatch>(r#"{"typo_pct": 1}"#).is_err());
        assert!(!roll(0));
        assert!(roll(100));
    }
}
