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
use crate::domain::request::Body;
use crate::domain::wallet::ledger::{self, EntryKind, Movement, Outcome, Refusal};
use crate::domain::Ctx;
use crate::psp::event::{OperationOutcome, RefundEvent};
use crate::schema::keys;
use crate::schema::recon_index::{match_key, Kind, Record};

mod deliver;
mod events;
mod request;
mod schedule;
mod view;

pub use events::apply_event;
pub use request::{request, RefundRequest};
pub use schedule::{sweep, SWEEP_BATCH};
pub use view::RefundView;

// The capability's files share their helpers through this module.
use deliver::*;
use request::*;
use schedule::*;
use view::*;

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
