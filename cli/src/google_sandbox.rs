//! The Google side of the redirect FOP, in the local stack (`/google-sandbox`),
//! like the sandbox PSPs are the PSPs' side:
//! - it starts redirect payments and refunds against payloop's facade
//!   (`POST /google-sandbox/payments`, `POST /google-sandbox/refunds`);
//! - it hosts the methods payloop calls (`/google-sandbox/gsp/redirect-fop-v1/<method>/<account>`)
//!   and keeps every call, duplicates counted (`GET /google-sandbox/notifications`);
//! - it raises a remittance statement for a day from the successes it was
//!   told of (`POST /google-sandbox/statements`, optionally with a planted
//!   mismatch), serves its details page by page and records its acceptance;
//! - `POST /google-sandbox/fail` makes its next N hosted calls answer 503
//!   (retries can be watched).
//!
//! State is in memory: a sandbox, not a ledger.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use google_facade::outbound::post_sealed;
use payloop::clock::Day;
use payloop::domain::google::codec::Codec;
use payloop::domain::google::outbound::Hosted;
use payloop::domain::google::wire;
use serde_json::{json, Value};

/// The account the sandbox speaks for unless told otherwise.
pub const DEFAULT_ACCOUNT: &str = "sandbox-merchant";
/// Calls kept (the oldest go first beyond this).
const MAX_KEPT: usize = 10_000;

/// One call payloop made, by method and requestId.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Received {
    pub method: String,
    pub account: String,
    pub request_id: String,
    /// The request without its header (the same on every retry).
    pub body: Value,
    /// How many times it arrived (retries and duplicates included).
    pub count: u32,
    /// A retry whose content differed from the first (never expected).
    pub changed: bool,
    pub first_ms: i64,
}

#[derive(Debug, Clone)]
struct Started {
    account: String,
    micros: i64,
    currency: String,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Statement {
    account: String,
    summary: Value,
    capture_events: Vec<Value>,
    refund_events: Vec<Value>,
    accepted: bool,
}

#[derive(Default)]
struct Book {
    received: BTreeMap<(String, String), Received>,
    order: Vec<(String, String)>,
    payments: BTreeMap<String, Started>,
    refunds: BTreeMap<String, Started>,
    statements: BTreeMap<String, Statement>,
    fail_next: u32,
    sequence: u64,
}

/// The sandbox: where payloop is, how messages are sealed, what happened.
#[derive(Clone)]
pub struct GoogleSandbox {
    payloop_base: String,
    codec: Arc<dyn Codec>,
    http: reqwest::Client,
    book: Arc<Mutex<Book>>,
}

impl GoogleSandbox {
    pub fn new(payloop_base: &str, codec: Arc<dyn Codec>) -> Result<GoogleSandbox, String> {
        Ok(GoogleSandbox {
            payloop_base: payloop_base.trim_end_matches('/').to_owned(),
            codec,
            http: payloop::psp::https::local_client().map_err(|e| e.to_string())?,
            book: Arc::default(),
        })
    }

    /// Google's `…/gsp` base URL as payloop should call it.
    pub fn gsp_base(payloop_base: &str) -> String {
        format!("{}/google-sandbox/gsp", payloop_base.trim_end_matches('/'))
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/google-sandbox/notifications", get(notifications))
            .route("/google-sandbox/payments", post(start_payment))
            .route("/google-sandbox/refunds", post(start_refund))
            .route("/google-sandbox/statements", post(raise_statement))
            .route("/google-sandbox/fail", post(fail_next))
            .route(
                "/google-sandbox/gsp/redirect-fop-v1/{method}/{account}",
                post(hosted),
            )
            .with_state(self)
    }

    /// Call one of payloop's facade methods as Google would.
    async fn call_payloop(&self, path: &str, body: &Value) -> Result<(u16, Value), String> {
        let url = format!("{}{path}", self.payloop_base);
        let (status, answer) = post_sealed(&self.http, self.codec.as_ref(), &url, body)
            .await
            .map_err(|e| e.to_string())?;
        Ok((status, answer.unwrap_or(Value::Null)))
    }

    fn request_id(&self, what: &str) -> String {
        let mut b = self.book();
        b.sequence += 1;
        format!("gs-{what}-{}-{}", payloop::clock::now_ms(), b.sequence)
    }
}

fn header_for(account: &str, request_id: &str) -> Value {
    json!({
        "requestId": request_id,
        "requestTimestamp": {"epochMillis": payloop::clock::now_ms().to_string()},
        "protocolVersion": {"major": 1},
        "paymentIntegratorAccountId": account,
    })
}

fn bad(field: &str, why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"field": field, "message": why}})),
    )
        .into_response()
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

