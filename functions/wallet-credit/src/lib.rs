//! wallet-credit: the SQS consumer that applies verified PSP outcomes (with
//! partial batch failures), and the platform's wallet API.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use payloop::clock::Day;
use payloop::domain::deposits::{self, apply_event};
use payloop::domain::google::outbound;
use payloop::domain::payouts;
use payloop::domain::recon::report::DayReport;
use payloop::domain::recon::{cases, run as recon_run};
use payloop::domain::refunds;
use payloop::domain::reports::{self, ReportKind};
use payloop::domain::rounds::{self, RoundOp, RoundRequest};
use payloop::domain::wallet;
use payloop::domain::Ctx;
use payloop::edge::{
    authenticate, idempotency_key, idempotent, parse_body, ApiError, Path, QueryParams, RawBody,
};
use payloop::ids::{PaymentId, PlayerId, PspId, TxnId};
use payloop::psp::event::{parse_message, Inbound};
use payloop::queue::{redrive, QueueName};
use payloop::Error;
use serde_json::{json, Value};

pub const CREDIT_PATH: &str = "/v1/wallet/credit";
pub const DEBIT_PATH: &str = "/v1/wallet/debit";
pub const ROLLBACK_PATH: &str = "/v1/wallet/rollback";
/// Largest batch applied at once (the SQS event source's maximum is 10;
/// anything beyond this is reported failed and retried).
pub const MAX_BATCH: usize = 100;
/// Most messages one replay call moves.
pub const MAX_REPLAY: usize = 1000;

pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route(CREDIT_PATH, post(credit))
        .route(DEBIT_PATH, post(debit))
        .route(ROLLBACK_PATH, post(rollback))
        .route("/v1/wallet/rounds/{round_id}", get(round))
        .route("/v1/reports/{kind}", get(report))
        .route("/v1/wallet/{player_id}", get(show))
        .route("/v1/ops/dlq/replay", post(replay))
        .route("/v1/recon/cases", get(recon_cases))
        .route("/v1/recon/cases/{case_id}", get(recon_case))
        .route("/v1/recon/cases/{case_id}/resolve", post(recon_resolve))
        .route(
            "/v1/recon/google-statements/{account}/{statement_id}/release",
            post(google_statement_release),
        )
        .route("/v1/recon/reports/{psp}/{date}", get(recon_report))
        .with_state(ctx)
}

pub fn app(ctx: Ctx) -> Router {
    payloop::edge::with_edge(router(ctx).fallback(payloop::edge::not_found))
}

/// Apply one queue message. `Err(true)` = retry it, `Err(false)` = it can
/// never succeed as is (it goes to the DLQ after the receive limit).
pub async fn process_message(ctx: &Ctx, message_id: &str, body: &str) -> Result<(), bool> {
    let ev = match parse_message(body) {
        Ok(Inbound::Payment(ev)) => ev,
        Ok(Inbound::Payout(ev)) => return payouts::apply_event(ctx, &ev).await,
        Ok(Inbound::Refund(ev)) => return refunds::apply_event(ctx, &ev).await,
        Err(e) => {
            tracing::error!(message_id, error = %e, retryable = false, "unparseable event message");
            return Err(false);
        }
    };
    match apply_event(ctx, &ev).await {
        Ok(applied) => {
            tracing::debug!(message_id, event_id = %ev.event_id, ?applied, "event applied");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(message_id, event_id = %ev.event_id, retryable = e.retryable, reason = %e.reason, "event not applied");
            Err(e.retryable)
        }
    }
}

/// Process a batch; returns the ids of the messages that failed (the
/// Lambda `batchItemFailures`). Messages are independent and applied
/// concurrently; one failure never blocks the others.
pub async fn process_batch(ctx: &Ctx, messages: &[(String, String)]) -> Vec<String> {
    let mut running = tokio::task::JoinSet::new();
    for (id, body) in messages.iter().take(MAX_BATCH).cloned() {
        let ctx = ctx.clone();
        running.spawn(async move {
            let ok = process_message(&ctx, &id, &body).await.is_ok();
            (id, ok)
        });
    }
    let mut succeeded = std::collections::HashSet::new();
    while let Some(done) = running.join_next().await {
        match done {
            Ok((id, true)) => {
                succeeded.insert(id);
            }
            Ok((_, false)) => {}
            Err(e) => tracing::error!(error = %e, "event task panicked or was cancelled"),
        }
    }
    // Whatever did not report success (failed, died, or beyond the batch
    // bound) is a batch item failure and will be redelivered.
    messages
        .iter()
        .filter(|(id, _)| !succeeded.contains(id))
        .map(|(id, _)| id.clone())
        .collect()
}

/// `POST /v1/wallet/credit` for a deposit: `{payment_id, txn_id, amount}`
/// (and `idempotency_key`, which the edge reads as the Idempotency-Key).
struct CreditRequest {
    payment: PaymentId,
    txn: TxnId,
    amount: String,
}

