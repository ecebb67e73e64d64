//! What Adyen POSTs to `/v1/payments/webhook/{psp}`, read into a batch:
//!
//! - standard notifications (`notificationItems`): every item's HMAC is
//!   verified on its own and the item normalised (`notification`);
//! - transfer webhooks (`type: balancePlatform.transfer.*`, the Transfers
//!   API's payouts): the raw body is signed, HMAC-SHA256 with the hex key,
//!   base64 in the `HmacSignature` header; one item.
//!
//! When basic auth is configured, a delivery without the right credentials
//! is refused whole (401) before any item is read.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use http::HeaderMap;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::clock::parse_rfc3339_ms;
use crate::error::Error;
use crate::ids::{EventId, PspId};
use crate::money::Currency;
use crate::psp::adyen::connector::transfer_status;
use crate::psp::adyen::notification::{normalise, signed_with, Item, ItemEvent, Notification};
use crate::psp::event::{Batch, BatchItem, Inbound, ItemVerdict, OperationOutcome, PayoutEvent};
use crate::secret::Secret;

/// The credentials Adyen is set up to present on notifications.
#[derive(Debug, Clone)]
pub struct BasicAuth {
    pub username: String,
    pub password: Secret,
}

impl BasicAuth {
    /// Does the `Authorization` header carry these credentials? Compared
    /// in constant time.
    fn admits(&self, headers: &HeaderMap) -> bool {
        let expected = format!("{}:{}", self.username, self.password.expose());
        let presented = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| B64.decode(b.trim()).ok())
            .unwrap_or_default();
        presented.len() == expected.len() && bool::from(presented.ct_eq(expected.as_bytes()))
    }
}

/// What reading a delivery needs of the PSP's configuration.
pub struct Keys<'a> {
    pub psp: &'a PspId,
    pub hmac_keys: &'a [Secret],
    pub basic_auth: Option<&'a BasicAuth>,
    pub merchant_account: &'a str,
}

/// Read one delivery.
pub fn read(keys: &Keys<'_>, headers: &HeaderMap, raw: &[u8]) -> Result<Batch, Error> {
    if let Some(auth) = keys.basic_auth {
        if !auth.admits(headers) {
            return Err(Error::Unauthorized);
        }
    }
    if is_transfer_webhook(raw) {
        return Ok(Batch {
            items: vec![transfer_item(keys, headers, raw)],
        });
    }
    let n = Notification::parse(raw)?;
    let items = n
        .items
        .iter()
        .map(|w| notification_item(keys, &w.item))
        .collect();
    Ok(Batch { items })
}

fn notification_item(keys: &Keys<'_>, item: &Item) -> BatchItem {
    let verdict = if !item.verify(keys.hmac_keys) {
        ItemVerdict::BadSignature
    } else if item.merchant_account_code != keys.merchant_account {
        ItemVerdict::Invalid(Error::validation(
            "merchantAccountCode",
            "is not this PSP's merchant account",
        ))
    } else {
        match normalise(keys.psp, item) {
            Ok(ItemEvent::Payment(ev)) => ItemVerdict::Event(Inbound::Payment(ev)),
            Ok(ItemEvent::Refund(ev)) => ItemVerdict::Event(Inbound::Refund(ev)),
            Ok(ItemEvent::Payout(ev)) => ItemVerdict::Event(Inbound::Payout(ev)),
            Ok(ItemEvent::Adjustment(ev)) => ItemVerdict::Adjustment(ev),
            Ok(ItemEvent::ReportAvailable { url }) => ItemVerdict::ReportAvailable { url },
            Ok(ItemEvent::Unhandled { event_code }) => ItemVerdict::Unhandled { event_code },
            Err(e) => ItemVerdict::Invalid(e),
        }
    };
    BatchItem {
        reference: item.psp_reference.clone(),
        claimed: item.merchant_reference.clone(),
        verdict,
    }
}

/// A quick look: does the body say it is a transfer webhook?
fn is_transfer_webhook(raw: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Kind {
        #[serde(rename = "type", default)]
        kind: String,
    }
    serde_json::from_slice::<Kind>(raw)
        .is_ok_and(|k| k.kind.starts_with("balancePlatform.transfer"))
}

