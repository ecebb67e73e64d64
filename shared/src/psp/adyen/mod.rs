//! Adyen, the first real PSP: what its published API contract says, in
//! code. So far: its standard notifications (item HMAC and normalisation)
//! and its settlement details report (translated into payloop's settlement
//! lines); the Checkout and Transfers calls and the routes follow (issue 11).

pub mod notification;
pub mod settlement;
