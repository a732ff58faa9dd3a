//! Whether the Raft thread still runs. It is the member: when it stops for anything but an
//! orderly shutdown (a storage error, a panic), the process serves a catalogue that no longer
//! changes, so readiness and health must say so (`lib.rs` watches [`Halt`]).

use tokio::sync::watch;

/// The Raft thread's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halt {
    Running,
    /// Stopped as asked (shutdown).
    Stopped,
    /// Stopped on its own: why.
    Failed(String),
}

/// Runs the Raft loop (`body`: `Ok` when stopped as asked, else why it stopped) on this
/// thread until it ends, however it ends — a panic included, after which `after_panic` tells
/// whoever reads the member's state — and publishes how it ended.
pub(super) fn run(
    id: u64,
    body: impl FnOnce() -> Result<(), String>,
    after_panic: impl FnOnce(),
    halt: watch::Sender<Halt>,
) {
    let end = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(())) => Halt::Stopped,
        Ok(Err(why)) => Halt::Failed(why),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(node = id, panic = %why, "raft loop panicked; this member stops serving Raft");
            after_panic();
            Halt::Failed(format!("panicked: {why}"))
        }
    };
    metrics::gauge!("tributary_cp_raft_running").set(0.0);
    let _ = halt.send(end);
}
