//! The connector for payloop's sandbox PSPs (`payloop sandbox`): a real
//! HTTP client of their API. It is also the template for a real PSP's
//! module: map our requests onto its API, map its answers onto
//! [`PspError`], verify and normalise its webhooks.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::HeaderMap;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::Day;
use crate::error::Error;
use crate::ids::PspId;
use crate::money::{Currency, Money};
use crate::psp::event::Inbound;
use crate::psp::https::{transport_error, Transport, TransportError};
use crate::psp::signature::{Rejection, Verified, Window};
use crate::psp::wire::{
    ErrorReply, OperationReply, PayoutBody, RefundBody, SessionBody, SessionReply, StatusReply,
};
use crate::psp::{
    Operation, OperationStatus, PayoutRequest, PspConnector, PspError, RefundRequest, RemoteStatus,
    ReportChunks, Session, SessionRequest, WebhookKeys,
};
use crate::schema::status::PaymentStatus;
use crate::secret::Secret;

/// A PSP call that takes longer than this counts as unavailable.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an error body we read.
const MAX_ERROR_BODY: usize = 4096;

pub struct HttpPsp {
    id: PspId,
    base_url: String,
    api_key: Secret,
    webhook: WebhookKeys,
    http: reqwest::Client,
}

impl HttpPsp {
    /// A connector at `base_url`, reached over `transport` (HTTPS with
    /// verified certificates; `http://` only where the transport allows it).
    pub fn new(
        id: PspId,
        base_url: &str,
        api_key: Secret,
        webhook: WebhookKeys,
        transport: &Transport,
        timeout: Duration,
    ) -> Result<HttpPsp, TransportError> {
        transport.check_endpoint(base_url)?;
        let http = transport.client(timeout)?;
        Ok(HttpPsp {
            id,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            webhook,
            http,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, PspError> {
        let resp = req
            .bearer_auth(self.api_key.expose())
            .send()
            .await
            .map_err(|e| PspError::Unavailable(transport_error(&self.id, &e)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let why = serde_json::from_str::<ErrorReply>(&text)
            .map(|e| format!("{}: {}", e.error, e.message))
            .unwrap_or_else(|_| text.chars().take(MAX_ERROR_BODY).collect());
        let why = format!("{} answered {}: {why}", self.id, status.as_u16());
        Err(match status.as_u16() {
            402 => PspError::Refused(why),
            404 => PspError::NotFound(why),
            408 | 429 | 500..=599 => PspError::Unavailable(why),
            _ => PspError::Rejected(why),
        })
    }

    async fn post<B: Serialize + Sync, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, PspError> {
        let resp = self.send(self.http.post(self.url(path)).json(body)).await?;
        resp.json().await.map_err(|e| {
            PspError::Unavailable(format!("{} sent an unreadable answer: {e}", self.id))
        })
    }

    /// `GET /v1/{kind}/{reference}`: where a payout or refund stands.
    async fn operation_status(&self, kind: &str, reference: &str) -> Result<Operation, PspError> {
        check_reference(reference)?;
        let resp = self
            .send(self.http.get(self.url(&format!("/v1/{kind}/{reference}"))))
            .await?;
        let reply: OperationReply = resp.json().await.map_err(|e| {
            PspError::Unavailable(format!("{} sent an unreadable status: {e}", self.id))
        })?;
        Ok(Operation {
            reference: reply.reference,
            status: OperationStatus::parse(&reply.status),
        })
    }
}

/// A reference goes into a URL path: only the characters PSPs use.
fn check_reference(reference: &str) -> Result<(), PspError> {
    let ok = !reference.is_empty()
        && reference.len() <= 128
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then_some(())
        .ok_or_else(|| PspError::Rejected("reference has characters no PSP uses".into()))
}

fn parse_amount(psp: &PspId, amount: &str, currency: &str) -> Result<Money, PspError> {
    let bad = |what: String| PspError::Unavailable(format!("{psp} sent a bad {what}"));
    let currency = Currency::parse(currency).map_err(|e| bad(format!("currency ({e})")))?;
    Money::parse_decimal(amount, currency).map_err(|e| bad(format!("amount ({e})")))
}

#[async_trait]
impl PspConnector for HttpPsp {
    fn id(&self) -> &PspId {
        &self.id
    }

    async fn create_session(&self, req: &SessionRequest<'_>) -> Result<Session, PspError> {
        let body = SessionBody {
            payment_id: req.payment_id.to_string(),
            amount: req.amount.to_decimal(),
            currency: req.amount.currency().code().to_owned(),
            method: req.method.to_owned(),
            return_url: req.return_url.to_owned(),
        };
        let reply: SessionReply = self.post("/v1/sessions", &body).await?;
        Ok(Session {
            redirect_url: reply.redirect_url,
            reference: reply.reference,
        })
    }

    async fn start_payout(&self, req: &PayoutRequest<'_>) -> Result<Operation, PspError> {
        let body = PayoutBody {
            payout_id: req.payout_id.to_owned(),
            amount: req.amount.to_decimal(),
            currency: req.amount.currency().code().to_owned(),
            destination_token: req.destination_token.map(str::to_owned),
        };
        let reply: OperationReply = self.post("/v1/payouts", &body).await?;
        Ok(Operation {
            reference: reply.reference,
            status: OperationStatus::parse(&reply.status),
        })
    }

    async fn start_refund(&self, req: &RefundRequest<'_>) -> Result<Operation, PspError> {
        let body = RefundBody {
            refund_id: req.refund_id.to_owned(),
            payment_reference: req.payment_reference.to_owned(),
            amount: req.amount.to_decimal(),
            currency: req.amount.currency().code().to_owned(),
        };
        let reply: OperationReply = self.post("/v1/refunds", &body).await?;
        Ok(Operation {
            reference: reply.reference,
            status: OperationStatus::parse(&reply.status),
        })
    }

    async fn payout_status(&self, reference: &str) -> Result<Operation, PspError> {
        self.operation_status("payouts", reference).await
    }

    async fn refund_status(&self, reference: &str) -> Result<Operation, PspError> {
        self.operation_status("refunds", reference).await
    }

    async fn payment_status(&self, reference: &str) -> Result<RemoteStatus, PspError> {
        check_reference(reference)?;
        let resp = self
            .send(
                self.http
                    .get(self.url(&format!("/v1/payments/{reference}"))),
            )
            .await?;
        let reply: StatusReply = resp.json().await.map_err(|e| {
            PspError::Unavailable(format!("{} sent an unreadable status: {e}", self.id))
        })?;
        Ok(RemoteStatus {
            amount: parse_amount(&self.id, &reply.amount, &reply.currency)?,
            reference: reply.reference,
            payment_id: reply.payment_id,
            status: PaymentStatus::parse(&reply.status).ok_or_else(|| {
                PspError::Unavailable(format!("{} sent an unknown payment status", self.id))
            })?,
        })
    }

    async fn settlement_report(&self, day: Day) -> Result<Box<dyn ReportChunks>, PspError> {
        let resp = self
            .send(self.http.get(self.url(&format!("/v1/settlements/{day}"))))
            .await?;
        Ok(Box::new(HttpChunks {
            psp: self.id.clone(),
            resp,
        }))
    }

    fn verify_webhook(
        &self,
        headers: &HeaderMap,
        raw: &[u8],
        window: Window,
    ) -> Result<Verified, Rejection> {
        self.webhook.verify(headers, raw, window)
    }

    fn normalise_webhook(&self, raw: &[u8], signed_at_s: Option<i64>) -> Result<Inbound, Error> {
        crate::psp::wire::parse_inbound(&self.id, raw, signed_at_s)
    }
}

/// A report streamed from the HTTP body, chunk by chunk.
struct HttpChunks {
    psp: PspId,
    resp: reqwest::Response,
}

#[async_trait]
impl ReportChunks for HttpChunks {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, PspError> {
        self.resp
            .chunk()
            .await
            .map_err(|e| PspError::Unavailable(transport_error(&self.psp, &e)))
    }
}
