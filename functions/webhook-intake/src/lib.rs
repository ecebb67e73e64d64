//! webhook-intake: `POST /v1/payments/webhook[/{psp}]`. Verify, dedupe, log,
//! enqueue; 200 only once the event is durably queued. A PSP that batches
//! signed items (Adyen) is answered `[accepted]` once every genuine item is
//! queued or recorded, 401 when any item's signature failed (see
//! `domain::events::batch`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use payloop::domain::events::{intake, intake_batch, Delivery};
use payloop::domain::Ctx;
use payloop::edge::{ApiError, Path, RawBody};
use payloop::ids::PspId;
use payloop::Error;
use serde_json::json;

pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/v1/payments/webhook", post(default_psp))
        .route("/v1/payments/webhook/{psp}", post(named_psp))
        .with_state(ctx)
}

pub fn app(ctx: Ctx) -> Router {
    payloop::edge::with_edge(router(ctx).fallback(payloop::edge::not_found))
}

async fn default_psp(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    RawBody(raw): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    let psp = ctx.config.default_psp.clone();
    take(&ctx, &psp, &headers, &raw).await
}

async fn named_psp(
    State(ctx): State<Ctx>,
    Path(psp): Path<String>,
    headers: HeaderMap,
    RawBody(raw): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    let psp = PspId::parse(&psp).map_err(|_| Error::NotFound { what: "psp" })?;
    take(&ctx, &psp, &headers, &raw).await
}

async fn take(
    ctx: &Ctx,
    psp: &PspId,
    headers: &HeaderMap,
    raw: &[u8],
) -> Result<Response, ApiError> {
    let batch = ctx.psps.get(psp).and_then(|c| c.read_batch(headers, raw));
    if let Some(batch) = batch {
        intake_batch(ctx, psp, batch?).await?.answer()?;
        // Adyen's own acknowledgement, byte for byte.
        return Ok((
            [(axum::http::header::CONTENT_TYPE, "text/plain")],
            "[accepted]",
        )
            .into_response());
    }
    let got = intake(ctx, &Delivery { psp, headers, raw }).await?;
    Ok(Json(json!({"event_id": got.event_id, "outcome": got.outcome.as_str()})).into_response())
}
