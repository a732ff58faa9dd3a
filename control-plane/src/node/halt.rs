//! Whether the Raft thread still runs. It is the member: when it stops for anything but an
//! orderly shutdown (a storage error, a panic), the process serves a catalogue that no longer
//! changes, so readiness and health must say so (`lib.rs` watches [`Halt`]).

use super::ready_loop::Loop;
use super::NodeState;
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

/// Publishes the member's role as "stopped", leading nothing.
pub(super) fn stopped(state: &watch::Sender<NodeState>) {
    state.send_modify(|st| {
        st.role = "stopped".into();
        st.leader = 0;
    });
}

/// Runs the loop on this thread until it ends, however it ends (a panic included), and says
/// how it ended.
pub(super) fn run(looper: Loop, state: watch::Sender<NodeState>, halt: watch::Sender<Halt>) {
    let id = looper.id();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| looper.run()));
    let end = match outcome {
        Ok(Ok(())) => Halt::Stopped,
        Ok(Err(why)) => Halt::Failed(why),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(node = id, panic = %why, "raft loop panicked; this member stops serving Raft");
            stopped(&state);
            Halt::Failed(format!("panicked: {why}"))
        }
    };
    metrics::gauge!("tributary_cp_raft_running").set(0.0);
    let _ = halt.send(end);
}