fn account_of(v: &Value) -> String {
    field(v, "account").unwrap_or(DEFAULT_ACCOUNT).to_owned()
}

/// `GET /google-sandbox/notifications`: every call payloop made, oldest first.
async fn notifications(State(s): State<GoogleSandbox>) -> Response {
    let b = s.book();
    let list: Vec<&Received> = b.order.iter().filter_map(|k| b.received.get(k)).collect();
    let statements: Vec<Value> = b
        .statements
        .iter()
        .map(|(id, st)| json!({"statement_id": id, "account": st.account, "accepted": st.accepted}))
        .collect();
    Json(json!({"notifications": list, "statements": statements})).into_response()
}

/// `POST /google-sandbox/fail {"next": N}`: the next N hosted calls get 503.
async fn fail_next(State(s): State<GoogleSandbox>, Json(v): Json<Value>) -> Response {
    let Some(n) = v.get("next").and_then(Value::as_u64).filter(|n| *n <= 1000) else {
        return bad("next", "must be a count of calls, 0 to 1000");
    };
    s.book().fail_next = n as u32;
    Json(json!({"fail_next": n})).into_response()
}

/// `POST /google-sandbox/payments {"amount_micros", "currency", "issuer"?, "account"?}`:
/// generateRedirectPaymentUrl against payloop; its answer and requestId.
async fn start_payment(State(s): State<GoogleSandbox>, Json(v): Json<Value>) -> Response {
    let Some(micros) = field(&v, "amount_micros").and_then(|m| m.parse::<i64>().ok()) else {
        return bad("amount_micros", "must be an integer in a string");
    };
    let Some(currency) = field(&v, "currency") else {
        return bad("currency", "is required");
    };
    let account = account_of(&v);
    let fop = match field(&v, "issuer") {
        Some(bank) => json!({"issuerId": {"value": bank}}),
        None => json!({"noneChosen": {}}),
    };
    let request_id = s.request_id("pay");
    let body = json!({
        "requestHeader": header_for(&account, &request_id),
        "transactionAmount": {"amountMicros": micros.to_string(), "currencyCode": currency},
        "transactionDescription": "sandbox purchase",
        "formOfPayment": fop,
        "callbackUrl": format!("{}/google-sandbox/notifications", s.payloop_base),
    });
    let path = "/v1/payment-integrator-redirect/generateRedirectPaymentUrl";
    match s.call_payloop(path, &body).await {
        Ok((status, answer)) => {
            if status == 200 {
                let started = Started {
                    account: account.clone(),
                    micros,
                    currency: currency.to_owned(),
                };
                s.book().payments.insert(request_id.clone(), started);
            }
            let url = answer
                .pointer("/result/success/redirectDetails/getMethod/url")
                .cloned()
                .unwrap_or(Value::Null);
            Json(json!({"request_id": request_id, "status": status, "redirect_url": url, "response": answer}))
                .into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, Json(json!({"error": e}))).into_response(),
    }
}

/// `POST /google-sandbox/refunds {"capture_request_id", "amount_micros"}`:
/// asynchronousRefund against payloop.
async fn start_refund(State(s): State<GoogleSandbox>, Json(v): Json<Value>) -> Response {
    let Some(capture) = field(&v, "capture_request_id").map(str::to_owned) else {
        return bad("capture_request_id", "is required");
    };
    let Some(micros) = field(&v, "amount_micros").and_then(|m| m.parse::<i64>().ok()) else {
        return bad("amount_micros", "must be an integer in a string");
    };
    let Some(paid) = s.book().payments.get(&capture).cloned() else {
        return bad(
            "capture_request_id",
            "is not a payment this sandbox started",
        );
    };
    let request_id = s.request_id("refund");
    let body = json!({
        "requestHeader": header_for(&paid.account, &request_id),
        "captureRequestId": capture,
        "refundAmount": {"amountMicros": micros.to_string(), "currencyCode": paid.currency},
    });
    let path = "/v1/payment-integrator-redirect/asynchronousRefund";
    match s.call_payloop(path, &body).await {
        Ok((status, answer)) => {
            if status == 200 {
                let started = Started { micros, ..paid };
                s.book().refunds.insert(request_id.clone(), started);
            }
            Json(json!({"request_id": request_id, "status": status, "response": answer}))
                .into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, Json(json!({"error": e}))).into_response(),
    }
}

