//! Routing rules: which PSPs may take a payment (country, currency, method,
//! amount range, player risk level), in which order (cost; routes of equal
//! cost split by weight, else config order), and how each PSP's health is
//! judged. Loaded from a JSON document and validated at start with errors
//! that name the field.
//!
//! ```json
//! {"routes": [
//!   {"psp": "sandbox", "currencies": ["EUR"], "countries": ["FI", "SE"],
//!    "methods": ["card"], "min_amount": "1.00", "max_amount": "5000.00",
//!    "risk_levels": ["low", "medium"], "cost_bps": 120, "weight": 70,
//!    "max_error_pct": 40, "max_p95_ms": 3000},
//!   {"psp": "sandbox-b", "cost_bps": 120, "weight": 30}
//!  ],
//!  "health": {"window_s": 60, "bucket_s": 10, "min_samples": 20,
//!             "cool_down_s": 30, "probe_every_s": 5, "sync_every_ms": 1000},
//!  "fast_methods": ["pay_by_bank", "p2p"]}
//! ```

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::ids::PspId;
use crate::money::{Currency, Money};
use crate::psp::health::{HealthPolicy, MAX_BUCKETS};
use crate::schema::status::METHODS;

/// Most PSPs one payment is offered to before giving up (cascade bound).
pub const MAX_CASCADE: usize = 3;
const MAX_ROUTES: usize = 256;
const MAX_COST_BPS: u32 = 10_000;
const MAX_WEIGHT: u32 = 10_000;
/// Methods kept on in degradation mode unless the config says otherwise.
pub const DEFAULT_FAST_METHODS: [&str; 2] = ["pay_by_bank", "p2p"];

/// The player's risk level, as routing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum RiskLevel {
    #[default]
    Low,
    Medium,
    High,
}

