//! Adyen's standard notifications: one POST carries a batch of items, each
//! signed on its own (HMAC-SHA256 over eight of its fields joined with `:`,
//! with the hex-decoded key, base64 in `additionalData.hmacSignature`), and
//! each normalised here into one of payloop's inbound events.
//!
//! | eventCode                         | success | becomes                         |
//! |-----------------------------------|---------|---------------------------------|
//! | AUTHORISATION                     | true    | payment `captured` (the merchant account captures immediately) |
//! | AUTHORISATION                     | false   | payment `failed`                |
//! | CAPTURE                           | true    | payment `captured`              |
//! | CANCELLATION, TECHNICAL_CANCEL    | true    | payment `canceled`              |
//! | CHARGEBACK                        | true    | payment `charged_back`          |
//! | REFUND                            | true    | refund `succeeded`              |
//! | REFUND (false), REFUND_FAILED     |         | refund `failed`                 |
//! | PAYOUT_THIRDPARTY                 | true    | payout `succeeded`              |
//! | PAYOUT_THIRDPARTY (false), PAYOUT_DECLINE, PAYOUT_EXPIRE | | payout `failed` |
//! | REPORT_AVAILABLE                  |         | a settlement report to fetch (`reason` is its URL) |
//! | CHARGEBACK_REVERSED, SECOND_CHARGEBACK, CAPTURE_FAILED, REFUNDED_REVERSED | | an adjustment: a case for an operator, never applied |
//! | anything else                     |         | logged, never applied           |
//!
//! `merchantReference` names our record: the payment id, the payout id, or
//! for a refund `<payment id>.<refund id>` (the reference the connector sends
//! with the refund). The event id is `<eventCode>:<pspReference>:<success>`,
//! the same on every retry of the item.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::clock::parse_rfc3339_ms;
use crate::error::Error;
use crate::ids::{EventId, PaymentId, PspId};
use crate::money::Currency;
use crate::psp::event::{AdjustmentEvent, OperationOutcome, PayoutEvent, PspEvent, RefundEvent};
use crate::schema::status::PaymentStatus;
use crate::secret::Secret;

/// The most items one notification may carry (Adyen sends up to a few).
pub const MAX_ITEMS: usize = 100;

/// The body of a standard notification.
#[derive(Debug, Clone, Deserialize)]
pub struct Notification {
    pub live: String,
    #[serde(rename = "notificationItems")]
    pub items: Vec<ItemWrapper>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ItemWrapper {
    #[serde(rename = "NotificationRequestItem")]
    pub item: Item,
}

/// One notification item, as Adyen sends it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub psp_reference: String,
    #[serde(default)]
    pub original_reference: Option<String>,
    #[serde(default)]
    pub merchant_reference: Option<String>,
    pub merchant_account_code: String,
    #[serde(default)]
    pub event_date: Option<String>,
    pub event_code: String,
    pub amount: ItemAmount,
    pub success: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub additional_data: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ItemAmount {
    pub value: i64,
    pub currency: String,
}

impl Notification {
    pub fn parse(raw: &[u8]) -> Result<Notification, Error> {
        let n: Notification = serde_json::from_slice(raw)
            .map_err(|e| Error::validation("notificationItems", e.to_string()))?;
        if n.items.is_empty() || n.items.len() > MAX_ITEMS {
            return Err(Error::validation(
                "notificationItems",
                format!("must hold 1 to {MAX_ITEMS} items"),
            ));
        }
        Ok(n)
    }
}

impl Item {
    /// The string Adyen signs: eight fields joined with `:`, absent ones
    /// empty, nothing escaped.
    pub fn signing_string(&self) -> String {
        [
            self.psp_reference.as_str(),
            self.original_reference.as_deref().unwrap_or(""),
            self.merchant_account_code.as_str(),
            self.merchant_reference.as_deref().unwrap_or(""),
            &self.amount.value.to_string(),
            self.amount.currency.as_str(),
            self.event_code.as_str(),
            self.success.as_str(),
        ]
        .join(":")
    }

    fn signature(&self) -> Option<&str> {
        self.additional_data.get("hmacSignature")?.as_str()
    }

    /// Is the item signed with one of `hex_keys` (rotation: old and new)?
    pub fn verify(&self, hex_keys: &[Secret]) -> bool {
        self.signature()
            .is_some_and(|sig| signed_with(hex_keys, self.signing_string().as_bytes(), sig))
    }

    fn succeeded(&self) -> bool {
        self.success == "true"
    }

