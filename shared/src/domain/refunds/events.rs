//! A refund's outcome from its PSP: the debit, once, in one transaction with
//! everything it changes; an outcome we never asked for is a case.

use super::*;

/// The consumer's side: apply a refund outcome once. `Err(true)`: retry.
/// A Google refund's result notification is queued after it (again on a
/// redelivery: a crash between the two loses nothing).
pub async fn apply_event(ctx: &Ctx, ev: &RefundEvent) -> Result<(), bool> {
    apply_outcome(ctx, ev).await?;
    crate::domain::google_jobs::after_refund(ctx, &ev.payment_id, &ev.refund_id)
        .await
        .map_err(|e| {
            tracing::warn!(refund_id = %ev.refund_id, error = %e, "Google refund result not queued");
            true
        })
}

async fn apply_outcome(ctx: &Ctx, ev: &RefundEvent) -> Result<(), bool> {
    let p = load_payment(ctx, &ev.payment_id)
        .await
        .map_err(|e| e.row().retryable)?;
    let key = keys::refund(&ev.payment_id, &ev.refund_id);
    let Some(r) = ctx.store.get(&key).await.map_err(|_| true)? else {
        // Money left at the PSP without our request: an operator looks.
        return refund_case(ctx, &p, ev, CaseKind::UnknownRefund)
            .await
            .map_err(|e| e.row().retryable);
    };
    let amount = r.int_attr("amount").unwrap_or(0);
    if amount != ev.amount_minor || ev.currency != p.amount.currency() {
        return refund_case(ctx, &p, ev, CaseKind::RefundMismatch)
            .await
            .map_err(|e| e.row().retryable);
    }
    let Ok(money) = Money::from_minor(amount, p.amount.currency()) else {
        return Err(false);
    };
    if ev.status == OperationOutcome::Failed {
        return release(
            ctx,
            &p,
            &key,
            money,
            "the PSP failed the refund",
            r.str_attr("due_sk"),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.row().retryable);
    }
    debit(ctx, &p, &key, &r, ev, amount).await
}

/// A succeeded refund: ONE transaction of the wallet debit (it may go
/// negative: the money already left), the refund's move to `succeeded`, the
/// payment's refunded total, the day's counter and the reconciliation index.
pub(super) async fn debit(
    ctx: &Ctx,
    p: &Payment,
    key: &Key,
    r: &Item,
    ev: &RefundEvent,
    amount: i64,
) -> Result<(), bool> {
    let tail = ev.refund_id.trim_start_matches("rf_");
    let txn = TxnId::parse(&format!("rf_{tail}")).map_err(|_| false)?;
    let mut m = Movement::new(&p.player, p.amount.currency(), txn, EntryKind::Refund);
    m.available_delta = -amount;
    m.may_go_negative = true;
    m.reason = "refund".into();
    m.related = vec![
        ("payment_id", p.id.to_string()),
        ("refund_id", ev.refund_id.clone()),
    ];
    let extra = [
        Write::Update {
            key: key.clone(),
            ops: succeeded_ops(r, ev),
            cond: Some(Cond::eq("status", RefundStatus::Requested.as_str())),
        },
        Write::Update {
            key: keys::payment(&p.id),
            ops: vec![UpdateOp::Add("refunded".into(), amount)],
            cond: None,
        },
        settle_index(p, ev, r.str_attr("psp_reference"), amount),
    ];
    match ledger::apply(ctx, &m, &extra).await {
        Ok(Outcome::Moved(e)) => {
            if e.fresh {
                tracing::info!(payment_id = %p.id, refund_id = %ev.refund_id, flagged = e.available_after() < 0, "refund debited");
                crate::domain::observe::refund_settled(ctx, &p.method);
            }
            Ok(())
        }
        // Already succeeded or failed: a late or repeated outcome.
        Ok(Outcome::Refused(Refusal::Extra { .. })) => Ok(()),
        Ok(Outcome::Refused(other)) => {
            tracing::error!(refund_id = %ev.refund_id, ?other, "refund debit refused");
            Err(false)
        }
        Err(e) => Err(e.row().retryable),
    }
}

/// The refund's move to succeeded; the PSP's reference from the webhook
/// when its reply to our request never reached us.
pub(super) fn succeeded_ops(r: &Item, ev: &RefundEvent) -> Vec<UpdateOp> {
    let mut ops = vec![
        UpdateOp::set("status", RefundStatus::Succeeded.as_str()),
        UpdateOp::set("event_id", ev.event_id.as_str()),
        UpdateOp::Remove("due_sk".into()),
    ];
    if let (None, Some(reference)) = (r.str_attr("psp_reference"), &ev.psp_reference) {
        ops.push(UpdateOp::set("psp_reference", reference.as_str()));
    }
    ops
}

/// The reconciliation index entry of a succeeded refund, keyed by the PSP's
/// refund reference (what its settlement line carries); our refund id when
/// the PSP's reply never reached us.
pub(super) fn settle_index(
    p: &Payment,
    ev: &RefundEvent,
    psp_reference: Option<&str>,
    amount: i64,
) -> Write {
    let reference = psp_reference
        .or(ev.psp_reference.as_deref())
        .unwrap_or(ev.refund_id.as_str());
    Record {
        key: match_key(Kind::Refund, p.id.as_str(), reference),
        kind: Kind::Refund,
        payment_id: p.id.to_string(),
        gross_minor: -amount,
        currency: p.amount.currency(),
        method: p.method.clone(),
        event_id: ev.event_id.to_string(),
    }
    .write(&p.psp, Day::of_ms(ev.occurred_ms))
}

/// A refund outcome that does not match a refund we asked for (unknown id,
/// other amount): a case with the evidence, once per event; no money moves.
pub(super) async fn refund_case(
    ctx: &Ctx,
    p: &Payment,
    ev: &RefundEvent,
    kind: CaseKind,
) -> Result<(), Error> {
    tracing::error!(payment_id = %ev.payment_id, refund_id = %ev.refund_id, kind = kind.as_str(), "refund webhook opens a case");
    let case = NewCase::of_event(
        keys::case(&ev.payment_id, &ev.psp, &ev.event_id),
        kind,
        &ev.event_id,
        Some(("refund_id", ev.refund_id.clone())),
        Side::record("payment", p.status.as_str(), p.amount, &p.psp),
        Side::event(ev.status.as_str(), ev.amount_minor, ev.currency, &ev.psp),
    );
    cases::open(ctx, case).await.map(drop)
}
