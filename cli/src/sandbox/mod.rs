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
use payloop::domain::signature::Scheme;
use payloop::ids::{new_ulid, PaymentId, PspId};
use payloop::money::{Currency, Money};
use payloop::psp::wire::{
    ErrorReply, OperationReply, PayoutBody, RefundBody, SessionBody, SessionReply, SettlementLine,
    StatusReply, WebhookBody, SETTLEMENT_HEADER,
};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

pub mod book;
pub mod chaos;
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
        http: reqwest::Client::new(),
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
        .route("/v1/sessions", post(create_session))
        .route("/v1/payments/{reference}", get(payment_status))
        .route("/v1/payouts", post(create_payout))
        .route("/v1/payouts/{reference}", get(operation_status))
        .route("/v1/refunds", post(create_refund))
        .route("/v1/refunds/{reference}", get(operation_status))
        .route("/v1/settlements/{day}", get(settlement))
        .route("/checkout/{reference}", get(checkout_page))
        .route("/checkout/{reference}/3ds", get(challenge_page))
        .route("/checkout/{reference}/{action}", post(checkout_action))
        .route("/admin/chaos", get(chaos_view).post(chaos_set))
        .route("/admin/deliveries", get(deliveries))
        .route("/admin/chargebacks", post(chargeback))
        .route("/admin/fees", post(account_fee))
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

async fn create_session(State(st): St, headers: HeaderMap, raw: axum::body::Bytes) -> Answer {
    api_gate(&st, &headers).await?;
    let body: SessionBody = parse_body(&raw)?;
    let payment_id = PaymentId::parse(&body.payment_id).map_err(|e| invalid("payment_id", e))?;
    let amount = parse_money(&body.amount, &body.currency)?;
    if !(body.return_url.starts_with("http://") || body.return_url.starts_with("https://")) {
        return Err(invalid("return_url", "must be an http(s) URL"));
    }
    // One session per payment id: a retried call gets the same session.
    let tail = payment_id
        .as_str()
        .trim_start_matches("pay_")
        .to_ascii_lowercase();
    let reference = format!("{}_{tail}", st.opts.name);
    let same_amount = st.with_book(|b| {
        if let Some(c) = b.charges.get(&reference) {
            return Ok(c.amount == amount);
        }
        if b.full() {
            return Err(full());
        }
        let charge = Charge {
            reference: reference.clone(),
            payment_id: payment_id.to_string(),
            amount,
            method: body.method.clone(),
            return_url: body.return_url.clone(),
            status: ChargeStatus::Created,
            refunded_minor: 0,
        };
        b.charges.insert(reference.clone(), charge);
        Ok(true)
    })??;
    if !same_amount {
        return Err(api_error(
            StatusCode::CONFLICT,
            "conflict",
            "this payment id has a session with another amount",
        ));
    }
    let reply = SessionReply {
        redirect_url: format!("{}/checkout/{reference}", st.base_url),
        reference,
    };
    Ok(Json(reply).into_response())
}

