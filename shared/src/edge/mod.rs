//! The HTTP edge shared by every function: trace ids, the error renderer,
//! API-key auth, bounded body reading, JSON parsing with PAN refusal, and the
//! idempotent-request wrapper. Handlers stay thin: decode, call one domain
//! function, encode.

use std::future::Future;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use serde::Serialize;

use crate::config::KeyRing;
use crate::domain::idempotency::{self, Begin, IdemRequest};
pub use crate::domain::request::Body as JsonBody;
use crate::domain::Ctx;
use crate::error::Error;
use crate::ids::{new_ulid, IdempotencyKey};

mod path;
mod query;
pub use path::Path;
pub use query::{QueryParams, MAX_QUERY_BYTES, MAX_QUERY_PARAMS};

/// Largest request body any endpoint accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const TRACE_HEADER: &str = "x-trace-id";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

tokio::task_local! {
    static TRACE_ID: String;
}

/// The current request's trace id ("-" outside a request).
pub fn trace_id() -> String {
    TRACE_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_owned())
}

fn incoming_trace_id(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(TRACE_HEADER)?.to_str().ok()?;
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| v.to_owned())
}

/// Middleware: give every request a trace id (kept from `X-Trace-Id` when
/// sane), put it in the response header and in one access log line.
pub async fn trace_layer(req: Request, next: Next) -> Response {
    let id = incoming_trace_id(req.headers()).unwrap_or_else(|| new_ulid("tr"));
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let started = Instant::now();
    let mut resp = TRACE_ID.scope(id.clone(), next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(TRACE_HEADER, v);
    }
    tracing::info!(trace_id = %id, %method, %path, status = resp.status().as_u16(), micros = started.elapsed().as_micros() as u64, "request");
    resp
}

/// An error on its way out: rendered by the one table.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let row = self.0.row();
        if row.status >= 500 {
            tracing::error!(trace_id = %trace_id(), code = row.code, error = %self.0, "request failed");
        }
        let status = StatusCode::from_u16(row.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(status, &self.0.body(&trace_id()).to_string())
    }
}

pub fn json_response(status: StatusCode, body: &str) -> Response {
    let mut resp = Response::new(Body::from(body.to_owned()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    resp
}

/// The raw request body, read with a hard size limit.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                ApiError(Error::PayloadTooLarge {
                    limit: MAX_BODY_BYTES,
                })
            })?;
        Ok(RawBody(bytes))
    }
}

/// `Authorization: Bearer <key>` checked against a key ring; returns the
/// key's name (the caller's scope). The key itself is never logged.
pub fn authenticate<'a>(headers: &HeaderMap, ring: &'a KeyRing) -> Result<&'a str, Error> {
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(Error::Unauthorized)?;
    ring.authenticate(presented.trim())
        .ok_or(Error::Unauthorized)
}

/// The request body as the domain reads it: a JSON object, no card number.
pub fn parse_body(raw: &[u8]) -> Result<JsonBody, Error> {
    JsonBody::from_json(raw)
}

/// The `Idempotency-Key` header, or `fallback` (a body field) when absent.
pub fn idempotency_key(
    headers: &HeaderMap,
    fallback: Option<&str>,
) -> Result<IdempotencyKey, Error> {
    let raw = match headers.get(IDEMPOTENCY_HEADER) {
        Some(v) => v
            .to_str()
            .map_err(|_| Error::validation("Idempotency-Key", "must be visible ASCII"))?,
        None => fallback.ok_or(Error::IdempotencyKeyRequired)?,
    };
    IdempotencyKey::parse(raw).map_err(|e| Error::validation("Idempotency-Key", e.to_string()))
}

/// The idempotency claim of one request: its scope and key, and the
/// fingerprint of its method, path and body.
fn idem_request<'a>(
    ctx: &Ctx,
    scope: &'a str,
    key: &'a IdempotencyKey,
    (method, path, raw): (&str, &str, &[u8]),
) -> IdemRequest<'a> {
    IdemRequest {
        scope,
        key,
        fingerprint: idempotency::fingerprint(method, path, raw),
        now_ms: ctx.now_ms(),
    }
}

/// Run `work` at most once per (scope, key): replay a stored 2xx, refuse a
/// reused or in-flight key, remember only 2xx responses. `work` gets the id
/// reserved for what it creates (a ULID), the same on every attempt.
pub async fn idempotent<F, Fut, T>(
    ctx: &Ctx,
    scope: &str,
    key: &IdempotencyKey,
    method: &str,
    path: &str,
    raw: &[u8],
    work: F,
) -> Response
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<(StatusCode, T), Error>>,
    T: Serialize,
{
    let req = idem_request(ctx, scope, key, (method, path, raw));
    let claim = match idempotency::begin(ctx.store.as_ref(), &ctx.config, &req).await {
        Ok(Begin::Fresh(claim)) => claim,
        Ok(Begin::Replay(stored)) => return replayed(stored.status, &stored.body),
        Ok(Begin::InFlight(_)) => return ApiError(Error::RequestInProgress).into_response(),
        Err(e) => return ApiError(e).into_response(),
    };
    match work(claim.resource().to_owned()).await {
        Ok((status, view)) => store_answer(ctx, claim, encode(status, &view)).await,
        Err(e) => fail(ctx, claim, e).await,
    }
}

fn encode<T: Serialize>(
    status: StatusCode,
    view: &T,
) -> Result<(StatusCode, String), serde_json::Error> {
    serde_json::to_string(view).map(|b| (status, b))
}