impl RiskLevel {
    pub fn parse(s: &str) -> Option<RiskLevel> {
        match s {
            "low" => Some(RiskLevel::Low),
            "medium" => Some(RiskLevel::Medium),
            "high" => Some(RiskLevel::High),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("routing config: {path}: {reason}")]
pub struct RoutingError {
    pub path: String,
    pub reason: String,
}

fn err(path: impl Into<String>, reason: impl Into<String>) -> RoutingError {
    RoutingError {
        path: path.into(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub psp: PspId,
    countries: Option<BTreeSet<String>>,
    currencies: Option<BTreeSet<Currency>>,
    methods: Option<BTreeSet<String>>,
    /// Inclusive bounds in minor units of the route's single currency.
    min_minor: Option<i64>,
    max_minor: Option<i64>,
    risk_levels: Option<BTreeSet<RiskLevel>>,
    pub cost_bps: u32,
    /// Share among routes of the same cost (none: config order).
    pub weight: Option<u32>,
}

/// What routing looks at.
#[derive(Debug, Clone, Copy)]
pub struct RouteRequest<'a> {
    pub country: Option<&'a str>,
    pub amount: Money,
    pub method: &'a str,
    pub risk: RiskLevel,
    /// Spreads equal-cost weighted routes; the same seed, the same order.
    pub seed: u64,
}

/// One PSP to try, with why it was chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub psp: PspId,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Router {
    routes: Vec<Route>,
    health: HealthPolicy,
    fast_methods: BTreeSet<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    routes: Vec<RawRoute>,
    health: Option<RawHealth>,
    fast_methods: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    window_s: Option<i64>,
    bucket_s: Option<i64>,
    min_samples: Option<u64>,
    cool_down_s: Option<i64>,
    probe_every_s: Option<i64>,
    sync_every_ms: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    psp: String,
    countries: Option<Vec<String>>,
    currencies: Option<Vec<String>>,
    methods: Option<Vec<String>>,
    min_amount: Option<String>,
    max_amount: Option<String>,
    risk_levels: Option<Vec<String>>,
    #[serde(default)]
    cost_bps: u32,
    weight: Option<u32>,
    max_error_pct: Option<u64>,
    max_p95_ms: Option<u64>,
}

impl Router {
    /// Every listed PSP for everything, tried in the given order.
    pub fn in_order(psps: &[PspId]) -> Router {
        let routes = psps
            .iter()
            .enumerate()
            .map(|(i, psp)| Route {
                psp: psp.clone(),
                countries: None,
                currencies: None,
                methods: None,
                min_minor: None,
                max_minor: None,
                risk_levels: None,
                cost_bps: i as u32,
                weight: None,
            })
            .collect();
        Router {
            routes,
            health: HealthPolicy::default(),
            fast_methods: DEFAULT_FAST_METHODS
                .iter()
                .map(|m| (*m).to_owned())
                .collect(),
        }
    }

    /// The same routes and thresholds with other health timings (tests).
    pub fn with_health(mut self, timing: HealthPolicy) -> Router {
        let max_error_pct = std::mem::take(&mut self.health.max_error_pct);
        let max_p95_ms = std::mem::take(&mut self.health.max_p95_ms);
        self.health = HealthPolicy {
            max_error_pct,
            max_p95_ms,
            ..timing
        };
        self
    }

    pub fn health_policy(&self) -> &HealthPolicy {
        &self.health
    }

    /// Methods that stay on in degradation mode.
    pub fn is_fast_method(&self, method: &str) -> bool {
        self.fast_methods.contains(method)
    }

    pub fn fast_methods(&self) -> impl Iterator<Item = &str> {
        self.fast_methods.iter().map(String::as_str)
    }

    /// Parse and validate a JSON routing document.
    pub fn from_json(text: &str) -> Result<Router, RoutingError> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| err("$", e.to_string()))?;
        if raw.routes.is_empty() || raw.routes.len() > MAX_ROUTES {
            return Err(err("routes", format!("must hold 1 to {MAX_ROUTES} routes")));
        }
        let mut health = parse_health(raw.health)?;
        let mut routes = Vec::with_capacity(raw.routes.len());
        for (i, r) in raw.routes.into_iter().enumerate() {
            let path = format!("routes[{i}]");
            let thresholds = (r.max_error_pct, r.max_p95_ms);
            let route = parse_route(&path, r)?;
            add_thresholds(&mut health, &path, &route.psp, thresholds)?;
            routes.push(route);
        }
        let fast_methods = match raw.fast_methods {
            None => DEFAULT_FAST_METHODS
                .iter()
                .map(|m| (*m).to_owned())
                .collect(),
            Some(list) => parse_set("fast_methods", list, parse_method)?,
        };
        Ok(Router {
            routes,
            health,
            fast_methods,
        })
    }

    /// Every route must name a PSP this deployment can reach.
    pub fn check_connectors(&self, known: impl Fn(&PspId) -> bool) -> Result<(), RoutingError> {
        match self.routes.iter().position(|r| !known(&r.psp)) {
            Some(i) => Err(err(
                format!("routes[{i}].psp"),
                format!("no connector for PSP {}", self.routes[i].psp),
            )),
            None => Ok(()),
        }
    }

    /// The PSPs that may take this payment, cheapest first (config order
    /// breaks ties), at most [`MAX_CASCADE`], each PSP once.
    pub fn candidates(&self, req: &RouteRequest<'_>) -> Vec<Candidate> {
        let mut matching: Vec<(usize, &Route)> = self
            .routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.matches(req))
            .collect();
        matching.sort_by_key(|(i, r)| (r.cost_bps, *i));
        let matching = weighted_ties(matching, req.seed);
        let mut seen = BTreeSet::new();
        matching
            .into_iter()
            .filter(|(_, r)| seen.insert(r.psp.clone()))
            .take(MAX_CASCADE)
            .map(|(i, r)| Candidate {
                psp: r.psp.clone(),
                reason: match r.weight {
                    Some(w) => format!("routes[{i}] matched, cost {} bps, weight {w}", r.cost_bps),
                    None => format!("routes[{i}] matched, cost {} bps", r.cost_bps),
                },
            })
            .collect()
    }
}

