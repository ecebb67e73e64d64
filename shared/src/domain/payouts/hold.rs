//! Creating a payout: the checks, then ONE transaction that stores it, holds
//! the amount and counts it against the day's limit.

use super::view::{view_of, PayoutView};
use super::*;

/// `POST /v1/payouts/init`: check, hold, start (or defer). `id` is the
/// payout id the idempotency engine reserved.
pub async fn init(ctx: &Ctx, r: PayoutRequest, id: String) -> Result<PayoutView, Error> {
    if let Some(old) = ctx.store.get(&keys::payout(&id)).await? {
        return Ok(view_of(&old));
    }
    check(ctx, &r).await?;
    let route = route(ctx, &r).await?;
    hold(ctx, &r, &id, &route).await?;
    tracing::info!(payout_id = %id, player_id = %r.player, psp = %route.0, reason = %route.2, "payout held");
    let payout = load(ctx, &id).await?;
    send_or_defer(ctx, &payout).await?;
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
    due_sk: &str,
) -> Item {
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
            ("status", Attr::from(PayoutStatus::Deferred.as_str())),
            ("created_ms", Attr::N(now)),
            (
                "history",
                Attr::L(vec![history(PayoutStatus::Deferred, now, "held")]),
            ),
            ("due_sk", Attr::from(due_sk)),
        ],
    );
    if let Some(t) = r.destination_token.as_ref().or(deposit_token.as_ref()) {
        record.insert("destination_token".into(), Attr::from(t.as_str()));
    }
    record
}

/// ONE transaction: the payout, its hold, the day's total and its place on
/// the sweep's schedule — so a crash before the PSP is asked leaves a
/// payout the sweep sends, never held money that nothing touches.
pub(super) async fn hold(
    ctx: &Ctx,
    r: &PayoutRequest,
    id: &str,
    route: &(PspId, Option<String>, String),
) -> Result<(), Error> {
    let now = ctx.now_ms();
    let currency = r.amount.currency();
    let (due, due_at) = due_item(now + ctx.policies.payouts.retry_after_ms, id);
    let limit = ctx.policies.payouts.max_per_day_minor;
    let extra = [
        Write::Put {
            item: new_payout(r, id, route, now, &due_at),
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
        Write::Put {
            item: due,
            cond: None,
        },
    ];
    let mut m = Movement::new(&r.player, currency, txn(id, "h")?, EntryKind::Hold);
    m.available_delta = -r.amount.minor();
    m.held_delta = r.amount.minor();
    m.reason = "payout".into();
    m.related = vec![("payout_id", id.to_owned())];
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
