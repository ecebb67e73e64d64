//! Deposit intents: parse the init request, route it and open the PSP
//! session, store the intent, answer with the redirect.

use crate::error::Error;
use serde::Serialize;

use crate::ids::{PaymentId, PlayerId, PspId};
use crate::money::{Currency, Money};
use crate::store::{Attr, Cond, ItemExt, StoreError, Write};

use crate::domain::deposits::payment::{Payment, PaymentStatus, METHODS};
use crate::domain::deposits::route::route_and_open;
use crate::domain::request::Body;
use crate::domain::Ctx;
use crate::schema::keys;

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
}

/// `meta` fields the init request understands.
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
    if let Some(unknown) = meta.keys().find(|k| !META_FIELDS.contains(k)) {
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
        })
    }
}

/// Route the intent, open the PSP session (cascading to the next candidate
/// when a PSP is unavailable), store the intent (one conditional put) under
/// the id the idempotency engine reserved, and return the 201 body. If that
/// id already holds an intent, an earlier attempt of this same request
/// committed it (then crashed or timed out): answer from it instead.
pub async fn create_intent(
    ctx: &Ctx,
    req: InitRequest,
    id: PaymentId,
) -> Result<IntentView, Error> {
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
fn from_earlier_attempt(old: &crate::store::Item, req: &InitRequest) -> Result<IntentView, Error> {
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

/// The 201 answer to `POST /v1/payments/init`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentView {
    pub payment_id: PaymentId,
    pub status: PaymentStatus,
    pub redirect_url: String,
    pub psp: PspId,
    pub amount: String,
    pub amount_micros: Option<i64>,
    pub currency: Currency,
}

fn intent_response(p: &Payment, redirect_url: &str) -> IntentView {
    IntentView {
        payment_id: p.id.clone(),
        status: p.status,
        redirect_url: redirect_url.to_owned(),
        psp: p.psp.clone(),
        amount: p.amount.to_decimal(),
        amount_micros: p.amount.micros().ok(),
        currency: p.amount.currency(),
    }
}

pub async fn load_payment(ctx: &Ctx, id: &PaymentId) -> Result<Payment, Error> {
    let found = ctx
        .store
        .get(&keys::payment(id))
        .await?
        .ok_or(Error::NotFound { what: "payment" })?;
    Payment::from_item(&found)
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
