//! Webhook intake: verify, parse, check freshness, match the intent, dedupe by
//! event id, log the delivery, enqueue. Answers fast; applies nothing.

use http::HeaderMap;

use crate::error::Error;
use crate::ids::{new_ulid, EventId, PaymentId, PspId};
use crate::queue::QueueName;
use crate::store::{item, Attr, Cond, Key, StoreError, Write};

use super::event::{Inbound, PspEvent};
use super::keys;
use super::payment::Payment;
use super::signature::{self, Rejection, Scheme, Window};
use super::Ctx;

/// What happened to one delivery (the delivery log's `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Duplicate,
    BadSignature,
    Stale,
    UnknownPayment,
    Mismatch,
    Invalid,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::BadSignature => "bad_signature",
            Outcome::Stale => "stale",
            Outcome::UnknownPayment => "unknown_payment",
            Outcome::Mismatch => "mismatch",
            Outcome::Invalid => "invalid",
        }
    }
}

/// Sign a body the seed way (`X-Signature` value; sandbox PSP and tests).
pub fn seed_signature(secret: &str, raw: &[u8]) -> String {
    let headers = signature::sign(Scheme::Seed, secret, raw, 0, "");
    headers
        .into_iter()
        .next()
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// The payment id a delivery claims, for logging deliveries we reject.
fn claimed_payment_id(raw: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(raw).ok()?;
    PaymentId::parse(v.get("payment_id")?.as_str()?)
        .ok()
        .map(|p| p.as_str().to_owned())
}

pub struct Delivery<'a> {
    pub psp: &'a PspId,
    pub headers: &'a HeaderMap,
    pub raw: &'a [u8],
}

#[derive(Debug, Clone, PartialEq)]
pub struct Intake {
    pub event_id: EventId,
    pub outcome: Outcome,
}

/// Take one delivery. `Ok` means: acknowledge (200). `Err` carries the 4xx/5xx.
pub async fn intake(ctx: &Ctx, d: &Delivery<'_>) -> Result<Intake, Error> {
    let ev = match verified_event(ctx, d) {
        Ok(Inbound::Payment(ev)) => ev,
        Ok(Inbound::Payout(ev)) => return super::payout::intake_event(ctx, ev).await,
        Ok(Inbound::Refund(ev)) => return super::refund::intake_event(ctx, ev).await,
        Err(Rejected::Signature(e)) => {
            log_rejected(ctx, d, Outcome::BadSignature).await;
            return Err(e);
        }
        Err(Rejected::Body(e)) => {
            log_rejected(ctx, d, Outcome::Invalid).await;
            return Err(e);
        }
        Err(Rejected::Stale(inbound)) => {
            if let Inbound::Payment(ev) = *inbound {
                log_delivery(ctx, &ev, Outcome::Stale).await;
                flag_stale_final(ctx, &ev).await;
            }
            return Err(Error::StaleEvent);
        }
    };
    let Some(found) = ctx.store.get(&keys::payment(&ev.payment_id)).await? else {
        log_delivery(ctx, &ev, Outcome::UnknownPayment).await;
        return Err(Error::UnknownPayment);
    };
    let payment = Payment::from_item(&found)?;
    if !event_matches(&payment, &ev) {
        open_case(ctx, CaseKind::WebhookMismatch, &ev, &payment).await?;
        log_delivery(ctx, &ev, Outcome::Mismatch).await;
        return Ok(Intake {
            event_id: ev.event_id,
            outcome: Outcome::Mismatch,
        });
    }
    accept(ctx, ev).await
}

/// Why a delivery is refused before it is matched to a payment.
enum Rejected {
    Signature(Error),
    Body(Error),
    /// Genuine (signature verified) but outside the freshness window.
    Stale(Box<Inbound>),
}

