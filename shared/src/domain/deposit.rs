//! Deposit intents: parse the init request, store the intent, open the PSP
//! session (the built-in sandbox for now), answer with the redirect.

use serde_json::{json, Map, Value};

use crate::error::Error;
use crate::ids::{PaymentId, PlayerId};
use crate::money::{Currency, Money};
use crate::store::{Attr, Cond, ItemExt, Query, SkRange, StoreError, Write};

use super::cascade::route_and_open;
use super::keys;
use super::payment::{attr_to_json, Payment, PaymentStatus, METHODS};
use super::Ctx;

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
/// Deliveries shown per payment.
pub const MAX_DELIVERIES_SHOWN: usize = 200;
/// Deliveries that failed verification shown per payment (they are claims).
pub const MAX_UNVERIFIED_SHOWN: usize = 50;

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
}

/// `meta` fields the init request understands.
const META_FIELDS: [&str; 4] = ["country", "device", "session_id", "bank"];
const MAX_STICKY_ID: usize = 64;

fn field_str<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, Error> {
    match obj.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Error::validation(name, "must be a string")),
        None => Err(Error::validation(name, "is required")),
    }
}

fn parse_amount(obj: &Map<String, Value>, currency: Currency) -> Result<Money, Error> {
    match (obj.get("amount"), obj.get("amount_micros")) {
        (Some(_), Some(_)) => Err(Error::validation(
            "amount",
            "send amount or amount_micros, not both",
        )),
        (Some(_), None) => Money::parse_decimal(field_str(obj, "amount")?, currency)
            .map_err(|e| Error::validation("amount", e.to_string())),
        (None, Some(v)) => {
            let micros = v
                .as_i64()
                .ok_or_else(|| Error::validation("amount_micros", "must be an integer"))?;
            Money::from_micros(micros, currency)
                .map_err(|e| Error::validation("amount_micros", e.to_string()))
        }
        (None, None) => Err(Error::validation("amount", "is required")),
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
}

fn sticky_id(meta: &Map<String, Value>, name: &str) -> Result<Option<String>, Error> {
    match meta.get(name) {
        None => Ok(None),
        Some(Value::String(v))
            if !v.is_empty()
                && v.len() <= MAX_STICKY_ID
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) =>
        {
            Ok(Some(v.clone()))
        }
        Some(_) => Err(Error::validation(
            &format!("meta.{name}"),
            "must be 1-64 characters [A-Za-z0-9_.-]",
        )),
    }
}

fn parse_meta(obj: &Map<String, Value>) -> Result<Meta, Error> {
    let Some(meta) = obj.get("meta") else {
        return Ok(Meta::default());
    };
    let meta = meta
        .as_object()
        .ok_or_else(|| Error::validation("meta", "must be an object"))?;
    if let Some(unknown) = meta.keys().find(|k| !META_FIELDS.contains(&k.as_str())) {
        return Err(Error::validation(
            &format!("meta.{unknown}"),
            "unknown field",
        ));
    }
    let country = match meta.get("country") {
        None => None,
        Some(Value::String(c)) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) => {
            Some(c.clone())
        }
        Some(_) => {
            return Err(Error::validation(
                "meta.country",
                "must be an ISO 3166 alpha-2 code like \"FI\"",
            ))
        }
    };
    let device = match meta.get("device") {
        None => None,
        Some(Value::String(d))
            if !d.is_empty()
                && d.len() <= MAX_DEVICE
                && d.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            Some(d.clone())
        }
        Some(_) => {
            return Err(Error::validation(
                "meta.device",
                "must be 1-32 characters [A-Za-z0-9_-]",
            ))
        }
    };
    Ok(Meta {
        country,
        device,
        session_id: sticky_id(meta, "session_id")?,
        bank: sticky_id(meta, "bank")?,
    })
}

