//! google-facade: payloop as a Google Standard Payments redirect-FOP
//! integrator (the methods Google calls). Each method is served on both
//! path forms Google's pages show (`/v1/payment-integrator-redirect/<m>`
//! and `/redirect-fop-v1/<m>`); echo at `/v1/echo`. Thin: open the message
//! with the codec, parse the header, run the method once per requestId,
//! seal the answer. remittanceStatementNotification is at
//! `/v1/remittanceStatementNotification` (and the `/redirect-fop-v1/` form).
//!
//! The calls payloop makes to Google (notifications, a statement's details
//! and acceptance) are in [`outbound`]: the HTTP adapter and the consumer
//! of the `google` queue (the `google-outbound` Lambda, the local poller).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use payloop::domain::google::codec::{Codec, Plaintext, Unconfigured};
use payloop::domain::google::jose::Jose;
use payloop::domain::google::wire::{self, RequestHeader};
use payloop::domain::google::{once, redirect, remittance, Refusal};
use payloop::domain::Ctx;
use serde_json::{json, Value};

pub mod outbound;

/// What the facade needs: the context and the message codec.
#[derive(Clone)]
pub struct Facade {
    pub ctx: Ctx,
    pub codec: Arc<dyn Codec>,
}

impl Facade {
    /// Development mode: JSON without signature or encryption.
    pub fn plaintext(ctx: Ctx) -> Facade {
        Facade {
            ctx,
            codec: Arc::new(Plaintext),
        }
    }

    /// As deployed: see [`codec_from_env`].
    /// Without `PAYLOOP_GSP_BASE_URL` nothing would make the calls to
    /// Google the facade queues, so it refuses everything (`FORBIDDEN`).
    pub fn from_env(ctx: Ctx, env: &payloop::config::Env) -> Result<Facade, String> {
        let google_reachable = env
            .var("PAYLOOP_GSP_BASE_URL")
            .is_some_and(|u| !u.is_empty());
        let codec = if google_reachable {
            codec_from_env(env)?
        } else {
            tracing::warn!(
                "PAYLOOP_GSP_BASE_URL is not set: the Google facade refuses every request"
            );
            Arc::new(Unconfigured)
        };
        tracing::info!(codec = codec.name(), "google facade message security");
        Ok(Facade { ctx, codec })
    }
}

/// The message security of a deployed stack:
/// - `PAYLOOP_GSP_KEYS` (a keyset document, see `jose`): signed and
///   encrypted (JWS inside compact JWE);
/// - else `PAYLOOP_GSP_ALLOW_PLAINTEXT=true` (a development stack):
///   plaintext, which authenticates nothing;
/// - else every request is refused `FORBIDDEN`.
pub fn codec_from_env(env: &payloop::config::Env) -> Result<Arc<dyn Codec>, String> {
    if let Some(keys) = env.var("PAYLOOP_GSP_KEYS") {
        let jose = Jose::from_json(&keys).map_err(|e| format!("PAYLOOP_GSP_KEYS: {e}"))?;
        return Ok(Arc::new(jose));
    }
    if env
        .var("PAYLOOP_GSP_ALLOW_PLAINTEXT")
        .is_some_and(|v| v == "true")
    {
        return Ok(Arc::new(Plaintext));
    }
    Ok(Arc::new(Unconfigured))
}

/// The redirect methods, by name.
#[derive(Clone, Copy)]
enum Method {
    Echo,
    Generate,
    Status,
    Refund,
    Remittance,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Echo => "echo",
            Method::Generate => "generateRedirectPaymentUrl",
            Method::Status => "getRedirectPaymentStatus",
            Method::Refund => "asynchronousRefund",
            Method::Remittance => "remittanceStatementNotification",
        }
    }
}

const REDIRECT_PREFIXES: [&str; 2] = ["/v1/payment-integrator-redirect", "/redirect-fop-v1"];

