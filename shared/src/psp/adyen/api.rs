//! The bodies payloop exchanges with Adyen's Checkout v71 and Transfers v4
//! APIs: only the fields we send or read, named as Adyen's OpenAPI files
//! name them. Every request schema there refuses unknown fields, so what is
//! serialised here is exactly what Adyen's contract allows (the contract
//! tests send each of these to Prism serving Adyen's own files).

use serde::{Deserialize, Serialize};

use crate::money::Money;

/// `Amount`: currency and value in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    pub currency: String,
    pub value: i64,
}

impl From<Money> for Amount {
    fn from(m: Money) -> Amount {
        Amount {
            currency: m.currency().code().to_owned(),
            value: m.minor(),
        }
    }
}

/// `CreateCheckoutSessionRequest` with `mode: hosted`: Adyen hosts the
/// payment page (3-D Secure included) and answers its `url`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionBody {
    pub amount: Amount,
    pub merchant_account: String,
    /// The payloop payment id: every notification names it back.
    pub reference: String,
    pub return_url: String,
    pub mode: &'static str,
    /// Adyen's payment method types the page offers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_payment_methods: Vec<String>,
}

/// `CreateCheckoutSessionResponse`: what we read of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionReply {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
}

/// `PaymentRefundRequest`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundBody {
    pub amount: Amount,
    pub merchant_account: String,
    /// `<payment id>.<refund id>`: the REFUND notification names it back.
    pub reference: String,
}

/// `PaymentRefundResponse`: `status` is always `received`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundReply {
    pub psp_reference: String,
    pub status: String,
}

/// `TransferInfo`: a bank payout from the operator's balance account to the
/// player's transfer instrument (no card number is ever sent).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferBody {
    pub amount: Amount,
    pub balance_account_id: String,
    pub category: &'static str,
    pub counterparty: Counterparty,
    pub priority: &'static str,
    /// The payloop payout id: transfer webhooks name it back.
    pub reference: String,
    pub reference_for_beneficiary: String,
}

/// `CounterpartyInfoV3`, by transfer instrument.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counterparty {
    pub transfer_instrument_id: String,
}

/// `Transfer` / `TransferData`: what we read of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferReply {
    #[serde(default)]
    pub id: Option<String>,
    pub status: String,
}

/// `PayoutRequest` (Payout API v68, `POST /payout`): a payout to the
/// player's stored payout details (a recurring detail of contract PAYOUT).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PayoutBody {
    pub amount: Amount,
    pub merchant_account: String,
    /// The payloop payout id: PAYOUT_THIRDPARTY names it back.
    pub reference: String,
    pub recurring: Recurring,
    pub selected_recurring_detail_reference: String,
    /// The payloop player id.
    pub shopper_reference: String,
    pub shopper_interaction: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Recurring {
    pub contract: &'static str,
}

/// `PayoutResponse`: what we read of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayoutReply {
    #[serde(default)]
    pub psp_reference: Option<String>,
    #[serde(default)]
    pub result_code: Option<String>,
}

/// `ServiceError` (Checkout) and the Transfers problem body share these.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceError {
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}