/// A method the routes offer to one country, currency and risk level, and
/// the amounts they take (inclusive, minor units; `None`: no bound).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodOffer {
    pub method: &'static str,
    /// The PSPs with a matching route, config order, each once.
    pub psps: Vec<PspId>,
    pub min_minor: Option<i64>,
    pub max_minor: Option<i64>,
}

impl Router {
    /// Every method some route offers to this country, currency and risk
    /// level, whatever the amount, with the amounts those routes take.
    /// Whether one amount is taken is [`Router::candidates`]'s answer.
    pub fn offers(
        &self,
        country: Option<&str>,
        currency: Currency,
        risk: RiskLevel,
    ) -> Vec<MethodOffer> {
        METHODS
            .iter()
            .filter_map(|method| {
                let routes: Vec<&Route> = self
                    .routes
                    .iter()
                    .filter(|r| r.matches_all_but_amount(country, currency, method, risk))
                    .collect();
                let first = routes.first()?;
                let mut psps: Vec<PspId> = Vec::new();
                for r in &routes {
                    if !psps.contains(&r.psp) {
                        psps.push(r.psp.clone());
                    }
                }
                let (mut lo, mut hi) = (first.min_minor, first.max_minor);
                for r in &routes[1..] {
                    lo = lo.zip(r.min_minor).map(|(a, b)| a.min(b));
                    hi = hi.zip(r.max_minor).map(|(a, b)| a.max(b));
                }
                Some(MethodOffer {
                    method,
                    psps,
                    min_minor: lo,
                    max_minor: hi,
                })
            })
            .collect()
    }
}

impl Route {
    fn matches(&self, req: &RouteRequest<'_>) -> bool {
        let minor = req.amount.minor();
        let amount_ok =
            self.min_minor.is_none_or(|m| minor >= m) && self.max_minor.is_none_or(|m| minor <= m);
        amount_ok
            && self.matches_all_but_amount(req.country, req.amount.currency(), req.method, req.risk)
    }

    fn matches_all_but_amount(
        &self,
        country: Option<&str>,
        currency: Currency,
        method: &str,
        risk: RiskLevel,
    ) -> bool {
        let country_ok = match (&self.countries, country) {
            (None, _) => true,
            (Some(set), Some(c)) => set.contains(c),
            (Some(_), None) => false,
        };
        let currency_ok = self
            .currencies
            .as_ref()
            .is_none_or(|s| s.contains(&currency));
        let method_ok = self.methods.as_ref().is_none_or(|s| s.contains(method));
        let risk_ok = self.risk_levels.as_ref().is_none_or(|s| s.contains(&risk));
        country_ok && currency_ok && method_ok && risk_ok
    }
}

