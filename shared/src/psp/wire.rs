//! The sandbox PSPs' wire format: API bodies, webhook body, settlement CSV.
//! Both sides use these types: the sandbox servers (`payloop sandbox`) and
//! the [`super::http_connector::HttpPsp`] connector, so they cannot drift.
//! Amounts travel as decimal strings in the currency's precision.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::{EventId, PaymentId, PspId};
use crate::money::{format_minor, Currency, Money};
use crate::psp::event::{Inbound, OperationOutcome, PayoutEvent, PspEvent, RefundEvent};
use crate::schema::status::PaymentStatus;

/// The settlement report's header line, in this order.
pub const SETTLEMENT_HEADER: &str = "reference,payment_id,type,gross,fee,net,currency,settled_date";

/// Line types of a settlement report.
pub const SETTLEMENT_TYPES: [&str; 5] = ["payment", "refund", "chargeback", "fee", "payout"];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionBody {
    pub payment_id: String,
    pub amount: String,
    pub currency: String,
    pub method: String,
    pub return_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionReply {
    pub reference: String,
    pub redirect_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutBody {
    pub payout_id: String,
    pub amount: String,
    pub currency: String,
    pub destination_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    pub refund_id: String,
    pub payment_reference: String,
    pub amount: String,
    pub currency: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperationReply {
    pub reference: String,
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReply {
    pub reference: String,
    pub payment_id: String,
    pub status: String,
    pub amount: String,
    pub currency: String,
}

/// The error body the sandbox answers with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorReply {
    pub error: String,
    pub message: String,
}

/// A payment webhook's body (every signature scheme carries this JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookBody {
    pub event_id: String,
    pub payment_id: String,
    /// The PSP's reference (optional for the seed PSP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub status: String,
    pub amount: String,
    pub currency: String,
    /// When it happened: Unix epoch seconds (a number) or an RFC 3339
    /// string. Required by the seed scheme, whose signature covers no header
    /// timestamp; optional where the scheme signs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<serde_json::Value>,
    /// Why a payment failed, when the PSP says: `3ds_failed` is the one
    /// reason payloop reads (a 3-D Secure failure, counted in the metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A payout webhook's body (`"type": "payout"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayoutWebhookBody {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub payout_id: String,
    pub reference: Option<String>,
    pub status: String,
    pub amount: String,
    pub currency: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub timestamp: Option<serde_json::Value>,
}

/// The event time of a webhook body: its `timestamp` (Unix seconds, or an
/// RFC 3339 string), else the time the scheme signed.
fn event_time_ms(
    body_ts: Option<&serde_json::Value>,
    signed_at_s: Option<i64>,
) -> Result<i64, Error> {
    const WHAT: &str = "must be Unix seconds or an RFC 3339 date-time";
    let seconds = match body_ts {
        None | Some(serde_json::Value::Null) => signed_at_s,
        Some(serde_json::Value::Number(n)) => Some(
            n.as_i64()
                .ok_or_else(|| Error::validation("timestamp", WHAT))?,
        ),
        Some(serde_json::Value::String(s)) => {
            return crate::clock::parse_rfc3339_ms(s)
                .filter(|ms| *ms >= 0)
                .ok_or_else(|| Error::validation("timestamp", WHAT))
        }
        Some(_) => return Err(Error::validation("timestamp", WHAT)),
    };
    seconds
        .ok_or_else(|| Error::validation("timestamp", "is required"))?
        .checked_mul(1000)
        .filter(|ms| *ms >= 0)
        .ok_or_else(|| Error::validation("timestamp", "out of range"))
}

/// Normalise a verified webhook body (payment or payout) into our event.
pub fn parse_inbound(psp: &PspId, raw: &[u8], signed_at_s: Option<i64>) -> Result<Inbound, Error> {
    let kind = serde_json::from_slice::<serde_json::Value>(raw)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned));
    match kind.as_deref() {
        // A chargeback is a payment moving to `charged_back`.
        None | Some("payment") | Some("chargeback") => {
            parse_webhook(psp, raw, signed_at_s).map(Inbound::Payment)
        }
        Some("refund") => parse_refund_webhook(psp, raw, signed_at_s).map(Inbound::Refund),
        Some("payout") => parse_payout_webhook(psp, raw, signed_at_s).map(Inbound::Payout),
        Some(other) => Err(Error::validation(
            "type",
            format!("{other} webhooks are not handled yet"),
        )),
    }
}

/// The fields every payout/refund outcome carries, checked once.
struct Operation {
    event_id: EventId,
    amount: Money,
    outcome: OperationOutcome,
}