/// Verify the PSP's signature scheme, parse the body, check freshness.
fn verified_event(ctx: &Ctx, d: &Delivery<'_>) -> Result<Inbound, Rejected> {
    let connector = ctx
        .psps
        .get(d.psp)
        .ok_or(Rejected::Signature(Error::NotFound { what: "psp" }))?;
    let window = Window {
        now_s: ctx.clock.now_s(),
        tolerance_s: ctx.config.webhook_tolerance_s,
    };
    let (signed_at, stale) = match connector.verify_webhook(d.headers, d.raw, window) {
        Ok(v) => (v.signed_at_s, false),
        Err(Rejection::Stale { signed_at_s }) => (Some(signed_at_s), true),
        Err(r @ Rejection::BadSignature) => return Err(Rejected::Signature(r.into())),
    };
    let ev = connector
        .normalise_webhook(d.raw, signed_at)
        .map_err(Rejected::Body)?;
    let tolerance_ms = ctx
        .config
        .webhook_tolerance_s
        .unsigned_abs()
        .saturating_mul(1000);
    // A signed header timestamp is the freshness of THIS attempt (PSP retries
    // re-sign it); only the seed scheme, which signs none, falls back to the
    // body's event time.
    let body_stale = signed_at.is_none() && ctx.now_ms().abs_diff(ev.occurred_ms()) > tolerance_ms;
    if stale || body_stale {
        return Err(Rejected::Stale(Box::new(ev)));
    }
    Ok(ev)
}

/// A correctly signed final status refused only for its age may mean money
/// sits at the PSP that the wallet never saw: make it a case, not silence.
async fn flag_stale_final(ctx: &Ctx, ev: &PspEvent) {
    if !ev.status.is_final() {
        return;
    }
    let found = match ctx.store.get(&keys::payment(&ev.payment_id)).await {
        Ok(Some(found)) => found,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "could not check a stale event against its payment");
            return;
        }
    };
    let Ok(payment) = Payment::from_item(&found) else {
        return;
    };
    if payment.status != ev.status {
        if let Err(e) = open_case(ctx, CaseKind::StaleFinalEvent, ev, &payment).await {
            tracing::warn!(error = %e, "could not open a case for a stale final event");
        }
    }
}

/// Enqueue first, then record the event id (one conditional put that is also
/// the delivery's log entry). An event id is recorded only once its message
/// is durably queued, so no crash, timeout or retried write can leave an
/// event marked "seen" but never queued. The price: a duplicate racing the
/// first delivery may be queued too, which the consumer makes harmless. A
/// duplicate arriving after the record exists is answered from a read,
/// without queueing.
async fn accept(ctx: &Ctx, ev: PspEvent) -> Result<Intake, Error> {
    let key = keys::accepted_event(&ev.payment_id, &ev.psp, &ev.event_id);
    if ctx.store.get(&key).await?.is_some() {
        return duplicate(ctx, ev).await;
    }
    let message = ev.to_message()?;
    if let Err(e) = ctx.queue.send(QueueName::Events, &message).await {
        tracing::error!(event_id = %ev.event_id, payment_id = %ev.payment_id, error = %e, "enqueue failed");
        return Err(Error::Unavailable("event queue".into()));
    }
    let record = item(&key, delivery_attrs(&ev, Outcome::Accepted, ctx.now_ms()));
    match ctx
        .store
        .write(Write::Put {
            item: record,
            cond: Some(Cond::NotExists),
        })
        .await
    {
        Ok(()) => {}
        Err(StoreError::ConditionFailed { .. }) => return duplicate(ctx, ev).await,
        // Queued but not recorded: the PSP's retry is queued again, harmlessly.
        Err(e) => return Err(e.into()),
    }
    tracing::info!(event_id = %ev.event_id, payment_id = %ev.payment_id, psp = %ev.psp, status = ev.status.as_str(), outcome = "accepted", "webhook delivery");
    Ok(Intake {
        event_id: ev.event_id,
        outcome: Outcome::Accepted,
    })
}