/// Within each run of equal cost where every route has a weight, order the
/// routes by weighted draws without replacement from `seed`; other runs
/// keep config order.
fn weighted_ties(sorted: Vec<(usize, &Route)>, seed: u64) -> Vec<(usize, &Route)> {
    let mut out = Vec::with_capacity(sorted.len());
    let mut rng = seed;
    let mut rest = sorted.as_slice();
    while let Some((_, first)) = rest.first() {
        let run = rest
            .iter()
            .take_while(|(_, r)| r.cost_bps == first.cost_bps)
            .count();
        let (group, tail) = rest.split_at(run);
        rest = tail;
        if group.len() < 2 || group.iter().any(|(_, r)| r.weight.is_none()) {
            out.extend_from_slice(group);
            continue;
        }
        let mut pool = group.to_vec();
        while !pool.is_empty() {
            let total: u64 = pool
                .iter()
                .map(|(_, r)| u64::from(r.weight.unwrap_or(0)))
                .sum();
            let pick = if total == 0 {
                0
            } else {
                let mut x = splitmix(&mut rng) % total;
                pool.iter()
                    .position(|(_, r)| {
                        let w = u64::from(r.weight.unwrap_or(0));
                        if x < w {
                            return true;
                        }
                        x -= w;
                        false
                    })
                    .unwrap_or(0)
            };
            out.push(pool.remove(pick));
        }
    }
    out
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn parse_health(raw: Option<RawHealth>) -> Result<HealthPolicy, RoutingError> {
    let mut p = HealthPolicy::default();
    let Some(h) = raw else {
        return Ok(p);
    };
    let secs = |field: &str, v: Option<i64>, default_ms: i64, max_s: i64| match v {
        None => Ok(default_ms),
        Some(s) if (1..=max_s).contains(&s) => Ok(s * 1000),
        Some(_) => Err(err(
            format!("health.{field}"),
            format!("must be 1 to {max_s} seconds"),
        )),
    };
    p.window_ms = secs("window_s", h.window_s, p.window_ms, 3600)?;
    p.bucket_ms = secs("bucket_s", h.bucket_s, p.bucket_ms, 3600)?;
    p.cool_down_ms = secs("cool_down_s", h.cool_down_s, p.cool_down_ms, 3600)?;
    p.probe_every_ms = secs("probe_every_s", h.probe_every_s, p.probe_every_ms, 3600)?;
    p.sync_every_ms = match h.sync_every_ms {
        None => p.sync_every_ms,
        Some(ms) if (10..=60_000).contains(&ms) => ms,
        Some(_) => return Err(err("health.sync_every_ms", "must be 10 to 60000 ms")),
    };
    if p.window_ms % p.bucket_ms != 0 || p.window_ms / p.bucket_ms > MAX_BUCKETS {
        return Err(err(
            "health.bucket_s",
            format!("must divide window_s into at most {MAX_BUCKETS} buckets"),
        ));
    }
    p.min_samples = match h.min_samples {
        None => p.min_samples,
        Some(n) if (1..=1_000_000).contains(&n) => n,
        Some(_) => return Err(err("health.min_samples", "must be 1 to 1000000")),
    };
    Ok(p)
}

/// A route's circuit thresholds belong to its PSP; two routes of one PSP
/// may not disagree.
fn add_thresholds(
    health: &mut HealthPolicy,
    path: &str,
    psp: &PspId,
    (max_error_pct, max_p95_ms): (Option<u64>, Option<u64>),
) -> Result<(), RoutingError> {
    if let Some(pct) = max_error_pct {
        if !(1..=100).contains(&pct) {
            return Err(err(format!("{path}.max_error_pct"), "must be 1 to 100"));
        }
        if health
            .max_error_pct
            .insert(psp.clone(), pct)
            .is_some_and(|old| old != pct)
        {
            return Err(err(
                format!("{path}.max_error_pct"),
                format!("differs from another route of PSP {psp}"),
            ));
        }
    }
    if let Some(ms) = max_p95_ms {
        if !(1..=600_000).contains(&ms) {
            return Err(err(format!("{path}.max_p95_ms"), "must be 1 to 600000"));
        }
        if health
            .max_p95_ms
            .insert(psp.clone(), ms)
            .is_some_and(|old| old != ms)
        {
            return Err(err(
                format!("{path}.max_p95_ms"),
                format!("differs from another route of PSP {psp}"),
            ));
        }
    }
    Ok(())
}

/// A route's amount bounds, in minor units of its one currency.
fn amount_bounds(
    path: &str,
    currencies: Option<&BTreeSet<Currency>>,
    min: Option<String>,
    max: Option<String>,
) -> Result<(Option<i64>, Option<i64>), RoutingError> {
    if min.is_none() && max.is_none() {
        return Ok((None, None));
    }
    let c = match currencies {
        Some(set) if set.len() == 1 => set.iter().next().copied(),
        _ => None,
    }
    .ok_or_else(|| {
        err(
            format!("{path}.currencies"),
            "amount bounds need exactly one currency",
        )
    })?;
    let bound = |field: &str, text: Option<String>| -> Result<Option<i64>, RoutingError> {
        text.map(|t| {
            Money::parse_decimal(&t, c)
                .map(|m| m.minor())
                .map_err(|e| err(format!("{path}.{field}"), e.to_string()))
        })
        .transpose()
    };
    let (lo, hi) = (bound("min_amount", min)?, bound("max_amount", max)?);
    if let (Some(lo), Some(hi)) = (lo, hi) {
        if lo > hi {
            return Err(err(format!("{path}.min_amount"), "is above max_amount"));
        }
    }
    Ok((lo, hi))
}

fn check_weight_and_cost(
    path: &str,
    weight: Option<u32>,
    cost_bps: u32,
) -> Result<(), RoutingError> {
    if weight.is_some_and(|w| w == 0 || w > MAX_WEIGHT) {
        return Err(err(
            format!("{path}.weight"),
            format!("must be 1 to {MAX_WEIGHT}"),
        ));
    }
    if cost_bps > MAX_COST_BPS {
        return Err(err(
            format!("{path}.cost_bps"),
            format!("must be at most {MAX_COST_BPS}"),
        ));
    }
    Ok(())
}

fn parse_route(path: &str, r: RawRoute) -> Result<Route, RoutingError> {
    let psp = PspId::parse(&r.psp).map_err(|e| err(format!("{path}.psp"), e.to_string()))?;
    let countries = r
        .countries
        .map(|list| parse_set(&format!("{path}.countries"), list, parse_country))
        .transpose()?;
    let currencies = r
        .currencies
        .map(|list| {
            parse_set(&format!("{path}.currencies"), list, |c| {
                Currency::parse(c).map_err(|e| e.to_string())
            })
        })
        .transpose()?;
    let methods = r
        .methods
        .map(|list| parse_set(&format!("{path}.methods"), list, parse_method))
        .transpose()?;
    let (min_minor, max_minor) =
        amount_bounds(path, currencies.as_ref(), r.min_amount, r.max_amount)?;
    let risk_levels = r
        .risk_levels
        .map(|list| {
            parse_set(&format!("{path}.risk_levels"), list, |l| {
                RiskLevel::parse(l).ok_or_else(|| "must be low, medium or high".to_owned())
            })
        })
        .transpose()?;
    check_weight_and_cost(path, r.weight, r.cost_bps)?;
    Ok(Route {
        psp,
        countries,
        currencies,
        methods,
        min_minor,
        max_minor,
        risk_levels,
        cost_bps: r.cost_bps,
        weight: r.weight,
    })
}

fn parse_set<T: Ord>(
    path: &str,
    list: Vec<String>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<BTreeSet<T>, RoutingError> {
    if list.is_empty() {
        return Err(err(
            path,
            "must not be empty (leave it out to match everything)",
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| parse(v).map_err(|reason| err(format!("{path}[{i}]"), reason)))
        .collect()
}

fn parse_country(c: &str) -> Result<String, String> {
    let ok = c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase());
    ok.then(|| c.to_owned())
        .ok_or_else(|| "must be an ISO 3166 alpha-2 code like \"FI\"".to_owned())
}

fn parse_method(m: &str) -> Result<String, String> {
    METHODS
        .contains(&m)
        .then(|| m.to_owned())
        .ok_or_else(|| format!("must be one of {}", METHODS.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(text: &str) -> Money {
        Money::parse_decimal(text, Currency::parse("EUR").unwrap()).unwrap()
    }

    const CONFIG: &str = r#"{"routes": [
        {"psp": "cheap-fi", "countries": ["FI"], "currencies": ["EUR"], "methods": ["card"], "max_amount": "100.00", "cost_bps": 90},
        {"psp": "bank", "methods": ["pay_by_bank"], "cost_bps": 40},
        {"psp": "general", "cost_bps": 150},
        {"psp": "backup", "cost_bps": 150},
        {"psp": "general", "currencies": ["EUR"], "cost_bps": 10, "min_amount": "1000.00"}
    ]}"#;

    fn psps(router: &Router, country: Option<&str>, amount: &str, method: &str) -> Vec<String> {
        router
            .candidates(&RouteRequest {
                country,
                amount: eur(amount),
                method,
                risk: RiskLevel::Low,
                seed: 1,
            })
            .into_iter()
            .map(|c| c.psp.to_string())
            .collect()
    }

    #[test]
    fn rules_select_and_order_candidates() {
        let r = Router::from_json(CONFIG).unwrap();
        assert_eq!(
            psps(&r, Some("FI"), "50.00", "card"),
            ["cheap-fi", "general", "backup"]
        );
        assert_eq!(
            psps(&r, Some("FI"), "150.00", "card"),
            ["general", "backup"],
            "over the cap"
        );
        assert_eq!(
            psps(&r, Some("SE"), "50.00", "card"),
            ["general", "backup"],
            "other country"
        );
        assert_eq!(
            psps(&r, None, "50.00", "card"),
            ["general", "backup"],
            "country unknown"
        );
        assert_eq!(
            psps(&r, Some("FI"), "50.00", "pay_by_bank"),
            ["bank", "general", "backup"]
        );
        // A second, cheaper rule for the same PSP wins its place; each PSP once.
        assert_eq!(
            psps(&r, Some("DE"), "2000.00", "card"),
            ["general", "backup"]
        );
        let why = r.candidates(&RouteRequest {
            country: Some("FI"),
            amount: eur("50.00"),
            method: "card",
            risk: RiskLevel::Low,
            seed: 1,
        });
        assert_eq!(why[0].reason, "routes[0] matched, cost 90 bps");
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let cases = [
            (r#"{"routes": []}"#, "routes"),
            (r#"{"routes": [{"psp": "a b"}]}"#, "routes[0].psp"),
            (
                r#"{"routes": [{"psp": "a", "currencies": ["EURO"]}]}"#,
                "routes[0].currencies[0]",
            ),
            (
                r#"{"routes": [{"psp": "a", "countries": ["Finland"]}]}"#,
                "routes[0].countries[0]",
            ),
            (
                r#"{"routes": [{"psp": "a", "methods": ["cash"]}]}"#,
                "routes[0].methods[0]",
            ),
            (
                r#"{"routes": [{"psp": "a", "methods": []}]}"#,
                "routes[0].methods",
            ),
            (
                r#"{"routes": [{"psp": "a", "max_amount": "10.00"}]}"#,
                "routes[0].currencies",
            ),
            (
                r#"{"routes": [{"psp": "a", "currencies": ["EUR"], "max_amount": "10.001"}]}"#,
                "routes[0].max_amount",
            ),
            (
                r#"{"routes": [{"psp": "a", "currencies": ["EUR"], "min_amount": "9.00", "max_amount": "1.00"}]}"#,
                "routes[0].min_amount",
            ),
            (
                r#"{"routes": [{"psp": "a", "cost_bps": 20000}]}"#,
                "routes[0].cost_bps",
            ),
            (r#"{"routes": [{"psp": "a", "colour": "red"}]}"#, "$"),
            (
                r#"{"routes": [{"psp": "a", "risk_levels": ["extreme"]}]}"#,
                "routes[0].risk_levels[0]",
            ),
            (
                r#"{"routes": [{"psp": "a", "weight": 0}]}"#,
                "routes[0].weight",
            ),
            (
                r#"{"routes": [{"psp": "a", "max_error_pct": 101}]}"#,
                "routes[0].max_error_pct",
            ),
            (
                r#"{"routes": [{"psp": "a", "max_p95_ms": 100}, {"psp": "a", "max_p95_ms": 200}]}"#,
                "routes[1].max_p95_ms",
            ),
            (
                r#"{"routes": [{"psp": "a"}], "health": {"window_s": 60, "bucket_s": 7}}"#,
                "health.bucket_s",
            ),
            (
                r#"{"routes": [{"psp": "a"}], "health": {"cool_down_s": 0}}"#,
                "health.cool_down_s",
            ),
            (
                r#"{"routes": [{"psp": "a"}], "fast_methods": ["teleport"]}"#,
                "fast_methods[0]",
            ),
        ];
        for (json, path) in cases {
            assert_eq!(Router::from_json(json).unwrap_err().path, path, "{json}");
        }
        let r = Router::from_json(CONFIG).unwrap();
        let e = r.check_connectors(|p| p.as_str() != "backup").unwrap_err();
        assert_eq!(e.path, "routes[3].psp");
        assert!(e.to_string().contains("no connector for PSP backup"));
    }

    #[test]
    fn risk_levels_and_weights_shape_the_candidates() {
        let r = Router::from_json(
            r#"{"routes": [
                {"psp": "strict", "risk_levels": ["low"], "cost_bps": 10},
                {"psp": "a", "cost_bps": 50, "weight": 80},
                {"psp": "b", "cost_bps": 50, "weight": 20}
            ]}"#,
        )
        .unwrap();
        let ask = |risk, seed| -> Vec<String> {
            r.candidates(&RouteRequest {
                country: None,
                amount: eur("10.00"),
                method: "card",
                risk,
                seed,
            })
            .into_iter()
            .map(|c| c.psp.to_string())
            .collect()
        };
        assert_eq!(ask(RiskLevel::Low, 3)[0], "strict");
        assert!(!ask(RiskLevel::High, 3).contains(&"strict".to_owned()));
        let a_first = (0..10_000u64)
            .filter(|seed| ask(RiskLevel::High, *seed)[0] == "a")
            .count();
        assert!(
            (7_500..=8_500).contains(&a_first),
            "weight 80:20 gave a first {a_first} of 10000 times"
        );
        assert_eq!(
            ask(RiskLevel::High, 42),
            ask(RiskLevel::High, 42),
            "same seed, same order"
        );
        assert!(r.is_fast_method("p2p") && !r.is_fast_method("card"));
    }

    #[test]
    fn offers_list_each_method_with_the_widest_amounts_its_routes_take() {
        let r = Router::from_json(
            r#"{"routes": [
              {"psp": "a", "currencies": ["EUR"], "methods": ["card"], "min_amount": "5.00", "max_amount": "100.00"},
              {"psp": "b", "currencies": ["EUR"], "methods": ["card", "p2p"], "min_amount": "1.00", "max_amount": "50.00"},
              {"psp": "c", "countries": ["SE"], "methods": ["ewallet"]},
              {"psp": "d", "currencies": ["SEK"], "methods": ["bank_transfer"]},
              {"psp": "e", "methods": ["pay_by_bank"], "risk_levels": ["low"]}]}"#,
        )
        .unwrap();
        let eur = Currency::parse("EUR").unwrap();
        let offers = r.offers(Some("FI"), eur, RiskLevel::Low);
        let methods: Vec<&str> = offers.iter().map(|o| o.method).collect();
        assert_eq!(methods, ["card", "pay_by_bank", "p2p"]);
        assert_eq!(
            offers[0].psps,
            [PspId::parse("a").unwrap(), PspId::parse("b").unwrap()]
        );
        assert_eq!(
            (offers[0].min_minor, offers[0].max_minor),
            (Some(100), Some(10_000))
        );
        assert_eq!((offers[1].min_minor, offers[1].max_minor), (None, None));
        let se: Vec<&str> = r
            .offers(Some("SE"), eur, RiskLevel::High)
            .iter()
            .map(|o| o.method)
            .collect();
        assert_eq!(se, ["card", "ewallet", "p2p"], "risk and country filter");
    }
}
