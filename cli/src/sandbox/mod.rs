//! Sandbox PSPs: each one a real HTTP server on 127.0.0.1 with its own port,
//! API key, books and webhook signature scheme, like a PSP's test account.
//!
//! - API (Bearer API key): `POST /v1/sessions`, `GET /v1/payments/{ref}`,
//!   `POST /v1/payouts`, `POST /v1/refunds`, `GET /v1/settlements/{day}` (CSV).
//! - Hosted checkout (what the player's browser sees): `GET /checkout/{ref}`
//!   → Pay → `GET /checkout/{ref}/3ds` (3-D Secure code) → Approve / Decline,
//!   Abandon on either page.
//! - Webhooks to payloop, signed per attempt, retried on a schedule.
//! - Admin (API key): `GET|POST /admin/chaos`, `GET /admin/deliveries`,
//!   `POST /admin/chargebacks`, `POST /admin/fees`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use payloop::clock::{now_s, Day};
use payloop::config::{KeyRing, Secret};
use payloop::ids::{new_ulid, PaymentId, PspId};
use payloop::money::{Currency, Money};
use payloop::psp::signature::Scheme;
use payloop::psp::wire::{
    ErrorReply, OperationReply, PayoutBody, RefundBody, SessionBody, SessionReply, SettlementLine,
    StatusReply, WebhookBody, SETTLEMENT_HEADER,
};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

mod admin;
mod api;
pub mod book;
pub mod chaos;
mod checkout;
pub mod delivery;
pub mod pages;

use book::{fee_minor, Book, Charge, ChargeStatus, Operation};
use chaos::{roll, Chaos, ChaosPatch};
use delivery::{DeliveryLog, Event};

/// Deliveries shown by `GET /admin/deliveries` at most.
const MAX_DELIVERIES_SHOWN: usize = 1_000;
/// The destination token that makes a sandbox payout fail.
pub const FAILING_DESTINATION: &str = "tok_fail";

#[derive(Clone)]
pub struct SandboxOptions {
    pub name: PspId,
    pub scheme: Scheme,
    pub webhook_secret: Secret,
    pub api_key: Secret,
    /// Where webhooks go (payloop's `/v1/payments/webhook/{psp}`).
    pub webhook_url: String,
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    /// Waits between delivery attempts; its length is the number of retries.
    pub retry_schedule: Vec<Duration>,
    /// Processing fee in basis points of the gross, plus a fixed part.
    pub fee_bps: u32,
    pub fixed_fee_minor: i64,
    /// How long a payout takes to complete.
    pub payout_delay: Duration,
    /// The runtime the server runs on (default: the caller's), so a bench
    /// can count the sandbox's CPU apart from payloop's.
    pub runtime: Option<tokio::runtime::Handle>,
}

/// The sandbox's processing fee: 1.5% of the gross (half up), no fixed part.
pub const DEFAULT_FEE_BPS: u32 = 150;
pub const DEFAULT_FIXED_FEE_MINOR: i64 = 0;

impl SandboxOptions {
    pub fn new(
        name: PspId,
        scheme: Scheme,
        webhook_url: String,
        secrets: (Secret, Secret),
    ) -> Self {
        SandboxOptions {
            name,
            scheme,
            webhook_secret: secrets.0,
            api_key: secrets.1,
            webhook_url,
            host: "127.0.0.1".into(),
            port: 0,
            retry_schedule: delivery::default_schedule(),
            fee_bps: DEFAULT_FEE_BPS,
            fixed_fee_minor: DEFAULT_FIXED_FEE_MINOR,
            payout_delay: Duration::from_millis(500),
            runtime: None,
        }
    }
}

pub struct SandboxState {
    pub opts: SandboxOptions,
    pub base_url: String,
    api_keys: KeyRing,
    book: Mutex<Book>,
    chaos: RwLock<Chaos>,
    pub deliveries: DeliveryLog,
    pub http: reqwest::Client,
}

impl SandboxState {
    pub fn chaos(&self) -> Chaos {
        self.chaos.read().map(|c| c.clone()).unwrap_or_default()
    }

    fn with_book<T>(&self, f: impl FnOnce(&mut Book) -> T) -> Result<T, Fail> {
        let mut book = self.book.lock().map_err(|_| {
            api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "book poisoned",
            )
        })?;
        Ok(f(&mut book))
    }
}

