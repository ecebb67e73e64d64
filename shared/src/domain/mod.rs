//! The domain: every money rule, written once against the store and queue
//! ports.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::policy::Policies;
use crate::psp::Psps;
use crate::queue::Queue;
use crate::store::Store;

pub mod cases;
pub mod cashier;
pub mod deposits;
pub mod events;
pub mod google;
pub mod google_jobs;
pub mod idempotency;
pub mod limits;
pub mod observe;
pub mod operator;
pub mod outbox;
pub mod pan;
pub mod payouts;
pub mod players;
pub mod policy;
pub mod recon;
pub mod refunds;
pub mod reports;
pub mod request;
pub mod reviews;
pub mod risk;
pub mod rounds;
pub mod sweep;
pub mod wallet;

/// What every handler needs: built once per process (or Lambda instance).
#[derive(Clone)]
pub struct Ctx {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub config: Arc<Config>,
    /// The deployment's rules, built at start-up.
    pub policies: Arc<Policies>,
    pub psps: Arc<Psps>,
    /// The only source of time for the domain (virtual in the simulator).
    pub clock: Arc<dyn Clock>,
}

impl Ctx {
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// This process's metrics recorder (kept beside the PSPs, whose route
    /// health records into it too).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.psps.metrics
    }
}
