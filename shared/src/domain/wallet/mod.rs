//! The wallet: balances per player and currency and the append-only ledger
//! that is the only way they change ([`ledger`]), and how a wallet is shown
//! ([`view`]).
//!
//! A balance item holds `available` and `held` (minor units) so two-phase
//! holds (payouts) fit: a hold moves available → held, a settle removes held,
//! a release moves held → available, each as one transaction with its ledger
//! entry.

pub mod ledger;
pub mod view;

pub use view::{balances, wallet_view, CurrencyBalance, WalletView};
