//! The deployment's rules, built once at start-up (`runtime`, or the local
//! process) and handed to the domain through [`crate::domain::Ctx`]: payout
//! limits and timings, and how reconciliation judges fees and splits a day.

use std::collections::BTreeMap;

use crate::ids::PspId;

pub mod risk_rules;

/// Every policy of a deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    pub payouts: PayoutPolicy,
    pub recon: ReconPolicy,
    /// Deposit limits and cooling-off: the jurisdiction's preset.
    pub rg: RgPolicy,
    /// The risk rules every deposit intent and payout is decided by.
    pub risk: risk_rules::RiskConfig,
    /// The AML scenarios run after each money movement: the jurisdiction's preset.
    pub aml: AmlPolicy,
}

/// The AML scenarios' parameters (`PAYLOOP_RG_PRESET` picks the
/// jurisdiction). No regulator fixes the windows or the wagering ratio:
/// they are the operator's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmlPolicy {
    pub preset: &'static str,
    /// Customer-due-diligence threshold per currency (minor units), for
    /// single or linked transactions (EUR 2 000 under the EU directive; other
    /// currencies are the operator's equivalents).
    pub cdd_threshold: BTreeMap<crate::money::Currency, i64>,
    /// Deposits (or payouts) inside this window are linked.
    pub linked_window_ms: i64,
    /// Structuring: this many movements, each at least `structuring_band_pct`
    /// percent of the threshold but under it, inside `structuring_window_ms`.
    pub structuring_count: u32,
    pub structuring_band_pct: u32,
    pub structuring_window_ms: i64,
    /// Pass-through: a payout of at least `pass_through_min_pct` percent of
    /// the threshold while the deposits of the window were wagered below
    /// `pass_through_min_wager_pct` percent.
    pub pass_through_window_ms: i64,
    pub pass_through_min_wager_pct: u32,
    pub pass_through_min_pct: u32,
    /// How far back a payout's route is compared with the deposits'.
    pub route_lookback: usize,
    /// An open alert of a holding scenario sends the player's payouts to review.
    pub hold_payouts: bool,
}

impl AmlPolicy {
    /// `uk`, `se`, `de`: EUR 2 000 (with GBP 1 700 and SEK 22 000 as the
    /// operator's equivalents), linked over 24 h.
    pub fn preset(name: &str) -> Option<AmlPolicy> {
        let mut p = AmlPolicy::eu();
        p.preset = *RgPolicy::PRESETS.iter().find(|n| **n == name)?;
        let extra = match p.preset {
            "uk" => Some(("GBP", 170_000)),
            "se" => Some(("SEK", 2_200_000)),
            _ => None,
        };
        if let Some((code, minor)) = extra {
            p.cdd_threshold
                .insert(crate::money::Currency::parse(code).ok()?, minor);
        }
        Some(p)
    }

    fn eu() -> AmlPolicy {
        AmlPolicy {
            preset: "de",
            cdd_threshold: [(crate::money::Currency::EUR, 200_000)]
                .into_iter()
                .collect(),
            linked_window_ms: 24 * HOUR_MS,
            structuring_count: 3,
            structuring_band_pct: 80,
            structuring_window_ms: 7 * 24 * HOUR_MS,
            pass_through_window_ms: 72 * HOUR_MS,
            pass_through_min_wager_pct: 10,
            pass_through_min_pct: 25,
            route_lookback: 100,
            hold_payouts: true,
        }
    }
}

impl Default for AmlPolicy {
    fn default() -> Self {
        AmlPolicy::preset("uk").unwrap_or_else(AmlPolicy::eu)
    }
}

pub(crate) const HOUR_MS: i64 = 3_600_000;
const RESERVATION_TTL_MS: i64 = 25 * HOUR_MS;

