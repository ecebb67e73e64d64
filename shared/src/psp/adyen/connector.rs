//! The Adyen connector: deposits as Hosted Checkout sessions (Checkout
//! v71 `POST /sessions`, `mode: hosted`, 3-D Secure on Adyen's page),
//! refunds (`POST /payments/{pspReference}/refunds`), payouts through the
//! Transfers API v4 (`POST /transfers`, `GET /transfers/{id}`) or, where a
//! Payout API base is configured, the Payout API v68 (`POST /payout` to the
//! player's stored payout details; outcome by PAYOUT_THIRDPARTY), standard
//! notifications in batches (each item's HMAC verified) and transfer
//! webhooks, and the settlement details report.
//!
//! Every POST carries an `Idempotency-Key` made of payloop's own ids for
//! the attempt (`<psp>:session:<payment id>`, `<psp>:refund:<refund id>`,
//! `<psp>:payout:<payout id>`): a retried call after a timeout or a crash
//! gets Adyen's first answer, never a second session, refund or payout.

use std::time::Duration;

use async_trait::async_trait;
use http::HeaderMap;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::Day;
use crate::error::Error;
use crate::ids::PspId;
use crate::psp::adyen::api::{
    Amount, Counterparty, PayoutBody, PayoutReply, Recurring, RefundBody, RefundReply,
    ServiceError, SessionBody, SessionReply, TransferBody, TransferReply,
};
use crate::psp::adyen::notification::refund_reference;
use crate::psp::adyen::settlement::AdyenFormat;
use crate::psp::adyen::webhook::{self, BasicAuth};
use crate::psp::event::Batch;
use crate::psp::event::Inbound;
use crate::psp::https::{transport_error, Transport, TransportError};
use crate::psp::settlement::LineFormat;
use crate::psp::signature::{Rejection, Verified, Window};
use crate::psp::{
    Operation, OperationStatus, PayoutRequest, PspConnector, PspError, RefundRequest, RemoteStatus,
    ReportChunks, Session, SessionRequest,
};
use crate::secret::Secret;

/// The most of an error body we read.
const MAX_ERROR_BODY: usize = 4096;
/// Adyen's limit on an idempotency key.
const MAX_IDEMPOTENCY_KEY: usize = 64;

/// What one Adyen PSP entry needs (from the PSP list).
#[derive(Debug, Clone)]
pub struct AdyenConfig {
    pub id: PspId,
    /// Checkout API base, e.g. `https://checkout-test.adyen.com/v71`.
    pub checkout_url: String,
    /// Transfers API base, e.g. `https://balanceplatform-api-test.adyen.com/btl/v4`;
    /// without it (or a balance account) payouts are refused.
    pub transfers_url: Option<String>,
    /// Payout API base, e.g. `https://pal-test.adyen.com/pal/servlet/Payout/v68`:
    /// when set, payouts go there instead of the Transfers API.
    pub payout_url: Option<String>,
    pub merchant_account: String,
    /// The balance account payouts are paid from.
    pub balance_account_id: Option<String>,
    pub api_key: Secret,
    /// Notification HMAC keys (hex; two during a rotation).
    pub hmac_keys: Vec<Secret>,
    /// Basic-auth credentials Adyen presents on notifications, if set up.
    pub basic_auth: Option<BasicAuth>,
}

pub struct AdyenPsp {
    cfg: AdyenConfig,
    http: reqwest::Client,
}

impl AdyenPsp {
    pub fn new(
        cfg: AdyenConfig,
        transport: &Transport,
        timeout: Duration,
    ) -> Result<AdyenPsp, TransportError> {
        transport.check_endpoint(&cfg.checkout_url)?;
        for url in [&cfg.transfers_url, &cfg.payout_url].into_iter().flatten() {
            transport.check_endpoint(url)?;
        }
        let http = transport.client(timeout)?;
        let cfg = AdyenConfig {
            checkout_url: cfg.checkout_url.trim_end_matches('/').to_owned(),
            transfers_url: cfg
                .transfers_url
                .map(|u| u.trim_end_matches('/').to_owned()),
            payout_url: cfg.payout_url.map(|u| u.trim_end_matches('/').to_owned()),
            ..cfg
        };
        Ok(AdyenPsp { cfg, http })
    }

