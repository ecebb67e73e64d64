//! A payout's outcome: matching a PSP event at intake, applying it once
//! (settle or release the hold), cases and the failure notice.

use super::*;

/// A final outcome: settle (succeeded) or release (failed) the hold, once,
/// whatever the order and number of deliveries. `Ok(false)`: the payout was
/// already final (a late or repeated outcome).
pub async fn finish(
    ctx: &Ctx,
    p: &Payout,
    outcome: PayoutStatus,
    reason: &str,
    event_id: Option<&str>,
) -> Result<bool, Error> {
    finish_with(ctx, p, outcome, reason, event_id, Vec::new()).await
}

/// [`finish`], with more writes in the same transaction (a review's own
/// move when an operator declines a held payout).
pub(super) async fn finish_with(
    ctx: &Ctx,
    p: &Payout,
    outcome: PayoutStatus,
    reason: &str,
    event_id: Option<&str>,
    more: Vec<Write>,
) -> Result<bool, Error> {
    let (kind, step, available_delta) = match outcome {
        PayoutStatus::Succeeded => (EntryKind::HoldSettled, "s", 0),
        PayoutStatus::Failed => (EntryKind::HoldReleased, "r", p.amount.minor()),
        _ => return Err(Error::Internal("finish needs a final status".into())),
    };
    let mut m = Movement::new(&p.player, p.amount.currency(), txn(&p.id, step)?, kind);
    m.available_delta = available_delta;
    m.held_delta = -p.amount.minor();
    m.reason = reason.chars().take(200).collect();
    m.related = vec![("payout_id", p.id.clone())];
    let now = ctx.now_ms();
    let mut extra = outcome_writes(p, outcome, &m.reason, event_id.unwrap_or(reason), now);
    extra.extend(more);
    // The player's notification of a failure, in the same transaction.
    let notice = (outcome == PayoutStatus::Failed).then(|| failed_notice(ctx, p, now));
    if let Some(n) = &notice {
        extra.push(n.write());
    }
    let fresh = match ledger::apply(ctx, &m, &extra).await? {
        Outcome::Moved(e) => e.fresh,
        Outcome::Refused(Refusal::Extra { .. }) => false,
        Outcome::Refused(r) => {
            return Err(Error::Internal(format!("payout outcome refused: {r:?}")))
        }
    };
    if fresh {
        tracing::info!(payout_id = %p.id, status = outcome.as_str(), "payout final");
        let requested = crate::ids::ulid_time_ms(&p.id).unwrap_or(now);
        let paid = outcome == PayoutStatus::Succeeded;
        crate::domain::observe::payout_finished(ctx, &p.method, paid, requested);
        if let Some(n) = &notice {
            if let Err(e) = n.send(ctx).await {
                tracing::warn!(payout_id = %p.id, error = %e, "notification left to the sweep");
            }
        }
    }
    Ok(fresh)
}

/// The payout's move to its outcome (from any open status), off the
/// schedule, and for a success the reconciliation index item.
pub(super) fn outcome_writes(
    p: &Payout,
    outcome: PayoutStatus,
    reason: &str,
    note: &str,
    now: i64,
) -> Vec<Write> {
    let mut ops = vec![
        UpdateOp::set("status", outcome.as_str()),
        UpdateOp::set("final_reason", reason),
        UpdateOp::Append("history".into(), vec![history(outcome, now, note)]),
        UpdateOp::Remove("due_sk".into()),
    ];
    if outcome == PayoutStatus::Succeeded {
        ops.push(UpdateOp::Remove("flagged".into()));
    }
    let mut extra = vec![Write::Update {
        key: keys::payout(&p.id),
        ops,
        cond: Some(Cond::In("status".into(), open_statuses())),
    }];
    if let Some(sk) = &p.due_sk {
        extra.push(Write::Delete {
            key: keys::payout_due(sk.clone()),
            cond: None,
        });
    }
    if outcome == PayoutStatus::Succeeded {
        // What the PSP will settle: the reconciliation index, in this transaction.
        let record = Record {
            key: match_key(Kind::Payout, &p.id, ""),
            kind: Kind::Payout,
            payment_id: p.id.clone(),
            gross_minor: -p.amount.minor(),
            currency: p.amount.currency(),
            method: p.method.clone(),
            event_id: note.to_owned(),
        };
        extra.push(record.write(&p.psp, Day::of_ms(now)));
    }
    extra
}

