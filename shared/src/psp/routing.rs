//! Routing rules: which PSPs may take a payment (country, currency, method,
//! amount range), in which order (cost, then config order). Loaded from a
//! JSON document and validated at start with errors that name the field.
//!
//! ```json
//! {"routes": [
//!   {"psp": "sandbox", "currencies": ["EUR"], "countries": ["FI", "SE"],
//!    "methods": ["card"], "min_amount": "1.00", "max_amount": "5000.00", "cost_bps": 120},
//!   {"psp": "sandbox-b", "cost_bps": 180}
//! ]}
//! ```

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::domain::payment::METHODS;
use crate::ids::PspId;
use crate::money::{Currency, Money};

/// Most PSPs one payment is offered to before giving up (cascade bound).
pub const MAX_CASCADE: usize = 3;
const MAX_ROUTES: usize = 256;
const MAX_COST_BPS: u32 = 10_000;

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
    pub cost_bps: u32,
}

/// What routing looks at.
#[derive(Debug, Clone, Copy)]
pub struct RouteRequest<'a> {
    pub country: Option<&'a str>,
    pub amount: Money,
    pub method: &'a str,
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    routes: Vec<RawRoute>,
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
    #[serde(default)]
    cost_bps: u32,
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
                cost_bps: i as u32,
            })
            .collect();
        Router { routes }
    }

    /// Parse and validate a JSON routing document.
    pub fn from_json(text: &str) -> Result<Router, RoutingError> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| err("$", e.to_string()))?;
        if raw.routes.is_empty() || raw.routes.len() > MAX_ROUTES {
            return Err(err("routes", format!("must hold 1 to {MAX_ROUTES} routes")));
        }
        let routes = raw
            .routes
            .into_iter()
            .enumerate()
            .map(|(i, r)| parse_route(&format!("routes[{i}]"), r))
            .collect::<Result<_, _>>()?;
        Ok(Router { routes })
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
        let mut seen = BTreeSet::new();
        matching
            .into_iter()
            .filter(|(_, r)| seen.insert(r.psp.clone()))
            .take(MAX_CASCADE)
            .map(|(i, r)| Candidate {
                psp: r.psp.clone(),
                reason: format!("routes[{i}] matched, cost {} bps", r.cost_bps),
            })
            .collect()
    }
}

impl Route {
    fn matches(&self, req: &RouteRequest<'_>) -> bool {
        let country_ok = match (&self.countries, req.country) {
            (None, _) => true,
            (Some(set), Some(c)) => set.contains(c),
            (Some(_), None) => false,
        };
        let currency_ok = self
            .currencies
            .as_ref()
            .is_none_or(|s| s.contains(&req.amount.currency()));
        let method_ok = self.methods.as_ref().is_none_or(|s| s.contains(req.method));
        let minor = req.amount.minor();
        let amount_ok =
            self.min_minor.is_none_or(|m| minor >= m) && self.max_minor.is_none_or(|m| minor <= m);
        country_ok && currency_ok && method_ok && amount_ok
    }
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
    let bound_currency = match (
        &currencies,
        r.min_amount.is_some() || r.max_amount.is_some(),
    ) {
        (_, false) => None,
        (Some(set), true) if set.len() == 1 => set.iter().next().copied(),
        _ => {
            return Err(err(
                format!("{path}.currencies"),
                "amount bounds need exactly one currency",
            ))
        }
    };
    let bound = |field: &str, text: Option<String>| -> Result<Option<i64>, RoutingError> {
        match (text, bound_currency) {
            (Some(t), Some(c)) => Money::parse_decimal(&t, c)
                .map(|m| Some(m.minor()))
                .map_err(|e| err(format!("{path}.{field}"), e.to_string())),
            _ => Ok(None),
        }
    };
    let (min_minor, max_minor) = (
        bound("min_amount", r.min_amount)?,
        bound("max_amount", r.max_amount)?,
    );
    if let (Some(lo), Some(hi)) = (min_minor, max_minor) {
        if lo > hi {
            return Err(err(format!("{path}.min_amount"), "is above max_amount"));
        }
    }
    if r.cost_bps > MAX_COST_BPS {
        return Err(err(
            format!("{path}.cost_bps"),
            format!("must be at most {MAX_COST_BPS}"),
        ));
    }
    Ok(Route {
        psp,
        countries,
        currencies,
        methods,
        min_minor,
        max_minor,
        cost_bps: r.cost_bps,
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
        ];
        for (json, path) in cases {
            assert_eq!(Router::from_json(json).unwrap_err().path, path, "{json}");
        }
        let r = Router::from_json(CONFIG).unwrap();
        let e = r.check_connectors(|p| p.as_str() != "backup").unwrap_err();
        assert_eq!(e.path, "routes[3].psp");
        assert!(e.to_string().contains("no connector for PSP backup"));
    }
}
