//! Getting a payout to its PSP and its outcome back: send or defer, the
//! sweep of due work, asking the PSP's status API.

use super::*;
use crate::psp::OperationStatus;

/// Payouts handled per sweep run.
pub const SWEEP_BATCH: usize = 100;

/// Times the PSP's status API is asked about a payout it says is still
/// pending (an outcome timeout apart) or cannot answer for (a retry
/// interval apart) before the payout is held for an operator.
pub(super) const MAX_STATUS_ASKS: i64 = 4;

/// Move a payout between open statuses, replacing its due-work item.
pub(super) async fn reschedule(
    ctx: &Ctx,
    p: &Payout,
    to: PayoutStatus,
    due_ms: Option<i64>,
    note: &str,
    reference: Option<&str>,
) -> Result<bool, Error> {
    let now = ctx.now_ms();
    let mut writes = Vec::new();
    let mut ops = vec![
        UpdateOp::set("status", to.as_str()),
        UpdateOp::Append("history".into(), vec![history(to, now, note)]),
    ];
    if let Some(r) = reference {
        ops.push(UpdateOp::set("psp_reference", r));
    }
    if to == PayoutStatus::Review {
        // Held for an operator: flagged in the same write as the status.
        ops.push(UpdateOp::set("flagged", true));
    }
    if to == PayoutStatus::Pending && p.status == PayoutStatus::Pending {
        ops.push(UpdateOp::Add("status_asks".into(), 1));
    }
    match due_ms {
        Some(due) => {
            let (it, sk) = due_item(due, &p.id);
            ops.push(UpdateOp::set("due_sk", sk.as_str()));
            writes.push(Write::Put {
                item: it,
                cond: None,
            });
        }
        None => ops.push(UpdateOp::Remove("due_sk".into())),
    }
    if let Some(old) = &p.due_sk {
        if due_ms.is_none_or(|d| &due_sk(d, &p.id) != old) {
            writes.push(Write::Delete {
                key: keys::payout_due(old.clone()),
                cond: None,
            });
        }
    }
    writes.insert(
        0,
        Write::Update {
            key: keys::payout(&p.id),
            ops,
            cond: Some(Cond::eq("status", p.status.as_str())),
        },
    );
    match ctx.store.transact(writes).await {
        Ok(()) => Ok(true),
        Err(crate::store::StoreError::ConditionFailed { index: 0, .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Send a held payout to its PSP, or defer it (PSP down, degradation mode).
pub(super) async fn send_or_defer(ctx: &Ctx, p: &Payout) -> Result<(), Error> {
    let now = ctx.now_ms();
    let policy = &ctx.policies.payouts;
    let retry = Some(now + policy.retry_after_ms);
    let modes = ctx.psps.modes.current(ctx.store.as_ref(), now).await?;
    if modes.degraded {
        let note = "deferred: degradation mode";
        return reschedule(ctx, p, PayoutStatus::Deferred, retry, note, None)
            .await
            .map(drop);
    }
    let Some(connector) = ctx.psps.get(&p.psp) else {
        let note = "no connector for the payout's PSP";
        return reschedule(ctx, p, PayoutStatus::Review, None, note, None)
            .await
            .map(drop);
    };
    let req = PspPayout {
        payout_id: &p.id,
        player_id: &p.player,
        amount: p.amount,
        destination_token: p.destination_token.as_deref(),
    };
    let done = match connector.start_payout(&req).await {
        Ok(op) => {
            let due = Some(now + policy.outcome_timeout_ms);
            let reference = Some(op.reference.as_str());
            reschedule(
                ctx,
                p,
                PayoutStatus::Pending,
                due,
                "sent to the PSP",
                reference,
            )
            .await
        }
        Err(PspError::Unavailable(why)) => {
            tracing::warn!(payout_id = %p.id, psp = %p.psp, why = %why, "payout deferred: PSP unavailable");
            let note = "deferred: PSP unavailable";
            reschedule(ctx, p, PayoutStatus::Deferred, retry, note, None).await
        }
        Err(e) => {
            tracing::error!(payout_id = %p.id, psp = %p.psp, error = %e, "PSP refused the payout");
            // The PSP's own words stay in the log line above.
            let reason = "the PSP refused the payout";
            finish(ctx, p, PayoutStatus::Failed, reason, None).await
        }
    };
    done.map(drop)
}

/// The sweep: deferred payouts are sent again; pending ones past their
/// timeout are asked about at the PSP, then finished or flagged for review.
/// Returns how many due payouts it handled.
pub async fn sweep(ctx: &Ctx, now: i64) -> Result<usize, Error> {
    let q = Query::new(keys::PAYOUT_DUE_PK, keys::due_until(now), SWEEP_BATCH);
    let due = ctx.store.query(&q).await?.items;
    for d in &due {
        let Some(id) = d.str_attr("payout_id") else {
            continue;
        };
        let p = match load(ctx, id).await {
            Ok(p) => p,
            Err(Error::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        match p.status {
            PayoutStatus::Deferred => send_or_defer(ctx, &p).await?,
            PayoutStatus::Pending => ask_psp(ctx, &p).await?,
            _ => {
                let sk = d.str_attr("sk").unwrap_or_default().to_owned();
                ctx.store
                    .write(Write::Delete {
                        key: keys::payout_due(sk),
                        cond: None,
                    })
                    .await?;
            }
        }
    }
    Ok(due.len())
}

/// Timeout: ask the PSP; a final answer goes the webhook's way, anything
/// else leaves the money held and the payout flagged for review.
pub(super) async fn ask_psp(ctx: &Ctx, p: &Payout) -> Result<(), Error> {
    let asks_left = p.status_asks + 1 < MAX_STATUS_ASKS;
    let answer = match (ctx.psps.get(&p.psp), &p.psp_reference) {
        (Some(c), Some(reference)) => match c.payout_status(reference).await {
            Ok(op) => Some(op),
            // The PSP could not answer now: ask again later (bounded), held.
            Err(PspError::Unavailable(why)) if asks_left => {
                tracing::warn!(payout_id = %p.id, psp = %p.psp, why = %why, "payout status API unavailable; asking again later");
                let retry = ctx.now_ms() + ctx.policies.payouts.retry_after_ms;
                let note = "status API unavailable; asking again";
                reschedule(ctx, p, PayoutStatus::Pending, Some(retry), note, None).await?;
                return Ok(());
            }
            Err(_) => None,
        },
        _ => None,
    };
    let still_pending = answer
        .as_ref()
        .is_some_and(|op| op.status == OperationStatus::Pending);
    if still_pending && asks_left {
        // The PSP is still working on it: ask again after another timeout.
        let again = ctx.now_ms() + ctx.policies.payouts.outcome_timeout_ms;
        let note = "still pending at the PSP; asking again";
        reschedule(ctx, p, PayoutStatus::Pending, Some(again), note, None).await?;
        return Ok(());
    }
    match answer.and_then(|op| op.status.outcome()) {
        Some(OperationOutcome::Succeeded) => finish(
            ctx,
            p,
            PayoutStatus::Succeeded,
            "PSP status API: succeeded",
            Some("status_api"),
        )
        .await
        .map(|_| ()),
        Some(OperationOutcome::Failed) => finish(
            ctx,
            p,
            PayoutStatus::Failed,
            "PSP status API: failed",
            Some("status_api"),
        )
        .await
        .map(|_| ()),
        _ => {
            tracing::warn!(payout_id = %p.id, psp = %p.psp, "payout without outcome after the timeout: held, flagged for review");
            reschedule(
                ctx,
                p,
                PayoutStatus::Review,
                None,
                "no outcome after the timeout; held for review",
                None,
            )
            .await?;
            Ok(())
        }
    }
}
