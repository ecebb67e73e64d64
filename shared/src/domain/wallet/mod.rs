//! The wallet: balances per player and currency and the append-only ledger
//! that is the only way they change ([`ledger`]), the balances as read
//! ([`balance`]), and how a wallet is shown ([`view`]).
//!
//! A balance item holds `available` and `held` (minor units) so two-phase
//! holds (payouts) fit: a hold moves available → held, a settle removes held,
//! a release moves held → available, each as one transaction with its ledger
//! entry.

pub mod balance;
pub mod ledger;
pub mod view;

pub use balance::{balances, CurrencyBalance};
pub use view::{wallet_view, WalletView};