/// A transfer webhook (`TransferNotificationRequest`): what we read of it.
#[derive(Debug, Deserialize)]
struct TransferNotification {
    data: TransferData,
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransferData {
    id: String,
    #[serde(default)]
    reference: Option<String>,
    status: String,
    amount: TransferAmount,
    #[serde(default)]
    creation_date: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TransferAmount {
    currency: String,
    value: i64,
}

/// Is the raw body signed with one of the keys (`HmacSignature` header)?
fn body_signed(hex_keys: &[Secret], headers: &HeaderMap, raw: &[u8]) -> bool {
    headers
        .get("HmacSignature")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|sig| signed_with(hex_keys, raw, sig))
}

fn transfer_item(keys: &Keys<'_>, headers: &HeaderMap, raw: &[u8]) -> BatchItem {
    if !body_signed(keys.hmac_keys, headers, raw) {
        return BatchItem {
            reference: String::new(),
            claimed: None,
            verdict: ItemVerdict::BadSignature,
        };
    }
    match serde_json::from_slice::<TransferNotification>(raw) {
        Ok(n) => BatchItem {
            reference: n.data.id.clone(),
            claimed: n.data.reference.clone(),
            verdict: transfer_verdict(keys.psp, &n).unwrap_or_else(ItemVerdict::Invalid),
        },
        Err(e) => BatchItem {
            reference: String::new(),
            claimed: None,
            verdict: ItemVerdict::Invalid(Error::validation("data", e.to_string())),
        },
    }
}

fn transfer_verdict(psp: &PspId, n: &TransferNotification) -> Result<ItemVerdict, Error> {
    let d = &n.data;
    let status = match transfer_status(&d.status).outcome() {
        Some(s) => s,
        None => {
            return Ok(ItemVerdict::Unhandled {
                event_code: format!("transfer {}", d.status),
            })
        }
    };
    let payout_id = d
        .reference
        .clone()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Error::validation("data.reference", "is required"))?;
    let occurred_ms = n
        .timestamp
        .as_deref()
        .or(d.creation_date.as_deref())
        .and_then(parse_rfc3339_ms)
        .ok_or_else(|| Error::validation("timestamp", "must be an ISO 8601 date-time"))?;
    let event_id = EventId::parse(&format!("transfer:{}:{}", d.id, d.status))
        .map_err(|e| Error::validation("data.id", e.to_string()))?;
    let currency = Currency::parse(&d.amount.currency)
        .map_err(|e| Error::validation("data.amount.currency", e.to_string()))?;
    Ok(ItemVerdict::Event(Inbound::Payout(PayoutEvent {
        psp: psp.clone(),
        event_id,
        payout_id,
        status,
        // Adyen writes an outgoing transfer's amount as a debit.
        amount_minor: d.amount.value.checked_abs().unwrap_or(i64::MAX),
        currency,
        reason: (status == OperationOutcome::Failed)
            .then(|| "the payment service provider did not complete the payout".to_owned()),
        occurred_ms,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    const KEY: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";

    fn keys<'a>(psp: &'a PspId, hmac: &'a [Secret], auth: Option<&'a BasicAuth>) -> Keys<'a> {
        Keys {
            psp,
            hmac_keys: hmac,
            basic_auth: auth,
            merchant_account: "CasinoEU",
        }
    }

    fn sign(raw: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&hex::decode(KEY).unwrap()).unwrap();
        mac.update(raw);
        B64.encode(mac.finalize().into_bytes())
    }

    fn transfer_body(status: &str) -> Vec<u8> {
        serde_json::json!({
            "data": {"id": "1W1UG35U8A9J5ZLG", "reference": "po_01JD0000000000000000000000",
                     "status": status, "amount": {"currency": "EUR", "value": -2500},
                     "category": "bank", "direction": "outgoing"},
            "environment": "test", "timestamp": "2026-11-20T10:00:00+01:00",
            "type": "balancePlatform.transfer.updated"
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_signed_transfer_webhook_is_a_payout_outcome() {
        let psp = PspId::parse("adyen").unwrap();
        let hmac = [Secret::new(KEY)];
        let raw = transfer_body("booked");
        let mut h = HeaderMap::new();
        h.insert("HmacSignature", sign(&raw).parse().unwrap());
        let batch = read(&keys(&psp, &hmac, None), &h, &raw).unwrap();
        match &batch.items[..] {
            [BatchItem {
                verdict: ItemVerdict::Event(Inbound::Payout(ev)),
                ..
            }] => {
                assert_eq!(
                    (ev.status, ev.amount_minor, ev.payout_id.as_str()),
                    (
                        OperationOutcome::Succeeded,
                        2500,
                        "po_01JD0000000000000000000000"
                    )
                );
                assert_eq!(ev.event_id.as_str(), "transfer:1W1UG35U8A9J5ZLG:booked");
            }
            other => panic!("{other:?}"),
        }
        // Another body under that signature: refused, never applied.
        let other = transfer_body("failed");
        let batch = read(&keys(&psp, &hmac, None), &h, &other).unwrap();
        assert!(matches!(batch.items[0].verdict, ItemVerdict::BadSignature));
        // Underway is not an outcome.
        let pending = transfer_body("authorised");
        let mut h2 = HeaderMap::new();
        h2.insert("HmacSignature", sign(&pending).parse().unwrap());
        let batch = read(&keys(&psp, &hmac, None), &h2, &pending).unwrap();
        assert!(matches!(
            batch.items[0].verdict,
            ItemVerdict::Unhandled { .. }
        ));
    }

    #[test]
    fn basic_auth_when_configured_guards_the_whole_delivery() {
        let psp = PspId::parse("adyen").unwrap();
        let hmac = [Secret::new(KEY)];
        let auth = BasicAuth {
            username: "adyen-hook".into(),
            password: Secret::new("s3cret-password-1"),
        };
        let raw = transfer_body("booked");
        let mut h = HeaderMap::new();
        h.insert("HmacSignature", sign(&raw).parse().unwrap());
        assert!(matches!(
            read(&keys(&psp, &hmac, Some(&auth)), &h, &raw),
            Err(Error::Unauthorized)
        ));
        let wrong = format!("Basic {}", B64.encode("adyen-hook:nope"));
        h.insert(http::header::AUTHORIZATION, wrong.parse().unwrap());
        assert!(read(&keys(&psp, &hmac, Some(&auth)), &h, &raw).is_err());
        let right = format!("Basic {}", B64.encode("adyen-hook:s3cret-password-1"));
        h.insert(http::header::AUTHORIZATION, right.parse().unwrap());
        assert!(read(&keys(&psp, &hmac, Some(&auth)), &h, &raw).is_ok());
    }
}
