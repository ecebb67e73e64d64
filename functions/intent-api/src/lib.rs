//! intent-api: `POST /v1/payments/init`, `GET /v1/payments/{id}`,
//! `GET /v1/payments/{id}/deliveries`, payouts, the routing admin endpoints
//! (`/v1/admin/...`), players' limits and self-exclusion, and risk
//! decisions, reviews and AML alerts (`/v1/risk/...`; platform key), and
//! the hosted cashier (`/cashier`, `/v1/cashier/...`; see [`cashier`]).
//! Thin: decode, one domain call, encode.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use payloop::domain::deposits::{self, InitRequest};
use payloop::domain::limits::{self, exclusion, LimitsChange};
use payloop::domain::operator::{self, DegradationRequest};
use payloop::domain::payouts::{self, PayoutRequest};
use payloop::domain::players::{self, LevelChange};
use payloop::domain::refunds::{self, RefundRequest};
use payloop::domain::reviews;
use payloop::domain::risk::{aml, decision, review};
use payloop::domain::Ctx;
use payloop::edge::{
    authenticate, idempotency_key, idempotent, idempotent_recalled, parse_body, risk_signals,
    Answer, ApiError, Path, QueryParams, RawBody,
};
use payloop::ids::{PaymentId, PlayerId};
use payloop::money::Currency;
use payloop::Error;

pub mod cashier;

pub const INIT_PATH: &str = "/v1/payments/init";
pub const PAYOUT_INIT_PATH: &str = "/v1/payouts/init";

/// The routes of this function (no middleware; see [`app`]).
pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route(INIT_PATH, post(init))
        .route("/v1/payments/{payment_id}", get(show))
        .route("/v1/payments/{payment_id}/deliveries", get(deliveries))
        .route("/v1/payments/{payment_id}/refund", post(refund))
        .route(PAYOUT_INIT_PATH, post(payout_init))
        .route("/v1/payouts/{payout_id}", get(payout_show))
        .route("/v1/admin/routing", get(routing_view))
        .route("/v1/admin/players/{player_id}/kyc", put(set_player_kyc))
        .route("/v1/admin/degradation", put(set_degradation))
        .route("/v1/admin/players/{player_id}/risk", put(set_player_risk))
        .route(
            "/v1/players/{player_id}/limits",
            put(set_limits).get(show_limits),
        )
        .route(
            "/v1/players/{player_id}/self-exclusion",
            post(set_exclusion).get(show_exclusion),
        )
        .route("/v1/risk/decisions", get(risk_decisions))
        .route("/v1/risk/reviews", get(risk_reviews))
        .route("/v1/risk/reviews/{review_id}", get(risk_review))
        .route("/v1/risk/reviews/{review_id}/decide", post(risk_decide))
        .route("/v1/risk/alerts", get(risk_alerts))
        .route("/v1/risk/alerts/{alert_id}", get(risk_alert))
        .route("/v1/risk/alerts/{alert_id}/sar", get(risk_alert_sar))
        .route("/v1/risk/alerts/{alert_id}/close", post(risk_alert_close))
        .with_state(ctx.clone())
        .merge(cashier::router(ctx))
}

/// The function as deployed: routes plus the shared edge middleware.
pub fn app(ctx: Ctx) -> Router {
    payloop::edge::with_edge(router(ctx).fallback(payloop::edge::not_found))
}

async fn init(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    RawBody(raw): RawBody,
) -> Result<Response, ApiError> {
    let client = authenticate(&headers, &ctx.config.client_keys)?;
    let key = idempotency_key(&headers, None)?;
    let scope = format!("client:{client}");
    let (ctx_ref, raw_ref, edge) = (&ctx, &raw, risk_signals(&headers));
    let work = |reserved: String| async move {
        let req = InitRequest::parse(&parse_body(raw_ref)?)?.with_edge(&edge);
        let id = PaymentId::from_reserved(&reserved)?;
        Ok(intent_answer(
            deposits::create_intent(ctx_ref, req, id).await?,
        ))
    };
    let recall = |reserved: String| recall_intent(ctx_ref, reserved);
    Ok(idempotent_recalled(&ctx, &scope, &key, "POST", INIT_PATH, &raw, work, recall).await)
}

