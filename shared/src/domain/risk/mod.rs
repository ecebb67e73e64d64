//! Risk, AML and their decisions: every deposit intent and payout goes
//! through one decision ([`decision`]) of the configured rules ([`rules`]),
//! counting exact velocity ([`velocity`]) from the request's signals
//! ([`signals`]); `review` holds the money movement until an operator
//! decides ([`review`]); after every money movement the AML scenarios run
//! and open alerts with their evidence ([`aml`]).

pub mod aml;
pub mod decision;
pub mod review;
pub mod signals;
pub mod velocity;

/// The rules engine lives with the policies (pure, below the domain's context).
pub use crate::domain::policy::risk_rules as rules;
