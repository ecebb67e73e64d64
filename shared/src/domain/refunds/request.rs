//! Asking for a refund: `POST /v1/payments/{id}/refund`'s body, the
//! reservation against the captured amount, and its release.

use super::*;

pub(super) const MAX_REASON: usize = 200;

/// The body of `POST /v1/payments/{id}/refund`: `{amount, reason?}`.
/// The body of `POST /v1/payments/{id}/refund`: `{amount, reason?}`; the
/// amount is read in the payment's currency once the payment is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub amount: String,
    pub reason: String,
}

impl RefundRequest {
    pub fn parse(body: &Body) -> Result<RefundRequest, Error> {
        body.only(&["amount", "reason"])?;
        let amount = match body.opt_str("amount") {
            Ok(Some(a)) => a.to_owned(),
            _ => {
                return Err(Error::validation(
                    "amount",
                    "is required (a decimal string)",
                ))
            }
        };
        let reason = match body.opt_str("reason") {
            Ok(r) if r.is_none_or(|r| r.len() <= MAX_REASON) => r.unwrap_or_default().to_owned(),
            _ => {
                return Err(Error::validation(
                    "reason",
                    "must be a string of at most 200 bytes",
                ))
            }
        };
        Ok(RefundRequest { amount, reason })
    }

    fn amount_in(&self, p: &Payment) -> Result<Money, Error> {
        Money::parse_decimal(&self.amount, p.amount.currency())
            .map_err(|e| Error::validation("amount", e.to_string()))
    }
}

/// `POST /v1/payments/{payment_id}/refund`. `refund_id` is the id the
/// idempotency engine reserved, so a retry of the same request finds the
/// refund its first attempt stored and carries it on.
pub async fn request(
    ctx: &Ctx,
    payment_id: &PaymentId,
    r: &RefundRequest,
    refund_id: String,
) -> Result<RefundView, Error> {
    let p = load_payment(ctx, payment_id).await?;
    let key = keys::refund(payment_id, &refund_id);
    if let Some(old) = ctx.store.get(&key).await? {
        return deliver(ctx, &p, &key, &old).await?.answer(&p);
    }
    let (amount, reason) = (r.amount_in(&p)?, r.reason.as_str());
    if p.status != PaymentStatus::Captured {
        return Err(Error::Conflict {
            code: ErrorCode::PaymentNotRefundable,
            reason: format!(
                "the payment is {}; only captured payments are refunded",
                p.status.as_str()
            ),
        });
    }
    if !crate::domain::deposits::apply::credited(ctx, &p).await? {
        return Err(Error::Conflict {
            code: ErrorCode::PaymentNotRefundable,
            reason: "the payment's credit is still being applied; retry".into(),
        });
    }
    reserve(ctx, &p, &key, &refund_id, amount, reason).await?;
    let stored = ctx
        .store
        .get(&key)
        .await?
        .ok_or(Error::NotFound { what: "refund" })?;
    deliver(ctx, &p, &key, &stored).await?.answer(&p)
}

/// Reserve the amount on the payment and store the refund, in one transaction.
pub(super) async fn reserve(
    ctx: &Ctx,
    p: &Payment,
    key: &Key,
    refund_id: &str,
    amount: Money,
    reason: &str,
) -> Result<(), Error> {
    let total = p.amount.minor();
    let room = Cond::And(vec![
        Cond::eq("status", PaymentStatus::Captured.as_str()),
        Cond::Or(vec![
            Cond::AttrNotExists("refund_requested".into()),
            Cond::Lt(
                "refund_requested".into(),
                Attr::N(total - amount.minor() + 1),
            ),
        ]),
    ]);
    let now = ctx.now_ms();
    // Due after the retry interval: the request itself asks the PSP first.
    let due = due_sk(now + ctx.policies.payouts.retry_after_ms, &p.id, refund_id);
    let record = item(
        key,
        [
            ("refund_id", Attr::from(refund_id)),
            ("amount", Attr::N(amount.minor())),
            ("currency", Attr::from(amount.currency().code())),
            ("status", Attr::from(RefundStatus::Requested.as_str())),
            ("reason", Attr::from(reason)),
            ("requested_ms", Attr::N(now)),
            ("due_sk", Attr::from(due.as_str())),
        ],
    );
    let writes = vec![
        Write::Update {
            key: keys::payment(&p.id),
            ops: vec![UpdateOp::Add("refund_requested".into(), amount.minor())],
            cond: Some(room),
        },
        Write::Put {
            item: record,
            cond: Some(Cond::NotExists),
        },
        due_put(&due, &p.id, refund_id),
    ];
    match ctx.store.transact(writes).await {
        Ok(()) => Ok(()),
        Err(StoreError::ConditionFailed { index: 0, .. }) => Err(Error::Limit {
            code: ErrorCode::RefundExceedsCaptured,
            field: "amount".into(),
            reason: "the refunds would exceed the captured amount (or the payment is no longer captured)".into(),
        }),
        Err(StoreError::ConditionFailed { .. }) => Ok(()), // an earlier attempt stored it
        Err(e) => Err(e.into()),
    }
}

/// Give a reservation back (the PSP refused the refund, or failed it), once.
pub(super) async fn release(
    ctx: &Ctx,
    p: &Payment,
    key: &Key,
    amount: Money,
    why: &str,
    due: Option<&str>,
) -> Result<bool, Error> {
    let mut writes = vec![
        Write::Update {
            key: key.clone(),
            ops: vec![
                UpdateOp::set("status", RefundStatus::Failed.as_str()),
                UpdateOp::set(
                    "failure",
                    why.chars().take(MAX_REASON).collect::<String>().as_str(),
                ),
                UpdateOp::Remove("due_sk".into()),
            ],
            cond: Some(Cond::eq("status", RefundStatus::Requested.as_str())),
        },
        Write::Update {
            key: keys::payment(&p.id),
            ops: vec![UpdateOp::Add("refund_requested".into(), -amount.minor())],
            cond: None,
        },
    ];
    if let Some(sk) = due {
        writes.push(due_delete(sk));
    }
    match ctx.store.transact(writes).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
