//! A verified, normalised PSP event: what webhook intake puts on the queue and
//! wallet-credit applies.

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, PaymentId, PspId};
use crate::money::Currency;

use crate::schema::status::PaymentStatus;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PspEvent {
    pub psp: PspId,
    pub event_id: EventId,
    pub payment_id: PaymentId,
    pub status: PaymentStatus,
    /// Amount in the currency's minor units.
    pub amount_minor: i64,
    pub currency: Currency,
    /// When the PSP says it happened (epoch ms).
    pub occurred_ms: i64,
    /// The PSP's reference of the payment, when its events carry one (a
    /// refund is asked for under it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psp_reference: Option<String>,
    /// A failure the PSP put down to 3-D Secure authentication (metrics).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub three_ds_failed: bool,
}

impl PspEvent {
    pub fn to_message(&self) -> Result<String, crate::Error> {
        serde_json::to_string(self).map_err(|e| crate::Error::Internal(e.to_string()))
    }
    pub fn from_message(body: &str) -> Result<PspEvent, serde_json::Error> {
        serde_json::from_str(body)
    }
}

/// The final outcome of a payout or refund at the PSP, parsed once at the
/// edge: nothing else can reach the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationOutcome {
    Succeeded,
    Failed,
}

impl OperationOutcome {
    pub fn parse(s: &str) -> Option<OperationOutcome> {
        match s {
            "succeeded" => Some(OperationOutcome::Succeeded),
            "failed" => Some(OperationOutcome::Failed),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            OperationOutcome::Succeeded => "succeeded",
            OperationOutcome::Failed => "failed",
        }
    }
}

/// A verified, normalised payout outcome from a PSP (queue message too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutEvent {
    pub psp: PspId,
    pub event_id: EventId,
    pub payout_id: String,
    pub status: OperationOutcome,
    pub amount_minor: i64,
    pub currency: Currency,
    pub reason: Option<String>,
    pub occurred_ms: i64,
}

impl PayoutEvent {
    pub fn to_message(&self) -> Result<String, crate::Error> {
        serde_json::to_string(self).map_err(|e| crate::Error::Internal(e.to_string()))
    }
}

/// A verified, normalised refund outcome from a PSP (queue message too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundEvent {
    pub psp: PspId,
    pub event_id: EventId,
    pub refund_id: String,
    pub payment_id: PaymentId,
    pub status: OperationOutcome,
    pub amount_minor: i64,
    pub currency: Currency,
    pub occurred_ms: i64,
    /// The PSP's reference of the refund (what its settlement line carries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psp_reference: Option<String>,
}

impl RefundEvent {
    pub fn to_message(&self) -> Result<String, crate::Error> {
        serde_json::to_string(self).map_err(|e| crate::Error::Internal(e.to_string()))
    }
}

/// What a PSP webhook is about, once verified and normalised.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Payment(PspEvent),
    Payout(PayoutEvent),
    Refund(RefundEvent),
}

impl Inbound {
    pub fn occurred_ms(&self) -> i64 {
        match self {
            Inbound::Payment(e) => e.occurred_ms,
            Inbound::Payout(e) => e.occurred_ms,
            Inbound::Refund(e) => e.occurred_ms,
        }
    }
}

/// A change at the PSP that payloop does not apply by itself (a reversed
/// chargeback, a second chargeback, a failed capture, a reversed refund):
/// it becomes a case for an operator, never a balance change.
#[derive(Debug, Clone, PartialEq)]
pub struct AdjustmentEvent {
    pub psp: PspId,
    pub event_id: EventId,
    pub payment_id: PaymentId,
    /// What happened, e.g. `chargeback_reversed`.
    pub what: &'static str,
    pub amount_minor: i64,
    pub currency: Currency,
}

/// One item of a delivery that batches several events (Adyen), each
/// verified on its own.
#[derive(Debug)]
pub struct BatchItem {
    /// The PSP's reference of the item (for the delivery log).
    pub reference: String,
    /// The record the item names (payment, payout or refund), unverified.
    pub claimed: Option<String>,
    pub verdict: ItemVerdict,
}

/// What one item of a batch is.
#[derive(Debug)]
pub enum ItemVerdict {
    /// Verified and normalised: taken like any single delivery.
    Event(Inbound),
    /// Its signature does not verify: logged, never applied.
    BadSignature,
    /// Verified, but its fields are wrong (named in the error).
    Invalid(crate::Error),
    /// Verified: a PSP-side change for an operator to review (a case).
    Adjustment(AdjustmentEvent),
    /// Verified; nothing payloop applies by itself (kept for an operator).
    Unhandled { event_code: String },
    /// Verified: a settlement report is ready at this URL.
    ReportAvailable { url: String },
}

/// A batched delivery, read.
#[derive(Debug, Default)]
pub struct Batch {
    pub items: Vec<BatchItem>,
}

/// A queue message: a payment event or a payout event.
pub fn parse_message(body: &str) -> Result<Inbound, serde_json::Error> {
    match serde_json::from_str::<PspEvent>(body) {
        Ok(ev) => Ok(Inbound::Payment(ev)),
        Err(payment_err) => serde_json::from_str::<PayoutEvent>(body)
            .map(Inbound::Payout)
            .or_else(|_| serde_json::from_str::<RefundEvent>(body).map(Inbound::Refund))
            .map_err(|_| payment_err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payout or refund outcome is succeeded or failed, or it is no
    /// message at all: nothing else can reach the consumer and be taken for
    /// a failure (which would release a hold).
    #[test]
    fn operation_outcomes_are_typed_on_the_queue() {
        let payout = |status: &str| {
            format!(
                r#"{{"psp":"sandbox","event_id":"e1","payout_id":"po_1","status":"{status}","amount_minor":100,"currency":"EUR","reason":null,"occurred_ms":1}}"#
            )
        };
        match parse_message(&payout("failed")) {
            Ok(Inbound::Payout(p)) => assert_eq!(p.status, OperationOutcome::Failed),
            other => panic!("{other:?}"),
        }
        for bad in ["pending", "processing", "", "FAILED"] {
            assert!(parse_message(&payout(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            OperationOutcome::parse("succeeded"),
            Some(OperationOutcome::Succeeded)
        );
        assert_eq!(OperationOutcome::parse("pending"), None);
    }
}
