//! The table's schema: every key builder ([`keys`]) and the stored status
//! vocabulary ([`status`]). Below the PSP layer and the domain, above the
//! store port.

pub mod keys;
pub mod recon_index;
pub mod status;