/// The routes of this function (no middleware; see [`app`]).
pub fn router(facade: Facade) -> Router {
    let mut r = Router::new()
        .route("/v1/echo", post(echo))
        .route("/v1/remittanceStatementNotification", post(remittance))
        .route(
            "/redirect-fop-v1/remittanceStatementNotification",
            post(remittance),
        );
    for prefix in REDIRECT_PREFIXES {
        r = r
            .route(
                &format!("{prefix}/generateRedirectPaymentUrl"),
                post(generate),
            )
            .route(&format!("{prefix}/getRedirectPaymentStatus"), post(status))
            .route(&format!("{prefix}/asynchronousRefund"), post(refund));
    }
    r.with_state(facade)
}

/// The function as deployed: routes plus the shared edge middleware.
pub fn app(facade: Facade) -> Router {
    payloop::edge::with_edge(router(facade).fallback(payloop::edge::not_found))
}

async fn echo(State(f): State<Facade>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&f, Method::Echo, &headers, &body).await
}

async fn generate(State(f): State<Facade>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&f, Method::Generate, &headers, &body).await
}

async fn status(State(f): State<Facade>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&f, Method::Status, &headers, &body).await
}

async fn refund(State(f): State<Facade>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&f, Method::Refund, &headers, &body).await
}

async fn remittance(State(f): State<Facade>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&f, Method::Remittance, &headers, &body).await
}

/// Open, check the header, answer once per requestId, seal.
async fn serve(f: &Facade, m: Method, headers: &HeaderMap, raw: &[u8]) -> Response {
    let ctx = &f.ctx;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let answer = match f.codec.open(content_type, raw) {
        Ok(body) => match RequestHeader::parse(&body, ctx.now_ms()) {
            Ok(h) => {
                let method = m.name();
                once(ctx, method, &h, &body, |reserved| {
                    run(ctx, m, h.clone(), body.clone(), reserved)
                })
                .await
            }
            Err(e) => Err(Refusal::Gsp(e)),
        },
        Err(e) => Err(Refusal::Gsp(e)),
    };
    let (status, json) = match answer {
        Ok(v) => (StatusCode::OK, v),
        Err(Refusal::Gsp(e)) => {
            tracing::info!(
                method = m.name(),
                code = e.code.as_str(),
                "google request refused"
            );
            let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
            (status, e.body(ctx.now_ms()))
        }
        Err(Refusal::Unavailable(e)) => {
            tracing::warn!(method = m.name(), error = %e, "google request not answered now");
            let body = json!({"responseHeader": wire::response_header(ctx.now_ms())});
            (StatusCode::SERVICE_UNAVAILABLE, body)
        }
    };
    match f.codec.seal(&json) {
        Ok((ct, bytes)) => (status, [(header::CONTENT_TYPE, ct)], bytes).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn run(
    ctx: &Ctx,
    m: Method,
    h: RequestHeader,
    body: Value,
    reserved: String,
) -> Result<Value, Refusal> {
    match m {
        Method::Echo => Ok(echo_answer(ctx, &body)?),
        Method::Generate => redirect::generate(ctx, &h, &body, &reserved).await,
        Method::Status => redirect::status(ctx, &h, &body).await,
        Method::Refund => redirect::refund(ctx, &h, &body, &reserved).await,
        Method::Remittance => remittance::notified(ctx, &h, &body).await,
    }
}

fn echo_answer(ctx: &Ctx, body: &Value) -> Result<Value, wire::GspError> {
    let message = body
        .get("clientMessage")
        .and_then(Value::as_str)
        .filter(|s| s.len() <= 1000)
        .ok_or_else(|| {
            wire::GspError::new(
                wire::GspCode::InvalidFieldValue,
                "clientMessage must be a string of at most 1000 bytes",
            )
        })?;
    Ok(json!({
        "responseHeader": wire::response_header(ctx.now_ms()),
        "clientMessage": message,
        "serverMessage": "payloop",
    }))
}
