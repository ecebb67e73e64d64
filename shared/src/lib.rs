//! payloop's common crate: money, ids, the store and queue ports with their
//! adapters, and the domain (idempotency, payments, webhooks, wallet).

pub mod clock;
pub mod config;
pub mod domain;
pub mod edge;
pub mod error;
pub mod ids;
pub mod metrics;
pub mod money;
pub mod psp;
pub mod queue;
pub mod runtime;
pub mod schema;
pub mod secret;
pub mod store;
pub mod text;

pub use error::Error;