fn parse_credit(raw: &[u8]) -> Result<CreditRequest, Error> {
    let b = parse_body(raw)?;
    b.only(&["payment_id", "txn_id", "amount", "idempotency_key"])?;
    let payment = PaymentId::parse(b.str("payment_id")?)
        .map_err(|e| Error::validation("payment_id", e.to_string()))?;
    let txn =
        TxnId::parse(b.str("txn_id")?).map_err(|e| Error::validation("txn_id", e.to_string()))?;
    Ok(CreditRequest {
        payment,
        txn,
        amount: b.str("amount")?.to_owned(),
    })
}

/// The Idempotency-Key: the header, or the body's `idempotency_key`.
fn body_key(raw: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(raw).ok()?;
    v.get("idempotency_key")?.as_str().map(str::to_owned)
}

/// `POST /v1/wallet/credit`: a game win (`round_id` in the body), or the
/// platform's confirmation of a deposit credit (`payment_id`).
async fn credit(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    RawBody(raw): RawBody,
) -> Result<Response, ApiError> {
    let is_round = serde_json::from_slice::<Value>(&raw)
        .ok()
        .is_some_and(|v| v.get("round_id").is_some());
    if is_round {
        return round_op(ctx, headers, raw, RoundOp::Win, CREDIT_PATH).await;
    }
    let platform = authenticate(&headers, &ctx.config.platform_keys)?;
    let key = idempotency_key(&headers, body_key(&raw).as_deref())?;
    let scope = format!("platform:{platform}");
    let work = |_reserved: String| async {
        let b = parse_credit(&raw)?;
        Ok((
            StatusCode::OK,
            deposits::confirm_credit(&ctx, &b.payment, &b.txn, &b.amount).await?,
        ))
    };
    Ok(idempotent(&ctx, &scope, &key, "POST", CREDIT_PATH, &raw, work).await)
}

async fn debit(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    RawBody(raw): RawBody,
) -> Result<Response, ApiError> {
    round_op(ctx, headers, raw, RoundOp::Bet, DEBIT_PATH).await
}

async fn rollback(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    RawBody(raw): RawBody,
) -> Result<Response, ApiError> {
    round_op(ctx, headers, raw, RoundOp::Rollback, ROLLBACK_PATH).await
}

/// A bet, win or rollback: platform key, idempotent on the key, and once
/// per txn id whatever the key.
async fn round_op(
    ctx: Ctx,
    headers: HeaderMap,
    raw: axum::body::Bytes,
    op: RoundOp,
    path: &'static str,
) -> Result<Response, ApiError> {
    let platform = authenticate(&headers, &ctx.config.platform_keys)?;
    let key = idempotency_key(&headers, body_key(&raw).as_deref())?;
    let scope = format!("platform:{platform}");
    let work = |_reserved: String| async {
        let req = RoundRequest::parse(op, &parse_body(&raw)?)?;
        let (body, _fresh) = rounds::apply(&ctx, op, &req).await?;
        Ok((StatusCode::OK, body))
    };
    Ok(idempotent(&ctx, &scope, &key, "POST", path, &raw, work).await)
}

