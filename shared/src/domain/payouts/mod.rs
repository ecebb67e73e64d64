//! Payouts (withdrawals) with two-phase holds.
//!
//! 1. `init` checks, each with its own error: wagering done (402
//!    `wagering_incomplete`), per-payout limit (422 `payout_limit`), KYC level
//!    for the amount and risk (402 `kyc_required`); then, in ONE transaction,
//!    creates the payout, HOLDS the amount (available → held, a `hold` ledger
//!    entry) and adds it to the day's total (402 `insufficient_funds`, 402
//!    `daily_limit_reached`). Two payouts can never spend the same money.
//! 2. The payout goes to the PSP route and instrument the player deposited
//!    with (closed loop) when it can, else to the routing rules' choice; the
//!    reason is recorded. If the PSP is down, or degradation mode is on, the
//!    payout is DEFERRED (kept, retried by the sweep), never failed.
//! 3. The PSP's webhook `succeeded` settles the hold (`hold_settled`),
//!    `failed` releases it (`hold_released`) and notifies the player; each
//!    once, guarded by the payout's status, so duplicates and late or
//!    reordered webhooks change nothing.
//! 4. A payout without an outcome is never released by time: the sweep asks
//!    the PSP's status API after the timeout, applies a final answer through
//!    the same path as a webhook, and otherwise leaves the money held and
//!    the payout flagged for review.
//!
//! | item                 | pk                  | sk                          |
//! |----------------------|---------------------|-----------------------------|
//! | payout               | `PAYOUT#<id>`       | `A`                         |
//! | accepted payout event| `PAYOUT#<id>`       | `EVT#<psp>#<event_id>`      |
//! | day's payout total   | `WAL#<player>`      | `PODAY#<currency>#<day>`    |
//! | due work (sweep)     | `PAYOUTQ`           | `<due ms, 15 digits>#<id>`  |

use serde_json::{json, Value};

use crate::clock::Day;
use crate::error::{Error, ErrorCode};
use crate::ids::{PlayerId, PspId, TxnId};
use crate::money::{Currency, Money};
use crate::psp::health::Circuit;
use crate::psp::routing::{RiskLevel, RouteRequest};
use crate::psp::{PayoutRequest as PspPayout, PspError};
use crate::queue::QueueName;
use crate::store::{item, Attr, Cond, Item, ItemExt, Query, SkRange, UpdateOp, Write};

use crate::domain::cases::{self, CaseKind, CaseStatus, Evidence, NewCase, Side};
use crate::domain::outbox::Outgoing;
use crate::domain::players::{self, KycLevel};
use crate::domain::policy::PayoutPolicy;
use crate::domain::request::Body;
use crate::domain::wallet::ledger::{self, EntryKind, Movement, Outcome, Refusal};
use crate::domain::Ctx;
use crate::psp::event::{OperationOutcome, PayoutEvent};
use crate::schema::keys;
use crate::schema::recon_index::{match_key, Kind, Record};
use crate::schema::status::METHODS;

/// Payouts handled per sweep run.
pub const SWEEP_BATCH: usize = 100;
const MAX_TOKEN: usize = 128;
/// Times the PSP's status API is asked about a payout it says is still
/// pending (an outcome timeout apart) or cannot answer for (a retry
/// interval apart) before the payout is held for an operator.
const MAX_STATUS_ASKS: i64 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutStatus {
    /// Waiting to be sent to a PSP (PSP down or degradation mode).
    Deferred,
    /// Sent; waiting for the PSP's outcome.
    Pending,
    /// No outcome after the timeout and the PSP could not say: held, flagged.
    Review,
    Succeeded,
    Failed,
}

