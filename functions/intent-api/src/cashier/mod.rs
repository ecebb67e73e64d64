//! The hosted cashier: `POST /v1/cashier/sessions` (platform key) mints a
//! player's session; the page (`GET /cashier`, its script and style) and
//! the endpoints it calls with that session's token (`/v1/cashier/...`).
//! Thin: decode, one domain call, encode.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use payloop::domain::cashier::{self, Kind, OptionsQuery, Session, SessionRequest};
use payloop::domain::risk::signals::is_country;
use payloop::domain::Ctx;
use payloop::edge::{
    authenticate, idempotency_key, idempotent, idempotent_recalled, parse_body, risk_signals,
    ApiError, Path, QueryParams, RawBody,
};
use payloop::ids::PaymentId;
use payloop::money::{Currency, Money};
use payloop::Error;

mod page;

pub const SESSIONS_PATH: &str = "/v1/cashier/sessions";
pub const DEPOSITS_PATH: &str = "/v1/cashier/deposits";
pub const WITHDRAWALS_PATH: &str = "/v1/cashier/withdrawals";

pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route(SESSIONS_PATH, post(mint))
        .route("/v1/cashier/options", get(options))
        .route(DEPOSITS_PATH, post(deposit))
        .route("/v1/cashier/payments/{payment_id}", get(payment))
        .route(WITHDRAWALS_PATH, post(withdraw))
        .route("/v1/cashier/withdrawals/{withdrawal_id}", get(withdrawal))
        .with_state(ctx)
        .merge(page::router())
}

/// `POST /v1/cashier/sessions` (platform key): a token for one player.
async fn mint(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    RawBody(raw): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    let req = SessionRequest::parse(&parse_body(&raw)?)?;
    Ok((StatusCode::CREATED, Json(cashier::mint(&ctx, &req).await?)))
}

/// The caller's session from `Authorization: Bearer cs_…`.
async fn session(ctx: &Ctx, headers: &HeaderMap) -> Result<Session, Error> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(Error::Unauthorized)?;
    cashier::resolve(ctx, token.trim()).await
}

/// `GET /v1/cashier/options?kind=&currency=&amount=&country=`.
async fn options(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    q: QueryParams,
) -> Result<impl IntoResponse, ApiError> {
    let s = session(&ctx, &headers).await?;
    let kind = q
        .parse_with("kind", "must be deposit or withdrawal", Kind::parse)?
        .unwrap_or(Kind::Deposit);
    let currency = q
        .parse_with("currency", "must be an ISO 4217 code", |c| {
            Currency::parse(c).ok()
        })?
        .unwrap_or(s.currency);
    let amount = q.parse_with(
        "amount",
        "must be a positive decimal in the currency's precision",
        |a| {
            Money::parse_decimal(a, currency)
                .ok()
                .filter(|m| m.minor() > 0)
        },
    )?;
    let country = q.parse_with(
        "country",
        "must be an ISO 3166 alpha-2 code like \"FI\"",
        |c| is_country(c).then(|| c.to_owned()),
    )?;
    let query = OptionsQuery {
        kind,
        currency,
        amount,
        country,
    };
    Ok(Json(cashier::options(&ctx, &s, &query).await?))
}

/// `POST /v1/cashier/deposits` (Idempotency-Key): one per attempt.
async fn deposit(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    RawBody(raw): RawBody,
) -> Result<Response, ApiError> {
    let s = session(&ctx, &headers).await?;
    let key = idempotency_key(&headers, None)?;
    let scope = format!("cashier:{}", s.player);
    let (ctx_ref, raw_ref, s_ref, edge) = (&ctx, &raw, &s, risk_signals(&headers));
    let work = |reserved: String| async move {
        let body = parse_body(raw_ref)?;
        let id = PaymentId::from_reserved(&reserved)?;
        let view = cashier::deposit(ctx_ref, s_ref, &body, &edge, id).await?;
        Ok(crate::intent_answer(view))
    };
    let recall = |reserved: String| crate::recall_intent(ctx_ref, reserved);
    Ok(idempotent_recalled(
        &ctx,
        &scope,
        &key,
        "POST",
        DEPOSITS_PATH,
        &raw,
        work,
        recall,
    )
    .await)
}

async fn payment(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let s = session(&ctx, &headers).await?;
    let id = PaymentId::parse(&id).map_err(|e| Error::validation("payment_id", e.to_string()))?;
    Ok(Json(cashier::payment(&ctx, &s, &id).await?))
}

/// `POST /v1/cashier/withdrawals` (Idempotency-Key): one per attempt.
async fn withdraw(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    RawBody(raw): RawBody,
) -> Result<Response, ApiError> {
    let s = session(&ctx, &headers).await?;
    let key = idempotency_key(&headers, None)?;
    let scope = format!("cashier:{}", s.player);
    let (ctx_ref, raw_ref, s_ref, edge) = (&ctx, &raw, &s, risk_signals(&headers));
    let work = |reserved: String| async move {
        let body = parse_body(raw_ref)?;
        let id = format!("po_{reserved}");
        Ok((
            StatusCode::CREATED,
            cashier::withdraw(ctx_ref, s_ref, &body, &edge, id).await?,
        ))
    };
    Ok(idempotent(&ctx, &scope, &key, "POST", WITHDRAWALS_PATH, &raw, work).await)
}

async fn withdrawal(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let s = session(&ctx, &headers).await?;
    crate::check_payout_id(&id)?;
    Ok(Json(cashier::withdrawal(&ctx, &s, &id).await?))
}