/// The player notification of a failed payout (at least once, through the
/// outbox; consumers dedupe on `notification_id`).
pub(super) fn failed_notice(ctx: &Ctx, p: &Payout, now: i64) -> Outgoing {
    let id = format!("payout_failed:{}", p.id);
    let body = json!({
        "notification_id": id,
        "type": "payout_failed",
        "player_id": p.player,
        "payout_id": p.id,
        "amount": p.amount.to_decimal(),
        "currency": p.amount.currency(),
        "reason": "the payout failed; the amount is available again",
    });
    let due = now + ctx.policies.payouts.retry_after_ms;
    Outgoing::new(due, &id, QueueName::Notifications, body.to_string())
}

pub(super) fn matches(p: &Payout, ev: &PayoutEvent) -> bool {
    p.amount.minor() == ev.amount_minor && p.amount.currency() == ev.currency && p.psp == ev.psp
}

/// A payout case (mismatch, contradicting outcome), once per event.
pub(super) async fn open_case(
    ctx: &Ctx,
    kind: CaseKind,
    ev: &PayoutEvent,
    p: &Payout,
) -> Result<(), Error> {
    let case = NewCase::of_event(
        keys::payout_case(&ev.payout_id, &ev.psp, &ev.event_id),
        kind,
        &ev.event_id,
        None,
        Side::record("payout", p.status.as_str(), p.amount, &p.psp),
        Side::event(ev.status.as_str(), ev.amount_minor, ev.currency, &ev.psp),
    );
    cases::open(ctx, case).await.map(drop)
}

/// Webhook intake of a payout outcome, before it is queued: does it match
/// the payout it names? A mismatch opens a case and is not queued.
pub async fn check_event(ctx: &Ctx, ev: &PayoutEvent) -> Result<bool, Error> {
    let found = ctx
        .store
        .get(&keys::payout(&ev.payout_id))
        .await?
        .ok_or(Error::NotFound { what: "payout" })?;
    let p = Payout::from_item(&found)?;
    if matches(&p, ev) {
        return Ok(true);
    }
    open_case(ctx, CaseKind::WebhookMismatch, ev, &p).await?;
    Ok(false)
}

/// The consumer's side: apply a payout outcome. `Err(true)`: retry.
pub async fn apply_event(ctx: &Ctx, ev: &PayoutEvent) -> Result<(), bool> {
    let p = match load(ctx, &ev.payout_id).await {
        Ok(p) => p,
        Err(Error::NotFound { .. }) => return Err(true),
        Err(e) => return Err(e.row().retryable),
    };
    if !matches(&p, ev) {
        return Ok(()); // a case was opened at intake; no money moves
    }
    let outcome = match ev.status {
        OperationOutcome::Succeeded => PayoutStatus::Succeeded,
        OperationOutcome::Failed => PayoutStatus::Failed,
    };
    // The PSP's own reason (`ev.reason`) is free text that may name the
    // player: it reaches neither a log line, the payout nor the player.
    let reason = format!("PSP webhook: {}", ev.status.as_str());
    match finish(ctx, &p, outcome, &reason, Some(ev.event_id.as_str())).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            let now = load(ctx, &p.id).await.map_err(|e| e.row().retryable)?;
            if now.status.is_final() && now.status != outcome {
                open_case(ctx, CaseKind::ConflictingFinalStatus, ev, &now)
                    .await
                    .map_err(|e| e.row().retryable)?;
            }
            Ok(())
        }
        Err(e) => Err(e.row().retryable),
    }
}
