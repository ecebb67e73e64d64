//! The domain: every money rule, written once against the store and queue
//! ports.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::psp::Psps;
use crate::queue::Queue;
use crate::store::Store;

pub mod cascade;
pub mod deposit;
pub mod event;
pub mod idempotency;
pub mod keys;
pub mod ledger;
pub mod operator;
pub mod outbox;
pub mod pan;
pub mod payment;
pub mod payout;
pub mod recon;
pub mod refund;
pub mod reports;
pub mod rounds;
pub mod settlement;
pub mod signature;
pub mod sweep;
pub mod wallet;
pub mod webhook;

/// What every handler needs: built once per process (or Lambda instance).
#[derive(Clone)]
pub struct Ctx {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub config: Arc<Config>,
    pub psps: Arc<Psps>,
    /// The only source of time for the domain (virtual in the simulator).
    pub clock: Arc<dyn Clock>,
}

impl Ctx {
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
