//! Nightly reconciliation of PSP settlement reports against the wallet
//! (SPEC §9): the index of our side ([`index`]), the pure matcher
//! ([`matcher`]), per-bucket spill files ([`spill`]), cases ([`cases`]),
//! the day's report ([`report`]) and the run itself ([`run`]).

use std::collections::BTreeMap;

use crate::ids::PspId;

pub mod cases;
pub mod files;
pub mod index;
pub mod matcher;
pub mod report;
pub mod run;
pub mod spill;

pub use matcher::{Class, FeeRule};

/// How reconciliation judges fees and splits a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconPolicy {
    /// Each PSP's fee schedule; a PSP without one has its fees unchecked.
    pub fees: BTreeMap<PspId, FeeRule>,
    /// A fee this far (minor units) from the schedule still matches.
    pub tolerance_minor: i64,
    /// Shards a day is split into (1..=32).
    pub shards: u32,
}

impl Default for ReconPolicy {
    fn default() -> Self {
        ReconPolicy {
            fees: BTreeMap::new(),
            tolerance_minor: 1,
            shards: 1,
        }
    }
}

/// `psp=bps[+fixed_minor],...`, e.g. `sandbox=150,sandbox-b=120+25`.
pub fn parse_fee_schedule(text: &str) -> Result<BTreeMap<PspId, FeeRule>, String> {
    let mut out = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (psp, rule) = entry
            .split_once('=')
            .ok_or_else(|| format!("`{entry}`: expected psp=bps[+fixed_minor]"))?;
        let psp = PspId::parse(psp.trim()).map_err(|e| format!("`{entry}`: psp: {e}"))?;
        let (bps, fixed) = rule.split_once('+').unwrap_or((rule, "0"));
        let bps: u32 = bps
            .trim()
            .parse()
            .ok()
            .filter(|b| *b <= 10_000)
            .ok_or_else(|| format!("`{entry}`: bps must be 0 to 10000"))?;
        let fixed_minor: i64 = fixed
            .trim()
            .parse()
            .ok()
            .filter(|f| (0..=1_000_000_000).contains(f))
            .ok_or_else(|| format!("`{entry}`: fixed fee must be 0 to 1e9 minor units"))?;
        if out.insert(psp, FeeRule { bps, fixed_minor }).is_some() {
            return Err(format!("`{entry}`: PSP listed twice"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_schedules_parse_or_name_the_bad_entry() {
        let s = parse_fee_schedule("sandbox=150, sandbox-b=120+25").unwrap();
        let b = PspId::parse("sandbox-b").unwrap();
        assert_eq!(
            s[&b],
            FeeRule {
                bps: 120,
                fixed_minor: 25
            }
        );
        assert_eq!(s.len(), 2);
        assert!(parse_fee_schedule("sandbox")
            .unwrap_err()
            .contains("sandbox"));
        assert!(parse_fee_schedule("sandbox=20000").is_err());
        assert!(parse_fee_schedule("sandbox=1+-5").is_err());
        assert!(parse_fee_schedule("a=1,a=2").unwrap_err().contains("twice"));
        assert!(parse_fee_schedule("").unwrap().is_empty());
    }
}
