//! Applying a payment's PSP outcome: the one place where a deposit's
//! verified final status moves money, exactly once. A chargeback's debit is
//! one transaction with the payment's status move (and its reconciliation
//! index record). A capture first moves the payment (conditional on its
//! status: the one that wins is the one that counts), then owes three
//! idempotent steps that run on every delivery of the capture until one
//! gets through them all: the credit (one transaction of balance and entry,
//! once by the entry's txn id), the index record, the AML step.

use crate::clock::Day;
use crate::error::{Error, ErrorCode};
use crate::ids::{PaymentId, TxnId};
use crate::money::Money;
use crate::store::{Attr, Cond, Item, ItemExt, StoreError, UpdateOp, Write};

use crate::domain::cases::{self, CaseKind};
use crate::domain::deposits::payment::{history_entry, Payment, PaymentStatus};
use crate::domain::limits;
use crate::domain::wallet::ledger::{self, EntryKind, Movement, Outcome, Refusal};
use crate::domain::Ctx;
use crate::psp::event::PspEvent;
use crate::schema::keys;
use crate::schema::recon_index::{match_key, Kind, Record};

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The payment moved forward (and, for a capture, the wallet was credited).
    Moved(PaymentStatus),
    /// Late, repeated or not-a-transition: nothing to do.
    NoOp,
    /// The event does not match the intent: a case was opened, no money moved.
    Mismatch,
    /// A final status contradicting the payment's: a case, no money moved.
    Conflict,
}

/// A failure to apply; `retryable` says whether redelivery may help.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyError {
    pub retryable: bool,
    pub reason: String,
}

impl From<Error> for ApplyError {
    fn from(e: Error) -> Self {
        ApplyError {
            retryable: e.row().retryable,
            reason: e.to_string(),
        }
    }
}

/// Apply a verified PSP event. Safe to call any number of times, in any order:
/// every move is a conditional write on the payment's current status.
pub async fn apply_event(ctx: &Ctx, ev: &PspEvent) -> Result<Applied, ApplyError> {
    let found = ctx
        .store
        .get(&keys::payment(&ev.payment_id))
        .await
        .map_err(Error::from)?;
    let Some(found) = found else {
        // The intent is written before any PSP can know its id: retry, then DLQ.
        return Err(ApplyError {
            retryable: true,
            reason: format!("unknown payment {}", ev.payment_id),
        });
    };
    let payment = Payment::from_item(&found)?;
    let stored = Stored {
        bank: found.str_attr("bank"),
        instrument: found.str_attr("instrument"),
    };
    let applied = apply_to(ctx, ev, &payment, stored).await?;
    // Credited by this delivery or an earlier one, even if a chargeback
    // has overtaken the redelivery since (its steps are still owed).
    let captured = matches!(applied, Applied::Moved(PaymentStatus::Captured))
        || (applied == Applied::NoOp && payment.credited_txn.is_some());
    if ev.status == PaymentStatus::Captured && captured {
        // Run on every delivery of the capture, so a crash right after the
        // payment's move is made good by the redelivery (every step is
        // idempotent): the credit, its index record, the AML step.
        // Its deposit-limit hold counts for good (once: the hold leaves).
        let currency = payment.amount.currency();
        limits::reserve::commit(ctx, &payment.player, currency, &payment.id).await?;
        let entry = credit_wallet(ctx, &payment, stored.instrument).await?;
        let capture = match applied {
            Applied::Moved(_) => Some((ev.event_id.as_str(), ev.occurred_ms)),
            _ => stored_capture(&found),
        };
        if let Some((event_id, occurred_ms)) = capture {
            index_capture(ctx, &payment, event_id, occurred_ms).await?;
        }
        aml_after_credit(ctx, &payment, found.str_attr("instrument"), &entry).await?;
    }
    // A failed or canceled deposit frees its hold, on every delivery of
    // that outcome (once: the hold leaves).
    let ended = matches!(ev.status, PaymentStatus::Failed | PaymentStatus::Canceled)
        && (applied == Applied::Moved(ev.status)
            || (applied == Applied::NoOp && payment.status == ev.status));
    if ended {
        let currency = payment.amount.currency();
        limits::reserve::release(ctx, &payment.player, currency, &payment.id).await?;
    }
    // On every delivery too: a Google payment that is final hears of it
    // wherever the outcome came from (webhook, reconciliation heal).
    crate::domain::google_jobs::after_payment_event(ctx, ev).await?;
    Ok(applied)
}