/// Payouts' and refunds' intake: enqueue an event once per event id (the
/// id is recorded only after its message is queued, as for payments).
pub async fn enqueue_once(
    ctx: &Ctx,
    key: Key,
    message: String,
    event_id: &EventId,
    status: &str,
) -> Result<Intake, Error> {
    let answer = |outcome| Intake {
        event_id: event_id.clone(),
        outcome,
    };
    if ctx.store.get(&key).await?.is_some() {
        return Ok(answer(Outcome::Duplicate));
    }
    if let Err(e) = ctx.queue.send(QueueName::Events, &message).await {
        tracing::error!(event_id = %event_id, error = %e, "enqueue failed");
        return Err(Error::Unavailable("event queue".into()));
    }
    let record = item(
        &key,
        [
            ("outcome", Attr::from(Outcome::Accepted.as_str())),
            ("event_id", Attr::from(event_id.as_str())),
            ("status", Attr::from(status)),
            ("at_ms", Attr::N(ctx.now_ms())),
        ],
    );
    match ctx
        .store
        .write(Write::Put {
            item: record,
            cond: Some(Cond::NotExists),
        })
        .await
    {
        Ok(()) => {
            tracing::info!(event_id = %event_id, status, outcome = "accepted", "webhook delivery");
            Ok(answer(Outcome::Accepted))
        }
        Err(StoreError::ConditionFailed { .. }) => Ok(answer(Outcome::Duplicate)),
        Err(e) => Err(e.into()),
    }
}

async fn duplicate(ctx: &Ctx, ev: PspEvent) -> Result<Intake, Error> {
    log_delivery(ctx, &ev, Outcome::Duplicate).await;
    Ok(Intake {
        event_id: ev.event_id,
        outcome: Outcome::Duplicate,
    })
}

pub fn event_matches(p: &Payment, ev: &PspEvent) -> bool {
    p.id == ev.payment_id
        && p.amount.minor() == ev.amount_minor
        && p.amount.currency() == ev.currency
        && p.psp == ev.psp
}

fn delivery_attrs(ev: &PspEvent, outcome: Outcome, at_ms: i64) -> Vec<(&'static str, Attr)> {
    vec![
        ("outcome", Attr::from(outcome.as_str())),
        ("psp", Attr::from(ev.psp.as_str())),
        ("event_id", Attr::from(ev.event_id.as_str())),
        ("status", Attr::from(ev.status.as_str())),
        ("amount", Attr::N(ev.amount_minor)),
        ("currency", Attr::from(ev.currency.code())),
        ("at_ms", Attr::N(at_ms)),
    ]
}

/// Record a non-accepted delivery. Logging must not change the answer, so a
/// failure here is only reported.
async fn log_delivery(ctx: &Ctx, ev: &PspEvent, outcome: Outcome) {
    tracing::info!(event_id = %ev.event_id, payment_id = %ev.payment_id, psp = %ev.psp, outcome = outcome.as_str(), "webhook delivery");
    let key = keys::delivery(ev.payment_id.as_str(), &new_ulid("dlv"));
    let put = Write::Put {
        item: item(&key, delivery_attrs(ev, outcome, ctx.now_ms())),
        cond: None,
    };
    if let Err(e) = ctx.store.write(put).await {
        tracing::warn!(error = %e, "could not log webhook delivery");
    }
}

async fn log_rejected(ctx: &Ctx, d: &Delivery<'_>, outcome: Outcome) {
    let payment = claimed_payment_id(d.raw).unwrap_or_else(|| format!("unknown#{}", d.psp));
    tracing::info!(payment_id = %payment, psp = %d.psp, outcome = outcome.as_str(), "webhook delivery");
    let key = keys::unverified_delivery(&payment, &new_ulid("dlv"));
    let attrs = [
        ("outcome", Attr::from(outcome.as_str())),
        ("psp", Attr::from(d.psp.as_str())),
        ("at_ms", Attr::N(ctx.now_ms())),
        ("verified", Attr::B(false)),
    ];
    if let Err(e) = ctx
        .store
        .write(Write::Put {
            item: item(&key, attrs),
            cond: None,
        })
        .await
    {
        tracing::warn!(error = %e, "could not log webhook delivery");
    }
}

/// Why an event became a case instead of moving money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseKind {
    /// Amount, currency or PSP differ from the intent.
    WebhookMismatch,
    /// A signed final status refused as stale while the payment says otherwise.
    StaleFinalEvent,
    /// A final status contradicting the payment's final status (e.g.
    /// `captured` after `failed`): money may sit at the PSP, not in the wallet.
    ConflictingFinalStatus,
    /// The player's bank took a captured payment back: the wallet was
    /// debited (maybe below zero); an operator follows up.
    Chargeback,
}