/// A deposit intent's answer: 201 with the redirect, recalled from the
/// stored intent on a retry (no answer stored); 202 when held for risk
/// review (accepted, not yet at any PSP), stored under the key.
pub(crate) fn intent_answer(view: deposits::IntentView) -> Answer<deposits::IntentView> {
    let held = view.held();
    Answer {
        status: if held {
            StatusCode::ACCEPTED
        } else {
            StatusCode::CREATED
        },
        view,
        recalled: !held,
    }
}

/// The 201 an intent created under the reserved id was answered with.
pub(crate) async fn recall_intent(
    ctx: &Ctx,
    reserved: String,
) -> Result<Option<(StatusCode, deposits::IntentView)>, Error> {
    let id = PaymentId::from_reserved(&reserved)?;
    Ok(deposits::recall_intent(ctx, &id)
        .await?
        .map(|view| (StatusCode::CREATED, view)))
}

fn player_id(raw: &str) -> Result<PlayerId, Error> {
    PlayerId::parse(raw).map_err(|e| Error::validation("player_id", e.to_string()))
}

fn payment_id(raw: &str) -> Result<PaymentId, Error> {
    PaymentId::parse(raw).map_err(|e| Error::validation("payment_id", e.to_string()))
}

async fn show(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.client_keys)?;
    Ok(Json(deposits::show(&ctx, &payment_id(&id)?).await?))
}

async fn deliveries(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    Ok(Json(deposits::deliveries(&ctx, &payment_id(&id)?).await?))
}

async fn routing_view(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    Ok(Json(operator::routing_view(&ctx).await?))
}

async fn set_degradation(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    RawBody(raw): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    let req = DegradationRequest::parse(&parse_body(&raw)?)?;
    Ok(Json(operator::set_degradation(&ctx, &req).await?))
}

async fn set_player_risk(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(player): Path<String>,
    RawBody(raw): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    let change = LevelChange::parse_risk(&parse_body(&raw)?)?;
    Ok(Json(
        players::set_level(&ctx, &player_id(&player)?, change).await?,
    ))
}

/// `POST /v1/payouts/init`: check, hold, send (or defer) a withdrawal.
async fn payout_init(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    RawBody(raw): RawBody,
) -> Result<Response, ApiError> {
    let client = authenticate(&headers, &ctx.config.client_keys)?;
    let key = idempotency_key(&headers, None)?;
    let scope = format!("client:{client}");
    let (ctx_ref, raw_ref, edge) = (&ctx, &raw, risk_signals(&headers));
    let work = |reserved: String| async move {
        let req = PayoutRequest::parse(&parse_body(raw_ref)?)?.with_edge(&edge);
        let id = format!("po_{reserved}");
        Ok((StatusCode::CREATED, payouts::init(ctx_ref, req, id).await?))
    };
    Ok(idempotent(&ctx, &scope, &key, "POST", PAYOUT_INIT_PATH, &raw, work).await)
}

async fn payout_show(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.client_keys)?;
    check_payout_id(&id)?;
    Ok(Json(payouts::view(&ctx, &id).await?))
}

fn check_payout_id(id: &str) -> Result<(), Error> {
    let ok = id.starts_with("po_")
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !ok {
        return Err(Error::validation("payout_id", "must be a payout id (po_…)"));
    }
    Ok(())
}

async fn set_player_kyc(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(player): Path<String>,
    RawBody(raw): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    let change = LevelChange::parse_kyc(&parse_body(&raw)?)?;
    Ok(Json(
        players::set_level(&ctx, &player_id(&player)?, change).await?,
    ))
}

/// `PUT /v1/players/{id}/limits` (platform key): decreases at once,
/// increases and removals after the preset's cooling-off.
async fn set_limits(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(player): Path<String>,
    RawBody(raw): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    let change = LimitsChange::parse(&parse_body(&raw)?)?;
    Ok(Json(
        limits::set(&ctx, &player_id(&player)?, &change).await?,
    ))
}

/// `GET /v1/players/{id}/limits?currency=EUR` (platform key).
async fn show_limits(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(player): Path<String>,
    q: QueryParams,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    let currency = q
        .parse_with("currency", "must be an ISO 4217 code", |c| {
            Currency::parse(c).ok()
        })?
        .ok_or_else(|| Error::validation("currency", "is required"))?;
    Ok(Json(
        limits::view(&ctx, &player_id(&player)?, currency).await?,
    ))
}