/// The jurisdiction rules a deployment applies (`PAYLOOP_RG_PRESET`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgPolicy {
    pub preset: &'static str,
    /// How long an increase or removal waits.
    pub cooling_off_ms: i64,
    /// An increase also waits for the current period to end (Sweden).
    pub wait_period_end: bool,
    /// Day, week and month limits must be set before a deposit (Sweden).
    pub limits_required: bool,
    /// The monthly limit in force when the player set none (Germany).
    pub default_month_cap: Option<crate::money::Money>,
    /// How long an intent that neither completes nor fails keeps its
    /// reservation (a PSP session lasts at most 24 h).
    pub reservation_ttl_ms: i64,
}

impl RgPolicy {
    pub const PRESETS: [&'static str; 3] = ["uk", "se", "de"];

    /// `uk`: 24 h cooling-off. `se`: 72 h and not before the period ends,
    /// limits required. `de`: EUR 1 000 a calendar month unless set lower,
    /// 7 days' cooling-off (an operator's published rule, unconfirmed).
    pub fn preset(name: &str) -> Option<RgPolicy> {
        let uk = RgPolicy::uk();
        Some(match name {
            "uk" => uk,
            "se" => RgPolicy {
                preset: "se",
                cooling_off_ms: 72 * HOUR_MS,
                wait_period_end: true,
                limits_required: true,
                ..uk
            },
            "de" => RgPolicy {
                preset: "de",
                cooling_off_ms: 7 * 24 * HOUR_MS,
                default_month_cap: Some(
                    crate::money::Money::from_minor(100_000, crate::money::Currency::EUR).ok()?,
                ),
                ..uk
            },
            _ => return None,
        })
    }

    fn uk() -> RgPolicy {
        RgPolicy {
            preset: "uk",
            cooling_off_ms: 24 * HOUR_MS,
            wait_period_end: false,
            limits_required: false,
            default_month_cap: None,
            reservation_ttl_ms: RESERVATION_TTL_MS,
        }
    }
}

impl Default for RgPolicy {
    fn default() -> Self {
        RgPolicy::uk()
    }
}

/// The payout rules of a deployment (minor units of the payout's currency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutPolicy {
    pub max_per_payout_minor: i64,
    pub max_per_day_minor: i64,
    /// Payouts above this need full KYC; at or below, basic KYC (medium and
    /// high risk players always need full KYC).
    pub basic_kyc_max_minor: i64,
    /// How long a payout may wait for its webhook before the PSP is asked.
    pub outcome_timeout_ms: i64,
    /// Wait before a deferred payout is tried again.
    pub retry_after_ms: i64,
}

impl Default for PayoutPolicy {
    fn default() -> Self {
        PayoutPolicy {
            max_per_payout_minor: 500_000,
            max_per_day_minor: 1_000_000,
            basic_kyc_max_minor: 200_000,
            outcome_timeout_ms: 15 * 60_000,
            retry_after_ms: 60_000,
        }
    }
}

/// A PSP's fee schedule: payments pay `bps` of the gross (half up) plus
/// `fixed_minor`; chargebacks and payouts pay `fixed_minor`; refunds pay
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeRule {
    pub bps: u32,
    pub fixed_minor: i64,
}

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

    #[test]
    fn aml_presets_set_the_cdd_threshold_per_jurisdiction() {
        use crate::money::Currency;
        let gbp = Currency::parse("GBP").unwrap();
        let sek = Currency::parse("SEK").unwrap();
        let uk = AmlPolicy::preset("uk").unwrap();
        assert_eq!(
            (uk.cdd_threshold[&Currency::EUR], uk.cdd_threshold[&gbp]),
            (200_000, 170_000)
        );
        let se = AmlPolicy::preset("se").unwrap();
        assert_eq!(se.cdd_threshold[&sek], 2_200_000);
        assert!(!se.cdd_threshold.contains_key(&gbp));
        let de = AmlPolicy::preset("de").unwrap();
        assert_eq!(de.cdd_threshold.len(), 1);
        assert!(AmlPolicy::preset("xx").is_none());
        assert_eq!(AmlPolicy::default(), uk);
    }
}