impl InitRequest {
    /// Parse the init body; every error names its field.
    pub fn parse(body: &Value) -> Result<InitRequest, Error> {
        let obj = body
            .as_object()
            .ok_or_else(|| Error::validation("body", "must be a JSON object"))?;
        if let Some(unknown) = obj.keys().find(|k| !INIT_FIELDS.contains(&k.as_str())) {
            return Err(Error::validation(unknown, "unknown field"));
        }
        let currency = Currency::parse(field_str(obj, "currency")?)
            .map_err(|e| Error::validation("currency", e.to_string()))?;
        let amount = parse_amount(obj, currency)?;
        let method = field_str(obj, "method")?;
        if !METHODS.contains(&method) {
            return Err(Error::validation(
                "method",
                format!("must be one of {}", METHODS.join(", ")),
            ));
        }
        let return_url = parse_return_url(field_str(obj, "return_url")?)?;
        let player = PlayerId::parse(field_str(obj, "player_id")?)
            .map_err(|e| Error::validation("player_id", e.to_string()))?;
        let meta = parse_meta(obj)?;
        Ok(InitRequest {
            amount,
            method: method.to_owned(),
            return_url,
            player,
            country: meta.country,
            device: meta.device,
            session_id: meta.session_id,
            bank: meta.bank,
        })
    }
}

/// Route the intent, open the PSP session (cascading to the next candidate
/// when a PSP is unavailable), store the intent (one conditional put) under
/// the id the idempotency engine reserved, and return the 201 body. If that
/// id already holds an intent, an earlier attempt of this same request
/// committed it (then crashed or timed out): answer from it instead.
pub async fn create_intent(ctx: &Ctx, req: InitRequest, id: PaymentId) -> Result<Value, Error> {
    // A re-run under the same reserved id must not open a second PSP session.
    if let Some(old) = ctx.store.get(&keys::payment(&id)).await? {
        return from_earlier_attempt(&old, &req);
    }
    let routed = route_and_open(ctx, &req, &id).await?;
    let payment = Payment {
        id,
        player: req.player.clone(),
        amount: req.amount,
        method: req.method.clone(),
        psp: routed.psp.clone(),
        status: PaymentStatus::Pending,
        return_url: req.return_url.clone(),
        country: req.country.clone(),
        device: req.device.clone(),
        created_ms: ctx.now_ms(),
        credited_txn: None,
        history: Vec::new(),
    };
    let mut record = payment.to_item();
    record.insert(
        "redirect_url".into(),
        Attr::from(routed.session.redirect_url.as_str()),
    );
    record.insert(
        "psp_reference".into(),
        Attr::from(routed.session.reference.as_str()),
    );
    record.insert("routing".into(), routed.record());
    match ctx
        .store
        .write(Write::Put {
            item: record,
            cond: Some(Cond::NotExists),
        })
        .await
    {
        Ok(()) => {
            tracing::info!(payment_id = %payment.id, psp = %payment.psp, method = %payment.method, attempts = routed.attempts.len(), "deposit intent created");
            Ok(intent_response(&payment, &routed.session.redirect_url))
        }
        Err(StoreError::ConditionFailed { old: Some(old), .. }) => from_earlier_attempt(&old, &req),
        Err(e) => Err(e.into()),
    }
}

/// Answer a re-run from the intent an earlier attempt of the same request
/// stored; a different request under the same key is a conflict.
fn from_earlier_attempt(old: &crate::store::Item, req: &InitRequest) -> Result<Value, Error> {
    let earlier = Payment::from_item(old)?;
    if !matches_request(&earlier, req) {
        return Err(Error::IdempotencyKeyReused);
    }
    tracing::info!(payment_id = %earlier.id, "deposit intent found from an earlier attempt");
    Ok(intent_response(
        &earlier,
        old.str_attr("redirect_url").unwrap_or_default(),
    ))
}

fn matches_request(p: &Payment, r: &InitRequest) -> bool {
    (
        &p.player,
        p.amount,
        &p.method,
        &p.return_url,
        &p.country,
        &p.device,
    ) == (
        &r.player,
        r.amount,
        &r.method,
        &r.return_url,
        &r.country,
        &r.device,
    )
}

fn intent_response(p: &Payment, redirect_url: &str) -> Value {
    json!({
        "payment_id": p.id,
        "status": p.status.as_str(),
        "redirect_url": redirect_url,
        "psp": p.psp,
        "amount": p.amount.to_decimal(),
        "amount_micros": p.amount.micros().ok(),
        "currency": p.amount.currency(),
    })
}