/// `POST /v1/players/{id}/self-exclusion` (platform key).
async fn set_exclusion(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(player): Path<String>,
    RawBody(raw): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    let e = exclusion::Exclusion::parse(&parse_body(&raw)?, ctx.now_ms())?;
    Ok(Json(exclusion::set(&ctx, &player_id(&player)?, e).await?))
}

/// `GET /v1/players/{id}/self-exclusion` (platform key).
async fn show_exclusion(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(player): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    Ok(Json(exclusion::get(&ctx, &player_id(&player)?).await?))
}

/// `POST /v1/payments/{payment_id}/refund` (operator: platform key).
async fn refund(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawBody(raw): RawBody,
) -> Result<Response, ApiError> {
    let operator = authenticate(&headers, &ctx.config.platform_keys)?;
    let key = idempotency_key(&headers, None)?;
    let scope = format!("platform:{operator}");
    let payment = payment_id(&id)?;
    let path = format!("/v1/payments/{payment}/refund");
    let (ctx_ref, raw_ref, payment_ref) = (&ctx, &raw, &payment);
    let work = |reserved: String| async move {
        let body = RefundRequest::parse(&parse_body(raw_ref)?)?;
        let refund_id = format!("rf_{reserved}");
        Ok((
            StatusCode::CREATED,
            refunds::request(ctx_ref, payment_ref, &body, refund_id).await?,
        ))
    };
    Ok(idempotent(&ctx, &scope, &key, "POST", &path, &raw, work).await)
}

/// `GET /v1/risk/decisions?player_id=&limit=` (platform key): newest first.
async fn risk_decisions(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    q: QueryParams,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    let player = q
        .get("player_id")
        .ok_or_else(|| Error::validation("player_id", "is required"))?;
    let limit = q
        .parse_with("limit", "must be 1 to 100", |l| {
            l.parse::<usize>()
                .ok()
                .filter(|n| (1..=decision::MAX_LISTED).contains(n))
        })?
        .unwrap_or(20);
    let list = decision::list(&ctx, &player_id(player)?, limit).await?;
    Ok(Json(serde_json::json!({ "decisions": list })))
}

/// `GET /v1/risk/reviews` (platform key): the open reviews.
async fn risk_reviews(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    Ok(Json(
        serde_json::json!({ "reviews": review::list_open(&ctx).await? }),
    ))
}

async fn risk_review(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    let r = review::load(&ctx, &id).await?;
    Ok(Json(review::view(&ctx, &r).await?))
}

/// `POST /v1/risk/reviews/{id}/decide {"decision", "note"}` (platform key).
async fn risk_decide(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawBody(raw): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    let actor = authenticate(&headers, &ctx.config.platform_keys)?;
    let req = review::DecideRequest::parse(&parse_body(&raw)?)?;
    review::check_id(&id)?;
    Ok(Json(reviews::decide(&ctx, &id, &req, actor).await?))
}

/// `GET /v1/risk/alerts?player_id=&status=` (platform key).
async fn risk_alerts(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    q: QueryParams,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    let player = q.get("player_id").map(player_id).transpose()?;
    let list = aml::list(&ctx, player.as_ref(), q.get("status")).await?;
    Ok(Json(serde_json::json!({ "alerts": list })))
}

async fn risk_alert(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    Ok(Json(aml::get(&ctx, &id).await?))
}

/// `GET /v1/risk/alerts/{id}/sar?format=json|csv` (platform key): the
/// suspicious-activity report for the compliance officer.
async fn risk_alert_sar(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    let alert = aml::get(&ctx, &id).await?;
    match q.get("format").unwrap_or("json") {
        "json" => Ok(Json(aml::sar_json(&alert, ctx.now_ms())).into_response()),
        "csv" => Ok((
            [
                (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    "attachment; filename=\"sar.csv\"",
                ),
            ],
            aml::sar_csv(&alert),
        )
            .into_response()),
        _ => Err(Error::validation("format", "must be json or csv").into()),
    }
}

/// `POST /v1/risk/alerts/{id}/close {"note"}` (platform key).
async fn risk_alert_close(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawBody(raw): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    let actor = authenticate(&headers, &ctx.config.platform_keys)?;
    let note = aml::parse_close_note(&parse_body(&raw)?)?;
    Ok(Json(aml::close(&ctx, &id, &note, actor).await?))
}
