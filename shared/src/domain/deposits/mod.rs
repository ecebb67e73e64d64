//! Deposits: the init request ([`request`]), the stored payment
//! ([`payment`]), routing it to a PSP with failover ([`route`]), the intent
//! itself ([`intent`]), applying the PSP's outcome to the wallet ([`apply`])
//! and how a payment is shown ([`view`]).

pub mod apply;
pub mod intent;
pub mod payment;
pub mod request;
pub mod route;
pub mod view;

pub use apply::{apply_event, confirm_credit, Applied, ApplyError};
pub use intent::{create_intent, load_payment, open_deposit, recall_intent, IntentView};
pub use request::InitRequest;
pub use view::{deliveries, payment_view, show, DeliveriesView, PaymentView, Shown};