/// What the payment's record holds beyond [`Payment`] that applying reads.
#[derive(Clone, Copy)]
struct Stored<'a> {
    bank: Option<&'a str>,
    instrument: Option<&'a str>,
}

/// The capture's event as its credit stored it on the payment (absent on
/// payments credited before the index moved out of the credit).
fn stored_capture(found: &Item) -> Option<(&str, i64)> {
    Some((
        found.str_attr("captured_event")?,
        found.int_attr("captured_occurred_ms")?,
    ))
}

/// The capture's reconciliation index record, put once after its credit:
/// built only from what the credit stored (its event and the PSP's date),
/// so every delivery writes the same record under the same key.
async fn index_capture(
    ctx: &Ctx,
    p: &Payment,
    event_id: &str,
    occurred_ms: i64,
) -> Result<(), ApplyError> {
    let record = Record {
        key: match_key(Kind::Payment, p.id.as_str(), ""),
        kind: Kind::Payment,
        payment_id: p.id.to_string(),
        gross_minor: p.amount.minor(),
        currency: p.amount.currency(),
        method: p.method.clone(),
        event_id: event_id.to_owned(),
    };
    match ctx
        .store
        .write(record.write_once(&p.psp, Day::of_ms(occurred_ms)))
        .await
    {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(Error::from(e).into()),
    }
}

/// The AML scenarios after a credited deposit; the wagering after it is
/// its ledger entry's (no read of the balance).
async fn aml_after_credit(
    ctx: &Ctx,
    p: &Payment,
    instrument: Option<&str>,
    entry: &Item,
) -> Result<(), ApplyError> {
    use crate::domain::risk::aml;
    let m = aml::Logged {
        id: p.id.as_str().to_owned(),
        kind: aml::MoveKind::Deposit,
        amount: p.amount,
        at_ms: crate::ids::ulid_time_ms(p.id.as_str()).unwrap_or(p.created_ms),
        instrument: instrument.map(str::to_owned),
        country: p.country.clone(),
        wagered_total: entry.int_attr("wagered_after").unwrap_or(0),
    };
    aml::after_movement(ctx, &p.player, &m).await?;
    Ok(())
}

async fn apply_to(
    ctx: &Ctx,
    ev: &PspEvent,
    payment: &Payment,
    stored: Stored<'_>,
) -> Result<Applied, ApplyError> {
    let payment = payment.clone();
    if !payment.matches(ev) {
        cases::open(ctx, payment.case(CaseKind::WebhookMismatch, ev)).await?;
        return Ok(Applied::Mismatch);
    }
    if ev.status == PaymentStatus::ChargedBack && !payment.status.is_final() {
        // A chargeback overtook the capture: retry until the capture is in.
        return Err(ApplyError {
            retryable: true,
            reason: format!("chargeback before the capture of {}", payment.id),
        });
    }
    if !payment.status.can_move_to(ev.status) {
        return not_applied(ctx, ev, &payment, payment.status).await;
    }
    let moved = match ev.status {
        PaymentStatus::ChargedBack => charge_back(ctx, &payment, ev).await?,
        _ => move_status(ctx, &payment, ev).await?,
    };
    match moved {
        None => {
            tracing::info!(payment_id = %payment.id, event_id = %ev.event_id, status = ev.status.as_str(), "payment moved");
            let facts = crate::domain::observe::Deposit {
                method: &payment.method,
                bank: stored.bank,
                country: payment.country.as_deref(),
                device: payment.device.as_deref(),
                amount: payment.amount,
                psp: &payment.psp,
                created_ms: payment.created_ms,
            };
            crate::domain::observe::deposit_moved(ctx, &facts, ev.status, ev.three_ds_failed);
            Ok(Applied::Moved(ev.status))
        }
        // Someone else moved it first (a duplicate or a later event): no-op.
        Some(current) => {
            tracing::info!(payment_id = %payment.id, event_id = %ev.event_id, "event already superseded");
            not_applied(ctx, ev, &payment, current.unwrap_or(payment.status)).await
        }
    }
}

/// The payment's status as a failed condition saw it.
fn seen_status(old: Option<&Item>) -> Option<PaymentStatus> {
    old.and_then(|o| o.str_attr("status"))
        .and_then(PaymentStatus::parse)
}

