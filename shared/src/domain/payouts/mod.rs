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

use serde_json::json;

use crate::clock::Day;
use crate::error::{Error, ErrorCode};
use crate::ids::{PlayerId, PspId, TxnId};
use crate::money::{Currency, Money};
use crate::psp::health::Circuit;
use crate::psp::routing::{RiskLevel, RouteRequest};
use crate::psp::{PayoutRequest as PspPayout, PspError};
use crate::queue::QueueName;
use crate::store::{item, Attr, Cond, Item, ItemExt, Query, SkRange, UpdateOp, Write};

use crate::domain::cases::{self, CaseKind, NewCase, Side};
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

mod events;
mod hold;
mod policy;
mod request;
mod schedule;
mod view;

pub use events::{apply_event, check_event, finish};
pub use hold::{decide_review, init};
pub use request::PayoutRequest;
pub use schedule::{sweep, SWEEP_BATCH};
pub use view::{view, PayoutView};

// The capability's files share their helpers through this module.
use policy::*;
use schedule::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    /// Held for a risk review: the funds are held, no PSP is asked until an
    /// operator approves.
    OnHold,
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
            PayoutStatus::OnHold => "on_hold",
            PayoutStatus::Deferred => "deferred",
            PayoutStatus::Pending => "pending",
            PayoutStatus::Review => "review",
            PayoutStatus::Succeeded => "succeeded",
            PayoutStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<PayoutStatus> {
        [
            PayoutStatus::OnHold,
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
        PayoutStatus::OnHold,
        PayoutStatus::Deferred,
        PayoutStatus::Pending,
        PayoutStatus::Review,
    ]
    .iter()
    .map(|s| Attr::from(s.as_str()))
    .collect()
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
