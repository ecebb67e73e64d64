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

mod apply;
mod request;
mod view;

pub use apply::apply;
pub use request::RoundRequest;
pub use view::{round_view, BalanceAfter, RoundAnswer, RoundTxn, RoundView};

// The capability's files share their helpers through this module.
use request::*;
use view::*;

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

/// A round movement with its amount known (for a rollback: the bet's).
#[derive(Debug, Clone, PartialEq)]
struct Round {
    player: PlayerId,
    round_id: String,
    txn: TxnId,
    amount: Money,
}
