//! The deposit init request (`POST /v1/payments/init`): amount (decimal or
//! micros), currency, method, return URL, player and routing metadata, each
//! checked with its field named in the error.

use crate::domain::request::Body;
use crate::domain::risk::rules::Signals;
use crate::domain::risk::signals::{EdgeSignals, RiskMeta, RISK_META_FIELDS};
use crate::error::Error;
use crate::ids::PlayerId;
use crate::money::{Currency, Money};
use crate::schema::status::METHODS;

pub const MAX_RETURN_URL: usize = 2048;
const MAX_DEVICE: usize = 32;
const INIT_FIELDS: [&str; 7] = [
    "amount",
    "amount_micros",
    "currency",
    "method",
    "return_url",
    "player_id",
    "meta",
];

#[derive(Debug, Clone, PartialEq)]
pub struct InitRequest {
    pub amount: Money,
    pub method: String,
    pub return_url: String,
    pub player: PlayerId,
    pub country: Option<String>,
    pub device: Option<String>,
    /// The checkout session, kept on the route it started on (3DS).
    pub session_id: Option<String>,
    /// The player's bank (pay-by-bank), kept on one route like a session.
    pub bank: Option<String>,
    /// Signals for the risk decision (device id, IP, instrument, …).
    pub risk: RiskMeta,
}

/// `meta` fields the init request routes by (the risk fields come beside).
const META_FIELDS: [&str; 4] = ["country", "device", "session_id", "bank"];
const MAX_STICKY_ID: usize = 64;

fn parse_amount(body: &Body, currency: Currency) -> Result<Money, Error> {
    match (body.has("amount"), body.has("amount_micros")) {
        (true, true) => Err(Error::validation(
            "amount",
            "send amount or amount_micros, not both",
        )),
        (true, false) => Money::parse_decimal(body.str("amount")?, currency)
            .map_err(|e| Error::validation("amount", e.to_string())),
        (false, true) => {
            let micros = body
                .opt_i64("amount_micros")?
                .ok_or_else(|| Error::validation("amount_micros", "must be an integer"))?;
            Money::from_micros(micros, currency)
                .map_err(|e| Error::validation("amount_micros", e.to_string()))
        }
        (false, false) => Err(Error::validation("amount", "is required")),
    }
}

fn parse_return_url(s: &str) -> Result<String, Error> {
    let ok_scheme = s.starts_with("https://") || s.starts_with("http://");
    let host_present = s
        .split("://")
        .nth(1)
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if !ok_scheme
        || !host_present
        || s.len() > MAX_RETURN_URL
        || s.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::validation(
            "return_url",
            "must be an absolute http(s) URL of at most 2048 characters",
        ));
    }
    Ok(s.to_owned())
}

/// The optional `meta` object: routing hints, each checked.
#[derive(Default)]
struct Meta {
    country: Option<String>,
    device: Option<String>,
    session_id: Option<String>,
    bank: Option<String>,
    risk: RiskMeta,
}

/// One `meta` field that must be a string matching `ok`, named `meta.<name>`.
fn meta_field(
    meta: &Body,
    name: &str,
    ok: impl Fn(&str) -> bool,
    expected: &str,
) -> Result<Option<String>, Error> {
    let bad = || Error::validation(&format!("meta.{name}"), expected);
    match meta.opt_str(name) {
        Ok(None) => Ok(None),
        Ok(Some(v)) if ok(v) => Ok(Some(v.to_owned())),
        _ => Err(bad()),
    }
}

fn is_sticky_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_STICKY_ID
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn parse_meta(body: &Body) -> Result<Meta, Error> {
    let Some(meta) = body.opt_object("meta")? else {
        return Ok(Meta::default());
    };
    if let Some(unknown) = meta
        .keys()
        .find(|k| !META_FIELDS.contains(k) && !RISK_META_FIELDS.contains(k))
    {
        return Err(Error::validation(
            &format!("meta.{unknown}"),
            "unknown field",
        ));
    }
    let country = |c: &str| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase());
    let device = |d: &str| {
        !d.is_empty()
            && d.len() <= MAX_DEVICE
            && d.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let sticky = "must be 1-64 characters [A-Za-z0-9_.-]";
    Ok(Meta {
        country: meta_field(
            &meta,
            "country",
            country,
            "must be an ISO 3166 alpha-2 code like \"FI\"",
        )?,
        device: meta_field(
            &meta,
            "device",
            device,
            "must be 1-32 characters [A-Za-z0-9_-]",
        )?,
        session_id: meta_field(&meta, "session_id", is_sticky_id, sticky)?,
        bank: meta_field(&meta, "bank", is_sticky_id, sticky)?,
        risk: RiskMeta::parse(&meta)?,
    })
}