async fn payment_status(
    State(st): St,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Answer {
    api_gate(&st, &headers).await?;
    let c = st
        .with_book(|b| b.charges.get(&reference).cloned())?
        .ok_or_else(|| api_error(StatusCode::NOT_FOUND, "not_found", "no such payment"))?;
    let reply = StatusReply {
        reference: c.reference,
        payment_id: c.payment_id,
        status: c.status.as_str().to_owned(),
        amount: c.amount.to_decimal(),
        currency: c.amount.currency().code().to_owned(),
    };
    Ok(Json(reply).into_response())
}

async fn operation_status(
    State(st): St,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Answer {
    api_gate(&st, &headers).await?;
    let op = st
        .with_book(|b| b.operations.get(&reference).cloned())?
        .ok_or_else(|| api_error(StatusCode::NOT_FOUND, "not_found", "no such operation"))?;
    Ok(Json(OperationReply {
        reference: op.reference,
        status: op.status.to_owned(),
    })
    .into_response())
}

/// Record a payout once per client id; a retry gets the first. `true`: new.
fn record_operation(st: &SandboxState, op: Operation) -> Result<(Operation, bool), Fail> {
    st.with_book(|b| {
        if let Some(existing) = b
            .by_client_id
            .get(&op.client_id)
            .and_then(|r| b.operations.get(r))
        {
            return Ok((existing.clone(), false));
        }
        if b.full() {
            return Err(full());
        }
        b.by_client_id
            .insert(op.client_id.clone(), op.reference.clone());
        b.operations.insert(op.reference.clone(), op.clone());
        Ok((op, true))
    })?
}

async fn create_payout(State(st): St, headers: HeaderMap, raw: axum::body::Bytes) -> Answer {
    api_gate(&st, &headers).await?;
    let body: PayoutBody = parse_body(&raw)?;
    client_id("payout_id", &body.payout_id)?;
    let amount = parse_money(&body.amount, &body.currency)?;
    let op = Operation {
        reference: new_ulid("po").to_ascii_lowercase(),
        client_id: body.payout_id.clone(),
        amount,
        status: "pending",
        payment_reference: None,
    };
    let (op, new) = record_operation(&st, op)?;
    if new {
        let outcome = if body.destination_token.as_deref() == Some(FAILING_DESTINATION) {
            "failed"
        } else {
            "succeeded"
        };
        let (st2, op2) = (Arc::clone(&st), op.clone());
        tokio::spawn(async move {
            tokio::time::sleep(st2.opts.payout_delay).await;
            complete_payout(&st2, &op2, outcome);
        });
    }
    Ok(accepted(&op))
}

fn complete_payout(st: &Arc<SandboxState>, op: &Operation, status: &'static str) {
    let today = Day::today();
    let fee = st.opts.fixed_fee_minor;
    let _ = st.with_book(|b| {
        if let Some(o) = b.operations.get_mut(&op.reference) {
            o.status = status;
        }
        if status == "succeeded" {
            // Money paid out is on the day's settlement, our payout id in `payment_id`.
            let line = SettlementLine {
                reference: op.reference.clone(),
                payment_id: op.client_id.clone(),
                kind: "payout",
                gross_minor: -op.amount.minor(),
                fee_minor: fee,
                currency: op.amount.currency(),
                settled_date: today.to_string(),
            };
            b.settle(line, today);
        }
    });
    let body = json!({
        "event_id": new_ulid("evt"),
        "type": "payout",
        "payout_id": op.client_id,
        "reference": op.reference,
        "status": status,
        "amount": op.amount.to_decimal(),
        "currency": op.amount.currency().code(),
        "timestamp": now_s(),
    });
    send_events(st, "payout", vec![(status.to_owned(), body)]);
}

/// Book a refund: checked, booked and settled in one critical section, so
/// two refunds racing can never exceed the captured amount. Returns the
/// refund and, when new, the refunded payment's id.
fn book_refund(
    b: &mut Book,
    body: &RefundBody,
    amount: Money,
    today: Day,
) -> Result<(Operation, Option<String>), Fail> {
    if let Some(existing) = b
        .by_client_id
        .get(&body.refund_id)
        .and_then(|r| b.operations.get(r))
    {
        return Ok((existing.clone(), None));
    }
    let refundable = b
        .refundable(&body.payment_reference, amount.currency())
        .ok_or_else(|| {
            invalid(
                "payment_reference",
                "no captured payment with this reference and currency",
            )
        })?;
    if amount.minor() > refundable {
        return Err(invalid(
            "amount",
            "more than the payment's refundable amount",
        ));
    }
    if b.full() {
        return Err(full());
    }
    let charge = b
        .charges
        .get_mut(&body.payment_reference)
        .ok_or_else(|| invalid("payment_reference", "unknown"))?;
    charge.refunded_minor += amount.minor();
    let payment_id = charge.payment_id.clone();
    let reference = new_ulid("rf").to_ascii_lowercase();
    let op = Operation {
        reference: reference.clone(),
        client_id: body.refund_id.clone(),
        amount,
        status: "succeeded",
        payment_reference: Some(body.payment_reference.clone()),
    };
    b.by_client_id
        .insert(op.client_id.clone(), reference.clone());
    b.operations.insert(reference.clone(), op.clone());
    let line = SettlementLine {
        reference,
        payment_id: payment_id.clone(),
        kind: "refund",
        gross_minor: -amount.minor(),
        fee_minor: 0,
        currency: amount.currency(),
        settled_date: today.to_string(),
    };
    b.settle(line, today);
    Ok((op, Some(payment_id)))
}

async fn create_refund(State(st): St, headers: HeaderMap, raw: axum::body::Bytes) -> Answer {
    api_gate(&st, &headers).await?;
    let body: RefundBody = parse_body(&raw)?;
    client_id("refund_id", &body.refund_id)?;
    let amount = parse_money(&body.amount, &body.currency)?;
    let (op, payment_id) = st.with_book(|b| book_refund(b, &body, amount, Day::today()))??;
    if let Some(payment_id) = payment_id {
        let event = json!({
            "event_id": new_ulid("evt"),
            "type": "refund",
            "refund_id": op.client_id,
            "reference": op.reference,
            "payment_id": payment_id,
            "payment_reference": op.payment_reference,
            "status": "succeeded",
            "amount": op.amount.to_decimal(),
            "currency": op.amount.currency().code(),
            "timestamp": now_s(),
        });
        send_events(&st, "refund", vec![("succeeded".to_owned(), event)]);
    }
    Ok(accepted(&op))
}

async fn settlement(State(st): St, headers: HeaderMap, Path(day): Path<String>) -> Answer {
    api_gate(&st, &headers).await?;
    let day = Day::parse(&day).ok_or_else(|| invalid("day", "must be YYYY-MM-DD"))?;
    let csv = st.with_book(|b| {
        let mut out = String::from(SETTLEMENT_HEADER);
        out.push('\n');
        for line in b.settlements.get(&day).into_iter().flatten() {
            if let Some(text) = line.to_csv() {
                out.push_str(&text);
                out.push('\n');
            }
        }
        out
    })?;
    Ok(([("content-type", "text/csv; charset=utf-8")], csv).into_response())
}

fn page_fail(st: &SandboxState, status: StatusCode, title: &str, text: &str) -> Fail {
    Fail::Page(status, pages::message(st.opts.name.as_str(), title, text))
}

fn page(body: String) -> Answer {
    Ok(Html(body).into_response())
}

/// The charge behind a checkout page, or the page to show instead.
fn charge_for_page(st: &SandboxState, reference: &str) -> Result<Charge, Fail> {
    if st.chaos().outage {
        let why = "This PSP is down. Try again later.";
        return Err(page_fail(
            st,
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            why,
        ));
    }
    st.with_book(|b| b.charges.get(reference).cloned())?
        .ok_or_else(|| {
            page_fail(
                st,
                StatusCode::NOT_FOUND,
                "Unknown payment",
                "No payment has this reference.",
            )
        })
}

async fn checkout_page(State(st): St, Path(reference): Path<String>) -> Answer {
    let c = charge_for_page(&st, &reference)?;
    let name = st.opts.name.as_str();
    if c.status.is_open() {
        page(pages::checkout(name, &c))
    } else {
        page(pages::result(name, &c))
    }
}

async fn challenge_page(State(st): St, Path(reference): Path<String>) -> Answer {
    let c = charge_for_page(&st, &reference)?;
    let name = st.opts.name.as_str();
    if !c.status.is_open() {
        return page(pages::result(name, &c));
    }
    st.with_book(|b| {
        if let Some(ch) = b.charges.get_mut(&reference) {
            if ch.status == ChargeStatus::Created {
                ch.status = ChargeStatus::Challenged;
            }
        }
    })?;
    page(pages::challenge(name, &c, None))
}

/// `otp=<code>` from a urlencoded form body.
fn form_otp(raw: &[u8]) -> Option<String> {
    std::str::from_utf8(raw)
        .ok()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("otp="))
        .map(|v| v.chars().filter(char::is_ascii_digit).collect())
}

/// Decide a checkout once: a second click (or a second tab) sees the first
/// outcome. A capture adds its settlement line. `true`: decided now.
fn decide(
    st: &SandboxState,
    b: &mut Book,
    reference: &str,
    target: ChargeStatus,
) -> Option<(Charge, bool)> {
    let ch = b.charges.get_mut(reference)?;
    if !ch.status.is_open() {
        return Some((ch.clone(), false));
    }
    ch.status = target;
    let ch = ch.clone();
    if target == ChargeStatus::Captured {
        let today = Day::today();
        let fee =
            fee_minor(ch.amount.minor(), st.opts.fee_bps, st.opts.fixed_fee_minor).unwrap_or(0);
        let line = SettlementLine {
            reference: ch.reference.clone(),
            payment_id: ch.payment_id.clone(),
            kind: "payment",
            gross_minor: ch.amount.minor(),
            fee_minor: fee,
            currency: ch.amount.currency(),
            settled_date: today.to_string(),
        };
        b.settle(line, today);
    }
    Some((ch, true))
}

async fn checkout_action(
    State(st): St,
    Path((reference, action)): Path<(String, String)>,
    raw: axum::body::Bytes,
) -> Answer {
    let name = st.opts.name.as_str();
    let c = charge_for_page(&st, &reference)?;
    let target = match action.as_str() {
        "approve" if form_otp(&raw).as_deref() != Some(pages::OTP) => {
            let why = "Wrong code: the payment is not approved.";
            return page(pages::challenge(name, &c, Some(why)));
        }
        "approve" => ChargeStatus::Captured,
        "decline" => ChargeStatus::Failed,
        "abandon" => ChargeStatus::Canceled,
        _ => return Err(page_fail(&st, StatusCode::NOT_FOUND, "Unknown action", "")),
    };
    let (charge, changed) = st
        .with_book(|b| decide(&st, b, &reference, target))?
        .ok_or_else(|| page_fail(&st, StatusCode::NOT_FOUND, "Unknown payment", ""))?;
    if changed {
        let statuses: &[&str] = match target {
            ChargeStatus::Captured => &["authorized", "captured"],
            ChargeStatus::Failed => &["failed"],
            _ => &["canceled"],
        };
        let events = statuses
            .iter()
            .map(|s| ((*s).to_owned(), payment_event(&charge, s)))
            .collect();
        send_events(&st, "payment", events);
    }
    page(pages::result(name, &charge))
}

fn payment_event(c: &Charge, status: &str) -> serde_json::Value {
    let body = WebhookBody {
        event_id: new_ulid("evt"),
        payment_id: c.payment_id.clone(),
        reference: Some(c.reference.clone()),
        status: status.to_owned(),
        amount: c.amount.to_decimal(),
        currency: c.amount.currency().code().to_owned(),
        timestamp: Some(now_s().into()),
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

async fn chaos_view(State(st): St, headers: HeaderMap) -> Answer {
    admin_gate(&st, &headers)?;
    Ok(Json(st.chaos()).into_response())
}

async fn chaos_set(State(st): St, headers: HeaderMap, raw: axum::body::Bytes) -> Answer {
    admin_gate(&st, &headers)?;
    let patch: ChaosPatch = parse_body(&raw)?;
    let mut chaos = st.chaos.write().map_err(|_| {
        api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "chaos poisoned",
        )
    })?;
    let next = chaos
        .patched(patch)
        .map_err(|(field, why)| invalid(field, why))?;
    *chaos = next.clone();
    tracing::warn!(psp = %st.opts.name, chaos = ?next, "sandbox chaos knobs set");
    Ok(Json(next).into_response())
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<usize>,
}

async fn deliveries(State(st): St, headers: HeaderMap, Query(q): Query<LimitQuery>) -> Answer {
    admin_gate(&st, &headers)?;
    let limit = q.limit.unwrap_or(100).min(MAX_DELIVERIES_SHOWN);
    Ok(Json(json!({"deliveries": st.deliveries.recent(limit)})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChargebackBody {
    reference: String,
}

/// A chargeback on a captured payment: a settlement line and a webhook.
async fn chargeback(State(st): St, headers: HeaderMap, raw: axum::body::Bytes) -> Answer {
    admin_gate(&st, &headers)?;
    let body: ChargebackBody = parse_body(&raw)?;
    let today = Day::today();
    let c = st
        .with_book(|b| {
            let c = b
                .charges
                .get(&body.reference)
                .filter(|c| c.status == ChargeStatus::Captured)?
                .clone();
            let line = SettlementLine {
                reference: format!("cb_{}", c.reference),
                payment_id: c.payment_id.clone(),
                kind: "chargeback",
                gross_minor: -c.amount.minor(),
                fee_minor: st.opts.fixed_fee_minor,
                currency: c.amount.currency(),
                settled_date: today.to_string(),
            };
            b.settle(line, today);
            Some(c)
        })?
        .ok_or_else(|| invalid("reference", "no captured payment with this reference"))?;
    let mut ev = payment_event(&c, "charged_back");
    ev["type"] = json!("chargeback");
    send_events(&st, "chargeback", vec![("charged_back".to_owned(), ev)]);
    let reply = json!({"reference": c.reference, "status": "charged_back"});
    Ok((StatusCode::ACCEPTED, Json(reply)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeeBody {
    amount: String,
    currency: String,
}

/// An account fee line (type `fee`) on today's settlement report.
async fn account_fee(State(st): St, headers: HeaderMap, raw: axum::body::Bytes) -> Answer {
    admin_gate(&st, &headers)?;
    let body: FeeBody = parse_body(&raw)?;
    let amount = parse_money(&body.amount, &body.currency)?;
    let today = Day::today();
    let reference = new_ulid("fee").to_ascii_lowercase();
    let line = SettlementLine {
        reference: reference.clone(),
        payment_id: String::new(),
        kind: "fee",
        gross_minor: 0,
        fee_minor: amount.minor(),
        currency: amount.currency(),
        settled_date: today.to_string(),
    };
    st.with_book(|b| b.settle(line, today))?;
    Ok((StatusCode::CREATED, Json(json!({"reference": reference}))).into_response())
}