    fn event_id(&self) -> Result<EventId, Error> {
        EventId::parse(&format!(
            "{}:{}:{}",
            self.event_code, self.psp_reference, self.success
        ))
        .map_err(|e| Error::validation("pspReference", e.to_string()))
    }

    fn occurred_ms(&self) -> Result<i64, Error> {
        self.event_date
            .as_deref()
            .and_then(parse_rfc3339_ms)
            .ok_or_else(|| Error::validation("eventDate", "must be an ISO 8601 date-time"))
    }

    fn currency(&self) -> Result<Currency, Error> {
        Currency::parse(&self.amount.currency)
            .map_err(|e| Error::validation("amount.currency", e.to_string()))
    }

    fn reference(&self) -> Result<&str, Error> {
        self.merchant_reference
            .as_deref()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| Error::validation("merchantReference", "is required"))
    }
}

/// Adyen's HMAC rule, for notification items and webhook bodies alike: is
/// `signature` (base64) the HMAC-SHA256 of `message` under one of the
/// hex-decoded keys? Compared in constant time.
pub fn signed_with(hex_keys: &[Secret], message: &[u8], signature: &str) -> bool {
    let Ok(sig) = B64.decode(signature.trim()) else {
        return false;
    };
    hex_keys.iter().any(|k| {
        hex::decode(k.expose())
            .ok()
            .and_then(|key| Hmac::<Sha256>::new_from_slice(&key).ok())
            .is_some_and(|mut mac| {
                mac.update(message);
                mac.verify_slice(&sig).is_ok()
            })
    })
}

/// What one item means for payloop.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemEvent {
    Payment(PspEvent),
    Refund(RefundEvent),
    Payout(PayoutEvent),
    /// A PSP-side change for an operator.
    Adjustment(AdjustmentEvent),
    /// A settlement report is ready at this URL.
    ReportAvailable {
        url: String,
    },
    /// Nothing payloop applies by itself: kept for an operator.
    Unhandled {
        event_code: String,
    },
}

/// Normalise one (verified) item.
pub fn normalise(psp: &PspId, item: &Item) -> Result<ItemEvent, Error> {
    let ok = item.succeeded();
    let payment = |status| payment_event(psp, item, status);
    match (item.event_code.as_str(), ok) {
        ("AUTHORISATION", true) | ("CAPTURE", true) => payment(PaymentStatus::Captured),
        ("AUTHORISATION", false) => payment(PaymentStatus::Failed),
        ("CANCELLATION" | "TECHNICAL_CANCEL", true) => payment(PaymentStatus::Canceled),
        ("CHARGEBACK", true) => payment(PaymentStatus::ChargedBack),
        ("REFUND", true) => refund_event(psp, item, OperationOutcome::Succeeded),
        ("REFUND", false) | ("REFUND_FAILED", _) => {
            refund_event(psp, item, OperationOutcome::Failed)
        }
        ("PAYOUT_THIRDPARTY", true) => payout_event(psp, item, OperationOutcome::Succeeded),
        ("PAYOUT_THIRDPARTY", false) | ("PAYOUT_DECLINE" | "PAYOUT_EXPIRE", _) => {
            payout_event(psp, item, OperationOutcome::Failed)
        }
        ("CHARGEBACK_REVERSED", _) => adjustment(psp, item, "chargeback_reversed"),
        ("SECOND_CHARGEBACK", _) => adjustment(psp, item, "second_chargeback"),
        ("CAPTURE_FAILED", _) => adjustment(psp, item, "capture_failed"),
        ("REFUNDED_REVERSED", _) => adjustment(psp, item, "refunded_reversed"),
        ("REPORT_AVAILABLE", _) => Ok(ItemEvent::ReportAvailable {
            url: item.reason.clone().unwrap_or_default(),
        }),
        (code, _) => Ok(ItemEvent::Unhandled {
            event_code: code.to_owned(),
        }),
    }
}

fn payment_event(psp: &PspId, item: &Item, status: PaymentStatus) -> Result<ItemEvent, Error> {
    let payment_id = PaymentId::parse(item.reference()?)
        .map_err(|e| Error::validation("merchantReference", e.to_string()))?;
    Ok(ItemEvent::Payment(PspEvent {
        psp: psp.clone(),
        event_id: item.event_id()?,
        payment_id,
        status,
        amount_minor: item.amount.value,
        currency: item.currency()?,
        occurred_ms: item.occurred_ms()?,
        // A CAPTURE's own reference is the capture's; the payment's is the original.
        psp_reference: Some(
            item.original_reference
                .clone()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| item.psp_reference.clone()),
        ),
        // A refused AUTHORISATION's reason is Adyen's refusal reason; those
        // of 3-D Secure start with "3D" ("3D Not Authenticated", ...).
        three_ds_failed: status == PaymentStatus::Failed
            && item.reason.as_deref().is_some_and(|r| r.starts_with("3D")),
    }))
}

