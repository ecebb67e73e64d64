//! What `payloop serve` gives operators beyond the functions' API: the
//! metrics as JSON (`GET /v1/ops/metrics`, platform key) and the operator
//! console (`/ops`, see [`console`]).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Json;
use payloop::domain::{observe, Ctx};
use payloop::edge::{authenticate, ApiError};
use payloop::metrics::MetricsView;

pub mod console;

pub fn router(ctx: Ctx) -> axum::Router {
    axum::Router::new()
        .route("/v1/ops/metrics", get(metrics))
        .with_state(ctx.clone())
        .merge(console::router(ctx))
}

/// Every metric since start with its definition, the gauges read now.
pub async fn current(ctx: &Ctx) -> MetricsView {
    if let Err(e) = observe::gauges(ctx).await {
        tracing::warn!(error = %e, "could not read the gauges");
    }
    ctx.metrics().view()
}

async fn metrics(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
) -> Result<Json<MetricsView>, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    Ok(Json(current(&ctx).await))
}
