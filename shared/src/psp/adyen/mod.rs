//! Adyen, the first real PSP: what its published API contract says, in
//! code: the Checkout and Transfers calls (`connector`, `api`), standard
//! notifications and transfer webhooks (`notification`, `webhook`), and
//! the settlement details report (`settlement`). docs/connectors.md walks
//! through it as the worked example of adding a PSP.

pub mod api;
pub mod connector;
pub mod notification;
pub mod settlement;
pub mod webhook;
