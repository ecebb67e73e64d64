//! Risk decisions (issue 12, in progress): the rules engine first —
//! configuration, validation and a pure evaluation of a request's signals
//! and the store's facts into approve / review / decline with every rule's
//! outcome. The deposit and payout hooks, velocity counters, stored
//! decisions and the review flow build on it.

pub mod rules;
pub mod velocity;
