//! Deposit intents: the risk decision, then (approved) route the intent and
//! open the PSP session, store the intent, answer with the redirect; or
//! (review) hold it unopened until an operator decides; or (decline)
//! refuse it.

use crate::error::Error;
use serde::Serialize;

use crate::ids::{PaymentId, PspId};
use crate::money::Currency;
use crate::store::{Attr, Cond, ItemExt, StoreError, Write};

use crate::domain::deposits::payment::{Payment, PaymentStatus};
use crate::domain::deposits::request::InitRequest;
use crate::domain::deposits::route::route_and_open;
use crate::domain::limits;
use crate::domain::risk::decision::{self, StoredDecision};
use crate::domain::risk::review;
use crate::domain::risk::rules::{Flow, Outcome};
use crate::domain::Ctx;
use crate::schema::keys;

/// Decide the intent (risk), then: declined, 403; held for review, the
/// review item with the request (202, no PSP session); approved,
/// [`open_deposit`] under the id the idempotency engine reserved (201). If
/// that id already holds an intent or a review, an earlier attempt of this
/// same request committed it (then crashed or timed out): answer from it.
pub async fn create_intent(
    ctx: &Ctx,
    req: InitRequest,
    id: PaymentId,
) -> Result<IntentView, Error> {
    // A re-run under the same reserved id must not open a second PSP session.
    if let Some(old) = ctx.store.get(&keys::payment(&id)).await? {
        return from_earlier_attempt(&old, &req);
    }
    if let Some(held) = review::find(ctx, id.as_str()).await? {
        let status = match held.status {
            review::ReviewStatus::Open => "review",
            other => other.as_str(),
        };
        return Ok(held_response(&id, &req, status));
    }
    limits::exclusion::check(ctx, &req.player, ctx.now_ms()).await?;
    let d = decision::decide(ctx, Flow::Deposit, id.as_str(), &req.player, &req.signals()).await?;
    if d.outcome == Outcome::Decline {
        return Err(decision::declined(&d));
    }
    if d.step_up_kyc.is_some() {
        let has = crate::domain::players::profile(ctx, &req.player).await?.kyc;
        if let Err(e) = d.step_up(has) {
            crate::domain::players::kyc_step_up_asked(ctx, &req.player).await;
            return Err(e);
        }
    }
    if d.outcome == Outcome::Review {
        let writes = review::open_writes(&d, &req.player, Some(&req.to_body()), ctx.now_ms());
        match ctx.store.transact(writes).await {
            Ok(()) | Err(StoreError::ConditionFailed { index: 0, .. }) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(payment_id = %id, "deposit intent held for risk review");
        started(ctx, &req);
        return Ok(held_response(&id, &req, "review"));
    }
    let counted = req.clone();
    let view = open_deposit(ctx, req, id, Some(&d)).await?;
    // Counted once created (a held one when held, above; its opening on
    // approval is not a second start).
    started(ctx, &counted);
    Ok(view)
}

/// Open an approved deposit: reserve it against the limits, route it and
/// open the PSP session, store the intent. Also how an approved review
/// opens its held intent (`decision` is then already on record).
pub async fn open_deposit(
    ctx: &Ctx,
    req: InitRequest,
    id: PaymentId,
    decision: Option<&StoredDecision>,
) -> Result<IntentView, Error> {
    // Limits first: no PSP session opens for a deposit the limits refuse.
    // The intent is dated when its hold is, so its periods are the hold's.
    let created_ms = ctx.now_ms();
    limits::reserve::reserve(ctx, &req.player, req.amount, &id, created_ms).await?;
    let routed = match route_and_open(ctx, &req, &id).await {
        Ok(routed) => routed,
        Err(e) => {
            // No session, no deposit: the retry of this request reserves afresh.
            let currency = req.amount.currency();
            if let Err(release) = limits::reserve::release(ctx, &req.player, currency, &id).await {
                tracing::warn!(payment_id = %id, error = %release, "could not release a limit reservation");
            }
            return Err(e);
        }
    };
    let payment = Payment {
        id,
        player: req.player.clone(),
        amount: req.amount,
        method: req.method.clone(),
        psp: routed.psp.clone(),
        status: PaymentStatus::Pending,
        return_url: req.return_url.clone(),
        country: req.country.clone(),
        device: req.device.clone(),
        created_ms,
        credited_txn: None,
        history: Vec::new(),
    };
    let mut record = payment.to_item();
    record.insert(
        "redirect_url".into(),
        Attr::from(routed.session.redirect_url.as_str()),
    );
    record.insert(
        "psp_reference".into(),
        Attr::from(routed.session.reference.as_str()),
    );
    record.insert("routing".into(), routed.record());
    if let Some(d) = decision {
        record.insert("risk".into(), d.summary());
    }
    if let Some(i) = &req.risk.instrument {
        record.insert("instrument".into(), Attr::from(i.as_str()));
    }
    if let Some(b) = &req.bank {
        record.insert("bank".into(), Attr::from(b.as_str()));
    }
    match ctx
        .store
        .write(Write::Put {
            item: record,
            cond: Some(Cond::NotExists),
        })
        .await
    {
        Ok(()) => {
            tracing::info!(payment_id = %payment.id, psp = %payment.psp, method = %payment.method, attempts = routed.attempts.len(), "deposit intent created");
            Ok(intent_response(&payment, &routed.session.redirect_url))
        }
        Err(StoreError::ConditionFailed { old: Some(old), .. }) => from_earlier_attempt(&old, &req),
        Err(e) => Err(e.into()),
    }
}

/// Answer a re-run from the intent an earlier attempt of the same request
/// stored; a different request under the same key is a conflict.
fn from_earlier_attempt(old: &crate::store::Item, req: &InitRequest) -> Result<IntentView, Error> {
    let earlier = Payment::from_item(old)?;
    if !matches_request(&earlier, req) {
        return Err(Error::IdempotencyKeyReused);
    }
    tracing::info!(payment_id = %earlier.id, "deposit intent found from an earlier attempt");
    Ok(intent_response(
        &earlier,
        old.str_attr("redirect_url").unwrap_or_default(),
    ))
}

fn matches_request(p: &Payment, r: &InitRequest) -> bool {
    (
        &p.player,
        p.amount,
        &p.method,
        &p.return_url,
        &p.country,
        &p.device,
    ) == (
        &r.player,
        r.amount,
        &r.method,
        &r.return_url,
        &r.country,
        &r.device,
    )
}

/// The answer to `POST /v1/payments/init`: 201 with the redirect, or 202
/// `review` (no PSP yet: the intent waits for an operator's decision).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentView {
    pub payment_id: PaymentId,
    /// A payment status, or `review` / `declined` while no payment exists.
    pub status: String,
    pub redirect_url: Option<String>,
    pub psp: Option<PspId>,
    pub amount: String,
    pub amount_micros: Option<i64>,
    pub currency: Currency,
}

