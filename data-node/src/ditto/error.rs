//! What can interrupt a ditto worker. Every error is retried (after a backoff, from the saved
//! progress); its text is what `ditto stats` shows as the last error.

use crate::storage::StorageError;

/// A failure talking to the target's ingest endpoints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the target has no endpoints")]
    NoEndpoints,
    #[error("bad endpoint {addr}: {reason}")]
    BadEndpoint { addr: String, reason: String },
    #[error("the target's ingest secret is not a valid header value")]
    BadSecret,
    #[error("connecting to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("{addr}: {message}")]
    Refused { addr: String, message: String },
    #[error("{addr}: stream closed")]
    Closed { addr: String },
    #[error("{addr}: stream stuck for {secs}s")]
    Stuck { addr: String, secs: u64 },
    #[error("{addr}: stream ended without an ack")]
    Ended { addr: String },
    #[error("{addr}: {code:?}: {message}")]
    Status {
        addr: String,
        code: tonic::Code,
        message: String,
    },
    #[error("{addr}: no ack within {secs}s")]
    NoAck { addr: String, secs: u64 },
    #[error("{addr}: ack for batch {got} while waiting for batch {want}")]
    AckOutOfOrder { addr: String, got: u64, want: u64 },
    /// Every endpoint failed in a row: each one's error.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    AllFailed(Vec<LinkError>),
}

#[derive(Debug, thiserror::Error)]
pub enum DittoError {
    #[error("well {0} is not open on this node")]
    WellNotOpen(String),
    #[error("target {0} is not in the catalogue")]
    NoTarget(String),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("ditto progress out of step: batch {0} acked, not the oldest pending")]
    OutOfStep(u64),
    #[error("ditto reader stopped")]
    ReaderStopped,
    #[error("ditto read task failed: {0}")]
    Task(String),
}

pub type DittoResult<T> = Result<T, DittoError>;