/// A successful payment or refund the sandbox was told of on `day`.
fn successes(b: &Book, account: &str, day: Day) -> (Vec<Value>, Vec<Value>, i64, String) {
    let mut captures = Vec::new();
    let mut refunds = Vec::new();
    let mut total = 0i64;
    let mut currency = "EUR".to_owned();
    for r in b.order.iter().filter_map(|k| b.received.get(k)) {
        let told_success = r.body.pointer("/result/success").is_some();
        if r.account != account || !told_success || Day::of_ms(r.first_ms) != day {
            continue;
        }
        let (list, origin, request, sign) = match r.method.as_str() {
            "redirectPaymentCompleteNotification" => (
                &mut captures,
                &b.payments,
                field(&r.body, "redirectRequestId"),
                1,
            ),
            "refundResultNotification" => (
                &mut refunds,
                &b.refunds,
                field(&r.body, "refundRequestId"),
                -1,
            ),
            _ => continue,
        };
        let Some((request, started)) = request.and_then(|q| origin.get(q).map(|s| (q, s))) else {
            continue;
        };
        let charge = started.micros.saturating_mul(sign);
        total = total.saturating_add(charge);
        currency.clone_from(&started.currency);
        list.push(json!({
            "eventRequestId": request,
            "paymentIntegratorEventId": request,
            "eventCharge": {"amountMicros": charge.to_string(), "currencyCode": started.currency},
            "eventFee": {"amountMicros": "0", "currencyCode": started.currency},
        }));
    }
    (captures, refunds, total, currency)
}

/// `POST /google-sandbox/statements {"date": "YYYY-MM-DD", "account"?, "plant"?}`:
/// a statement of that day's successes, notified to payloop. `plant`
/// changes it: `{"amount_delta_micros": n}` on the first capture, and/or
/// `{"unknown_capture": true}` (an event payloop never told of).
async fn raise_statement(State(s): State<GoogleSandbox>, Json(v): Json<Value>) -> Response {
    let Some(day) = field(&v, "date").and_then(Day::parse) else {
        return bad("date", "must be a date YYYY-MM-DD");
    };
    let account = account_of(&v);
    let (mut captures, refunds, mut total, currency) = successes(&s.book(), &account, day);
    let plant = v.get("plant").cloned().unwrap_or(Value::Null);
    if let Some(delta) = plant.get("amount_delta_micros").and_then(Value::as_i64) {
        if let Some(first) = captures.first_mut() {
            let was: i64 = first
                .pointer("/eventCharge/amountMicros")
                .and_then(Value::as_str)
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            first["eventCharge"]["amountMicros"] = json!(was.saturating_add(delta).to_string());
            total = total.saturating_add(delta);
        }
    }
    if plant.get("unknown_capture").and_then(Value::as_bool) == Some(true) {
        captures.push(json!({
            "eventRequestId": "gs-unknown-capture",
            "eventCharge": {"amountMicros": "5000000", "currencyCode": currency},
        }));
        total = total.saturating_add(5_000_000);
    }
    let statement_id = s.request_id("statement");
    let ts = |ms: i64| json!({"epochMillis": ms.to_string()});
    let start = day.start_ms();
    let summary = json!({
        "statementDate": ts(day.next().start_ms()),
        "billingPeriod": {"startDate": ts(start), "endDate": ts(day.next().start_ms() - 1)},
        "dateDue": ts(day.next().next().start_ms()),
        "totalDueByIntegrator": {"amountMicros": total.to_string(), "currencyCode": currency},
        "totalEvents": (captures.len() + refunds.len()).to_string(),
    });
    let events = captures.len() + refunds.len();
    s.book().statements.insert(
        statement_id.clone(),
        Statement {
            account: account.clone(),
            summary: summary.clone(),
            capture_events: captures,
            refund_events: refunds,
            accepted: false,
        },
    );
    let body = json!({
        "requestHeader": header_for(&account, &statement_id),
        "remittanceStatementSummary": summary,
    });
    match s
        .call_payloop("/v1/remittanceStatementNotification", &body)
        .await
    {
        Ok((status, answer)) => Json(json!({
            "statement_id": statement_id, "events": events, "status": status, "response": answer,
        }))
        .into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, Json(json!({"error": e}))).into_response(),
    }
}