/// A transition other than a chargeback: one conditional update of the
/// payment. `Some(status)` when it had already moved on. A capture's move
/// records the capture's event and the txn id its credit will carry; the
/// credit is owed from then on ([`credit_wallet`], on every delivery).
async fn move_status(
    ctx: &Ctx,
    p: &Payment,
    ev: &PspEvent,
) -> Result<Option<Option<PaymentStatus>>, ApplyError> {
    match ctx.store.write(payment_move(p, ev, ctx.now_ms())).await {
        Ok(()) => Ok(None),
        Err(StoreError::ConditionFailed { old, .. }) => Ok(Some(seen_status(old.as_ref()))),
        Err(e) => Err(Error::from(e).into()),
    }
}

/// A capture, step two: ONE transaction of the balance + amount and the
/// credit entry (txn id `dep_<payment ulid>`, whose uniqueness makes a
/// second credit impossible). Owed once the payment is captured: run on
/// every delivery of the capture, so a crash between the two steps is made
/// good by the redelivery.
async fn credit_wallet(
    ctx: &Ctx,
    p: &Payment,
    instrument: Option<&str>,
) -> Result<Item, ApplyError> {
    let txn = p.id.deposit_txn_id();
    let mut m = Movement::new(&p.player, p.amount.currency(), txn, EntryKind::Credit);
    m.available_delta = p.amount.minor();
    m.wager_required_delta = p
        .amount
        .minor()
        .checked_mul(ctx.config.wagering_multiple)
        .ok_or_else(|| Error::Internal("wagering requirement overflow".into()))?;
    m.reason = "deposit".into();
    m.related = vec![("payment_id", p.id.to_string())];
    // The AML scenarios read the credit as the deposit's movement.
    m.related.extend(crate::domain::risk::aml::entry_facts(
        instrument,
        p.country.as_deref(),
    ));
    match ledger::apply(ctx, &m, &[]).await? {
        Outcome::Moved(entry) => Ok(entry.item),
        Outcome::Refused(r) => Err(ApplyError {
            retryable: false,
            reason: format!("a deposit credit was refused: {r:?}"),
        }),
    }
}

/// Whether the capture's credit entry is in the wallet.
pub(crate) async fn credited(ctx: &Ctx, p: &Payment) -> Result<bool, Error> {
    let key = keys::ledger(&p.player, &p.id.deposit_txn_id());
    Ok(ctx.store.get(&key).await?.is_some())
}

/// A late or repeated event is a no-op; a final status that contradicts the
/// payment's final status is a case for an operator.
async fn not_applied(
    ctx: &Ctx,
    ev: &PspEvent,
    p: &Payment,
    current: PaymentStatus,
) -> Result<Applied, ApplyError> {
    // A late capture after its chargeback is history, not a contradiction.
    let late_capture =
        current == PaymentStatus::ChargedBack && ev.status == PaymentStatus::Captured;
    if current.is_final() && ev.status.is_final() && current != ev.status && !late_capture {
        let seen = Payment {
            status: current,
            ..p.clone()
        };
        cases::open(ctx, seen.case(CaseKind::ConflictingFinalStatus, ev)).await?;
        return Ok(Applied::Conflict);
    }
    Ok(Applied::NoOp)
}

/// A chargeback: ONE transaction of payment → charged_back, the wallet
/// debited by the amount (it may go negative, then flagged), the day's
/// chargeback counter; then a case for an operator.
async fn charge_back(
    ctx: &Ctx,
    p: &Payment,
    ev: &PspEvent,
) -> Result<Option<Option<PaymentStatus>>, ApplyError> {
    if !credited(ctx, p).await? {
        // Captured, its credit still owed: debit only after it.
        return Err(ApplyError {
            retryable: true,
            reason: format!("chargeback before the credit of {}", p.id),
        });
    }
    let tail = p.id.as_str().trim_start_matches("pay_");
    let txn = TxnId::parse(&format!("cb_{tail}")).map_err(|e| Error::Internal(e.to_string()))?;
    let mut m = Movement::new(&p.player, p.amount.currency(), txn, EntryKind::Chargeback);
    m.available_delta = -p.amount.minor();
    m.may_go_negative = true;
    m.reason = "chargeback".into();
    m.related = vec![("payment_id", p.id.to_string())];
    let indexed = settle_index(p, ev, Kind::Chargeback, -p.amount.minor());
    match ledger::apply(ctx, &m, &[payment_move(p, ev, ctx.now_ms()), indexed]).await? {
        Outcome::Moved(e) if e.fresh => {
            cases::open(ctx, p.case(CaseKind::Chargeback, ev)).await?;
            Ok(None)
        }
        Outcome::Moved(_) => Ok(Some(Some(PaymentStatus::ChargedBack))),
        Outcome::Refused(Refusal::Extra { old, .. }) => Ok(Some(seen_status(old.as_ref()))),
        Outcome::Refused(r) => Err(ApplyError {
            retryable: false,
            reason: format!("a chargeback was refused: {r:?}"),
        }),
    }
}