async fn round(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(round_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    Ok(Json(rounds::round_view(&ctx, &round_id).await?))
}

async fn show(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(player): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    let player =
        PlayerId::parse(&player).map_err(|e| Error::validation("player_id", e.to_string()))?;
    Ok(Json(wallet::wallet_view(&ctx, &player).await?))
}

/// `GET /v1/reports/{refunds|chargebacks}?date=YYYY-MM-DD` (platform key).
async fn report(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(kind): Path<String>,
    q: QueryParams,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    let kind = ReportKind::parse(&kind)
        .filter(|k| *k != ReportKind::Deposits)
        .ok_or_else(|| Error::validation("kind", "must be refunds or chargebacks"))?;
    let day = q
        .parse_with("date", "must be YYYY-MM-DD", Day::parse)?
        .unwrap_or_else(|| ctx.clock.today());
    Ok(Json(reports::report(&ctx, kind, day).await?))
}

fn day_param(d: Option<&str>) -> Result<Day, Error> {
    let d = d.ok_or_else(|| Error::validation("date", "is required (YYYY-MM-DD)"))?;
    Day::parse(d).ok_or_else(|| Error::validation("date", "must be YYYY-MM-DD"))
}

fn psp_param(ctx: &Ctx, p: &str) -> Result<PspId, Error> {
    PspId::parse(p)
        .ok()
        .filter(|id| ctx.psps.get(id).is_some())
        .ok_or_else(|| Error::validation("psp", "is not a configured PSP"))
}

/// A PSP, or `google` (its remittance statements are reconciled too).
fn counterparty_param(ctx: &Ctx, p: &str) -> Result<PspId, Error> {
    if p == outbound::COUNTERPARTY {
        return outbound::counterparty();
    }
    psp_param(ctx, p).map_err(|_| Error::validation("psp", "is not a configured PSP or google"))
}

/// `GET /v1/recon/cases?date=&psp=&status=&limit=` (platform key).
async fn recon_cases(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    q: QueryParams,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    let day = day_param(q.get("date"))?;
    let psps = match q.get("psp") {
        Some(psp) => vec![counterparty_param(&ctx, psp)?],
        None => ctx
            .psps
            .ids()
            .cloned()
            .chain(outbound::counterparty().ok())
            .collect(),
    };
    let limit = match q.get("limit") {
        None => 100,
        Some(l) => l
            .parse()
            .ok()
            .filter(|n| (1..=cases::MAX_PAGE).contains(n))
            .ok_or_else(|| {
                Error::validation("limit", format!("must be 1 to {}", cases::MAX_PAGE))
            })?,
    };
    let filter = cases::CaseFilter {
        day,
        psps,
        status: q.get("status").map(str::to_owned),
        limit,
    };
    Ok(Json(cases::list(&ctx, &filter).await?))
}

async fn recon_case(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    authenticate(&headers, &ctx.config.platform_keys)?;
    Ok(Json(cases::get(&ctx, &id).await?))
}

/// `POST /v1/recon/cases/{case_id}/resolve` `{"note": "..."}` (platform key).
async fn recon_resolve(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawBody(raw): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    let operator = authenticate(&headers, &ctx.config.platform_keys)?;
    let body = parse_body(&raw)?;
    body.only(&["note"])?;
    let case = cases::resolve(&ctx, &id, body.str("note")?, operator).await?;
    tracing::info!(operator, case_id = %id, "reconciliation case resolved");
    Ok(Json(case))
}

/// `POST /v1/recon/google-statements/{account}/{statement_id}/release`
/// `{note}` (platform key): a Google remittance statement held for its
/// mismatches is accepted at Google next.
async fn google_statement_release(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path((account, statement)): Path<(String, String)>,
    RawBody(raw): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    use payloop::domain::google::{remittance, wire};
    let operator = authenticate(&headers, &ctx.config.platform_keys)?;
    if !wire::is_request_id(&account) {
        return Err(Error::validation("account", "is not a Google integrator account id").into());
    }
    if !wire::is_request_id(&statement) {
        return Err(Error::validation("statement_id", "is not a Google statement id").into());
    }
    let body = parse_body(&raw)?;
    body.only(&["note"])?;
    let note = body.str("note")?;
    if note.is_empty() || note.len() > cases::MAX_NOTE {
        return Err(
            Error::validation("note", format!("must be 1 to {} bytes", cases::MAX_NOTE)).into(),
        );
    }
    let view = remittance::release(&ctx, &account, &statement, operator, note).await?;
    Ok(Json(view))
}

/// `GET /v1/recon/reports/{psp}/{date}?format=json|csv` (platform key).
async fn recon_report(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Path((psp, date)): Path<(String, String)>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    use axum::response::IntoResponse;
    authenticate(&headers, &ctx.config.platform_keys)?;
    let psp = psp_param(&ctx, &psp)?;
    let day = day_param(Some(&date))?;
    let mut report = recon_run::stored_report(&ctx, &psp, day).await?;
    let csv = match &mut report {
        DayReport::Complete(r) => r.csv.take().unwrap_or_default(),
        DayReport::Malformed(_) => String::new(),
    };
    match q.get("format") {
        None | Some("json") => Ok(Json(report).into_response()),
        Some("csv") => Ok(([(axum::http::header::CONTENT_TYPE, "text/csv")], csv).into_response()),
        Some(_) => Err(Error::validation("format", "must be json or csv").into()),
    }
}

async fn replay(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    q: QueryParams,
) -> Result<impl IntoResponse, ApiError> {
    let operator = authenticate(&headers, &ctx.config.platform_keys)?;
    let bound = format!("must be 1..={MAX_REPLAY}");
    let max = q
        .parse_with("max", &bound, |v| {
            v.parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_REPLAY).contains(n))
        })?
        .unwrap_or(100);
    // Which dead letters: PSP events (the default) or calls to Google.
    let source = q
        .parse_with("queue", "must be events or google", |v| match v {
            "events" => Some(QueueName::Events),
            "google" => Some(QueueName::Google),
            _ => None,
        })?
        .unwrap_or(QueueName::Events);
    let dlq = source
        .dead_letter()
        .map(|(dlq, _)| dlq)
        .ok_or_else(|| Error::Internal("a replayable queue has a DLQ".into()))?;
    let moved = redrive(ctx.queue.as_ref(), dlq, source, max)
        .await
        .map_err(Error::from)?;
    tracing::info!(
        operator,
        moved,
        queue = source.as_str(),
        "dead letters replayed"
    );
    Ok(Json(json!({"moved": moved})))
}

/// The Lambda SQS handler: apply each record, report the failed ones as
/// `batchItemFailures` so only they are retried.
pub async fn handle_sqs(
    ctx: &Ctx,
    event: aws_lambda_events::event::sqs::SqsEvent,
) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    let mut response = aws_lambda_events::event::sqs::SqsBatchResponse::default();
    let mut batch = Vec::with_capacity(event.records.len());
    for record in event.records {
        match (record.message_id, record.body) {
            (Some(id), Some(body)) => batch.push((id, body)),
            (Some(id), None) => response.add_failure(id),
            (None, _) => tracing::error!("SQS record without a message id"),
        }
    }
    for id in process_batch(ctx, &batch).await {
        response.add_failure(id);
    }
    response
}
