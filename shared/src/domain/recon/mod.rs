//! Nightly reconciliation of PSP settlement reports against the wallet
//! (SPEC §9): the index of our side ([`index`]), the pure matcher
//! ([`matcher`]), per-bucket spill files ([`spill`]), cases ([`cases`]),
//! the day's report ([`report`]) and the run itself ([`run`]).

pub mod cases;
pub mod files;
pub mod heal;
pub mod matcher;
pub mod merge;
pub mod report;
pub mod run;
pub mod source;
pub mod spill;

pub use crate::domain::policy::{parse_fee_schedule, FeeRule, ReconPolicy};
pub use matcher::Class;