impl PayoutStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            PayoutStatus::Deferred => "deferred",
            PayoutStatus::Pending => "pending",
            PayoutStatus::Review => "review",
            PayoutStatus::Succeeded => "succeeded",
            PayoutStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<PayoutStatus> {
        [
            PayoutStatus::Deferred,
            PayoutStatus::Pending,
            PayoutStatus::Review,
            PayoutStatus::Succeeded,
            PayoutStatus::Failed,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
    pub fn is_final(&self) -> bool {
        matches!(self, PayoutStatus::Succeeded | PayoutStatus::Failed)
    }
}

/// The statuses a final outcome may be applied from.
fn open_statuses() -> Vec<Attr> {
    [
        PayoutStatus::Deferred,
        PayoutStatus::Pending,
        PayoutStatus::Review,
    ]
    .iter()
    .map(|s| Attr::from(s.as_str()))
    .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct PayoutRequest {
    pub player: PlayerId,
    pub amount: Money,
    pub method: String,
    pub destination_token: Option<String>,
}

const INIT_FIELDS: [&str; 6] = [
    "player_id",
    "amount",
    "currency",
    "method",
    "destination_token",
    "idempotency_key",
];

fn is_token(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= MAX_TOKEN
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl PayoutRequest {
    /// Parse the payout body; every error names its field.
    pub fn parse(body: &Body) -> Result<PayoutRequest, Error> {
        body.only(&INIT_FIELDS)?;
        let currency = Currency::parse(body.str("currency")?)
            .map_err(|e| Error::validation("currency", e.to_string()))?;
        let amount = Money::parse_decimal(body.str("amount")?, currency)
            .map_err(|e| Error::validation("amount", e.to_string()))?;
        let method = body.str("method")?;
        if !METHODS.contains(&method) {
            return Err(Error::validation(
                "method",
                format!("must be one of {}", METHODS.join(", ")),
            ));
        }
        let destination_token = match body.opt_str("destination_token") {
            Ok(None) => None,
            Ok(Some(t)) if is_token(t) => Some(t.to_owned()),
            _ => {
                return Err(Error::validation(
                    "destination_token",
                    "must be a PSP token of 1-128 characters [A-Za-z0-9_-]",
                ))
            }
        };
        Ok(PayoutRequest {
            player: PlayerId::parse(body.str("player_id")?)
                .map_err(|e| Error::validation("player_id", e.to_string()))?,
            amount,
            method: method.to_owned(),
            destination_token,
        })
    }
}

/// A stored payout.
#[derive(Debug, Clone, PartialEq)]
pub struct Payout {
    pub id: String,
    pub player: PlayerId,
    pub amount: Money,
    pub method: String,
    pub psp: PspId,
    pub destination_token: Option<String>,
    pub status: PayoutStatus,
    pub psp_reference: Option<String>,
    pub due_sk: Option<String>,
    /// How often the status API said "still pending".
    pub status_asks: i64,
}

fn due_sk(due_ms: i64, id: &str) -> String {
    keys::due_sk(due_ms, id)
}

fn due_item(due_ms: i64, id: &str) -> (Item, String) {
    let sk = due_sk(due_ms, id);
    (
        item(
            &keys::payout_due(sk.clone()),
            [("payout_id", Attr::from(id))],
        ),
        sk,
    )
}

impl Payout {
    pub fn from_item(it: &Item) -> Result<Payout, Error> {
        let bad = |what: &str| Error::Internal(format!("stored payout lacks {what}"));
        let currency = it
            .str_attr("currency")
            .and_then(|c| Currency::parse(c).ok())
            .ok_or_else(|| bad("currency"))?;
        Ok(Payout {
            id: it
                .str_attr("payout_id")
                .ok_or_else(|| bad("id"))?
                .to_owned(),
            player: it
                .str_attr("player")
                .and_then(|p| PlayerId::parse(p).ok())
                .ok_or_else(|| bad("player"))?,
            amount: it
                .int_attr("amount")
                .and_then(|a| Money::from_minor(a, currency).ok())
                .ok_or_else(|| bad("amount"))?,
            method: it.str_attr("method").unwrap_or_default().to_owned(),
            psp: it
                .str_attr("psp")
                .and_then(|p| PspId::parse(p).ok())
                .ok_or_else(|| bad("psp"))?,
            destination_token: it.str_attr("destination_token").map(str::to_owned),
            status: it
                .str_attr("status")
                .and_then(PayoutStatus::parse)
                .ok_or_else(|| bad("status"))?,
            psp_reference: it.str_attr("psp_reference").map(str::to_owned),
            due_sk: it.str_attr("due_sk").map(str::to_owned),
            status_asks: it.int_attr("status_asks").unwrap_or(0),
        })
    }
}

fn required_kyc(policy: &PayoutPolicy, amount: i64, risk: RiskLevel) -> KycLevel {
    if amount > policy.basic_kyc_max_minor || risk >= RiskLevel::Medium {
        KycLevel::Full
    } else {
        KycLevel::Basic
    }
}

/// The checks before any money is held, each with its own error.
async fn check(ctx: &Ctx, r: &PayoutRequest) -> Result<(), Error> {
    let policy = &ctx.policies.payouts;
    if r.amount.minor() > policy.max_per_payout_minor {
        return Err(Error::Limit {
            code: ErrorCode::PayoutLimit,
            field: "amount".into(),
            reason: format!(
                "above the per-payout limit of {}",
                crate::money::format_minor(policy.max_per_payout_minor, r.amount.currency())
            ),
        });
    }
    let balance = ledger::Balance::from_item(
        ctx.store
            .get(&keys::balance(&r.player, r.amount.currency()))
            .await?
            .as_ref(),
    );
    if balance.to_wager() > 0 {
        return Err(wagering_incomplete(balance.to_wager(), r.amount.currency()));
    }
    let players::Profile { kyc, risk } = players::profile(ctx, &r.player).await?;
    let needed = required_kyc(policy, r.amount.minor(), risk);
    if kyc < needed {
        return Err(Error::PaymentRequiredWith {
            code: ErrorCode::KycRequired,
            reason: format!("this payout needs {} KYC (step-up)", needed.as_str()),
            details: json!({"kyc_level": kyc.as_str(), "required_level": needed.as_str(), "risk_level": risk.as_str()}),
        });
    }
    Ok(())
}

fn wagering_incomplete(to_wager: i64, currency: Currency) -> Error {
    Error::PaymentRequiredWith {
        code: ErrorCode::WageringIncomplete,
        reason: "deposits must be wagered before a withdrawal".into(),
        details: json!({"to_wager": crate::money::format_minor(to_wager, currency)}),
    }
}

/// Where the payout goes, and why: the PSP of the player's last captured
/// deposit (closed loop) if it is healthy, else the routing rules.
async fn route(ctx: &Ctx, r: &PayoutRequest) -> Result<(PspId, Option<String>, String), Error> {
    let mut q = Query::new(
        keys::wallet_pk(&r.player),
        SkRange::Prefix(format!("{}dep_", keys::LEDGER_PREFIX)),
        1,
    );
    q.descending = true;
    let last = ctx.store.query(&q).await?.items.into_iter().next();
    let deposit_id = last
        .as_ref()
        .and_then(|e| e.str_attr("payment_id"))
        .map(crate::ids::PaymentId::parse)
        .transpose()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let deposit = match &deposit_id {
        Some(id) => ctx.store.get(&keys::payment(id)).await?,
        None => None,
    };
    let mut why_not = "no captured deposit to return to".to_owned();
    if let Some(d) = &deposit {
        let psp = d.str_attr("psp").and_then(|p| PspId::parse(p).ok());
        let same_currency = d.str_attr("currency") == Some(r.amount.currency().code());
        match psp {
            Some(psp) if same_currency && ctx.psps.get(&psp).is_some() => {
                if ctx.psps.health.state(&psp).circuit == Circuit::Closed {
                    let token = d.str_attr("psp_reference").map(str::to_owned);
                    let pid = deposit_id.as_ref().map(|p| p.as_str()).unwrap_or_default();
                    return Ok((psp, token, format!("closed loop: deposit {pid}")));
                }
                why_not = format!("closed-loop PSP {psp} is unhealthy");
            }
            Some(psp) if !same_currency => {
                why_not = format!("last deposit (via {psp}) was in another currency")
            }
            _ => why_not = "the deposit's PSP has no connector".into(),
        }
    }
    let candidates = ctx.psps.router.candidates(&RouteRequest {
        country: None,
        amount: r.amount,
        method: &r.method,
        risk: players::profile(ctx, &r.player).await?.risk,
        seed: 0,
    });
    let c = candidates.into_iter().next().ok_or(Error::NoRoute)?;
    Ok((c.psp, None, format!("{why_not}; {}", c.reason)))
}

/// `POST /v1/payouts/init`: check, hold, start (or defer). `id` is the
/// payout id the idempotency engine reserved.
pub async fn init(ctx: &Ctx, r: PayoutRequest, id: String) -> Result<Value, Error> {
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
fn new_payout(
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
async fn hold(
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

fn hold_refused(refusal: Refusal, r: &PayoutRequest, daily_limit: i64) -> Error {
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

fn txn(id: &str, step: &str) -> Result<TxnId, Error> {
    let tail = id.strip_prefix("po_").unwrap_or(id);
    TxnId::parse(&format!("po{step}_{tail}")).map_err(|e| Error::Internal(e.to_string()))
}

fn history(status: PayoutStatus, at_ms: i64, note: &str) -> Attr {
    let mut m = std::collections::BTreeMap::new();
    m.insert("status".to_owned(), Attr::from(status.as_str()));
    m.insert("at_ms".to_owned(), Attr::N(at_ms));
    m.insert("note".to_owned(), Attr::from(note));
    Attr::M(m)
}

pub async fn load(ctx: &Ctx, id: &str) -> Result<Payout, Error> {
    let it = ctx
        .store
        .get(&keys::payout(id))
        .await?
        .ok_or(Error::NotFound { what: "payout" })?;
    Payout::from_item(&it)
}

/// Move a payout between open statuses, replacing its due-work item.
async fn reschedule(
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
async fn send_or_defer(ctx: &Ctx, p: &Payout) -> Result<(), Error> {
    let now = ctx.now_ms();
    let policy = &ctx.policies.payouts;
    let modes = ctx.psps.modes.current(ctx.store.as_ref(), now).await?;
    if modes.degraded {
        reschedule(
            ctx,
            p,
            PayoutStatus::Deferred,
            Some(now + policy.retry_after_ms),
            "deferred: degradation mode",
            None,
        )
        .await?;
        return Ok(());
    }
    let Some(connector) = ctx.psps.get(&p.psp) else {
        reschedule(
            ctx,
            p,
            PayoutStatus::Review,
            None,
            "no connector for the payout's PSP",
            None,
        )
        .await?;
        return Ok(());
    };
    let req = PspPayout {
        payout_id: &p.id,
        amount: p.amount,
        destination_token: p.destination_token.as_deref(),
    };
    match connector.start_payout(&req).await {
        Ok(op) => {
            reschedule(
                ctx,
                p,
                PayoutStatus::Pending,
                Some(now + policy.outcome_timeout_ms),
                "sent to the PSP",
                Some(&op.reference),
            )
            .await?;
        }
        Err(PspError::Unavailable(why)) => {
            tracing::warn!(payout_id = %p.id, psp = %p.psp, why = %why, "payout deferred: PSP unavailable");
            reschedule(
                ctx,
                p,
                PayoutStatus::Deferred,
                Some(now + policy.retry_after_ms),
                "deferred: PSP unavailable",
                None,
            )
            .await?;
        }
        Err(e) => {
            tracing::error!(payout_id = %p.id, psp = %p.psp, error = %e, "PSP refused the payout");
            // The PSP's own words stay in the log line above.
            finish(
                ctx,
                p,
                PayoutStatus::Failed,
                "the PSP refused the payout",
                None,
            )
            .await?;
        }
    }
    Ok(())
}

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
fn outcome_writes(
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
fn failed_notice(ctx: &Ctx, p: &Payout, now: i64) -> Outgoing {
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
async fn ask_psp(ctx: &Ctx, p: &Payout) -> Result<(), Error> {
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
    let still_pending = answer.as_ref().is_some_and(|op| op.status == "pending");
    if still_pending && asks_left {
        // The PSP is still working on it: ask again after another timeout.
        let again = ctx.now_ms() + ctx.policies.payouts.outcome_timeout_ms;
        let note = "still pending at the PSP; asking again";
        reschedule(ctx, p, PayoutStatus::Pending, Some(again), note, None).await?;
        return Ok(());
    }
    match answer.and_then(|op| OperationOutcome::parse(&op.status)) {
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

/// `GET /v1/payouts/{id}`: status, route, history.
pub async fn view(ctx: &Ctx, id: &str) -> Result<Value, Error> {
    let it = ctx
        .store
        .get(&keys::payout(id))
        .await?
        .ok_or(Error::NotFound { what: "payout" })?;
    Ok(view_of(&it))
}

fn view_of(it: &Item) -> Value {
    let currency = it
        .str_attr("currency")
        .and_then(|c| Currency::parse(c).ok());
    let amount = match (it.int_attr("amount"), currency) {
        (Some(a), Some(c)) => Value::String(crate::money::format_minor(a, c)),
        _ => Value::Null,
    };
    json!({
        "payout_id": it.str_attr("payout_id"),
        "player_id": it.str_attr("player"),
        "amount": amount,
        "currency": it.str_attr("currency"),
        "method": it.str_attr("method"),
        "psp": it.str_attr("psp"),
        "route_reason": it.str_attr("route_reason"),
        "status": it.str_attr("status"),
        "psp_reference": it.str_attr("psp_reference"),
        "final_reason": it.str_attr("final_reason"),
        "flagged": it.get("flagged").and_then(Attr::as_bool).unwrap_or(false),
        "created_at_ms": it.int_attr("created_ms"),
        "history": it.get("history").map(Attr::to_json).unwrap_or(Value::Null),
    })
}

fn matches(p: &Payout, ev: &PayoutEvent) -> bool {
    p.amount.minor() == ev.amount_minor && p.amount.currency() == ev.currency && p.psp == ev.psp
}

/// A payout case (mismatch, contradicting outcome), once per event.
async fn open_case(ctx: &Ctx, kind: CaseKind, ev: &PayoutEvent, p: &Payout) -> Result<(), Error> {
    let case = NewCase {
        key: keys::payout_case(&ev.payout_id, &ev.psp, &ev.event_id),
        kind,
        status: CaseStatus::Open,
        evidence: Evidence::Event {
            event_id: ev.event_id.clone(),
            reference: None,
            ours: Side {
                label: "payout",
                status: p.status.as_str(),
                amount_minor: p.amount.minor(),
                currency: p.amount.currency(),
                psp: p.psp.clone(),
            },
            theirs: Side {
                label: "event",
                status: ev.status.as_str(),
                amount_minor: ev.amount_minor,
                currency: ev.currency,
                psp: ev.psp.clone(),
            },
        },
    };
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
