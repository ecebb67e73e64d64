//! Refunds of captured deposits, partial or whole, never above what was
//! captured.
//!
//! 1. The request reserves the amount on the payment (`refund_requested`,
//!    conditional: captured, and requested + amount ≤ captured; else 422
//!    `refund_exceeds_captured`) in the same transaction that stores the
//!    refund AND puts it on the sweep's schedule; then the PSP is asked.
//!    Only a definitive answer of the PSP (a refusal, a rejection) fails the
//!    refund and gives the reservation back. A PSP that is down, times out or
//!    answers 5xx leaves the refund `requested` and scheduled: the client's
//!    retry (same key) and the sweep both ask again (the PSP is idempotent
//!    per refund id), so a crash or an outage never strands or fails it.
//! 2. The PSP's `succeeded` webhook debits the wallet (a `refund` entry, once
//!    per refund id). If the player's available balance is short the wallet
//!    still records it, goes negative by that amount, and is flagged.
//!    `failed` gives the reservation back. Both are counted in the day's
//!    refund report in the same transaction.
//!
//! | item      | pk                  | sk                                  |
//! |-----------|---------------------|-------------------------------------|
//! | refund    | `PAY#<payment_id>`  | `REF#<refund_id>`                   |
//! | due work  | `REFUNDQ`           | `<due ms, 15 digits>#<payment>#<refund>` |

use serde::Serialize;

use crate::clock::Day;
use crate::error::{Error, ErrorCode};
use crate::ids::{PaymentId, TxnId};
use crate::money::{Currency, Money};
use crate::psp::{PspError, RefundRequest as PspRefund};
use crate::store::{item, Attr, Cond, Item, ItemExt, Key, Query, StoreError, UpdateOp, Write};

use crate::domain::cases::{self, CaseKind, NewCase, Side};
use crate::domain::deposits::load_payment;
use crate::domain::deposits::payment::{Payment, PaymentStatus};
use crate::domain::reports::{self, ReportKind};
use crate::domain::request::Body;
use crate::domain::wallet::ledger::{self, EntryKind, Movement, Outcome, Refusal};
use crate::domain::Ctx;
use crate::psp::event::{OperationOutcome, RefundEvent};
use crate::schema::keys;
use crate::schema::recon_index::{match_key, Kind, Record};

const MAX_REASON: usize = 200;
/// Times the status API is asked about a refund at the PSP without an
/// outcome (an outcome timeout apart) before it is flagged for an operator.
const MAX_STATUS_ASKS: i64 = 4;
/// Refunds handled per sweep run.
pub const SWEEP_BATCH: usize = 100;

/// Where a refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Reserved on the payment; at the PSP (`psp_reference` set) or on its
    /// way there (scheduled).
    Requested,
    Succeeded,
    Failed,
}

impl RefundStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            RefundStatus::Requested => "requested",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<RefundStatus> {
        [
            RefundStatus::Requested,
            RefundStatus::Succeeded,
            RefundStatus::Failed,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

fn due_sk(due_ms: i64, payment: &PaymentId, refund_id: &str) -> String {
    keys::due_sk(due_ms, &format!("{payment}#{refund_id}"))
}

/// The due-work item that keeps a refund not yet taken by the PSP on the
/// sweep's schedule.
fn due_put(sk: &str, payment: &PaymentId, refund_id: &str) -> Write {
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

fn due_delete(sk: &str) -> Write {
    Write::Delete {
        key: keys::refund_due(sk),
        cond: None,
    }
}

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
    reserve(ctx, &p, &key, &refund_id, amount, reason).await?;
    let stored = ctx
        .store
        .get(&key)
        .await?
        .ok_or(Error::NotFound { what: "refund" })?;
    deliver(ctx, &p, &key, &stored).await?.answer(&p)
}

/// What asking the PSP for a refund came to.
enum Delivery {
    /// The PSP has it (now or before); the refund as stored.
    AtPsp(Item),
    /// The PSP said no, definitively: the refund is failed, its reservation
    /// given back.
    Refused(Error),
    /// The PSP could not be reached: still requested and scheduled.
    Deferred(String),
}

impl Delivery {
    fn answer(self, p: &Payment) -> Result<RefundView, Error> {
        match self {
            Delivery::AtPsp(it) => Ok(view(p, &it)),
            Delivery::Refused(e) => Err(e),
            Delivery::Deferred(why) => Err(Error::Unavailable(why)),
        }
    }
}

/// Hand a requested refund to its PSP unless the PSP already has it.
async fn deliver(ctx: &Ctx, p: &Payment, key: &Key, r: &Item) -> Result<Delivery, Error> {
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
            Ok(Delivery::Refused(e.into()))
        }
    }
}