    fn idempotency_key(&self, what: &str, id: &str) -> Result<String, PspError> {
        let key = format!("{}:{what}:{id}", self.cfg.id);
        (key.len() <= MAX_IDEMPOTENCY_KEY)
            .then_some(key)
            .ok_or_else(|| PspError::Rejected(format!("idempotency key for {what} too long")))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, PspError> {
        let id = &self.cfg.id;
        let resp = req
            .header("X-API-Key", self.cfg.api_key.expose())
            .send()
            .await
            .map_err(|e| PspError::Unavailable(transport_error(id, &e)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let why = match serde_json::from_str::<ServiceError>(&text) {
            Ok(e) => format!(
                "{} {}: {}",
                e.error_type.unwrap_or_default(),
                e.error_code.unwrap_or_default(),
                e.message.unwrap_or_default()
            ),
            Err(_) => text.chars().take(MAX_ERROR_BODY).collect(),
        };
        let why = format!("{id} answered {}: {why}", status.as_u16());
        Err(match status.as_u16() {
            404 => PspError::NotFound(why),
            408 | 429 | 500..=599 => PspError::Unavailable(why),
            // 401/403 (our credentials), 400/422 (our request): fix the call.
            _ => PspError::Rejected(why),
        })
    }

    async fn post<B: Serialize + Sync, R: DeserializeOwned>(
        &self,
        url: String,
        key: String,
        body: &B,
    ) -> Result<R, PspError> {
        let req = self
            .http
            .post(url)
            .header("Idempotency-Key", key)
            .json(body);
        read(&self.cfg.id, self.send(req).await?).await
    }

    /// A payout through the Payout API: to the player's stored payout
    /// details; Adyen answers at once, PAYOUT_THIRDPARTY brings the outcome.
    async fn payout_api(
        &self,
        base: &str,
        req: &PayoutRequest<'_>,
        detail: &str,
    ) -> Result<Operation, PspError> {
        let body = PayoutBody {
            amount: Amount::from(req.amount),
            merchant_account: self.cfg.merchant_account.clone(),
            reference: req.payout_id.to_owned(),
            recurring: Recurring { contract: "PAYOUT" },
            selected_recurring_detail_reference: detail.to_owned(),
            shopper_reference: req.player_id.to_string(),
            shopper_interaction: "ContAuth",
        };
        let key = self.idempotency_key("payout", req.payout_id)?;
        let reply: PayoutReply = self.post(format!("{base}/payout"), key, &body).await?;
        if reply.result_code.as_deref() == Some("Refused") {
            return Err(PspError::Refused(format!(
                "{} refused the payout",
                self.cfg.id
            )));
        }
        Ok(Operation {
            reference: reply.psp_reference.unwrap_or_default(),
            status: OperationStatus::Pending,
        })
    }

    fn transfers(&self) -> Result<(&str, &str), PspError> {
        match (&self.cfg.transfers_url, &self.cfg.balance_account_id) {
            (Some(url), Some(account)) => Ok((url, account)),
            _ => Err(PspError::Rejected(format!(
                "{} has no Transfers API base URL and balance account: payouts are off",
                self.cfg.id
            ))),
        }
    }
}

async fn read<R: DeserializeOwned>(psp: &PspId, resp: reqwest::Response) -> Result<R, PspError> {
    resp.json()
        .await
        .map_err(|e| PspError::Unavailable(format!("{psp} sent an unreadable answer: {e}")))
}

/// A PSP reference goes into a URL path: Adyen's are alphanumeric.
fn path_segment(reference: &str) -> Result<&str, PspError> {
    let ok = !reference.is_empty()
        && reference.len() <= 64
        && reference.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then_some(reference)
        .ok_or_else(|| PspError::Rejected("not an Adyen reference".into()))
}

/// payloop's method → Adyen's payment method types on the hosted page.
fn adyen_methods(method: &str) -> Vec<String> {
    match method {
        "card" => vec!["scheme".into()],
        "pay_by_bank" => vec!["paybybank".into()],
        _ => Vec::new(),
    }
}

/// A transfer's `status` as payloop reads it: `booked` is paid out;
/// refused, failed and returned are final failures; the rest is underway.
pub fn transfer_status(status: &str) -> OperationStatus {
    match status {
        "booked" => OperationStatus::Succeeded,
        "refused" | "failed" | "returned" => OperationStatus::Failed,
        _ => OperationStatus::Pending,
    }
}

#[async_trait]
impl PspConnector for AdyenPsp {
    fn id(&self) -> &PspId {
        &self.cfg.id
    }

    async fn create_session(&self, req: &SessionRequest<'_>) -> Result<Session, PspError> {
        let body = SessionBody {
            amount: Amount::from(req.amount),
            merchant_account: self.cfg.merchant_account.clone(),
            reference: req.payment_id.to_string(),
            return_url: req.return_url.to_owned(),
            mode: "hosted",
            allowed_payment_methods: adyen_methods(req.method),
        };
        let key = self.idempotency_key("session", req.payment_id.as_str())?;
        let url = format!("{}/sessions", self.cfg.checkout_url);
        let reply: SessionReply = self.post(url, key, &body).await?;
        let redirect_url = reply
            .url
            .filter(|u| u.starts_with("https://"))
            .ok_or_else(|| {
                PspError::Unavailable(format!(
                    "{} answered a session without an https url",
                    self.cfg.id
                ))
            })?;
        Ok(Session {
            redirect_url,
            reference: reply.id,
        })
    }

    async fn start_payout(&self, req: &PayoutRequest<'_>) -> Result<Operation, PspError> {
        let instrument = req.destination_token.ok_or_else(|| {
            PspError::Rejected("an Adyen payout needs the player's payout instrument".into())
        })?;
        if let Some(base) = &self.cfg.payout_url {
            return self.payout_api(base, req, instrument).await;
        }
        let (base, account) = self.transfers()?;
        let body = TransferBody {
            amount: Amount::from(req.amount),
            balance_account_id: account.to_owned(),
            category: "bank",
            counterparty: Counterparty {
                transfer_instrument_id: instrument.to_owned(),
            },
            priority: "regular",
            reference: req.payout_id.to_owned(),
            reference_for_beneficiary: req.payout_id.to_owned(),
        };
        let key = self.idempotency_key("payout", req.payout_id)?;
        let reply: TransferReply = self.post(format!("{base}/transfers"), key, &body).await?;
        Ok(Operation {
            reference: reply.id.unwrap_or_default(),
            status: transfer_status(&reply.status),
        })
    }

    async fn start_refund(&self, req: &RefundRequest<'_>) -> Result<Operation, PspError> {
        let payment = path_segment(req.payment_reference)?;
        let body = RefundBody {
            amount: Amount::from(req.amount),
            merchant_account: self.cfg.merchant_account.clone(),
            reference: refund_reference(req.payment_id, req.refund_id),
        };
        let key = self.idempotency_key("refund", req.refund_id)?;
        let url = format!("{}/payments/{payment}/refunds", self.cfg.checkout_url);
        let reply: RefundReply = self.post(url, key, &body).await?;
        if reply.status != "received" {
            tracing::warn!(psp = %self.cfg.id, status = %reply.status, "unexpected refund status");
        }
        // Received, not done: REFUND or REFUND_FAILED brings the outcome.
        Ok(Operation {
            reference: reply.psp_reference,
            status: OperationStatus::Pending,
        })
    }

    async fn payout_status(&self, reference: &str) -> Result<Operation, PspError> {
        if self.cfg.payout_url.is_some() {
            return Err(PspError::NotFound(
                "the Payout API has no lookup: PAYOUT_THIRDPARTY brings the outcome".into(),
            ));
        }
        let (base, _) = self.transfers()?;
        let id = path_segment(reference)?;
        let resp = self
            .send(self.http.get(format!("{base}/transfers/{id}")))
            .await?;
        let reply: TransferReply = read(&self.cfg.id, resp).await?;
        Ok(Operation {
            reference: reference.to_owned(),
            status: transfer_status(&reply.status),
        })
    }

    async fn refund_status(&self, _reference: &str) -> Result<Operation, PspError> {
        Err(PspError::NotFound(
            "Adyen has no refund lookup: REFUND or REFUND_FAILED brings the outcome".into(),
        ))
    }

    async fn payment_status(&self, _reference: &str) -> Result<RemoteStatus, PspError> {
        Err(PspError::NotFound(
            "Adyen has no payment lookup: notifications bring the outcome".into(),
        ))
    }

    async fn settlement_report(&self, _day: Day) -> Result<Box<dyn ReportChunks>, PspError> {
        Err(PspError::NotFound(
            "Adyen publishes settlement reports per batch (REPORT_AVAILABLE): reconcile from its file or URL".into(),
        ))
    }

    fn report_format(&self) -> Box<dyn LineFormat> {
        Box::new(AdyenFormat::default())
    }

    fn verify_webhook(
        &self,
        _headers: &HeaderMap,
        _raw: &[u8],
        _window: Window,
    ) -> Result<Verified, Rejection> {
        // Adyen signs every item of a batch, not the delivery: see read_batch.
        Err(Rejection::BadSignature)
    }

    fn normalise_webhook(&self, _raw: &[u8], _signed_at_s: Option<i64>) -> Result<Inbound, Error> {
        Err(Error::validation(
            "body",
            "Adyen notifications are read as a batch",
        ))
    }

    fn read_batch(&self, headers: &HeaderMap, raw: &[u8]) -> Option<Result<Batch, Error>> {
        let keys = webhook::Keys {
            psp: &self.cfg.id,
            hmac_keys: &self.cfg.hmac_keys,
            basic_auth: self.cfg.basic_auth.as_ref(),
            merchant_account: &self.cfg.merchant_account,
        };
        Some(webhook::read(&keys, headers, raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_statuses_map_onto_payout_outcomes() {
        assert_eq!(transfer_status("booked"), OperationStatus::Succeeded);
        for failed in ["refused", "failed", "returned"] {
            assert_eq!(transfer_status(failed), OperationStatus::Failed, "{failed}");
        }
        for underway in ["received", "authorised", "approvalPending", ""] {
            assert_eq!(
                transfer_status(underway),
                OperationStatus::Pending,
                "{underway}"
            );
        }
    }

    #[test]
    fn references_in_paths_are_alphanumeric() {
        assert!(path_segment("8816178914078155").is_ok());
        for bad in ["", "../x", "a/b", "a?b", &"9".repeat(65)] {
            assert!(path_segment(bad).is_err(), "{bad}");
        }
    }
}
