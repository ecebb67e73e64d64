//! Handing a reserved refund to its PSP, once: a refund the PSP already has
//! is never sent again.

use super::*;

/// What asking the PSP for a refund came to.
pub(super) enum Delivery {
    /// The PSP has it (now or before); the refund as stored.
    AtPsp(Item),
    /// The PSP said no, definitively: the refund is failed, its reservation
    /// given back.
    Refused(Error),
    /// The PSP could not be reached: still requested and scheduled.
    Deferred(String),
}

impl Delivery {
    pub(super) fn answer(self, p: &Payment) -> Result<RefundView, Error> {
        match self {
            Delivery::AtPsp(it) => Ok(view(p, &it)),
            Delivery::Refused(e) => Err(e),
            Delivery::Deferred(why) => Err(Error::Unavailable(why)),
        }
    }
}

/// Hand a requested refund to its PSP unless the PSP already has it.
pub(super) async fn deliver(
    ctx: &Ctx,
    p: &Payment,
    key: &Key,
    r: &Item,
) -> Result<Delivery, Error> {
    let status = r.str_attr("status").and_then(RefundStatus::parse);
    if status != Some(RefundStatus::Requested) || r.str_attr("psp_reference").is_some() {
        return Ok(Delivery::AtPsp(r.clone()));
    }
    let refund_id = r.str_attr("refund_id").unwrap_or_default().to_owned();
    let amount = r
        .int_attr("amount")
        .and_then(|a| Money::from_minor(a, p.amount.currency()).ok())
        .ok_or_else(|| Error::Internal("stored refund lacks its amount".into()))?;
    let reference = p_reference(ctx, p).await?;
    let asked = match ctx.psps.get(&p.psp) {
        Some(c) => {
            c.start_refund(&PspRefund {
                refund_id: &refund_id,
                payment_id: &p.id,
                payment_reference: &reference,
                amount,
            })
            .await
        }
        None => Err(PspError::Unavailable(format!("no connector for {}", p.psp))),
    };
    let due = r.str_attr("due_sk");
    match asked {
        Ok(op) => {
            mark_at_psp(ctx, p, key, r, &op.reference).await?;
            tracing::info!(payment_id = %p.id, refund_id, "refund requested at the PSP");
            let stored = ctx.store.get(key).await?;
            Ok(Delivery::AtPsp(
                stored.ok_or(Error::NotFound { what: "refund" })?,
            ))
        }
        Err(PspError::Unavailable(why)) => {
            tracing::warn!(payment_id = %p.id, refund_id, why = %why, "refund kept for a retry: PSP unavailable");
            reschedule(ctx, p, key, &refund_id, due).await?;
            Ok(Delivery::Deferred(why))
        }
        Err(e) => {
            tracing::warn!(payment_id = %p.id, refund_id, error = %e, "the PSP refused the refund");
            release(ctx, p, key, amount, "the PSP refused the refund", due).await?;
            // Final now: a Google refund hears of it (the sweep retries this
            // delivery if the queue is down; the release is idempotent).
            crate::domain::google_jobs::after_refund(ctx, &p.id, &refund_id).await?;
            Ok(Delivery::Refused(e.into()))
        }
    }
}

/// The PSP took the refund: remember its reference, and keep it on the
/// schedule for the outcome's timeout (then the status API is asked).
pub(super) async fn mark_at_psp(
    ctx: &Ctx,
    p: &Payment,
    key: &Key,
    r: &Item,
    reference: &str,
) -> Result<(), Error> {
    let refund_id = r.str_attr("refund_id").unwrap_or_default();
    let next = due_sk(
        ctx.now_ms() + ctx.policies.payouts.outcome_timeout_ms,
        &p.id,
        refund_id,
    );
    let mut writes = vec![
        Write::Update {
            key: key.clone(),
            ops: vec![
                UpdateOp::set("psp_reference", reference),
                UpdateOp::set("due_sk", next.as_str()),
            ],
            cond: Some(Cond::Exists),
        },
        due_put(&next, &p.id, refund_id),
    ];
    if let Some(old) = r.str_attr("due_sk").filter(|old| *old != next) {
        writes.push(due_delete(old));
    }
    ctx.store.transact(writes).await.map_err(Error::from)
}

pub(super) async fn p_reference(ctx: &Ctx, p: &Payment) -> Result<String, Error> {
    let it = ctx
        .store
        .get(&keys::payment(&p.id))
        .await?
        .ok_or(Error::NotFound { what: "payment" })?;
    it.str_attr("psp_reference")
        .map(str::to_owned)
        .ok_or_else(|| Error::Internal("captured payment without a PSP reference".into()))
}
