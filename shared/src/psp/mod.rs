//! The PSP port: everything payloop needs from a payment service provider
//! behind one trait. Adding a PSP is one module implementing
//! [`PspConnector`] plus config; routing, health and intake stay as they are.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::HeaderMap;

use crate::clock::Day;
use crate::error::{Error, ErrorCode};
use crate::ids::{PaymentId, PlayerId, PspId};
use crate::money::Money;
use crate::psp::event::{Batch, Inbound, OperationOutcome};
use crate::psp::signature::{Rejection, Scheme, Verified, Window};
use crate::schema::status::PaymentStatus;
use crate::secret::Secret;

pub mod adyen;
pub mod event;
pub mod health;
pub mod http_connector;
pub mod https;
pub mod list;
pub mod modes;
pub mod routing;
pub mod settlement;
pub mod signature;
pub mod wire;

/// What a PSP needs to open a hosted payment page.
#[derive(Debug, Clone)]
pub struct SessionRequest<'a> {
    pub payment_id: &'a PaymentId,
    pub amount: Money,
    pub method: &'a str,
    pub return_url: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Where to send the player.
    pub redirect_url: String,
    /// The PSP's own id for this payment.
    pub reference: String,
}

/// Send money to a player (a withdrawal).
#[derive(Debug, Clone)]
pub struct PayoutRequest<'a> {
    /// Our id; the PSP's idempotency key for this payout.
    pub payout_id: &'a str,
    /// Whose withdrawal it is (the PSP's shopper reference where it needs one).
    pub player_id: &'a PlayerId,
    pub amount: Money,
    /// The player's instrument at this PSP (closed loop), if known.
    pub destination_token: Option<&'a str>,
}

/// Give (part of) a captured payment back.
#[derive(Debug, Clone)]
pub struct RefundRequest<'a> {
    /// Our id; the PSP's idempotency key for this refund.
    pub refund_id: &'a str,
    /// Our payment the refund gives back (part of).
    pub payment_id: &'a PaymentId,
    /// The PSP's reference of the captured payment.
    pub payment_reference: &'a str,
    pub amount: Money,
}

/// A payout or refund the PSP accepted; its outcome follows by webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub reference: String,
    pub status: OperationStatus,
}

/// Where the PSP says a payout or refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationStatus {
    Pending,
    Succeeded,
    Failed,
    /// A word this connector does not know: neither pending nor final to us.
    Unknown,
}

impl OperationStatus {
    pub fn parse(s: &str) -> OperationStatus {
        match s {
            "pending" => OperationStatus::Pending,
            "succeeded" => OperationStatus::Succeeded,
            "failed" => OperationStatus::Failed,
            _ => OperationStatus::Unknown,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            OperationStatus::Pending => "pending",
            OperationStatus::Succeeded => "succeeded",
            OperationStatus::Failed => "failed",
            OperationStatus::Unknown => "unknown",
        }
    }

    /// The final outcome, once the PSP has one.
    pub fn outcome(&self) -> Option<OperationOutcome> {
        match self {
            OperationStatus::Succeeded => Some(OperationOutcome::Succeeded),
            OperationStatus::Failed => Some(OperationOutcome::Failed),
            OperationStatus::Pending | OperationStatus::Unknown => None,
        }
    }
}

/// What the PSP says about one of its payments (the status API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteStatus {
    pub reference: String,
    pub payment_id: String,
    pub status: PaymentStatus,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PspError {
    /// 5xx, timeout, outage: another PSP may be tried, or later again.
    #[error("PSP unavailable: {0}")]
    Unavailable(String),
    /// The PSP refused this payment: trying elsewhere would not be honest.
    #[error("PSP refused: {0}")]
    Refused(String),
    /// The PSP does not know this reference (or day).
    #[error("PSP does not know {0}")]
    NotFound(String),
    /// The PSP says our request is wrong (a 4xx other than refusal).
    #[error("PSP rejected the request: {0}")]
    Rejected(String),
}

/// The one mapping of a PSP's answer to our error table. The PSP's own text
/// (its name, status line, body) is for our logs, never for API clients.
impl From<PspError> for Error {
    fn from(e: PspError) -> Error {
        match e {
            PspError::Unavailable(why) => Error::Unavailable(why),
            PspError::Refused(_) => Error::PaymentRequired {
                code: ErrorCode::PspRefused,
                reason: "the payment service provider refused this request".into(),
            },
            PspError::Rejected(_) | PspError::NotFound(_) => Error::PspRejected,
        }
    }
}

/// A settlement report read chunk by chunk: never whole in memory.
#[async_trait]
pub trait ReportChunks: Send {
    /// The next piece of the CSV, `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, PspError>;
}

