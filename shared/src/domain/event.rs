//! A verified, normalised PSP event: what webhook intake puts on the queue and
//! wallet-credit applies.

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, PaymentId, PspId};
use crate::money::Currency;

use super::payment::PaymentStatus;

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
}

impl PspEvent {
    pub fn to_message(&self) -> Result<String, crate::Error> {
        serde_json::to_string(self).map_err(|e| crate::Error::Internal(e.to_string()))
    }
    pub fn from_message(body: &str) -> Result<PspEvent, serde_json::Error> {
        serde_json::from_str(body)
    }
}