pub async fn load_payment(ctx: &Ctx, id: &PaymentId) -> Result<Payment, Error> {
    let found = ctx
        .store
        .get(&keys::payment(id))
        .await?
        .ok_or(Error::NotFound { what: "payment" })?;
    Payment::from_item(&found)
}

/// The public view of a payment (`GET /v1/payments/{id}`), with its PSP
/// reference and routing decision.
pub async fn payment_view(ctx: &Ctx, id: &PaymentId) -> Result<Value, Error> {
    let found = ctx
        .store
        .get(&keys::payment(id))
        .await?
        .ok_or(Error::NotFound { what: "payment" })?;
    let mut view = Payment::from_item(&found)?.to_json();
    view["psp_reference"] = found
        .get("psp_reference")
        .map(attr_to_json)
        .unwrap_or(Value::Null);
    view["redirect_url"] = found
        .get("redirect_url")
        .map(attr_to_json)
        .unwrap_or(Value::Null);
    view["routing"] = found
        .get("routing")
        .map(attr_to_json)
        .unwrap_or(Value::Null);
    Ok(view)
}

/// The webhook delivery log of one payment, oldest first.
pub async fn deliveries(ctx: &Ctx, id: &PaymentId) -> Result<Value, Error> {
    load_payment(ctx, id).await?;
    let pk = keys::payment_pk(id.as_str());
    let unverified_pk = keys::unverified_pk(id.as_str());
    let sources = [
        (pk.as_str(), keys::EVENT_PREFIX, MAX_DELIVERIES_SHOWN, true),
        (
            pk.as_str(),
            keys::DELIVERY_PREFIX,
            MAX_DELIVERIES_SHOWN,
            true,
        ),
        (
            unverified_pk.as_str(),
            keys::DELIVERY_PREFIX,
            MAX_UNVERIFIED_SHOWN,
            false,
        ),
    ];
    let mut out = Vec::new();
    for (partition, prefix, limit, verified) in sources {
        let q = Query::new(partition, SkRange::Prefix(prefix.into()), limit);
        let page = ctx.store.query(&q).await?;
        out.extend(page.items.iter().map(|it| delivery_view(it, verified)));
    }
    out.sort_by_key(|v| v.get("at_ms").and_then(Value::as_i64).unwrap_or(0));
    Ok(json!({"payment_id": id, "deliveries": out}))
}

fn delivery_view(it: &crate::store::Item, verified: bool) -> Value {
    let mut o: Map<String, Value> = it
        .iter()
        .map(|(k, a)| (k.clone(), attr_to_json(a)))
        .collect();
    o.remove("pk");
    if let Some(sk) = o.remove("sk") {
        o.insert("delivery_id".into(), sk);
    }
    o.insert("verified".into(), Value::Bool(verified));
    render_amount(&mut o);
    Value::Object(o)
}

/// Stored minor units → the API's decimal string.
fn render_amount(o: &mut Map<String, Value>) {
    let currency = o
        .get("currency")
        .and_then(Value::as_str)
        .and_then(|c| Currency::parse(c).ok());
    if let (Some(c), Some(minor)) = (currency, o.get("amount").and_then(Value::as_i64)) {
        o.insert(
            "amount".into(),
            Value::String(crate::money::format_minor(minor, c)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Value {
        json!({"amount":"50.00","currency":"EUR","method":"card","return_url":"https://shop.example/return",
               "player_id":"player-1","meta":{"country":"FI","device":"ios"}})
    }

    #[test]
    fn parses_the_seed_body() {
        let r = InitRequest::parse(&body()).unwrap();
        assert_eq!(r.amount.minor(), 5000);
        assert_eq!(r.country.as_deref(), Some("FI"));
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
            match InitRequest::parse(&b) {
                Err(Error::Validation { field, .. }) => assert_eq!(field, named),
                other => panic!("{named}: {other:?}"),
            }
        }
        let mut b = body();
        b["amount_micros"] = json!(50_000_000);
        assert!(InitRequest::parse(&b).is_err(), "both amount forms");
        b.as_object_mut().unwrap().remove("amount");
        assert_eq!(InitRequest::parse(&b).unwrap().amount.minor(), 5000);
    }
}