fn adjustment(psp: &PspId, item: &Item, what: &'static str) -> Result<ItemEvent, Error> {
    // A reversed refund names the refund (`<payment id>.<refund id>`).
    let reference = item.reference()?;
    let payment = reference.split('.').next().unwrap_or(reference);
    Ok(ItemEvent::Adjustment(AdjustmentEvent {
        psp: psp.clone(),
        event_id: item.event_id()?,
        payment_id: PaymentId::parse(payment)
            .map_err(|e| Error::validation("merchantReference", e.to_string()))?,
        what,
        amount_minor: item.amount.value,
        currency: item.currency()?,
    }))
}

/// The reference the connector gives a refund: payment and refund ids.
pub fn refund_reference(payment: &PaymentId, refund_id: &str) -> String {
    format!("{payment}.{refund_id}")
}

fn refund_event(psp: &PspId, item: &Item, status: OperationOutcome) -> Result<ItemEvent, Error> {
    let bad = || {
        Error::validation(
            "merchantReference",
            "must be <payment id>.<refund id> for a refund",
        )
    };
    let (payment, refund_id) = item.reference()?.split_once('.').ok_or_else(bad)?;
    Ok(ItemEvent::Refund(RefundEvent {
        psp: psp.clone(),
        event_id: item.event_id()?,
        refund_id: refund_id.to_owned(),
        payment_id: PaymentId::parse(payment).map_err(|_| bad())?,
        status,
        amount_minor: item.amount.value,
        currency: item.currency()?,
        occurred_ms: item.occurred_ms()?,
        psp_reference: Some(item.psp_reference.clone()),
    }))
}

