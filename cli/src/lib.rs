//! The `payloop` binary's library: the local stack (all functions in one
//! process on the embedded store), the queue worker that stands in for the
//! Lambda SQS event source mapping, the built-in sandbox PSP, and the bench.

pub mod bench;
pub mod bench_recon;
pub mod bench_risk;
pub mod cpu;
pub mod google_sandbox;
pub mod home;
pub mod local;
pub mod ops;
pub mod recon;
pub mod sandbox;
pub mod sim;
pub mod worker;
