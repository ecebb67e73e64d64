//! Risk rules: a versioned configuration of rules, each adding a score and
//! a reason when it hits; thresholds map the total to approve / review /
//! decline. Evaluation is pure: the caller gathers the signals of the
//! request and the facts from the store (velocity windows, instruments per
//! player, …); a rule whose fact is missing says so (`no_data`) and adds
//! nothing. The decision keeps every rule's outcome and the config version.
//!
//! ```json
//! {"version": "2026-12-01",
//!  "thresholds": {"review": 50, "decline": 100},
//!  "rules": [
//!    {"id": "big", "kind": "amount_at_least", "amount": "1000.00", "currency": "EUR", "score": 40},
//!    {"id": "ip", "kind": "country_mismatch", "score": 30},
//!    {"id": "fast", "kind": "velocity", "dimension": "player", "window_minutes": 60,
//!     "max_count": 5, "score": 50},
//!    {"id": "deny", "kind": "deny_list", "field": "country", "values": ["KP"], "score": 1000}]}
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::money::{Currency, Money};

use crate::schema::status::KycLevel;

/// The most rules one configuration may hold.
pub const MAX_RULES: usize = 100;
/// The most values of one deny or allow list.
pub const MAX_LIST: usize = 10_000;

/// What is being decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    Deposit,
    Payout,
}

impl Flow {
    pub fn parse(s: &str) -> Option<Flow> {
        match s {
            "deposit" => Some(Flow::Deposit),
            "payout" => Some(Flow::Payout),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Flow::Deposit => "deposit",
            Flow::Payout => "payout",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Approve,
    Review,
    Decline,
}

/// What a deny or allow list matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListField {
    Player,
    Device,
    Instrument,
    Ip,
    Bin,
    Country,
}

const LIST_FIELDS: [(&str, ListField); 6] = [
    ("player", ListField::Player),
    ("device", ListField::Device),
    ("instrument", ListField::Instrument),
    ("ip", ListField::Ip),
    ("bin", ListField::Bin),
    ("country", ListField::Country),
];

/// Whose activity a velocity rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Player,
    Device,
    Instrument,
    Ip,
}

/// One rule's condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    AmountAtLeast(Money),
    /// More than `max_count` movements, or more than `max_amount`, of one
    /// dimension's value in the window (this one included).
    Velocity {
        dimension: Dimension,
        window_minutes: u32,
        max_count: Option<u32>,
        max_amount: Option<Money>,
    },
    /// The player's country is not the IP's.
    CountryMismatch,
    /// More than `max` instruments of this player.
    InstrumentsPerPlayer {
        max: u32,
    },
    /// More than `max` players on this device.
    PlayersPerDevice {
        max: u32,
    },
    /// More than `max` players on this instrument.
    PlayersPerInstrument {
        max: u32,
    },
    /// An account younger than `max_age_hours` moving at least `amount`.
    NewAccount {
        max_age_hours: u32,
        amount: Money,
    },
    /// A payout within `within_hours` of deposits wagered below
    /// `min_wager_pct` percent of them.
    QuickCashOut {
        within_hours: u32,
        min_wager_pct: u32,
    },
    /// A payout to an instrument or country the deposits did not come from.
    RouteChange,
    DenyList {
        field: ListField,
        values: BTreeSet<String>,
    },
    AllowList {
        field: ListField,
        values: BTreeSet<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub score: i64,
    pub flows: Vec<Flow>,
    pub check: Check,
    /// When it hits, the player must hold this KYC level (step-up), else
    /// 402 `kyc_required`.
    pub step_up_kyc: Option<KycLevel>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskConfig {
    pub version: String,
    pub review_at: i64,
    pub decline_at: i64,
    pub rules: Vec<Rule>,
}

impl Default for RiskConfig {
    /// No rules: every decision approves, and is still recorded.
    fn default() -> Self {
        RiskConfig {
            version: "none".into(),
            review_at: 50,
            decline_at: 100,
            rules: Vec::new(),
        }
    }
}

impl RiskConfig {
    /// The rule set payloop ships (`serve`'s and the functions' default).
    pub const SHIPPED: &'static str = include_str!("shipped-risk-rules.json");

    /// The rules that take part in `flow`'s decisions.
    pub fn rules_for(&self, flow: Flow) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(move |r| r.flows.contains(&flow))
    }

    /// The dimensions `flow`'s velocity rules count, and the longest window
    /// (how long a counted movement must be kept).
    pub fn velocity_needs(&self, flow: Flow) -> (BTreeSet<Dimension>, i64) {
        let mut dims = BTreeSet::new();
        let mut longest = 0i64;
        for r in self.rules_for(flow) {
            if let Check::Velocity {
                dimension,
                window_minutes,
                ..
            } = &r.check
            {
                dims.insert(*dimension);
                longest = longest.max(i64::from(*window_minutes) * 60_000);
            }
        }
        (dims, longest)
    }

    /// Does any of `flow`'s rules check this?
    pub fn uses(&self, flow: Flow, wanted: impl Fn(&Check) -> bool) -> bool {
        self.rules_for(flow).any(|r| wanted(&r.check))
    }
}