/// The methods Google hosts, as payloop calls them.
async fn hosted(
    State(s): State<GoogleSandbox>,
    Path((method, account)): Path<(String, String)>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let now = payloop::clock::now_ms();
    let reply = |status: StatusCode, v: Value| -> Response {
        match s.codec.seal(&v) {
            Ok((ct, bytes)) => (status, [(header::CONTENT_TYPE, ct)], bytes).into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    };
    let error = |code: wire::GspCode, why: &str| {
        let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST);
        reply(status, wire::GspError::new(code, why).body(now))
    };
    let Some(m) = Hosted::parse(&method) else {
        return error(wire::GspCode::InvalidIdentifier, "no such method");
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let body = match s.codec.open(content_type, &raw) {
        Ok(b) => b,
        Err(e) => return error(e.code, &e.description),
    };
    let header = match wire::RequestHeader::parse(&body, now) {
        Ok(h) => h,
        Err(e) => return error(e.code, &e.description),
    };
    if header.account_id != account {
        return error(
            wire::GspCode::InvalidFieldValue,
            "the path and header name other accounts",
        );
    }
    let mut content = body.clone();
    if let Some(o) = content.as_object_mut() {
        o.remove("requestHeader");
    }
    {
        let mut b = s.book();
        let key = (m.name().to_owned(), header.request_id.clone());
        match b.received.get_mut(&key) {
            Some(r) => {
                r.count += 1;
                r.changed |= r.body != content;
            }
            None => {
                if b.order.len() >= MAX_KEPT {
                    let old = b.order.remove(0);
                    b.received.remove(&old);
                }
                b.order.push(key.clone());
                let r = Received {
                    method: m.name().to_owned(),
                    account: account.clone(),
                    request_id: header.request_id.clone(),
                    body: content.clone(),
                    count: 1,
                    changed: false,
                    first_ms: now,
                };
                b.received.insert(key, r);
            }
        }
        if b.fail_next > 0 {
            b.fail_next -= 1;
            drop(b);
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"responseHeader": wire::response_header(now)}),
            );
        }
    }
    let head = wire::response_header(now);
    match m {
        Hosted::RedirectPaymentCompleteNotification | Hosted::RefundResultNotification => reply(
            StatusCode::OK,
            json!({"responseHeader": head, "result": {"accepted": {}}}),
        ),
        Hosted::RemittanceStatementDetails => details(&s, &content, head, &error),
        Hosted::AcceptRemittanceStatement => {
            let id = field(&content, "statementId").unwrap_or("");
            match s.book().statements.get_mut(id) {
                Some(st) => st.accepted = true,
                None => return error(wire::GspCode::InvalidIdentifier, "no such statement"),
            }
            reply(
                StatusCode::OK,
                json!({"responseHeader": head, "result": {"success": {}}}),
            )
        }
    }
}

/// One page of a statement's events (captures first, then refunds).
fn details(
    s: &GoogleSandbox,
    content: &Value,
    head: Value,
    error: &dyn Fn(wire::GspCode, &str) -> Response,
) -> Response {
    let id = field(content, "statementId").unwrap_or("");
    let Some(st) = s.book().statements.get(id).cloned() else {
        return error(wire::GspCode::InvalidIdentifier, "no such statement");
    };
    // Integers as strings or numbers, like every Google int64.
    let int = |name: &str| {
        content
            .get(name)
            .and_then(|v| wire::int64(v, name).ok())
            .and_then(|n| usize::try_from(n).ok())
    };
    let offset = int("eventOffset").unwrap_or(0);
    let size = int("numberOfEvents")
        .filter(|n| (1..=1000).contains(n))
        .unwrap_or(1000);
    let all: Vec<(bool, &Value)> = st
        .capture_events
        .iter()
        .map(|e| (true, e))
        .chain(st.refund_events.iter().map(|e| (false, e)))
        .collect();
    let page: Vec<&(bool, &Value)> = all.iter().skip(offset).take(size).collect();
    let captures: Vec<&Value> = page.iter().filter(|(c, _)| *c).map(|(_, e)| *e).collect();
    let refunds: Vec<&Value> = page.iter().filter(|(c, _)| !*c).map(|(_, e)| *e).collect();
    let mut out = json!({
        "responseHeader": head,
        "eventOffset": offset.to_string(),
        "totalEvents": all.len().to_string(),
        "remittanceStatementSummary": st.summary,
        "captureEvents": captures,
        "refundEvents": refunds,
    });
    let next = offset.saturating_add(size);
    if next < all.len() {
        out["nextEventOffset"] = json!(next.to_string());
    }
    match s.codec.seal(&out) {
        Ok((ct, bytes)) => (StatusCode::OK, [(header::CONTENT_TYPE, ct)], bytes).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