/// The reconciliation index entry of a capture or chargeback, on the day the
/// PSP says it happened (that is the day it settles it under).
fn settle_index(p: &Payment, ev: &PspEvent, kind: Kind, gross_minor: i64) -> Write {
    Record {
        key: match_key(kind, p.id.as_str(), ""),
        kind,
        payment_id: p.id.to_string(),
        gross_minor,
        currency: p.amount.currency(),
        method: p.method.clone(),
        event_id: ev.event_id.to_string(),
    }
    .write(&p.psp, Day::of_ms(ev.occurred_ms))
}

/// The payment's move to `ev.status`, conditional on its current status
/// being a predecessor and on the amount/currency/player as stored.
fn payment_move(p: &Payment, ev: &PspEvent, now_ms: i64) -> Write {
    let preds: Vec<Attr> = PaymentStatus::predecessors(ev.status)
        .into_iter()
        .map(|s| Attr::from(s.as_str()))
        .collect();
    let guard = Cond::And(vec![
        Cond::In("status".into(), preds),
        Cond::eq("amount", p.amount.minor()),
        Cond::eq("currency", p.amount.currency().code()),
        Cond::eq("player", p.player.as_str()),
    ]);
    let mut ops = vec![
        UpdateOp::set("status", ev.status.as_str()),
        UpdateOp::Append(
            "history".into(),
            vec![history_entry(ev.status, now_ms, Some(ev.event_id.as_str()))],
        ),
    ];
    if ev.status == PaymentStatus::Captured {
        ops.push(UpdateOp::set(
            "credited_txn",
            p.id.deposit_txn_id().as_str(),
        ));
        // What the index record after the credit is built from, on every
        // delivery alike.
        ops.push(UpdateOp::set("captured_event", ev.event_id.as_str()));
        ops.push(UpdateOp::set("captured_occurred_ms", ev.occurred_ms));
        // A PSP that names the payment only once it is paid (Adyen's
        // pspReference, not its session id): refunds are asked under it.
        if let Some(reference) = &ev.psp_reference {
            ops.push(UpdateOp::set("psp_reference", reference.as_str()));
        }
    }
    Write::Update {
        key: keys::payment(&p.id),
        ops,
        cond: Some(guard),
    }
}

/// The answer to a deposit's credit confirmation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CreditView {
    pub payment_id: PaymentId,
    pub player_id: crate::ids::PlayerId,
    /// The ledger entry the PSP's capture made.
    pub txn_id: String,
    pub client_txn_id: TxnId,
    pub amount: String,
    pub currency: crate::money::Currency,
    pub status: &'static str,
}

/// `POST /v1/wallet/credit`: the platform confirms a deposit's credit. Money
/// moves only on the PSP's verified final outcome (applied exactly once by
/// [`apply_event`]); this call never moves money by itself. It answers with
/// the ledger entry once the payment is captured and its credit is in the
/// wallet, and 409 before.
pub async fn confirm_credit(
    ctx: &Ctx,
    payment_id: &PaymentId,
    client_txn: &TxnId,
    amount_text: &str,
) -> Result<CreditView, Error> {
    let p = crate::domain::deposits::load_payment(ctx, payment_id).await?;
    let amount = Money::parse_decimal(amount_text, p.amount.currency())
        .map_err(|e| Error::validation("amount", e.to_string()))?;
    if amount != p.amount {
        return Err(Error::validation(
            "amount",
            "does not match the payment's amount",
        ));
    }
    let credited = match (p.status, &p.credited_txn) {
        (PaymentStatus::Captured, Some(_)) => credited(ctx, &p).await?,
        _ => false,
    };
    let (true, Some(txn)) = (credited, p.credited_txn.as_ref()) else {
        return Err(Error::Conflict {
            code: ErrorCode::PaymentNotFinal,
            reason: if p.status == PaymentStatus::Captured {
                "payment is captured; its credit is being applied, retry".into()
            } else {
                format!(
                    "payment is {}; it is credited only when the PSP reports it captured",
                    p.status.as_str()
                )
            },
        });
    };
    Ok(CreditView {
        payment_id: p.id.clone(),
        player_id: p.player.clone(),
        txn_id: txn.clone(),
        client_txn_id: client_txn.clone(),
        amount: p.amount.to_decimal(),
        currency: p.amount.currency(),
        status: "credited",
    })
}