/// The request's own signals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Signals {
    pub player: String,
    pub amount: Option<Money>,
    pub method: String,
    pub country: Option<String>,
    pub ip_country: Option<String>,
    pub ip: Option<String>,
    pub asn: Option<String>,
    pub device: Option<String>,
    pub instrument: Option<String>,
    pub bin: Option<String>,
}

/// What the store says (gathered by the caller; `None`: not known).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// Per velocity rule id: movements and their sum in its window,
    /// this one included.
    pub velocity: BTreeMap<String, (u32, i64)>,
    pub instruments_per_player: Option<u32>,
    pub players_per_device: Option<u32>,
    pub players_per_instrument: Option<u32>,
    pub account_age_ms: Option<i64>,
    /// Deposited and wagered in the quick cash-out window (minor units).
    pub recent_deposits_minor: Option<i64>,
    pub recent_wagered_minor: Option<i64>,
    /// Instruments and countries the player deposited from.
    pub deposit_instruments: Option<BTreeSet<String>>,
    pub deposit_countries: Option<BTreeSet<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hit {
    Hit,
    NoHit,
    /// A fact the rule needs is not known: it adds nothing.
    NoData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleResult {
    pub id: String,
    pub hit: Hit,
    /// What it added to the score.
    pub score: i64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub version: String,
    pub score: i64,
    pub outcome: Outcome,
    pub rules: Vec<RuleResult>,
    /// The highest KYC level a hit rule asks for.
    pub step_up_kyc: Option<KycLevel>,
}

// ---- parsing ----------------------------------------------------------

fn bad(at: &str, reason: impl Into<String>) -> Error {
    Error::validation(at, reason)
}

struct Fields<'a> {
    at: String,
    map: &'a serde_json::Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn name(&self, f: &str) -> String {
        format!("{}.{f}", self.at)
    }
    fn str(&self, f: &str) -> Result<&'a str, Error> {
        self.map
            .get(f)
            .and_then(Value::as_str)
            .ok_or_else(|| bad(&self.name(f), "is required (a string)"))
    }
    fn int(&self, f: &str) -> Result<i64, Error> {
        self.map
            .get(f)
            .and_then(Value::as_i64)
            .ok_or_else(|| bad(&self.name(f), "is required (an integer)"))
    }
    fn opt_u32(&self, f: &str) -> Result<Option<u32>, Error> {
        match self.map.get(f) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| bad(&self.name(f), "must be a whole number")),
        }
    }
    fn u32(&self, f: &str) -> Result<u32, Error> {
        self.opt_u32(f)?
            .ok_or_else(|| bad(&self.name(f), "is required (a whole number)"))
    }
    fn money(&self, f: &str) -> Result<Money, Error> {
        let currency = Currency::parse(self.str("currency")?)
            .map_err(|e| bad(&self.name("currency"), e.to_string()))?;
        Money::parse_decimal(self.str(f)?, currency).map_err(|e| bad(&self.name(f), e.to_string()))
    }
    fn opt_money(&self, f: &str) -> Result<Option<Money>, Error> {
        if self.map.contains_key(f) {
            self.money(f).map(Some)
        } else {
            Ok(None)
        }
    }
}

