//! The game-round wallet API: bets (debit), wins (credit) and rollbacks of
//! bets whose round was cancelled. Each txn id moves money once per player;
//! a repeat answers the same result; a different request reusing a txn id
//! is a 409. A round belongs to one player and currency and links its debit
//! and credit txn ids (queryable). Bets count toward the wagering
//! requirement; a rollback takes its bet back out.
//!
//! | item               | pk                  | sk            |
//! |--------------------|---------------------|---------------|
//! | round              | `ROUND#<round_id>`  | `A`           |
//! | round transaction  | `ROUND#<round_id>`  | `TXN#<txn_id>`|

use serde::Serialize;

use crate::error::{Error, ErrorCode};
use crate::ids::{PlayerId, TxnId};
use crate::money::{format_minor, Currency, Money};
use crate::store::{item, Attr, Cond, Item, ItemExt, Query, SkRange, UpdateOp, Write};

use crate::domain::request::Body;
use crate::domain::wallet::ledger::{self, Entry, EntryKind, Movement, Outcome, Refusal};
use crate::domain::Ctx;
use crate::schema::keys;

const MAX_ROUND_ID: usize = 64;
/// Transactions shown per round.
const MAX_ROUND_TXNS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundOp {
    Bet,
    Win,
    Rollback,
}

impl RoundOp {
    fn as_str(&self) -> &'static str {
        match self {
            RoundOp::Bet => "debit",
            RoundOp::Win => "credit",
            RoundOp::Rollback => "rollback",
        }
    }
    /// The ledger txn id: namespaced so a client's txn id can never meet a
    /// deposit's or a payout's; a rollback is keyed by the bet it reverses.
    fn ledger_txn(&self, txn: &TxnId) -> Result<TxnId, Error> {
        let prefix = match self {
            RoundOp::Bet | RoundOp::Win => "gm",
            RoundOp::Rollback => "rb",
        };
        TxnId::parse(&format!("{prefix}_{txn}"))
            .map_err(|_| Error::validation("txn_id", "must be at most 61 characters"))
    }
}

/// The fields a bet, win or rollback body may carry (`amount` and
/// `currency` are required for bets and wins; a rollback may leave both out,
/// it names the bet it cancels, and when it sends them they must match the
/// bet); `idempotency_key` is read by the edge as the Idempotency-Key.
const ROUND_FIELDS: [&str; 6] = [
    "player_id",
    "round_id",
    "txn_id",
    "amount",
    "currency",
    "idempotency_key",
];

/// A round request as parsed at the edge.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundRequest {
    pub player: PlayerId,
    pub round_id: String,
    /// For a rollback: the bet's txn id.
    pub txn: TxnId,
    pub currency: Option<Currency>,
    pub amount: Option<Money>,
}

/// A round movement with its amount known (for a rollback: the bet's).
#[derive(Debug, Clone, PartialEq)]
struct Round {
    player: PlayerId,
    round_id: String,
    txn: TxnId,
    amount: Money,
}

fn parse_round_id(s: &str) -> Result<String, Error> {
    let ok = !s.is_empty()
        && s.len() <= MAX_ROUND_ID
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    ok.then(|| s.to_owned())
        .ok_or_else(|| Error::validation("round_id", "must be 1-64 characters [A-Za-z0-9_.-]"))
}

impl RoundRequest {
    pub fn parse(op: RoundOp, b: &Body) -> Result<RoundRequest, Error> {
        b.only(&ROUND_FIELDS)?;
        let currency = b
            .opt_str("currency")?
            .map(Currency::parse)
            .transpose()
            .map_err(|e| Error::validation("currency", e.to_string()))?;
        let amount = match (b.opt_str("amount")?, currency) {
            (Some(a), Some(c)) => Some(
                Money::parse_decimal(a, c)
                    .map_err(|e| Error::validation("amount", e.to_string()))?,
            ),
            (Some(_), None) => return Err(Error::validation("currency", "is required")),
            (None, _) => None,
        };
        if op != RoundOp::Rollback {
            currency.ok_or_else(|| Error::validation("currency", "is required"))?;
            amount.ok_or_else(|| Error::validation("amount", "is required"))?;
        }
        Ok(RoundRequest {
            player: PlayerId::parse(b.str("player_id")?)
                .map_err(|e| Error::validation("player_id", e.to_string()))?,
            round_id: parse_round_id(b.str("round_id")?)?,
            txn: TxnId::parse(b.str("txn_id")?)
                .map_err(|e| Error::validation("txn_id", e.to_string()))?,
            currency,
            amount,
        })
    }
}

