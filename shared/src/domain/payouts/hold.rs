//! Creating a payout: the checks and the risk decision, then ONE
//! transaction that stores it, holds the amount and counts it against the
//! day's limit (and, under review, opens the review); then the AML
//! scenarios. An operator's review decision sends it or releases it.

use super::view::{view_of, PayoutView};
use super::*;
use crate::domain::risk::decision::{self, StoredDecision};
use crate::domain::risk::review::{self, DecideRequest, Review};
use crate::domain::risk::rules::{Flow, Outcome as RiskOutcome};

/// `POST /v1/payouts/init`: check, decide, hold, start (or defer, or keep
/// for review). `id` is the payout id the idempotency engine reserved.
pub async fn init(ctx: &Ctx, r: PayoutRequest, id: String) -> Result<PayoutView, Error> {
    if let Some(old) = ctx.store.get(&keys::payout(&id)).await? {
        // An earlier attempt held it (and may have crashed before the AML step).
        aml_after_hold(ctx, &Payout::from_item(&old)?, r.country.as_deref()).await;
        return Ok(view_of(&old));
    }
    check(ctx, &r).await?;
    let route = route(ctx, &r).await?;
    let destination = r.destination_token.as_ref().or(route.1.as_ref());
    let d = decision::decide(
        ctx,
        Flow::Payout,
        &id,
        &r.player,
        &r.signals(destination.map(String::as_str)),
    )
    .await?;
    if d.outcome == RiskOutcome::Decline {
        return Err(decision::declined(&d));
    }
    if d.step_up_kyc.is_some() {
        if let Err(e) = d.step_up(players::profile(ctx, &r.player).await?.kyc) {
            players::kyc_step_up_asked(ctx, &r.player).await;
            return Err(e);
        }
    }
    hold(ctx, &r, &id, &route, &d).await?;
    tracing::info!(payout_id = %id, player_id = %r.player, psp = %route.0, reason = %route.2, "payout held");
    crate::domain::observe::payout_requested(ctx, &r.method);
    let payout = load(ctx, &id).await?;
    aml_after_hold(ctx, &payout, r.country.as_deref()).await;
    if payout.status != PayoutStatus::OnHold {
        send_or_defer(ctx, &payout).await?;
    }
    Ok(view_of(
        &ctx.store
            .get(&keys::payout(&id))
            .await?
            .ok_or(Error::NotFound { what: "payout" })?,
    ))
}

/// The payout as first stored: deferred (not yet at the PSP), held, and on
/// the sweep's schedule (`due_sk`).
pub(super) fn new_payout(
    r: &PayoutRequest,
    id: &str,
    (psp, deposit_token, reason): &(PspId, Option<String>, String),
    now: i64,
    due_sk: Option<&str>,
) -> Item {
    // No place on the sweep's schedule: held for review (no PSP is asked).
    let (status, note) = match due_sk {
        Some(_) => (PayoutStatus::Deferred, "held"),
        None => (PayoutStatus::OnHold, "held for risk review"),
    };
    let mut record = item(
        &keys::payout(id),
        [
            ("payout_id", Attr::from(id)),
            ("player", Attr::from(r.player.as_str())),
            ("amount", Attr::N(r.amount.minor())),
            ("currency", Attr::from(r.amount.currency().code())),
            ("method", Attr::from(r.method.as_str())),
            ("psp", Attr::from(psp.as_str())),
            ("route_reason", Attr::from(reason.as_str())),
            ("status", Attr::from(status.as_str())),
            ("created_ms", Attr::N(now)),
            ("history", Attr::L(vec![history(status, now, note)])),
        ],
    );
    if let Some(sk) = due_sk {
        record.insert("due_sk".into(), Attr::from(sk));
    }
    if let Some(t) = r.destination_token.as_ref().or(deposit_token.as_ref()) {
        record.insert("destination_token".into(), Attr::from(t.as_str()));
    }
    record
}

/// ONE transaction: the payout, its hold, the day's total and its place on
/// the sweep's schedule (or, under review, its review) — so a crash before
/// the PSP is asked leaves a payout the sweep sends or an operator decides,
/// never held money that nothing touches.
pub(super) async fn hold(
    ctx: &Ctx,
    r: &PayoutRequest,
    id: &str,
    route: &(PspId, Option<String>, String),
    d: &StoredDecision,
) -> Result<(), Error> {
    let now = ctx.now_ms();
    let currency = r.amount.currency();
    let (due, due_at) = due_item(now + ctx.policies.payouts.retry_after_ms, id);
    let limit = ctx.policies.payouts.max_per_day_minor;
    let for_review = d.outcome == RiskOutcome::Review;
    let mut record = new_payout(r, id, route, now, (!for_review).then_some(due_at.as_str()));
    record.insert("risk".into(), d.summary());
    if let Some(c) = &r.country {
        record.insert("country".into(), Attr::from(c.as_str()));
    }
    let mut extra = vec![
        Write::Put {
            item: record,
            cond: Some(Cond::NotExists),
        },
        Write::Update {
            key: keys::payout_day_total(&r.player, currency, Day::of_ms(now)),
            ops: vec![UpdateOp::Add("total".into(), r.amount.minor())],
            cond: Some(Cond::Or(vec![
                Cond::AttrNotExists("total".into()),
                Cond::Lt("total".into(), Attr::N(limit - r.amount.minor() + 1)),
            ])),
        },
    ];
    if for_review {
        extra.extend(review::open_writes(d, &r.player, None, now));
    } else {
        extra.push(Write::Put {
            item: due,
            cond: None,
        });
    }
    let mut m = Movement::new(&r.player, currency, txn(id, "h")?, EntryKind::Hold);
    m.available_delta = -r.amount.minor();
    m.held_delta = r.amount.minor();
    m.reason = "payout".into();
    m.related = vec![("payout_id", id.to_owned())];
    // The AML scenarios read the hold as the payout's movement.
    let instrument = r.destination_token.as_ref().or(route.1.as_ref());
    m.related.extend(crate::domain::risk::aml::entry_facts(
        instrument.map(String::as_str),
        r.country.as_deref(),
    ));
    // Checked again against the balance the hold is written over.
    m.requires_wagering_done = true;
    match ledger::apply(ctx, &m, &extra).await? {
        // Moved, or the payout record exists: an earlier attempt held.
        Outcome::Moved(_) | Outcome::Refused(Refusal::Extra { index: 0, .. }) => Ok(()),
        Outcome::Refused(refusal) => Err(hold_refused(refusal, r, limit)),
    }
}