impl RiskConfig {
    /// Parse and validate; every error names its field (`rules[2].score`).
    pub fn parse(text: &str) -> Result<RiskConfig, Error> {
        let v: Value = serde_json::from_str(text).map_err(|e| bad("$", e.to_string()))?;
        let top = v.as_object().ok_or_else(|| bad("$", "must be an object"))?;
        let f = Fields {
            at: "$".into(),
            map: top,
        };
        let version = f.str("version")?.to_owned();
        if version.is_empty() || version.len() > 64 {
            return Err(bad("version", "must be 1 to 64 characters"));
        }
        let th = top
            .get("thresholds")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("thresholds", "is required (an object)"))?;
        let th = Fields {
            at: "thresholds".into(),
            map: th,
        };
        let (review_at, decline_at) = (th.int("review")?, th.int("decline")?);
        if review_at > decline_at {
            return Err(bad("thresholds.review", "must not be above decline"));
        }
        let list = top
            .get("rules")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("rules", "is required (an array)"))?;
        if list.len() > MAX_RULES {
            return Err(bad("rules", format!("at most {MAX_RULES}")));
        }
        let mut rules = Vec::new();
        let mut ids = BTreeSet::new();
        for (i, r) in list.iter().enumerate() {
            let rule = parse_rule(&format!("rules[{i}]"), r)?;
            if !ids.insert(rule.id.clone()) {
                return Err(bad(&format!("rules[{i}].id"), "is used twice"));
            }
            rules.push(rule);
        }
        Ok(RiskConfig {
            version,
            review_at,
            decline_at,
            rules,
        })
    }
}

fn parse_rule(at: &str, v: &Value) -> Result<Rule, Error> {
    let map = v.as_object().ok_or_else(|| bad(at, "must be an object"))?;
    let f = Fields {
        at: at.to_owned(),
        map,
    };
    let id = f.str("id")?.to_owned();
    if id.is_empty() || id.len() > 64 {
        return Err(bad(&f.name("id"), "must be 1 to 64 characters"));
    }
    let score = f.int("score")?;
    let flows = match map.get("applies_to") {
        None => vec![Flow::Deposit, Flow::Payout],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|x| x.as_str().and_then(Flow::parse))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad(&f.name("applies_to"), "each must be deposit or payout"))?,
        Some(_) => return Err(bad(&f.name("applies_to"), "must be a non-empty array")),
    };
    let check = parse_check(&f)?;
    let step_up_kyc = match map.get("step_up_kyc") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(KycLevel::parse)
                .filter(|k| *k != KycLevel::None)
                .ok_or_else(|| bad(&f.name("step_up_kyc"), "must be basic or full"))?,
        ),
    };
    Ok(Rule {
        id,
        score,
        flows,
        check,
        step_up_kyc,
    })
}

/// The most links a link rule may count (one bounded query reads them).
pub const MAX_LINKS: u32 = 500;

fn link_max(f: &Fields<'_>) -> Result<u32, Error> {
    let max = f.u32("max")?;
    if (1..=MAX_LINKS).contains(&max) {
        Ok(max)
    } else {
        Err(bad(&f.name("max"), format!("must be 1 to {MAX_LINKS}")))
    }
}

fn parse_check(f: &Fields<'_>) -> Result<Check, Error> {
    Ok(match f.str("kind")? {
        "amount_at_least" => Check::AmountAtLeast(f.money("amount")?),
        "velocity" => {
            let dimension = match f.str("dimension")? {
                "player" => Dimension::Player,
                "device" => Dimension::Device,
                "instrument" => Dimension::Instrument,
                "ip" => Dimension::Ip,
                _ => {
                    return Err(bad(
                        &f.name("dimension"),
                        "must be player, device, instrument or ip",
                    ))
                }
            };
            let window_minutes = f.u32("window_minutes")?;
            if !(1..=31 * 24 * 60).contains(&window_minutes) {
                return Err(bad(
                    &f.name("window_minutes"),
                    "must be 1 minute to 31 days",
                ));
            }
            let (max_count, max_amount) = (f.opt_u32("max_count")?, f.opt_money("max_amount")?);
            if max_count.is_none() && max_amount.is_none() {
                return Err(bad(
                    &f.name("max_count"),
                    "give max_count, max_amount or both",
                ));
            }
            Check::Velocity {
                dimension,
                window_minutes,
                max_count,
                max_amount,
            }
        }
        "country_mismatch" => Check::CountryMismatch,
        "instruments_per_player" => Check::InstrumentsPerPlayer { max: link_max(f)? },
        "players_per_device" => Check::PlayersPerDevice { max: link_max(f)? },
        "players_per_instrument" => Check::PlayersPerInstrument { max: link_max(f)? },
        "new_account" => Check::NewAccount {
            max_age_hours: f.u32("max_age_hours")?,
            amount: f.money("amount")?,
        },
        "quick_cash_out" => Check::QuickCashOut {
            within_hours: f.u32("within_hours")?,
            min_wager_pct: f.u32("min_wager_pct")?,
        },
        "route_change" => Check::RouteChange,
        kind @ ("deny_list" | "allow_list") => {
            let field = f.str("field")?;
            let field = LIST_FIELDS
                .iter()
                .find(|(n, _)| *n == field)
                .map(|(_, lf)| *lf)
                .ok_or_else(|| {
                    bad(
                        &f.name("field"),
                        "must be player, device, instrument, ip, bin or country",
                    )
                })?;
            let values = f
                .map
                .get("values")
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty() && a.len() <= MAX_LIST)
                .ok_or_else(|| {
                    bad(
                        &f.name("values"),
                        format!("must be 1 to {MAX_LIST} strings"),
                    )
                })?
                .iter()
                .map(|x| x.as_str().map(str::to_owned))
                .collect::<Option<BTreeSet<_>>>()
                .ok_or_else(|| bad(&f.name("values"), "must be strings"))?;
            if kind == "deny_list" {
                Check::DenyList { field, values }
            } else {
                Check::AllowList { field, values }
            }
        }
        other => return Err(bad(&f.name("kind"), format!("unknown kind `{other}`"))),
    })
}

