//! Due work: re-sending refunds the PSP did not take, asking the status of
//! those without an outcome, and the sweep that runs both.

use super::*;

/// Times the status API is asked about a refund at the PSP without an
/// outcome (an outcome timeout apart) before it is flagged for an operator.
pub(super) const MAX_STATUS_ASKS: i64 = 4;

/// Refunds handled per sweep run.
pub const SWEEP_BATCH: usize = 100;

pub(super) fn due_sk(due_ms: i64, payment: &PaymentId, refund_id: &str) -> String {
    keys::due_sk(due_ms, &format!("{payment}#{refund_id}"))
}

/// The due-work item that keeps a refund not yet taken by the PSP on the
/// sweep's schedule.
pub(super) fn due_put(sk: &str, payment: &PaymentId, refund_id: &str) -> Write {
    Write::Put {
        item: item(
            &keys::refund_due(sk),
            [
                ("payment_id", Attr::from(payment.as_str())),
                ("refund_id", Attr::from(refund_id)),
            ],
        ),
        cond: None,
    }
}

pub(super) fn due_delete(sk: &str) -> Write {
    Write::Delete {
        key: keys::refund_due(sk),
        cond: None,
    }
}

/// The PSP has the refund but no outcome came: ask its status API. A final
/// answer goes the webhook's way; "still pending" or no answer asks again a
/// timeout later, up to [`MAX_STATUS_ASKS`] times, then the refund is held
/// (its reservation kept) and flagged for an operator.
pub(super) async fn ask_psp(
    ctx: &Ctx,
    p: &Payment,
    key: &Key,
    r: &Item,
    reference: &str,
) -> Result<(), Error> {
    let refund_id = r.str_attr("refund_id").unwrap_or_default().to_owned();
    let answer = match ctx.psps.get(&p.psp) {
        Some(c) => c.refund_status(reference).await.ok(),
        None => None,
    };
    if let Some(status) = answer.and_then(|op| op.status.outcome()) {
        let ev = RefundEvent {
            psp: p.psp.clone(),
            event_id: crate::ids::EventId::parse(&format!("status-api:{refund_id}"))
                .map_err(|e| Error::Internal(e.to_string()))?,
            refund_id,
            payment_id: p.id.clone(),
            status,
            amount_minor: r.int_attr("amount").unwrap_or(0),
            currency: p.amount.currency(),
            occurred_ms: ctx.now_ms(),
            psp_reference: Some(reference.to_owned()),
        };
        return apply_event(ctx, &ev)
            .await
            .map_err(|_| Error::Unavailable("the refund's outcome could not be applied".into()));
    }
    ask_again_later(ctx, p, key, r, &refund_id).await
}

/// No outcome from the status API: another timeout, or (after
/// [`MAX_STATUS_ASKS`]) flagged for an operator, the reservation kept.
pub(super) async fn ask_again_later(
    ctx: &Ctx,
    p: &Payment,
    key: &Key,
    r: &Item,
    refund_id: &str,
) -> Result<(), Error> {
    let asks = r.int_attr("status_asks").unwrap_or(0) + 1;
    let mut writes = Vec::new();
    let mut ops = vec![UpdateOp::set("status_asks", asks)];
    if asks < MAX_STATUS_ASKS {
        let next = due_sk(
            ctx.now_ms() + ctx.policies.payouts.outcome_timeout_ms,
            &p.id,
            refund_id,
        );
        ops.push(UpdateOp::set("due_sk", next.as_str()));
        writes.push(due_put(&next, &p.id, refund_id));
    } else {
        tracing::warn!(payment_id = %p.id, refund_id, "refund without outcome: reservation kept, flagged for review");
        ops.push(UpdateOp::set("flagged", true));
        ops.push(UpdateOp::Remove("due_sk".into()));
    }
    if let Some(old) = r.str_attr("due_sk") {
        writes.push(due_delete(old));
    }
    writes.insert(
        0,
        Write::Update {
            key: key.clone(),
            ops,
            cond: Some(Cond::eq("status", RefundStatus::Requested.as_str())),
        },
    );
    match ctx.store.transact(writes).await {
        Ok(()) | Err(StoreError::ConditionFailed { index: 0, .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Keep a refund the PSP could not take on the schedule, a retry later.
pub(super) async fn reschedule(
    ctx: &Ctx,
    p: &Payment,
    key: &Key,
    refund_id: &str,
    due: Option<&str>,
) -> Result<(), Error> {
    let next = due_sk(
        ctx.now_ms() + ctx.policies.payouts.retry_after_ms,
        &p.id,
        refund_id,
    );
    let still_waiting = Cond::And(vec![
        Cond::eq("status", RefundStatus::Requested.as_str()),
        Cond::AttrNotExists("psp_reference".into()),
    ]);
    let mut writes = vec![
        Write::Update {
            key: key.clone(),
            ops: vec![UpdateOp::set("due_sk", next.as_str())],
            cond: Some(still_waiting),
        },
        due_put(&next, &p.id, refund_id),
    ];
    if let Some(old) = due.filter(|old| *old != next) {
        writes.push(due_delete(old));
    }
    match ctx.store.transact(writes).await {
        // Taken or finished meanwhile: nothing to keep scheduled.
        Ok(()) | Err(StoreError::ConditionFailed { index: 0, .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The sweep's share for refunds: every refund the PSP has not taken yet
/// (its first attempt crashed, or the PSP was down) is sent again; every
/// refund the PSP has, without an outcome after the timeout, is asked about.
/// Returns how many due refunds it handled.
pub async fn sweep(ctx: &Ctx, now: i64) -> Result<usize, Error> {
    let q = Query::new(keys::REFUND_DUE_PK, keys::due_until(now), SWEEP_BATCH);
    let due = ctx.store.query(&q).await?.items;
    for d in &due {
        let sk = d.str_attr("sk").unwrap_or_default().to_owned();
        let found = match (d.str_attr("payment_id"), d.str_attr("refund_id")) {
            (Some(pid), Some(rid)) => match PaymentId::parse(pid) {
                Ok(pid) => Some((pid, rid.to_owned())),
                Err(_) => None,
            },
            _ => None,
        };
        let Some((payment_id, refund_id)) = found else {
            ctx.store.write(due_delete(&sk)).await?;
            continue;
        };
        let key = keys::refund(&payment_id, &refund_id);
        let (p, r) = match (
            load_payment(ctx, &payment_id).await,
            ctx.store.get(&key).await?,
        ) {
            (Ok(p), Some(r)) => (p, r),
            (Err(Error::UnknownPayment | Error::NotFound { .. }), _) | (Ok(_), None) => {
                ctx.store.write(due_delete(&sk)).await?;
                continue;
            }
            (Err(e), _) => return Err(e),
        };
        let open = r.str_attr("status") == Some(RefundStatus::Requested.as_str());
        if !open || r.str_attr("due_sk") != Some(sk.as_str()) {
            // A stale schedule entry: the refund moved on (or was rescheduled).
            ctx.store.write(due_delete(&sk)).await?;
            continue;
        }
        match r.str_attr("psp_reference") {
            None => {
                deliver(ctx, &p, &key, &r).await?;
            }
            Some(reference) => ask_psp(ctx, &p, &key, &r, reference).await?,
        }
    }
    Ok(due.len())
}