impl CaseKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            CaseKind::WebhookMismatch => "webhook_mismatch",
            CaseKind::ConflictingFinalStatus => "conflicting_final_status",
            CaseKind::StaleFinalEvent => "stale_final_event",
            CaseKind::Chargeback => "chargeback",
        }
    }
}

/// An event that must not move money becomes a case, once per event, with
/// the evidence of both sides.
pub async fn open_case(ctx: &Ctx, kind: CaseKind, ev: &PspEvent, p: &Payment) -> Result<(), Error> {
    let key = keys::case(&ev.payment_id, &ev.psp, &ev.event_id);
    let attrs = [
        ("kind", Attr::from(kind.as_str())),
        ("payment_status", Attr::from(p.status.as_str())),
        ("case_status", Attr::from("open")),
        ("event_amount", Attr::N(ev.amount_minor)),
        ("event_currency", Attr::from(ev.currency.code())),
        ("event_status", Attr::from(ev.status.as_str())),
        ("event_psp", Attr::from(ev.psp.as_str())),
        ("payment_amount", Attr::N(p.amount.minor())),
        ("payment_currency", Attr::from(p.amount.currency().code())),
        ("payment_psp", Attr::from(p.psp.as_str())),
        ("opened_ms", Attr::N(ctx.now_ms())),
    ];
    match ctx
        .store
        .write(Write::Put {
            item: item(&key, attrs),
            cond: Some(Cond::NotExists),
        })
        .await
    {
        Ok(()) => {
            tracing::warn!(payment_id = %ev.payment_id, event_id = %ev.event_id, kind = kind.as_str(), "case opened");
            Ok(())
        }
        Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use proptest::prelude::*;

    fn seed_headers(sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(signature::SEED_HEADER, sig.parse().unwrap());
        h
    }

    fn verify_seed(secrets: &[Secret], raw: &[u8], sig: &str) -> Result<(), Error> {
        let window = Window {
            now_s: 0,
            tolerance_s: 300,
        };
        signature::verify(Scheme::Seed, secrets, &seed_headers(sig), raw, window)
            .map(|_| ())
            .map_err(Error::from)
    }

    fn secrets() -> Vec<Secret> {
        vec![
            Secret::new("old-secret-0123456789"),
            Secret::new("new-secret-0123456789"),
        ]
    }

    #[test]
    fn seed_signature_verifies_with_either_rotated_secret() {
        let body = br#"{"event_id":"e1"}"#;
        for s in ["old-secret-0123456789", "new-secret-0123456789"] {
            assert!(verify_seed(&secrets(), body, &seed_signature(s, body)).is_ok());
        }
        let wrong = seed_signature("another-secret-999999", body);
        assert_eq!(
            verify_seed(&secrets(), body, &wrong),
            Err(Error::BadSignature)
        );
        let sig = seed_signature("old-secret-0123456789", body);
        assert!(verify_seed(&secrets(), br#"{"event_id":"e2"}"#, &sig).is_err());
        assert!(verify_seed(&secrets(), body, "sha256=zz").is_err());
        assert!(verify_seed(&secrets(), body, sig.trim_start_matches("sha256=")).is_err());
        let window = Window {
            now_s: 0,
            tolerance_s: 300,
        };
        assert!(
            signature::verify(Scheme::Seed, &secrets(), &HeaderMap::new(), body, window).is_err()
        );
    }

    #[test]
    fn known_hmac_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let sig = seed_signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    proptest! {
        #[test]
        fn any_tampered_byte_fails(body in prop::collection::vec(any::<u8>(), 1..256), at in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let sig = seed_signature("old-secret-0123456789", &body);
            let mut tampered = body.clone();
            let i = at.index(tampered.len());
            tampered[i] ^= flip;
            prop_assert!(verify_seed(&secrets(), &tampered, &sig).is_err());
            prop_assert!(verify_seed(&secrets(), &body, &sig).is_ok());
        }
    }
}