// ---- evaluation -------------------------------------------------------

fn listed(s: &Signals, field: ListField) -> Option<&str> {
    match field {
        ListField::Player => Some(s.player.as_str()),
        ListField::Device => s.device.as_deref(),
        ListField::Instrument => s.instrument.as_deref(),
        ListField::Ip => s.ip.as_deref(),
        ListField::Bin => s.bin.as_deref(),
        ListField::Country => s.country.as_deref(),
    }
}

/// `Some(true)` hit, `Some(false)` no hit, `None` a fact is missing; with
/// the reason in our words.
fn check(rule: &Rule, s: &Signals, f: &Facts) -> (Option<bool>, String) {
    let over = |n: Option<u32>, max: u32, what: &str| match n {
        Some(n) => (Some(n > max), format!("{n} {what} (at most {max})")),
        None => (None, format!("{what}: not known")),
    };
    match &rule.check {
        Check::AmountAtLeast(min) => match s.amount {
            Some(a) if a.currency() == min.currency() => (
                Some(a.minor() >= min.minor()),
                format!("amount {a} (from {min})"),
            ),
            _ => (Some(false), "another currency".into()),
        },
        Check::Velocity {
            max_count,
            max_amount,
            window_minutes,
            ..
        } => match f.velocity.get(&rule.id) {
            Some((count, sum)) => {
                let by_count = max_count.is_some_and(|m| *count > m);
                let by_sum = max_amount.is_some_and(|m| *sum > m.minor());
                let summed = match s.amount {
                    Some(a) => crate::money::format_minor(*sum, a.currency()),
                    None => sum.to_string(),
                };
                (
                    Some(by_count || by_sum),
                    format!("{count} movement(s) of {summed} in all within {window_minutes} min"),
                )
            }
            None => (None, "velocity window: not known".into()),
        },
        Check::CountryMismatch => match (&s.country, &s.ip_country) {
            (Some(c), Some(ip)) => (
                Some(!c.eq_ignore_ascii_case(ip)),
                format!("country {c}, IP country {ip}"),
            ),
            _ => (None, "country or IP country: not known".into()),
        },
        Check::InstrumentsPerPlayer { max } => {
            over(f.instruments_per_player, *max, "instruments of the player")
        }
        Check::PlayersPerDevice { max } => {
            over(f.players_per_device, *max, "players on the device")
        }
        Check::PlayersPerInstrument { max } => {
            over(f.players_per_instrument, *max, "players on the instrument")
        }
        Check::NewAccount {
            max_age_hours,
            amount,
        } => match (f.account_age_ms, s.amount) {
            (Some(age), Some(a)) => {
                let young = age < i64::from(*max_age_hours) * 3_600_000;
                let big = a.currency() == amount.currency() && a.minor() >= amount.minor();
                (
                    Some(young && big),
                    format!("account {} h old, amount {a}", age / 3_600_000),
                )
            }
            _ => (None, "account age: not known".into()),
        },
        Check::QuickCashOut {
            min_wager_pct,
            within_hours,
        } => match (f.recent_deposits_minor, f.recent_wagered_minor) {
            (Some(dep), Some(wag)) if dep > 0 => {
                let pct = i128::from(wag) * 100 / i128::from(dep);
                (
                    Some(pct < i128::from(*min_wager_pct)),
                    format!("wagered {pct} % of the deposits of the last {within_hours} h"),
                )
            }
            (Some(_), Some(_)) => (Some(false), "no recent deposits".into()),
            _ => (None, "recent deposits and wagering: not known".into()),
        },
        Check::RouteChange => {
            let other_instrument = match (&s.instrument, &f.deposit_instruments) {
                (Some(i), Some(seen)) => Some(!seen.contains(i)),
                _ => None,
            };
            let other_country = match (&s.country, &f.deposit_countries) {
                (Some(c), Some(seen)) => Some(!seen.contains(c)),
                _ => None,
            };
            match (other_instrument, other_country) {
                (None, None) => (None, "deposit routes: not known".into()),
                (i, c) => (
                    Some(i == Some(true) || c == Some(true)),
                    "payout to another instrument or country than the deposits".into(),
                ),
            }
        }
        Check::DenyList { field, values } | Check::AllowList { field, values } => {
            match listed(s, *field) {
                Some(v) => (
                    Some(values.contains(v)),
                    format!("{field:?} listed: {}", values.contains(v)).to_lowercase(),
                ),
                None => (Some(false), format!("{field:?}: not given").to_lowercase()),
            }
        }
    }
}