pub(super) fn hold_refused(refusal: Refusal, r: &PayoutRequest, daily_limit: i64) -> Error {
    let currency = r.amount.currency();
    match refusal {
        Refusal::WageringIncomplete { to_wager } => wagering_incomplete(to_wager, currency),
        Refusal::InsufficientFunds { available } => Error::PaymentRequiredWith {
            code: ErrorCode::InsufficientFunds,
            reason: format!("the payout is {} but less is available", r.amount),
            details: json!({"available": crate::money::format_minor(available, currency)}),
        },
        Refusal::Extra { index: 1, .. } => Error::PaymentRequiredWith {
            code: ErrorCode::DailyLimitReached,
            reason: "this payout would pass the daily payout limit".into(),
            details: json!({"daily_limit": crate::money::format_minor(daily_limit, currency)}),
        },
        Refusal::Extra { index, .. } => {
            Error::Internal(format!("payout hold refused by write {index}"))
        }
        Refusal::NoHold => Error::Internal("hold refused".into()),
    }
}

/// The AML scenarios after a held payout. A failure is logged, not
/// returned: the payout is held either way, and its retried request and
/// its final outcome run the (idempotent) step again.
pub(super) async fn aml_after_hold(ctx: &Ctx, p: &Payout, country: Option<&str>) {
    use crate::domain::risk::aml;
    if p.status == PayoutStatus::Failed {
        return;
    }
    let wagered = match aml::wagered_total(ctx, &p.player, p.amount.currency()).await {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(payout_id = %p.id, error = %e, "AML step left for later");
            return;
        }
    };
    let m = aml::Logged {
        id: p.id.clone(),
        kind: aml::MoveKind::Payout,
        amount: p.amount,
        at_ms: crate::ids::ulid_time_ms(&p.id).unwrap_or_else(|| ctx.now_ms()),
        instrument: p.destination_token.clone(),
        country: country.map(str::to_owned),
        wagered_total: wagered,
    };
    if let Err(e) = aml::after_movement(ctx, &p.player, &m).await {
        tracing::warn!(payout_id = %p.id, error = %e, "AML step left for later");
    }
}

/// An operator's decision on a payout held for review: approve puts it on
/// the sweep's schedule and sends it; decline releases the hold. Each in
/// ONE transaction with the review's own move, so it happens once.
pub async fn decide_review(
    ctx: &Ctx,
    r: &Review,
    req: &DecideRequest,
    actor: &str,
) -> Result<(), Error> {
    let p = load(ctx, &r.id).await?;
    let now = ctx.now_ms();
    let mut writes = review::decide_writes(r, req, actor, now);
    if !req.approve {
        let released = events::finish_with(
            ctx,
            &p,
            PayoutStatus::Failed,
            "declined in risk review",
            None,
            writes,
        )
        .await?;
        tracing::info!(payout_id = %p.id, released, audit = "review_declined", "payout declined in review");
        return Ok(());
    }
    let (due, due_at) = due_item(now, &p.id);
    writes.push(Write::Update {
        key: keys::payout(&p.id),
        ops: vec![
            UpdateOp::set("status", PayoutStatus::Deferred.as_str()),
            UpdateOp::set("due_sk", due_at.as_str()),
            UpdateOp::Append(
                "history".into(),
                vec![history(
                    PayoutStatus::Deferred,
                    now,
                    "approved in risk review",
                )],
            ),
        ],
        cond: Some(Cond::eq("status", PayoutStatus::OnHold.as_str())),
    });
    writes.push(Write::Put {
        item: due,
        cond: None,
    });
    match ctx.store.transact(writes).await {
        Ok(()) => {}
        // Decided meanwhile: the same decision is this one, done; the other
        // is a conflict.
        Err(crate::store::StoreError::ConditionFailed { .. }) => {
            return match review::find(ctx, &r.id).await? {
                Some(now) if now.status == req.status() => Ok(()),
                _ => Err(review::already_decided(r)),
            };
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(payout_id = %p.id, audit = "review_approved", "payout approved in review");
    // Sent now if it can be; else the sweep sends it (it is on the schedule).
    if let Err(e) = send_or_defer(ctx, &load(ctx, &p.id).await?).await {
        tracing::warn!(payout_id = %p.id, error = %e, "approved payout left to the sweep");
    }
    Ok(())
}
