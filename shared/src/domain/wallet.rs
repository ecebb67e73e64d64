//! The wallet: balances per player and currency, an append-only ledger, and
//! the one place where a PSP outcome moves money.
//!
//! A balance item holds `available` and `held` (minor units) so two-phase
//! holds (payouts) fit: a hold moves available → held, a settle removes held,
//! a release moves held → available, each as one transaction with its ledger
//! entry.

use serde_json::{json, Value};

use crate::clock::now_ms;
use crate::error::Error;
use crate::ids::{PaymentId, PlayerId, TxnId};
use crate::money::{format_minor, Money};
use crate::store::{item, Attr, Cond, Item, ItemExt, Query, SkRange, StoreError, UpdateOp, Write};

use super::event::PspEvent;
use super::keys;
use super::payment::{history_entry, Payment, PaymentStatus};
use super::webhook::{event_matches, open_case, CaseKind};
use super::Ctx;

/// Ledger entries shown by `GET /v1/wallet/{player}`.
pub const RECENT_ENTRIES: usize = 50;
/// Balance currencies read per wallet.
const MAX_CURRENCIES: usize = 200;

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
    if !event_matches(&payment, ev) {
        open_case(ctx, CaseKind::WebhookMismatch, ev, &payment).await?;
        return Ok(Applied::Mismatch);
    }
    if !payment.status.can_move_to(ev.status) {
        return not_applied(ctx, ev, &payment, payment.status).await;
    }
    let writes = transition_writes(&payment, ev);
    match ctx.store.transact(writes).await {
        Ok(()) => {
            tracing::info!(payment_id = %payment.id, event_id = %ev.event_id, status = ev.status.as_str(), "payment moved");
            Ok(Applied::Moved(ev.status))
        }
        // Someone else moved it first (a duplicate or a later event): no-op.
        Err(StoreError::ConditionFailed { index, old }) => {
            tracing::info!(payment_id = %payment.id, event_id = %ev.event_id, write = index, "event already superseded");
            let current = old
                .as_ref()
                .filter(|_| index == 0)
                .and_then(|o| o.str_attr("status"))
                .and_then(PaymentStatus::parse)
                .unwrap_or(payment.status);
            not_applied(ctx, ev, &payment, current).await
        }
        Err(e) => Err(Error::from(e).into()),
    }
}

/// A late or repeated event is a no-op; a final status that contradicts the
/// payment's final status is a case for an operator.
async fn not_applied(
    ctx: &Ctx,
    ev: &PspEvent,
    p: &Payment,
    current: PaymentStatus,
) -> Result<Applied, ApplyError> {
    if current.is_final() && ev.status.is_final() && current != ev.status {
        let seen = Payment {
            status: current,
            ..p.clone()
        };
        open_case(ctx, CaseKind::ConflictingFinalStatus, ev, &seen).await?;
        return Ok(Applied::Conflict);
    }
    Ok(Applied::NoOp)
}

/// The writes that move a payment to `ev.status`: for a capture, ONE
/// transaction of payment → captured, balance += amount, ledger entry; its
/// conditions (status still before captured, amount/currency/player as
/// stored, txn id unused) make a second application impossible.
fn transition_writes(p: &Payment, ev: &PspEvent) -> Vec<Write> {
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
    let now = now_ms();
    let mut ops = vec![
        UpdateOp::set("status", ev.status.as_str()),
        UpdateOp::Append(
            "history".into(),
            vec![history_entry(ev.status, now, Some(ev.event_id.as_str()))],
        ),
    ];
    if ev.status != PaymentStatus::Captured {
        return vec![Write::Update {
            key: keys::payment(&p.id),
            ops,
            cond: Some(guard),
        }];
    }
    let txn = p.id.deposit_txn_id();
    ops.push(UpdateOp::set("credited_txn", txn.as_str()));
    let entry = ledger_entry(&p.player, &txn, "deposit", p.amount, Some(&p.id), now);
    vec![
        Write::Update {
            key: keys::payment(&p.id),
            ops,
            cond: Some(guard),
        },
        Write::Update {
            key: keys::balance(&p.player, p.amount.currency()),
            ops: vec![
                UpdateOp::Add("available".into(), p.amount.minor()),
                UpdateOp::Add("held".into(), 0),
            ],
            cond: None,
        },
        Write::Put {
            item: entry,
            cond: Some(Cond::NotExists),
        },
    ]
}