/// A failed work's answer: never remembered (see `remembers`), the key is
/// released, and a retry of the same request is evaluated afresh.
async fn fail(ctx: &Ctx, claim: idempotency::Claim, e: Error) -> Response {
    let status = e.row().status;
    let body = if idempotency::remembers(status) {
        e.body(&trace_id()).to_string()
    } else {
        String::new()
    };
    if let Err(fin) = idempotency::finish(ctx.store.as_ref(), claim, status, &body).await {
        tracing::warn!(error = %fin, "could not finish idempotency key");
    }
    ApiError(e).into_response()
}

/// A 2xx remembered under the key before it is answered.
async fn store_answer(
    ctx: &Ctx,
    claim: idempotency::Claim,
    encoded: Result<(StatusCode, String), serde_json::Error>,
) -> Response {
    let (status, body) = match encoded {
        Ok(answer) => answer,
        Err(e) => {
            return fail(
                ctx,
                claim,
                Error::Internal(format!("response encoding: {e}")),
            )
            .await
        }
    };
    if let Err(e) = idempotency::finish(ctx.store.as_ref(), claim, status.as_u16(), &body).await {
        // The work is done but its answer is not remembered: answering it
        // anyway would let the retry (after the lease lapses) compute and
        // store another one. Retryable instead: every 2xx a client ever
        // sees is the stored one, replayed byte for byte.
        tracing::warn!(error = %e, "could not store idempotent response; answering retryable");
        return ApiError(Error::Unavailable(
            "the response could not be stored".into(),
        ))
        .into_response();
    }
    json_response(status, &body)
}

/// A 2xx of [`idempotent_recalled`]'s work, and whether the record the work
/// wrote is its answer (`recalled`: the claim is not finished, a retry
/// rebuilds the same body from the record) or it must be stored.
pub struct Answer<T> {
    pub status: StatusCode,
    pub view: T,
    pub recalled: bool,
}

/// As [`idempotent`], for an endpoint whose work writes a record its 2xx
/// can be rebuilt from, byte for byte (`recall`, given the reserved id):
/// such an answer costs no second write. A retry that finds the key in
/// flight asks `recall` first; only when the work left no record is it
/// 409 `request_in_progress` (or, the lease lapsed, taken over).
#[allow(clippy::too_many_arguments)]
pub async fn idempotent_recalled<F, Fut, R, RFut, T>(
    ctx: &Ctx,
    scope: &str,
    key: &IdempotencyKey,
    method: &str,
    path: &str,
    raw: &[u8],
    work: F,
    recall: R,
) -> Response
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<Answer<T>, Error>>,
    R: FnOnce(String) -> RFut,
    RFut: Future<Output = Result<Option<(StatusCode, T)>, Error>>,
    T: Serialize,
{
    let req = idem_request(ctx, scope, key, (method, path, raw));
    let store = ctx.store.as_ref();
    let claim = match idempotency::begin_recall(store, &ctx.config, &req).await {
        Ok(Begin::Fresh(claim)) => claim,
        Ok(Begin::Replay(stored)) => return replayed(stored.status, &stored.body),
        Ok(Begin::InFlight(busy)) => match recall(busy.resource().to_owned()).await {
            Ok(Some((status, view))) => match serde_json::to_string(&view) {
                Ok(body) => return replayed(status.as_u16(), &body),
                Err(e) => {
                    return ApiError(Error::Internal(format!("response encoding: {e}")))
                        .into_response()
                }
            },
            Ok(None) => match idempotency::resume(store, &ctx.config, &req, busy).await {
                Ok(Begin::Fresh(claim)) => claim,
                Ok(_) => return ApiError(Error::RequestInProgress).into_response(),
                Err(e) => return ApiError(e).into_response(),
            },
            Err(e) => return ApiError(e).into_response(),
        },
        Err(e) => return ApiError(e).into_response(),
    };
    let done = work(claim.resource().to_owned()).await;
    match done {
        Ok(Answer {
            status,
            view,
            recalled: true,
        }) => match serde_json::to_string(&view) {
            Ok(body) => json_response(status, &body),
            Err(e) => ApiError(Error::Internal(format!("response encoding: {e}"))).into_response(),
        },
        Ok(Answer { status, view, .. }) => store_answer(ctx, claim, encode(status, &view)).await,
        Err(e) => fail(ctx, claim, e).await,
    }
}

/// A stored (or recalled) 2xx, marked as a replay.
fn replayed(status: u16, body: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut resp = json_response(status, body);
    resp.headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    resp
}

/// Build the shared middleware stack around a function's router.
pub fn with_edge(router: axum::Router) -> axum::Router {
    router.layer(axum::middleware::from_fn(trace_layer))
}

/// 404 in our error format for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError(Error::NotFound { what: "route" })
}

/// The caller as CloudFront sees it (`CloudFront-Viewer-Country`,
/// `-ASN`, `-Address`): trusted only behind CloudFront, which sets them
/// itself. A malformed value is ignored, not an error of the client.
pub fn risk_signals(headers: &HeaderMap) -> crate::domain::risk::signals::EdgeSignals {
    use crate::domain::risk::signals::{is_country, normal_asn, normal_ip, EdgeSignals};
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    // `203.0.113.7:46532` or `2001:db8::1:46532`: the address, then the port.
    let address = header("cloudfront-viewer-address")
        .and_then(|a| {
            a.rsplit_once(':')
                .map(|(ip, _)| ip.trim_matches(['[', ']']))
        })
        .and_then(normal_ip);
    EdgeSignals {
        ip: address,
        ip_country: header("cloudfront-viewer-country")
            .filter(|c| is_country(c))
            .map(str::to_owned),
        asn: header("cloudfront-viewer-asn").and_then(normal_asn),
    }
}