impl IntentView {
    /// Held for review: 202, not 201.
    pub fn held(&self) -> bool {
        self.psp.is_none()
    }
}

/// The answer that created `p`, the same whenever it is rebuilt (its status
/// is the one it was created with, whatever it is now): a retry of the
/// request is answered from the stored intent, byte for byte.
fn intent_response(p: &Payment, redirect_url: &str) -> IntentView {
    IntentView {
        payment_id: p.id.clone(),
        status: PaymentStatus::Pending.as_str().to_owned(),
        redirect_url: Some(redirect_url.to_owned()),
        psp: Some(p.psp.clone()),
        amount: p.amount.to_decimal(),
        amount_micros: p.amount.micros().ok(),
        currency: p.amount.currency(),
    }
}

fn held_response(id: &PaymentId, req: &InitRequest, status: &str) -> IntentView {
    IntentView {
        payment_id: id.clone(),
        status: status.to_owned(),
        redirect_url: None,
        psp: None,
        amount: req.amount.to_decimal(),
        amount_micros: req.amount.micros().ok(),
        currency: req.amount.currency(),
    }
}

/// The 201 a created intent was answered with, rebuilt from the stored
/// intent (`None`: no intent under the id). This is how `POST
/// /v1/payments/init` is idempotent without storing its answer.
pub async fn recall_intent(ctx: &Ctx, id: &PaymentId) -> Result<Option<IntentView>, Error> {
    let Some(found) = ctx.store.get(&keys::payment(id)).await? else {
        return Ok(None);
    };
    let p = Payment::from_item(&found)?;
    Ok(Some(intent_response(
        &p,
        found.str_attr("redirect_url").unwrap_or_default(),
    )))
}

pub async fn load_payment(ctx: &Ctx, id: &PaymentId) -> Result<Payment, Error> {
    let found = ctx
        .store
        .get(&keys::payment(id))
        .await?
        .ok_or(Error::NotFound { what: "payment" })?;
    Payment::from_item(&found)
}

/// Count a deposit started (metrics).
fn started(ctx: &Ctx, req: &InitRequest) {
    crate::domain::observe::deposit_started(
        ctx,
        &req.method,
        req.bank.as_deref(),
        req.country.as_deref(),
        req.device.as_deref(),
    );
}