/// The amount a request moves: its own, or for a rollback the bet's (what
/// the rollback sends must match it).
async fn resolve(ctx: &Ctx, op: RoundOp, r: &RoundRequest) -> Result<Round, Error> {
    let round = |amount| Round {
        player: r.player.clone(),
        round_id: r.round_id.clone(),
        txn: r.txn.clone(),
        amount,
    };
    if let (RoundOp::Bet | RoundOp::Win, Some(amount)) = (op, r.amount) {
        return Ok(round(amount));
    }
    let no_bet = || {
        Error::validation(
            "txn_id",
            "no bet of this player with this txn_id in this round",
        )
    };
    let bet = ctx
        .store
        .get(&keys::round_txn(&r.round_id, &r.txn))
        .await?
        .filter(|b| b.str_attr("kind") == Some("debit"))
        .ok_or_else(no_bet)?;
    let bet_amount = bet
        .str_attr("currency")
        .and_then(|c| Currency::parse(c).ok())
        .and_then(|c| Money::from_minor(bet.int_attr("amount")?, c).ok())
        .ok_or_else(|| Error::Internal("stored bet lacks amount or currency".into()))?;
    if r.currency.is_some_and(|c| c != bet_amount.currency()) {
        return Err(Error::validation("currency", "does not match the bet"));
    }
    if r.amount.is_some_and(|a| a != bet_amount) {
        return Err(Error::validation("amount", "does not match the bet"));
    }
    Ok(round(bet_amount))
}

/// The round is this player's, in this currency.
fn round_is_theirs(r: &Round) -> Cond {
    Cond::And(vec![
        Cond::eq("player", r.player.as_str()),
        Cond::eq("currency", r.amount.currency().code()),
    ])
}

/// Apply a bet, win or rollback. `(body, fresh)`: fresh is false for a
/// repeat of an applied txn id (same body).
pub async fn apply(
    ctx: &Ctx,
    op: RoundOp,
    req: &RoundRequest,
) -> Result<(RoundAnswer, bool), Error> {
    let round = resolve(ctx, op, req).await?;
    let r = &round;
    let (m, extra) = plan(ctx, op, r).await?;
    match ledger::apply(ctx, &m, &extra).await? {
        Outcome::Moved(entry) => {
            same_request(&entry, op, r)?;
            Ok((answer(op, r, &entry), entry.fresh))
        }
        Outcome::Refused(Refusal::InsufficientFunds { available }) => Err(Error::PaymentRequired {
            code: ErrorCode::InsufficientFunds,
            reason: format!(
                "the bet is {} but only {} is available",
                r.amount,
                format_minor(available, r.amount.currency())
            ),
        }),
        Outcome::Refused(Refusal::Extra { index, .. }) => Err(match (op, index) {
            (RoundOp::Bet, _) => Error::Conflict {
                code: ErrorCode::RoundConflict,
                reason: "this round belongs to another player or currency, or has this txn_id"
                    .into(),
            },
            (RoundOp::Win, 0) => Error::validation(
                "round_id",
                "no bet of this player and currency in this round",
            ),
            (RoundOp::Win, _) => Error::Conflict {
                code: ErrorCode::TxnIdReused,
                reason: "this round already has this txn_id".into(),
            },
            (RoundOp::Rollback, 0) => Error::validation(
                "round_id",
                "this round belongs to another player or currency",
            ),
            (RoundOp::Rollback, _) => {
                Error::validation("txn_id", "this bet was already rolled back")
            }
        }),
        Outcome::Refused(Refusal::NoHold | Refusal::WageringIncomplete { .. }) => Err(
            Error::Internal("round movement refused for held or wagering".into()),
        ),
    }
}