impl Operation {
    fn check(
        event_id: &str,
        amount: &str,
        currency: &str,
        status: &str,
    ) -> Result<Operation, Error> {
        let currency =
            Currency::parse(currency).map_err(|e| Error::validation("currency", e.to_string()))?;
        let amount = Money::parse_decimal(amount, currency)
            .map_err(|e| Error::validation("amount", e.to_string()))?;
        let outcome = OperationOutcome::parse(status)
            .ok_or_else(|| Error::validation("status", "must be succeeded or failed"))?;
        Ok(Operation {
            outcome,
            event_id: EventId::parse(event_id)
                .map_err(|e| Error::validation("event_id", e.to_string()))?,
            amount,
        })
    }
}

fn bounded_id(field: &str, id: &str) -> Result<(), Error> {
    if id.is_empty() || id.len() > 64 {
        return Err(Error::validation(field, "must be 1-64 characters"));
    }
    Ok(())
}

/// A refund webhook's body (`"type": "refund"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundWebhookBody {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub refund_id: String,
    pub payment_id: String,
    pub reference: Option<String>,
    pub payment_reference: Option<String>,
    pub status: String,
    pub amount: String,
    pub currency: String,
    #[serde(default)]
    pub timestamp: Option<serde_json::Value>,
}

fn parse_refund_webhook(
    psp: &PspId,
    raw: &[u8],
    signed_at_s: Option<i64>,
) -> Result<RefundEvent, Error> {
    let body: RefundWebhookBody =
        serde_json::from_slice(raw).map_err(|e| Error::validation("body", e.to_string()))?;
    let o = Operation::check(&body.event_id, &body.amount, &body.currency, &body.status)?;
    bounded_id("refund_id", &body.refund_id)?;
    Ok(RefundEvent {
        psp: psp.clone(),
        event_id: o.event_id,
        refund_id: body.refund_id,
        payment_id: PaymentId::parse(&body.payment_id)
            .map_err(|e| Error::validation("payment_id", e.to_string()))?,
        status: o.outcome,
        amount_minor: o.amount.minor(),
        currency: o.amount.currency(),
        occurred_ms: event_time_ms(body.timestamp.as_ref(), signed_at_s)?,
        psp_reference: body.reference.filter(|r| !r.is_empty() && r.len() <= 128),
    })
}

fn parse_payout_webhook(
    psp: &PspId,
    raw: &[u8],
    signed_at_s: Option<i64>,
) -> Result<PayoutEvent, Error> {
    let body: PayoutWebhookBody =
        serde_json::from_slice(raw).map_err(|e| Error::validation("body", e.to_string()))?;
    let o = Operation::check(&body.event_id, &body.amount, &body.currency, &body.status)?;
    bounded_id("payout_id", &body.payout_id)?;
    Ok(PayoutEvent {
        psp: psp.clone(),
        event_id: o.event_id,
        payout_id: body.payout_id,
        status: o.outcome,
        amount_minor: o.amount.minor(),
        currency: o.amount.currency(),
        reason: body.reason.map(|r| r.chars().take(200).collect()),
        occurred_ms: event_time_ms(body.timestamp.as_ref(), signed_at_s)?,
    })
}

/// The webhook `reason` of a payment that failed 3-D Secure.
pub const THREE_DS_FAILED: &str = "3ds_failed";

/// Normalise a verified payment webhook body into our event; errors name the field.
pub fn parse_webhook(psp: &PspId, raw: &[u8], signed_at_s: Option<i64>) -> Result<PspEvent, Error> {
    let body: WebhookBody =
        serde_json::from_slice(raw).map_err(|e| Error::validation("body", e.to_string()))?;
    let currency = Currency::parse(&body.currency)
        .map_err(|e| Error::validation("currency", e.to_string()))?;
    let amount = Money::parse_decimal(&body.amount, currency)
        .map_err(|e| Error::validation("amount", e.to_string()))?;
    let ts_ms = event_time_ms(body.timestamp.as_ref(), signed_at_s)?;
    Ok(PspEvent {
        psp: psp.clone(),
        event_id: EventId::parse(&body.event_id)
            .map_err(|e| Error::validation("event_id", e.to_string()))?,
        payment_id: PaymentId::parse(&body.payment_id)
            .map_err(|e| Error::validation("payment_id", e.to_string()))?,
        status: PaymentStatus::parse(&body.status)
            .ok_or_else(|| Error::validation("status", "unknown status"))?,
        amount_minor: amount.minor(),
        currency,
        occurred_ms: ts_ms,
        psp_reference: None,
        three_ds_failed: body.reason.as_deref() == Some(THREE_DS_FAILED),
    })
}

