//! The hosted cashier's domain: sessions bound to one player, what the
//! cashier may offer that player now, and the deposits and withdrawals it
//! starts and follows. Everything goes through the same domain calls as the
//! public API; the cashier adds no money rule of its own.

mod flows;
pub mod options;
pub mod session;

pub use flows::{deposit, payment, withdraw, withdrawal, CashierPayment, CashierWithdrawal};
pub use options::{options, Kind, OptionsQuery, OptionsView};
pub use session::{mint, resolve, MintedSession, Session, SessionRequest};