impl InitRequest {
    /// Parse the init body; every error names its field.
    pub fn parse(body: &Body) -> Result<InitRequest, Error> {
        body.only(&INIT_FIELDS)?;
        let currency = Currency::parse(body.str("currency")?)
            .map_err(|e| Error::validation("currency", e.to_string()))?;
        let amount = parse_amount(body, currency)?;
        let method = body.str("method")?;
        if !METHODS.contains(&method) {
            return Err(Error::validation(
                "method",
                format!("must be one of {}", METHODS.join(", ")),
            ));
        }
        let return_url = parse_return_url(body.str("return_url")?)?;
        let player = PlayerId::parse(body.str("player_id")?)
            .map_err(|e| Error::validation("player_id", e.to_string()))?;
        let meta = parse_meta(body)?;
        Ok(InitRequest {
            amount,
            method: method.to_owned(),
            return_url,
            player,
            country: meta.country,
            device: meta.device,
            session_id: meta.session_id,
            bank: meta.bank,
            risk: meta.risk,
        })
    }

    /// The edge's signals (trusted headers) over the client's.
    pub fn with_edge(mut self, edge: &EdgeSignals) -> InitRequest {
        self.risk = self.risk.with_edge(edge);
        self
    }

    /// The request's signals for the risk decision.
    pub fn signals(&self) -> Signals {
        self.risk.signals(
            &self.player,
            self.amount,
            &self.method,
            self.country.as_deref(),
            None,
        )
    }

    /// The request as an init body again (kept while it is under review,
    /// parsed back with [`InitRequest::parse`] when approved).
    pub fn to_body(&self) -> serde_json::Value {
        let mut meta = serde_json::Map::new();
        let r = &self.risk;
        for (name, v) in [
            ("country", &self.country),
            ("device", &self.device),
            ("session_id", &self.session_id),
            ("bank", &self.bank),
            ("device_id", &r.device_id),
            ("ip", &r.ip),
            ("ip_country", &r.ip_country),
            ("asn", &r.asn),
            ("instrument", &r.instrument),
            ("bin", &r.bin),
        ] {
            if let Some(v) = v {
                meta.insert(name.into(), serde_json::Value::from(v.as_str()));
            }
        }
        serde_json::json!({
            "amount": self.amount.to_decimal(),
            "currency": self.amount.currency().code(),
            "method": self.method,
            "return_url": self.return_url,
            "player_id": self.player.as_str(),
            "meta": meta,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parse(v: &Value) -> Result<InitRequest, Error> {
        InitRequest::parse(&Body::from_json(v.to_string().as_bytes())?)
    }

    fn body() -> Value {
        json!({"amount":"50.00","currency":"EUR","method":"card","return_url":"https://shop.example/return",
               "player_id":"player-1","meta":{"country":"FI","device":"ios"}})
    }

    #[test]
    fn parses_the_seed_body() {
        let r = parse(&body()).unwrap();
        assert_eq!(r.amount.minor(), 5000);
        assert_eq!(r.country.as_deref(), Some("FI"));
    }

    #[test]
    fn a_held_request_parses_back_the_same() {
        let mut b = body();
        b["meta"]["device_id"] = json!("dev-9");
        b["meta"]["ip_country"] = json!("SE");
        let r = parse(&b).unwrap();
        assert_eq!(parse(&r.to_body()).unwrap(), r);
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases: [(&str, Value, &str); 11] = [
            ("amount", json!("50.001"), "amount"),
            ("amount", json!(50), "amount"),
            ("currency", json!("EURO"), "currency"),
            ("method", json!("cash"), "method"),
            ("return_url", json!("javascript:alert(1)"), "return_url"),
            ("player_id", json!("bob smith"), "player_id"),
            ("meta", json!({"country":"Finland"}), "meta.country"),
            ("meta", json!({"device":"a b"}), "meta.device"),
            ("meta", json!({"session_id":"a/b"}), "meta.session_id"),
            ("meta", json!({"colour":"red"}), "meta.colour"),
            ("extra", json!(1), "extra"),
        ];
        for (field, value, named) in cases {
            let mut b = body();
            b[field] = value;
            match parse(&b) {
                Err(Error::Validation { field, .. }) => assert_eq!(field, named),
                other => panic!("{named}: {other:?}"),
            }
        }
        let mut b = body();
        b["amount_micros"] = json!(50_000_000);
        assert!(parse(&b).is_err(), "both amount forms");
        b.as_object_mut().unwrap().remove("amount");
        assert_eq!(parse(&b).unwrap().amount.minor(), 5000);
    }
}
