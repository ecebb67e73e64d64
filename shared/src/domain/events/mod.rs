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

mod batch;
mod dedupe;
mod log;

pub use batch::{intake_batch, BatchIntake};

// The capability's files share their helpers through this module.
use dedupe::*;
use log::*;

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
    /// Genuine, but nothing payloop applies by itself (kept for an operator).
    Unhandled,
    /// Genuine: the PSP announces a settlement report.
    ReportAvailable,
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
            Outcome::Unhandled => "unhandled",
            Outcome::ReportAvailable => "report_available",
        }
    }
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
    let got = intake_one(ctx, d).await;
    let verdict = match &got {
        Ok(i) => Some(i.outcome),
        Err(e) => refusal(e),
    };
    if let Some(o) = verdict {
        crate::domain::observe::webhook(ctx, d.psp.as_str(), o.as_str());
    }
    got
}

/// The outcome a refused delivery is counted under (`None`: not the
/// delivery's fault, e.g. the store was down; the PSP retries).
fn refusal(e: &Error) -> Option<Outcome> {
    match e {
        Error::BadSignature | Error::NotFound { .. } => Some(Outcome::BadSignature),
        Error::StaleEvent => Some(Outcome::Stale),
        Error::UnknownPayment => Some(Outcome::UnknownPayment),
        Error::Validation { .. } => Some(Outcome::Invalid),
        _ => None,
    }
}

async fn intake_one(ctx: &Ctx, d: &Delivery<'_>) -> Result<Intake, Error> {
    let inbound = match verified_event(ctx, d) {
        Ok(inbound) => inbound,
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
    take_verified(ctx, inbound).await
}

/// Take one verified event: match it to its record, dedupe, enqueue.
async fn take_verified(ctx: &Ctx, inbound: Inbound) -> Result<Intake, Error> {
    let ev = match inbound {
        Inbound::Payment(ev) => ev,
        Inbound::Payout(ev) => return payout_intake(ctx, ev).await,
        Inbound::Refund(ev) => return refund_intake(ctx, ev).await,
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
    accept(ctx, ev, &payment).await
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