fn payout_event(psp: &PspId, item: &Item, status: OperationOutcome) -> Result<ItemEvent, Error> {
    Ok(ItemEvent::Payout(PayoutEvent {
        psp: psp.clone(),
        event_id: item.event_id()?,
        payout_id: item.reference()?.to_owned(),
        status,
        amount_minor: item.amount.value,
        currency: item.currency()?,
        reason: None,
        occurred_ms: item.occurred_ms()?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(mut item: Item, hex_key: &str) -> Item {
        let key = hex::decode(hex_key).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(item.signing_string().as_bytes());
        let sig = B64.encode(mac.finalize().into_bytes());
        item.additional_data
            .insert("hmacSignature".into(), serde_json::Value::String(sig));
        item
    }

    fn item(code: &str, success: &str, reference: &str) -> Item {
        Item {
            psp_reference: "7914073381342284".into(),
            merchant_reference: Some(reference.into()),
            merchant_account_code: "TestMerchant".into(),
            event_date: Some("2026-11-20T10:00:00+01:00".into()),
            event_code: code.into(),
            amount: ItemAmount {
                value: 1130,
                currency: "EUR".into(),
            },
            success: success.into(),
            ..Item::default()
        }
    }

    /// Adyen's published vector (adyen-python-api-library `test/UtilTest.py`).
    #[test]
    fn the_published_vectors_verify() {
        let key = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";
        let mut it = item("AUTHORISATION", "true", "TestPayment-1407325143704");
        assert_eq!(
            it.signing_string(),
            "7914073381342284::TestMerchant:TestPayment-1407325143704:1130:EUR:AUTHORISATION:true"
        );
        it.additional_data.insert(
            "hmacSignature".into(),
            "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0=".into(),
        );
        assert!(it.verify(&[Secret::new(key)]));
        // adyen-node-api-library `hmacValidator.spec.ts`.
        let key2 = "DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00";
        let it2 = Item {
            psp_reference: "pspReference".into(),
            original_reference: Some("originalReference".into()),
            merchant_account_code: "merchantAccount".into(),
            merchant_reference: Some("reference".into()),
            amount: ItemAmount {
                value: 1000,
                currency: "EUR".into(),
            },
            event_code: "REPORT_AVAILABLE".into(),
            success: "true".into(),
            additional_data: [(
                "hmacSignature".to_owned(),
                serde_json::Value::from("ZNBPtI+oDyyRrLyD1XirkKnQgIAlFc07Vj27TeHsDRE="),
            )]
            .into_iter()
            .collect(),
            ..Item::default()
        };
        assert!(it2.verify(&[Secret::new(key2)]));
    }

    #[test]
    fn a_changed_field_or_another_key_fails() {
        let key = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";
        let good = signed(item("AUTHORISATION", "true", "pay_1"), key);
        assert!(good.verify(&[Secret::new(key)]));
        let mut more = good.clone();
        more.amount.value += 1;
        assert!(!more.verify(&[Secret::new(key)]));
        let mut flipped = good.clone();
        flipped.success = "false".into();
        assert!(!flipped.verify(&[Secret::new(key)]));
        let other = "00".repeat(32);
        assert!(!good.verify(&[Secret::new(other.as_str())]));
        // Rotation: either key verifies.
        assert!(good.verify(&[Secret::new(other.as_str()), Secret::new(key)]));
        let mut unsigned = good;
        unsigned.additional_data.clear();
        assert!(!unsigned.verify(&[Secret::new(key)]));
    }

    #[test]
    fn items_become_payloop_events() {
        let psp = PspId::parse("adyen").unwrap();
        let pay = "pay_01JD0000000000000000000000";
        match normalise(&psp, &item("AUTHORISATION", "true", pay)).unwrap() {
            ItemEvent::Payment(ev) => {
                assert_eq!(
                    (ev.status, ev.amount_minor, ev.payment_id.as_str()),
                    (PaymentStatus::Captured, 1130, pay)
                );
                assert_eq!(ev.event_id.as_str(), "AUTHORISATION:7914073381342284:true");
                assert_eq!(ev.occurred_ms, 1_795_165_200_000);
            }
            other => panic!("{other:?}"),
        }
        let refused = normalise(&psp, &item("AUTHORISATION", "false", pay)).unwrap();
        assert!(matches!(refused, ItemEvent::Payment(ev) if ev.status == PaymentStatus::Failed));
        let reference = format!("{pay}.rf_01JD0000000000000000000001");
        match normalise(&psp, &item("REFUND", "true", &reference)).unwrap() {
            ItemEvent::Refund(ev) => assert_eq!(
                (ev.status, ev.refund_id.as_str(), ev.payment_id.as_str()),
                (
                    OperationOutcome::Succeeded,
                    "rf_01JD0000000000000000000001",
                    pay
                )
            ),
            other => panic!("{other:?}"),
        }
        let failed = normalise(&psp, &item("REFUND_FAILED", "true", &reference)).unwrap();
        assert!(matches!(failed, ItemEvent::Refund(ev) if ev.status == OperationOutcome::Failed));
        let payout = normalise(&psp, &item("PAYOUT_DECLINE", "true", "po_1")).unwrap();
        assert!(matches!(payout, ItemEvent::Payout(ev) if ev.status == OperationOutcome::Failed));
        let held = normalise(&psp, &item("CHARGEBACK_REVERSED", "true", pay)).unwrap();
        assert!(
            matches!(&held, ItemEvent::Adjustment(a) if a.what == "chargeback_reversed" && a.payment_id.as_str() == pay),
            "{held:?}"
        );
        let other = normalise(&psp, &item("AUTHORISATION_ADJUSTMENT", "true", pay)).unwrap();
        assert_eq!(
            other,
            ItemEvent::Unhandled {
                event_code: "AUTHORISATION_ADJUSTMENT".into()
            }
        );
    }

    #[test]
    fn bad_items_name_their_field() {
        let psp = PspId::parse("adyen").unwrap();
        let named = |it: Item| match normalise(&psp, &it) {
            Err(Error::Validation { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            named(item("AUTHORISATION", "true", "")),
            "merchantReference"
        );
        assert_eq!(named(item("REFUND", "true", "pay_1")), "merchantReference");
        let mut no_date = item("CAPTURE", "true", "pay_01JD0000000000000000000000");
        no_date.event_date = None;
        assert_eq!(named(no_date), "eventDate");
        let mut bad_currency = item("CAPTURE", "true", "pay_01JD0000000000000000000000");
        bad_currency.amount.currency = "EURO".into();
        assert_eq!(named(bad_currency), "amount.currency");
        assert!(Notification::parse(br#"{"live":"false","notificationItems":[]}"#).is_err());
        assert!(Notification::parse(b"{").is_err());
    }
}
