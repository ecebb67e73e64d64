//! Webhook intake: verify, parse, check freshness, match the intent, dedupe by
//! event id, log the delivery, enqueue. Answers fast; applies nothing.

use http::HeaderMap;

use crate::error::Error;
use crate::ids::{new_ulid, EventId, PaymentId, PspId};
use crate::queue::QueueName;
use crate::store::{item, Attr, Cond, Key, StoreError, Write};

use crate::domain::cases::{self, CaseKind};
use crate::domain::deposits::payment::Payment;
use crate::domain::payouts;
use crate::domain::Ctx;
use crate::psp::event::{Inbound, PayoutEvent, PspEvent, RefundEvent};
use crate::psp::signature::{Rejection, Window};
use crate::schema::keys;

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
        Ok(Inbound::Payout(ev)) => return payout_intake(ctx, ev).await,
        Ok(Inbound::Refund(ev)) => return refund_intake(ctx, ev).await,
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
    if !payment.matches(&ev) {
        cases::open(ctx, payment.case(CaseKind::WebhookMismatch, &ev)).await?;
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
        if let Err(e) = cases::open(ctx, payment.case(CaseKind::StaleFinalEvent, ev)).await {
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

/// A payout outcome: matched against its payout (a mismatch is a case,
/// not queued), then queued once per event id.
async fn payout_intake(ctx: &Ctx, ev: PayoutEvent) -> Result<Intake, Error> {
    if !payouts::check_event(ctx, &ev).await? {
        return Ok(Intake {
            event_id: ev.event_id,
            outcome: Outcome::Mismatch,
        });
    }
    let key = keys::payout_event(&ev.payout_id, &ev.psp, &ev.event_id);
    enqueue_once(ctx, key, ev.to_message()?, &ev.event_id, ev.status.as_str()).await
}

/// A refund outcome: queued once per event id (the consumer matches it).
async fn refund_intake(ctx: &Ctx, ev: RefundEvent) -> Result<Intake, Error> {
    let key = keys::accepted_event(&ev.payment_id, &ev.psp, &ev.event_id);
    enqueue_once(ctx, key, ev.to_message()?, &ev.event_id, ev.status.as_str()).await
}

/// Enqueue an event once per event id (the id is recorded only after its
/// message is queued, as for payments).
async fn enqueue_once(
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
