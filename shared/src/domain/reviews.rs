//! Carrying out an operator's review decision (`POST
//! /v1/risk/reviews/{id}/decide`), for a held deposit intent or a held
//! payout. Idempotent: the same decision again answers the review as it
//! stands (and finishes opening an approved deposit an earlier call could
//! not); the other decision is 409 `review_already_decided`. Every
//! decision is recorded on the review with its note, time and the
//! platform key that made it, and logged (`audit`).

use crate::domain::deposits::{self, InitRequest};
use crate::domain::payouts;
use crate::domain::request::Body;
use crate::domain::risk::decision;
use crate::domain::risk::review::{self, DecideRequest, Review, ReviewStatus, ReviewView};
use crate::domain::risk::rules::Flow;
use crate::domain::Ctx;
use crate::error::Error;
use crate::ids::PaymentId;
use crate::schema::keys;
use crate::store::StoreError;

pub async fn decide(
    ctx: &Ctx,
    id: &str,
    req: &DecideRequest,
    actor: &str,
) -> Result<ReviewView, Error> {
    let r = review::load(ctx, id).await?;
    match r.status {
        ReviewStatus::Open => carry_out(ctx, &r, req, actor).await?,
        s if s == req.status() => {}
        _ => return Err(review::already_decided(&r)),
    }
    let r = review::load(ctx, id).await?;
    if r.flow == Flow::Deposit && r.status == ReviewStatus::Approved {
        open_approved_deposit(ctx, &r).await?;
    }
    review::view(ctx, &review::load(ctx, id).await?).await
}

async fn carry_out(ctx: &Ctx, r: &Review, req: &DecideRequest, actor: &str) -> Result<(), Error> {
    match r.flow {
        Flow::Payout => payouts::decide_review(ctx, r, req, actor).await?,
        Flow::Deposit => {
            let writes = review::decide_writes(r, req, actor, ctx.now_ms());
            match ctx.store.transact(writes).await {
                Ok(()) => {}
                // Decided meanwhile: answered from the review as it stands.
                Err(StoreError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    tracing::info!(review_id = %r.id, flow = r.flow.as_str(), decision = req.status().as_str(), actor, audit = "risk_review_decided", "risk review decided");
    Ok(())
}

/// Open an approved deposit's held intent, once: reserve it against the
/// limits, route it, open the PSP session. A refusal that a retry cannot
/// change (a limit, an exclusion, no route) is recorded on the review; an
/// outage is returned, and the same decision again tries anew.
async fn open_approved_deposit(ctx: &Ctx, r: &Review) -> Result<(), Error> {
    let id = PaymentId::parse(&r.id).map_err(|e| Error::Internal(e.to_string()))?;
    if ctx.store.get(&keys::payment(&id)).await?.is_some() {
        // Opened by an earlier call that stopped before recording it.
        if r.result.is_none() {
            review::set_result(ctx, r, "opened").await?;
        }
        return Ok(());
    }
    let body = r
        .request
        .as_ref()
        .ok_or_else(|| Error::Internal("a held deposit lacks its request".into()))?;
    let req = InitRequest::parse(&Body::from_json(body.to_string().as_bytes())?)?;
    let d = decision::find(ctx, &req.player, &r.id).await?;
    match deposits::open_deposit(ctx, req, id, d.as_ref()).await {
        Ok(_) => review::set_result(ctx, r, "opened").await,
        Err(e) if !e.row().retryable => {
            let code = e.row().code;
            tracing::info!(review_id = %r.id, code, "approved deposit not opened");
            review::set_result(ctx, r, &format!("not opened: {code}")).await
        }
        Err(e) => Err(e),
    }
}
