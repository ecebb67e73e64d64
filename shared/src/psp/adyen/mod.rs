//! Adyen, the first real PSP: what its published API contract says, in
//! code. So far: its standard notifications (item HMAC and normalisation);
//! the Checkout, Transfers and settlement-report parts follow (issue 11).

pub mod notification;