/// The ledger movement and the round writes that go with it.
async fn plan(ctx: &Ctx, op: RoundOp, r: &Round) -> Result<(Movement, Vec<Write>), Error> {
    let kind = match op {
        RoundOp::Bet => EntryKind::Debit,
        RoundOp::Win => EntryKind::Credit,
        RoundOp::Rollback => EntryKind::Adjustment,
    };
    let mut m = Movement::new(&r.player, r.amount.currency(), op.ledger_txn(&r.txn)?, kind);
    m.related = vec![
        ("round_id", r.round_id.clone()),
        ("client_txn_id", r.txn.to_string()),
    ];
    let writes = match op {
        RoundOp::Bet => bet_writes(&mut m, r),
        RoundOp::Win => win_writes(&mut m, r),
        RoundOp::Rollback => rollback_writes(ctx, &mut m, r).await?,
    };
    Ok((m, writes))
}

/// The round's record of one bet (`debit`) or win (`credit`).
fn txn_record(r: &Round, kind: &str) -> Item {
    item(
        &keys::round_txn(&r.round_id, &r.txn),
        [
            ("kind", Attr::from(kind)),
            ("amount", Attr::N(r.amount.minor())),
            ("currency", Attr::from(r.amount.currency().code())),
        ],
    )
}

/// A bet: debit and count it as wagered; the round is created or must be
/// this player's in this currency; the bet's txn id is new.
fn bet_writes(m: &mut Movement, r: &Round) -> Vec<Write> {
    m.available_delta = -r.amount.minor();
    m.wagered_delta = r.amount.minor();
    m.reason = "bet".into();
    vec![
        Write::Update {
            key: keys::round(&r.round_id),
            ops: vec![
                UpdateOp::set("player", r.player.as_str()),
                UpdateOp::set("currency", r.amount.currency().code()),
            ],
            cond: Some(Cond::Or(vec![Cond::NotExists, round_is_theirs(r)])),
        },
        Write::Put {
            item: txn_record(r, "debit"),
            cond: Some(Cond::NotExists),
        },
    ]
}

/// A win: credit, in a round of this player's; the win's txn id is new.
fn win_writes(m: &mut Movement, r: &Round) -> Vec<Write> {
    m.available_delta = r.amount.minor();
    m.reason = "win".into();
    vec![
        Write::Check {
            key: keys::round(&r.round_id),
            cond: round_is_theirs(r),
        },
        Write::Put {
            item: txn_record(r, "credit"),
            cond: Some(Cond::NotExists),
        },
    ]
}

/// A rollback: give back a bet of this round (same txn id, amount and
/// currency), once: the bet is marked rolled back in the same transaction.
async fn rollback_writes(ctx: &Ctx, m: &mut Movement, r: &Round) -> Result<Vec<Write>, Error> {
    let (minor, currency) = (r.amount.minor(), r.amount.currency());
    let bet = ctx.store.get(&keys::round_txn(&r.round_id, &r.txn)).await?;
    let is_bet = bet.as_ref().is_some_and(|b| {
        b.str_attr("kind") == Some("debit")
            && b.int_attr("amount") == Some(minor)
            && b.str_attr("currency") == Some(currency.code())
    });
    if !is_bet || ctx.store.get(&keys::round(&r.round_id)).await?.is_none() {
        return Err(Error::validation(
            "txn_id",
            "no bet with this txn_id, amount and currency in this round",
        ));
    }
    m.available_delta = minor;
    m.wagered_delta = -minor;
    m.reason = "rollback".into();
    Ok(vec![
        Write::Check {
            key: keys::round(&r.round_id),
            cond: round_is_theirs(r),
        },
        Write::Update {
            key: keys::round_txn(&r.round_id, &r.txn),
            ops: vec![UpdateOp::set("rolled_back", true)],
            cond: Some(Cond::And(vec![
                Cond::eq("kind", "debit"),
                Cond::AttrNotExists("rolled_back".into()),
            ])),
        },
    ])
}