fn ledger_entry(
    player: &PlayerId,
    txn: &TxnId,
    kind: &str,
    amount: Money,
    payment: Option<&PaymentId>,
    at_ms: i64,
) -> Item {
    let mut it = item(
        &keys::ledger(player, txn),
        [
            ("txn_id", Attr::from(txn.as_str())),
            ("kind", Attr::from(kind)),
            ("amount", Attr::N(amount.minor())),
            ("currency", Attr::from(amount.currency().code())),
            ("at_ms", Attr::N(at_ms)),
        ],
    );
    if let Some(p) = payment {
        it.insert("payment_id".into(), Attr::from(p.as_str()));
    }
    it
}

/// `POST /v1/wallet/credit`: the platform confirms a deposit's credit. Money
/// moves only on the PSP's verified final outcome (applied exactly once by
/// [`apply_event`]); this call never moves money by itself. It answers with
/// the ledger entry once the payment is captured, and 409 before.
pub async fn confirm_credit(
    ctx: &Ctx,
    payment_id: &PaymentId,
    client_txn: &TxnId,
    amount_text: &str,
) -> Result<Value, Error> {
    let p = super::deposit::load_payment(ctx, payment_id).await?;
    let amount = Money::parse_decimal(amount_text, p.amount.currency())
        .map_err(|e| Error::validation("amount", e.to_string()))?;
    if amount != p.amount {
        return Err(Error::validation(
            "amount",
            "does not match the payment's amount",
        ));
    }
    let (PaymentStatus::Captured, Some(txn)) = (p.status, p.credited_txn.as_ref()) else {
        return Err(Error::Conflict {
            code: "payment_not_final",
            reason: format!(
                "payment is {}; it is credited only when the PSP reports it captured",
                p.status.as_str()
            ),
        });
    };
    Ok(json!({
        "payment_id": p.id,
        "player_id": p.player,
        "txn_id": txn,
        "client_txn_id": client_txn,
        "amount": p.amount.to_decimal(),
        "currency": p.amount.currency(),
        "status": "credited",
    }))
}

/// A player's balances (minor units) per currency.
pub async fn balances(
    ctx: &Ctx,
    player: &PlayerId,
) -> Result<Vec<(crate::money::Currency, i64, i64)>, Error> {
    let q = Query::new(
        keys::wallet_pk(player),
        SkRange::Prefix(keys::BALANCE_PREFIX.into()),
        MAX_CURRENCIES,
    );
    let page = ctx.store.query(&q).await?;
    let mut out = Vec::new();
    for it in &page.items {
        let Some(currency) = it.str_attr("sk").and_then(keys::balance_currency) else {
            continue;
        };
        let available = it.int_attr("available").unwrap_or(0);
        let held = it.int_attr("held").unwrap_or(0);
        if available < 0 || held < 0 {
            // Never expected without a chargeback: shout, do not hide it.
            tracing::error!(player_id = %player, currency = currency.code(), "negative wallet balance");
        }
        out.push((currency, available, held));
    }
    Ok(out)
}

/// `GET /v1/wallet/{player}`: balances and the most recent ledger entries.
pub async fn wallet_view(ctx: &Ctx, player: &PlayerId) -> Result<Value, Error> {
    let bal = balances(ctx, player).await?;
    let mut q = Query::new(
        keys::wallet_pk(player),
        SkRange::Prefix(keys::LEDGER_PREFIX.into()),
        RECENT_ENTRIES,
    );
    q.descending = true;
    let page = ctx.store.query(&q).await?;
    let entries: Vec<Value> = page
        .items
        .iter()
        .filter_map(|it| {
            let currency = crate::money::Currency::parse(it.str_attr("currency")?).ok()?;
            Some(json!({
                "txn_id": it.str_attr("txn_id"),
                "kind": it.str_attr("kind"),
                "amount": format_minor(it.int_attr("amount")?, currency),
                "currency": currency,
                "payment_id": it.str_attr("payment_id"),
                "at_ms": it.int_attr("at_ms"),
            }))
        })
        .collect();
    let balances: Vec<Value> = bal
        .iter()
        .map(|(c, a, h)| json!({"currency": c, "available": format_minor(*a, *c), "held": format_minor(*h, *c)}))
        .collect();
    Ok(json!({"player_id": player, "balances": balances, "entries": entries}))
}
