//! Waiting for a condition with a deadline (never sleep-and-hope): `common`'s, and the
//! harness's deadline.

use std::time::Duration;

pub use tributary_common::wait::{until, TimedOut};

/// The deadline for what a cluster does on its own (elections, registration, copies): seconds
/// normally, more on a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(30);