/// A repeat must be the same request: same round, amount, currency, kind.
fn same_request(entry: &Entry, op: RoundOp, r: &Round) -> Result<(), Error> {
    let it = &entry.item;
    let expected_kind = match op {
        RoundOp::Bet => "debit",
        RoundOp::Win => "credit",
        RoundOp::Rollback => "adjustment",
    };
    let same = it.str_attr("kind") == Some(expected_kind)
        && it.str_attr("round_id") == Some(r.round_id.as_str())
        && it.int_attr("amount") == Some(r.amount.minor())
        && it.str_attr("currency") == Some(r.amount.currency().code());
    if same {
        Ok(())
    } else {
        Err(Error::Conflict {
            code: ErrorCode::TxnIdReused,
            reason: "this txn_id was already used for another wallet operation".into(),
        })
    }
}

/// Balances after a round operation, as decimals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BalanceAfter {
    pub available: Option<String>,
    pub held: Option<String>,
}

/// The answer to a bet, win or rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoundAnswer {
    pub player_id: PlayerId,
    pub round_id: String,
    pub txn_id: TxnId,
    pub operation: &'static str,
    pub ledger_txn_id: Option<String>,
    pub amount: String,
    pub currency: Currency,
    pub balance: BalanceAfter,
}

fn answer(op: RoundOp, r: &Round, entry: &Entry) -> RoundAnswer {
    let c = r.amount.currency();
    let after = |name: &str| entry.item.int_attr(name).map(|v| format_minor(v, c));
    RoundAnswer {
        player_id: r.player.clone(),
        round_id: r.round_id.clone(),
        txn_id: r.txn.clone(),
        operation: op.as_str(),
        ledger_txn_id: entry.item.str_attr("txn_id").map(str::to_owned),
        amount: r.amount.to_decimal(),
        currency: c,
        balance: BalanceAfter {
            available: after("available_after"),
            held: after("held_after"),
        },
    }
}

/// One debit or credit of a round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoundTxn {
    pub txn_id: String,
    pub amount: Option<String>,
    pub rolled_back: bool,
}

/// `GET /v1/wallet/rounds/{round_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoundView {
    pub round_id: String,
    pub player_id: Option<String>,
    pub currency: Currency,
    pub debits: Vec<RoundTxn>,
    pub credits: Vec<RoundTxn>,
}

/// `GET /v1/wallet/rounds/{round_id}`: the round and its debit and credit txn ids.
pub async fn round_view(ctx: &Ctx, round: &str) -> Result<RoundView, Error> {
    let round = parse_round_id(round)?;
    let head = ctx
        .store
        .get(&keys::round(&round))
        .await?
        .ok_or(Error::NotFound { what: "round" })?;
    let currency = head
        .str_attr("currency")
        .and_then(|c| Currency::parse(c).ok())
        .ok_or_else(|| Error::Internal("round without currency".into()))?;
    let q = Query::new(
        keys::round_pk(&round),
        SkRange::Prefix(keys::LEDGER_PREFIX.into()),
        MAX_ROUND_TXNS,
    );
    let mut debits = Vec::new();
    let mut credits = Vec::new();
    for it in ctx.store.query(&q).await?.items {
        let txn = it
            .str_attr("sk")
            .and_then(|sk| sk.strip_prefix(keys::LEDGER_PREFIX))
            .unwrap_or_default();
        let v = RoundTxn {
            txn_id: txn.to_owned(),
            amount: it.int_attr("amount").map(|a| format_minor(a, currency)),
            rolled_back: it
                .get("rolled_back")
                .and_then(Attr::as_bool)
                .unwrap_or(false),
        };
        match it.str_attr("kind") {
            Some("debit") => debits.push(v),
            _ => credits.push(v),
        }
    }
    Ok(RoundView {
        round_id: round,
        player_id: head.str_attr("player").map(str::to_owned),
        currency,
        debits,
        credits,
    })
}