impl RiskConfig {
    /// Decide `flow` for these signals and facts.
    pub fn decide(&self, flow: Flow, s: &Signals, f: &Facts) -> Decision {
        let mut score = 0i64;
        let mut rules = Vec::new();
        let mut step_up_kyc = None;
        for rule in self.rules_for(flow) {
            let (hit, reason) = check(rule, s, f);
            if hit == Some(true) {
                step_up_kyc = step_up_kyc.max(rule.step_up_kyc);
            }
            let (hit, added) = match hit {
                Some(true) => (Hit::Hit, rule.score),
                Some(false) => (Hit::NoHit, 0),
                None => (Hit::NoData, 0),
            };
            score = score.saturating_add(added);
            rules.push(RuleResult {
                id: rule.id.clone(),
                hit,
                score: added,
                reason,
            });
        }
        let outcome = if score >= self.decline_at {
            Outcome::Decline
        } else if score >= self.review_at {
            Outcome::Review
        } else {
            Outcome::Approve
        };
        Decision {
            version: self.version.clone(),
            score,
            outcome,
            rules,
            step_up_kyc,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"version": "t-1", "thresholds": {"review": 50, "decline": 100},
      "rules": [
        {"id": "big", "kind": "amount_at_least", "amount": "1000.00", "currency": "EUR", "score": 40},
        {"id": "ip", "kind": "country_mismatch", "score": 30},
        {"id": "fast", "kind": "velocity", "dimension": "player", "window_minutes": 60, "max_count": 5, "score": 50},
        {"id": "young", "kind": "new_account", "max_age_hours": 24, "amount": "500.00", "currency": "EUR", "score": 40},
        {"id": "cashout", "kind": "quick_cash_out", "within_hours": 48, "min_wager_pct": 100, "score": 60, "applies_to": ["payout"]},
        {"id": "route", "kind": "route_change", "score": 30, "applies_to": ["payout"]},
        {"id": "devices", "kind": "players_per_device", "max": 2, "score": 40},
        {"id": "deny", "kind": "deny_list", "field": "country", "values": ["KP"], "score": 1000},
        {"id": "vip", "kind": "allow_list", "field": "player", "values": ["vip-1"], "score": -1000}
      ]}"#;

    fn eur(s: &str) -> Money {
        Money::parse_decimal(s, Currency::parse("EUR").unwrap()).unwrap()
    }

    fn signals(amount: &str) -> Signals {
        Signals {
            player: "ann".into(),
            amount: Some(eur(amount)),
            method: "card".into(),
            country: Some("FI".into()),
            ip_country: Some("FI".into()),
            ..Signals::default()
        }
    }

    fn hit(d: &Decision, id: &str) -> Hit {
        d.rules.iter().find(|r| r.id == id).unwrap().hit
    }

    #[test]
    fn scores_add_up_to_an_outcome_with_every_rule_recorded() {
        let c = RiskConfig::parse(CONFIG).unwrap();
        let calm = c.decide(Flow::Deposit, &signals("20.00"), &Facts::default());
        assert_eq!(
            (calm.outcome, calm.score, calm.version.as_str()),
            (Outcome::Approve, 0, "t-1")
        );
        assert_eq!(
            calm.rules.len(),
            7,
            "payout-only rules are not evaluated for a deposit"
        );
        assert_eq!(hit(&calm, "fast"), Hit::NoData);
        let mut s = signals("1500.00");
        s.ip_country = Some("RU".into());
        let review = c.decide(Flow::Deposit, &s, &Facts::default());
        assert_eq!((review.outcome, review.score), (Outcome::Review, 70));
        let facts = Facts {
            velocity: [("fast".to_owned(), (6, 60_000))].into_iter().collect(),
            ..Facts::default()
        };
        let decline = c.decide(Flow::Deposit, &s, &facts);
        assert_eq!((decline.outcome, decline.score), (Outcome::Decline, 120));
        // The allow list outweighs everything; the deny list declines alone.
        s.player = "vip-1".into();
        assert_eq!(
            c.decide(Flow::Deposit, &s, &facts).outcome,
            Outcome::Approve
        );
        let mut denied = signals("1.00");
        denied.country = Some("KP".into());
        assert_eq!(
            c.decide(Flow::Deposit, &denied, &Facts::default()).outcome,
            Outcome::Decline
        );
    }

    #[test]
    fn payout_rules_see_wagering_and_routes() {
        let c = RiskConfig::parse(CONFIG).unwrap();
        let mut s = signals("300.00");
        s.instrument = Some("tok_new".into());
        let facts = Facts {
            recent_deposits_minor: Some(30_000),
            recent_wagered_minor: Some(3_000),
            deposit_instruments: Some(["tok_old".to_owned()].into_iter().collect()),
            deposit_countries: Some(["FI".to_owned()].into_iter().collect()),
            ..Facts::default()
        };
        let d = c.decide(Flow::Payout, &s, &facts);
        assert_eq!((hit(&d, "cashout"), hit(&d, "route")), (Hit::Hit, Hit::Hit));
        assert_eq!(d.outcome, Outcome::Review);
        let wagered = Facts {
            recent_wagered_minor: Some(30_000),
            deposit_instruments: Some(["tok_new".to_owned()].into_iter().collect()),
            ..facts
        };
        assert_eq!(
            c.decide(Flow::Payout, &s, &wagered).outcome,
            Outcome::Approve
        );
    }

    #[test]
    fn the_shipped_rules_parse() {
        let c = RiskConfig::parse(RiskConfig::SHIPPED).unwrap();
        // Every kind of rule ships, and velocity over every dimension.
        let kinds: BTreeSet<String> = c
            .rules
            .iter()
            .map(|r| {
                format!("{:?}", r.check)
                    .split([' ', '(', '{'])
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(kinds.len(), 11, "{kinds:?}");
        let (dims, _) = c.velocity_needs(Flow::Deposit);
        assert_eq!(dims.len(), 4);
        assert_eq!(
            c.rules.iter().filter(|r| r.step_up_kyc.is_some()).count(),
            1
        );
    }

    #[test]
    fn a_bad_config_names_its_field() {
        let named = |text: &str| match RiskConfig::parse(text) {
            Err(Error::Validation { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let base = |rules: &str| {
            format!(
                r#"{{"version": "v", "thresholds": {{"review": 1, "decline": 2}}, "rules": [{rules}]}}"#
            )
        };
        assert_eq!(
            named(&base(r#"{"id": "a", "kind": "nope", "score": 1}"#)),
            "rules[0].kind"
        );
        assert_eq!(
            named(&base(r#"{"id": "a", "kind": "country_mismatch"}"#)),
            "rules[0].score"
        );
        assert_eq!(
            named(&base(
                r#"{"id": "a", "kind": "velocity", "dimension": "player", "window_minutes": 0, "max_count": 1, "score": 1}"#
            )),
            "rules[0].window_minutes"
        );
        assert_eq!(
            named(&base(
                r#"{"id": "a", "kind": "amount_at_least", "amount": "1.001", "currency": "EUR", "score": 1}"#
            )),
            "rules[0].amount"
        );
        assert_eq!(
            named(&base(
                r#"{"id": "a", "kind": "country_mismatch", "score": 1}, {"id": "a", "kind": "country_mismatch", "score": 1}"#
            )),
            "rules[1].id"
        );
        assert_eq!(
            named(r#"{"version": "v", "thresholds": {"review": 5, "decline": 2}, "rules": []}"#),
            "thresholds.review"
        );
        assert_eq!(named("[]"), "$");
        assert_eq!(
            named(&base(
                r#"{"id": "a", "kind": "players_per_device", "max": 501, "score": 1}"#
            )),
            "rules[0].max"
        );
    }
}