/// One settlement line as the sandbox writes it (and recon reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementLine {
    pub reference: String,
    pub payment_id: String,
    pub kind: &'static str,
    /// Minor units; refunds and chargebacks are negative.
    pub gross_minor: i64,
    pub fee_minor: i64,
    pub currency: Currency,
    pub settled_date: String,
}

impl SettlementLine {
    /// The CSV line (no newline). Net = gross − fee, checked.
    pub fn to_csv(&self) -> Option<String> {
        let net = self.gross_minor.checked_sub(self.fee_minor)?;
        let fmt = |minor: i64| format_minor(minor, self.currency);
        Some(format!(
            "{},{},{},{},{},{},{},{}",
            self.reference,
            self.payment_id,
            self.kind,
            fmt(self.gross_minor),
            fmt(self.fee_minor),
            fmt(net),
            self.currency.code(),
            self.settled_date
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settlement_lines_are_written_in_the_currency_precision() {
        let line = SettlementLine {
            reference: "sbx_1".into(),
            payment_id: "pay_1".into(),
            kind: "refund",
            gross_minor: -1050,
            fee_minor: 0,
            currency: Currency::parse("EUR").unwrap(),
            settled_date: "2026-11-21".into(),
        };
        assert_eq!(
            line.to_csv().unwrap(),
            "sbx_1,pay_1,refund,-10.50,0.00,-10.50,EUR,2026-11-21"
        );
        let jpy = SettlementLine {
            gross_minor: 1000,
            fee_minor: 25,
            kind: "payment",
            currency: Currency::parse("JPY").unwrap(),
            ..line
        };
        assert_eq!(
            jpy.to_csv().unwrap(),
            "sbx_1,pay_1,payment,1000,25,975,JPY,2026-11-21"
        );
    }

    #[test]
    fn webhook_bodies_name_the_bad_field() {
        let psp = PspId::parse("sandbox").unwrap();
        let ok = br#"{"event_id":"e1","payment_id":"pay_01JD0000000000000000000000","status":"captured","amount":"1.00","currency":"EUR","timestamp":1}"#;
        let ev = parse_webhook(&psp, ok, None).unwrap();
        assert_eq!((ev.amount_minor, ev.occurred_ms), (100, 1000));
        let bad_amount = br#"{"event_id":"e1","payment_id":"pay_01JD0000000000000000000000","status":"captured","amount":"1.001","currency":"EUR","timestamp":1}"#;
        assert!(
            matches!(parse_webhook(&psp, bad_amount, None), Err(Error::Validation { field, .. }) if field == "amount")
        );
        let no_ts = br#"{"event_id":"e1","payment_id":"pay_01JD0000000000000000000000","status":"captured","amount":"1.00","currency":"EUR"}"#;
        assert!(
            matches!(parse_webhook(&psp, no_ts, None), Err(Error::Validation { field, .. }) if field == "timestamp")
        );
        assert_eq!(
            parse_webhook(&psp, no_ts, Some(7)).unwrap().occurred_ms,
            7000
        );
    }

    #[test]
    fn webhook_timestamps_are_unix_seconds_or_rfc3339() {
        let psp = PspId::parse("sandbox").unwrap();
        let with = |ts: &str| {
            format!(
                r#"{{"event_id":"e1","payment_id":"pay_01JD0000000000000000000000","status":"captured","amount":"1.00","currency":"EUR","timestamp":{ts}}}"#
            )
        };
        // The seed's own example.
        let seed = parse_webhook(&psp, with(r#""2025-10-17T09:41:00Z""#).as_bytes(), None);
        assert_eq!(seed.unwrap().occurred_ms, 1_760_694_060_000);
        let secs = parse_webhook(&psp, with("1760694060").as_bytes(), None);
        assert_eq!(secs.unwrap().occurred_ms, 1_760_694_060_000);
        for bad in [r#""yesterday""#, "1.5", "-5", "true", r#""2025-10-17""#] {
            let r = parse_webhook(&psp, with(bad).as_bytes(), None);
            assert!(
                matches!(&r, Err(Error::Validation { field, .. }) if field == "timestamp"),
                "{bad}: {r:?}"
            );
        }
        let payout = br#"{"event_id":"e2","type":"payout","payout_id":"po_1","status":"succeeded","amount":"1.00","currency":"EUR","timestamp":"2025-10-17T09:41:00+00:00"}"#;
        match parse_inbound(&psp, payout, None).unwrap() {
            Inbound::Payout(p) => assert_eq!(p.occurred_ms, 1_760_694_060_000),
            other => panic!("{other:?}"),
        }
    }
}
