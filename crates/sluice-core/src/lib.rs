//! Shared vocabulary of sluice: the AWS error contract every service implements,
//! the `Clock` that all time-dependent semantics read, and small id helpers.
//!
//! This crate knows nothing about HTTP, wire formats or storage; every other crate
//! depends on it and it depends on none of them.

pub mod clock;
pub mod error;
pub mod ids;

pub use clock::{Clock, ManualClock, ManualTime, OsTime, SystemClock, TimeSource};
pub use error::{AwsError, Fault};
