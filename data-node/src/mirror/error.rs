//! What can interrupt a mirror or source worker. Every error is retried with a growing,
//! jittered delay; its text is what `stream info` and `stream report` show.

use crate::storage::streams::StreamError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The destination is not served here (moved, not placed yet, deleted).
    #[error(transparent)]
    Dest(#[from] crate::Error),
    #[error("storing into {dest}: {source}")]
    Store { dest: String, source: StreamError },
    #[error("stalled: no heartbeat from {origin} for {secs}s")]
    Stalled { origin: String, secs: u64 },
    #[error("{0} ended the subscription")]
    Ended(String),
    /// The origin's subscription failed (a status from the origin's node, or its own store).
    #[error("{origin}: {message}")]
    Origin { origin: String, message: String },
    #[error("message {seq} of {origin}: {source}")]
    BadMessage {
        origin: String,
        seq: u64,
        source: StorageError,
    },
    #[error(
        "the credentials for {0} reached this node redacted: give the data node the control \
         plane's cluster_secret"
    )]
    RedactedCredentials(String),
    #[error("origin {0} is not on this node and no control plane is configured to find it")]
    Unlocatable(String),
    /// Looking the origin's owner up in its cluster's catalogue failed.
    #[error("{0}")]
    Locate(String),
    #[error("the stream secret for {0} is not a valid header")]
    BadSecret(String),
    #[error("data node {addr}: {reason}")]
    Link { addr: String, reason: String },
    #[error("subscribing to {stream} on {addr}: {reason}")]
    Subscribe {
        stream: String,
        addr: String,
        reason: String,
    },
}