#[async_trait]
pub trait PspConnector: Send + Sync {
    fn id(&self) -> &PspId;

    /// Open a hosted payment page for a deposit.
    async fn create_session(&self, req: &SessionRequest<'_>) -> Result<Session, PspError>;

    /// Start a payout; the outcome arrives by webhook.
    async fn start_payout(&self, req: &PayoutRequest<'_>) -> Result<Operation, PspError>;

    /// Start a refund; the outcome arrives by webhook.
    async fn start_refund(&self, req: &RefundRequest<'_>) -> Result<Operation, PspError>;

    /// Ask the PSP where one of its payouts stands.
    async fn payout_status(&self, reference: &str) -> Result<Operation, PspError>;

    /// Ask the PSP where one of its refunds stands.
    async fn refund_status(&self, reference: &str) -> Result<Operation, PspError>;

    /// Ask the PSP where one of its payments stands.
    async fn payment_status(&self, reference: &str) -> Result<RemoteStatus, PspError>;

    /// The settlement report (CSV, [`wire::SETTLEMENT_HEADER`]) of one day.
    async fn settlement_report(&self, day: Day) -> Result<Box<dyn ReportChunks>, PspError>;

    /// How this PSP's settlement reports read (payloop's own format unless
    /// the PSP has its own).
    fn report_format(&self) -> Box<dyn settlement::LineFormat> {
        Box::new(settlement::PayloopFormat::default())
    }

    /// Check a webhook delivery's signature under this PSP's scheme.
    fn verify_webhook(
        &self,
        headers: &HeaderMap,
        raw: &[u8],
        window: Window,
    ) -> Result<Verified, Rejection>;

    /// Turn a verified delivery's body into our event type.
    fn normalise_webhook(&self, raw: &[u8], signed_at_s: Option<i64>) -> Result<Inbound, Error>;

    /// A PSP whose deliveries batch several events, each signed on its own
    /// (Adyen), reads them here; `None` for one signed event per delivery.
    /// `Err` refuses the whole delivery (bad credentials, unreadable body).
    fn read_batch(&self, _headers: &HeaderMap, _raw: &[u8]) -> Option<Result<Batch, Error>> {
        None
    }
}

/// A PSP's webhook signing: its scheme and current secrets (two during a
/// rotation).
#[derive(Debug, Clone)]
pub struct WebhookKeys {
    pub scheme: Scheme,
    pub secrets: Vec<Secret>,
}

impl WebhookKeys {
    pub fn verify(
        &self,
        headers: &HeaderMap,
        raw: &[u8],
        window: Window,
    ) -> Result<Verified, Rejection> {
        crate::psp::signature::verify(self.scheme, &self.secrets, headers, raw, window)
    }
}

/// The connectors of this deployment, the routing rules over them, and the
/// shared picture of their health.
pub struct Psps {
    connectors: BTreeMap<PspId, Arc<dyn PspConnector>>,
    pub router: routing::Router,
    pub health: health::Health,
    pub modes: modes::Modes,
    /// This process's metrics (route health records circuit changes here).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// How PSP endpoints and report URLs are reached (HTTPS unless allowed).
    pub transport: https::Transport,
}

impl Psps {
    pub fn new(
        connectors: Vec<Arc<dyn PspConnector>>,
        router: routing::Router,
    ) -> Result<Psps, routing::RoutingError> {
        let connectors: BTreeMap<PspId, Arc<dyn PspConnector>> = connectors
            .into_iter()
            .map(|c| (c.id().clone(), c))
            .collect();
        router.check_connectors(|psp| connectors.contains_key(psp))?;
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let health = health::Health::new(router.health_policy().clone(), Arc::clone(&metrics));
        let modes = modes::Modes::new(false, router.health_policy().sync_every_ms);
        Ok(Psps {
            connectors,
            router,
            health,
            modes,
            metrics,
            transport: https::Transport::https_only(),
        })
    }

    /// Reach report URLs over `transport` (the connectors carry their own).
    pub fn with_transport(mut self, transport: https::Transport) -> Psps {
        self.transport = transport;
        self
    }

    /// Degradation mode forced on by configuration.
    pub fn force_degraded(mut self, forced: bool) -> Psps {
        self.modes = modes::Modes::new(forced, self.router.health_policy().sync_every_ms);
        self
    }

    pub fn get(&self, psp: &PspId) -> Option<&Arc<dyn PspConnector>> {
        self.connectors.get(psp)
    }

    pub fn ids(&self) -> impl Iterator<Item = &PspId> {
        self.connectors.keys()
    }
}