/// The PSP took the refund: remember its reference, and keep it on the
/// schedule for the outcome's timeout (then the status API is asked).
async fn mark_at_psp(
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

/// The PSP has the refund but no outcome came: ask its status API. A final
/// answer goes the webhook's way; "still pending" or no answer asks again a
/// timeout later, up to [`MAX_STATUS_ASKS`] times, then the refund is held
/// (its reservation kept) and flagged for an operator.
async fn ask_psp(
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
    if let Some(status) = answer.and_then(|op| OperationOutcome::parse(&op.status)) {
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
async fn ask_again_later(
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
async fn reschedule(
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

async fn p_reference(ctx: &Ctx, p: &Payment) -> Result<String, Error> {
    let it = ctx
        .store
        .get(&keys::payment(&p.id))
        .await?
        .ok_or(Error::NotFound { what: "payment" })?;
    it.str_attr("psp_reference")
        .map(str::to_owned)
        .ok_or_else(|| Error::Internal("captured payment without a PSP reference".into()))
}

/// Reserve the amount on the payment and store the refund, in one transaction.
async fn reserve(
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
async fn release(
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

/// A refund as the operator who asked for it sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundView {
    pub refund_id: Option<String>,
    pub payment_id: PaymentId,
    pub amount: Option<String>,
    pub currency: Currency,
    pub status: Option<RefundStatus>,
    pub reason: Option<String>,
    pub psp_reference: Option<String>,
    pub flagged: bool,
}

fn view(p: &Payment, it: &crate::store::Item) -> RefundView {
    let c = p.amount.currency();
    let text = |name: &str| it.str_attr(name).map(str::to_owned);
    RefundView {
        refund_id: text("refund_id"),
        payment_id: p.id.clone(),
        amount: it
            .int_attr("amount")
            .map(|a| crate::money::format_minor(a, c)),
        currency: c,
        status: it.str_attr("status").and_then(RefundStatus::parse),
        reason: text("reason"),
        psp_reference: text("psp_reference"),
        flagged: it
            .get("flagged")
            .and_then(crate::store::Attr::as_bool)
            .unwrap_or(false),
    }
}

/// The consumer's side: apply a refund outcome once. `Err(true)`: retry.
pub async fn apply_event(ctx: &Ctx, ev: &RefundEvent) -> Result<(), bool> {
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
            ops: succeeded_ops(&r, ev),
            cond: Some(Cond::eq("status", RefundStatus::Requested.as_str())),
        },
        Write::Update {
            key: keys::payment(&p.id),
            ops: vec![UpdateOp::Add("refunded".into(), amount)],
            cond: None,
        },
        reports::count(
            ReportKind::Refunds,
            Day::of_ms(ctx.now_ms()),
            &p.method,
            p.amount.currency(),
            amount,
        ),
        settle_index(&p, ev, r.str_attr("psp_reference"), amount),
    ];
    match ledger::apply(ctx, &m, &extra).await {
        Ok(Outcome::Moved(e)) => {
            if e.fresh {
                tracing::info!(payment_id = %p.id, refund_id = %ev.refund_id, flagged = e.available_after() < 0, "refund debited");
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
fn succeeded_ops(r: &Item, ev: &RefundEvent) -> Vec<UpdateOp> {
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
fn settle_index(p: &Payment, ev: &RefundEvent, psp_reference: Option<&str>, amount: i64) -> Write {
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
async fn refund_case(
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