/// A running sandbox PSP.
pub struct SandboxHandle {
    pub name: PspId,
    pub addr: SocketAddr,
    pub base_url: String,
    pub state: Arc<SandboxState>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl SandboxHandle {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Forget every payment, as a reset test account does (tests of what a
    /// PSP that no longer knows a payment answers).
    pub fn forget_charges(&self) {
        let _ = self.state.with_book(|b| b.charges.clear());
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bind and serve one sandbox PSP; returns once it listens.
pub async fn start(opts: SandboxOptions) -> Result<SandboxHandle, BoxError> {
    match opts.runtime.clone() {
        None => start_here(opts).await,
        // Bound and served on that runtime: its sockets and tasks live there.
        Some(rt) => rt.spawn(start_here(opts)).await?,
    }
}

async fn start_here(opts: SandboxOptions) -> Result<SandboxHandle, BoxError> {
    let listener = tokio::net::TcpListener::bind((opts.host.as_str(), opts.port)).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let api_keys = KeyRing::parse(&format!("merchant:{}", opts.api_key.expose()))?;
    let state = Arc::new(SandboxState {
        opts: opts.clone(),
        base_url: base_url.clone(),
        api_keys,
        book: Mutex::new(Book::default()),
        chaos: RwLock::new(Chaos::default()),
        deliveries: DeliveryLog::default(),
        http: payloop::psp::https::local_client()?,
    });
    let app = router(Arc::clone(&state));
    let (stop, mut stop_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "sandbox server stopped");
        }
    });
    tracing::info!(psp = %opts.name, url = %base_url, scheme = opts.scheme.as_str(), "sandbox PSP listening");
    Ok(SandboxHandle {
        name: opts.name,
        addr,
        base_url,
        state,
        stop,
        task,
    })
}

fn router(state: Arc<SandboxState>) -> Router {
    Router::new()
        .route("/v1/sessions", post(api::create_session))
        .route("/v1/payments/{reference}", get(api::payment_status))
        .route("/v1/payouts", post(api::create_payout))
        .route("/v1/payouts/{reference}", get(api::operation_status))
        .route("/v1/refunds", post(api::create_refund))
        .route("/v1/refunds/{reference}", get(api::operation_status))
        .route("/v1/settlements/{day}", get(api::settlement))
        .route("/checkout/{reference}", get(checkout::checkout_page))
        .route("/checkout/{reference}/3ds", get(checkout::challenge_page))
        .route(
            "/checkout/{reference}/{action}",
            post(checkout::checkout_action),
        )
        .route(
            "/admin/chaos",
            get(admin::chaos_view).post(admin::chaos_set),
        )
        .route("/admin/deliveries", get(admin::deliveries))
        .route("/admin/chargebacks", post(admin::chargeback))
        .route("/admin/fees", post(admin::account_fee))
        .with_state(state)
}

type St = State<Arc<SandboxState>>;
type Answer = Result<Response, Fail>;

/// A refusal, rendered as the API's JSON error or as a checkout page.
pub enum Fail {
    Api(StatusCode, &'static str, String),
    Page(StatusCode, String),
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        match self {
            Fail::Api(status, code, message) => {
                let body = ErrorReply {
                    error: code.to_owned(),
                    message,
                };
                (status, Json(body)).into_response()
            }
            Fail::Page(status, html) => (status, Html(html)).into_response(),
        }
    }
}

fn api_error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Fail {
    Fail::Api(status, code, message.into())
}

fn invalid(field: &str, why: impl std::fmt::Display) -> Fail {
    api_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        format!("{field}: {why}"),
    )
}

fn full() -> Fail {
    api_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "full",
        "sandbox holds too many records",
    )
}

fn unauthorized() -> Fail {
    api_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or invalid API key",
    )
}

/// API key, then the chaos knobs every API call passes through.
async fn api_gate(st: &SandboxState, headers: &HeaderMap) -> Result<(), Fail> {
    admin_gate(st, headers)?;
    let chaos = st.chaos();
    if chaos.api_latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(chaos.api_latency_ms)).await;
    }
    if chaos.outage {
        return Err(api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "outage",
            "PSP is down",
        ));
    }
    if roll(chaos.api_error_pct) {
        return Err(api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "chaos",
            "injected API error",
        ));
    }
    Ok(())
}

fn admin_gate(st: &SandboxState, headers: &HeaderMap) -> Result<(), Fail> {
    payloop::edge::authenticate(headers, &st.api_keys)
        .map(|_| ())
        .map_err(|_| unauthorized())
}

fn parse_body<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, Fail> {
    serde_json::from_slice(raw).map_err(|e| invalid("body", e))
}

fn parse_money(amount: &str, currency: &str) -> Result<Money, Fail> {
    let c = Currency::parse(currency).map_err(|e| invalid("currency", e))?;
    Money::parse_decimal(amount, c).map_err(|e| invalid("amount", e))
}

/// A client id (payout/refund id) as the sandbox accepts it.
fn client_id(field: &str, v: &str) -> Result<(), Fail> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then_some(())
        .ok_or_else(|| invalid(field, "must be 1-64 characters [A-Za-z0-9_-]"))
}

fn accepted(op: &Operation) -> Response {
    let reply = OperationReply {
        reference: op.reference.clone(),
        status: op.status.to_owned(),
    };
    (StatusCode::ACCEPTED, Json(reply)).into_response()
}

/// A payment webhook body; a failed one says why (the sandbox fails a
/// payment only at its 3-D Secure step).
fn payment_event(c: &Charge, status: &str) -> serde_json::Value {
    let body = WebhookBody {
        event_id: new_ulid("evt"),
        payment_id: c.payment_id.clone(),
        reference: Some(c.reference.clone()),
        status: status.to_owned(),
        amount: c.amount.to_decimal(),
        currency: c.amount.currency().code().to_owned(),
        timestamp: Some(now_s().into()),
        reason: (status == "failed").then(|| payloop::psp::wire::THREE_DS_FAILED.to_owned()),
    };
    serde_json::to_value(body).unwrap_or_default()
}

fn send_events(
    st: &Arc<SandboxState>,
    kind: &'static str,
    bodies: Vec<(String, serde_json::Value)>,
) {
    let events = bodies
        .into_iter()
        .map(|(status, body)| Event {
            event_id: body["event_id"].as_str().unwrap_or_default().to_owned(),
            kind,
            status,
            body: body.to_string(),
        })
        .collect();
    delivery::spawn_batch(Arc::clone(st), events);
}
