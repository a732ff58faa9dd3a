//! What a stream operation can refuse or fail with. The service layer maps each kind to its
//! gRPC code once; storage knows no gRPC.

use crate::storage::error::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The request breaks a rule of the stream; `field` names the request field at fault.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("message {stream} seq {seq} not found")]
    NoMessage { stream: String, seq: u64 },
    #[error("wrong last sequence: expected {expected}, stream is at {actual}")]
    WrongLastSeq { expected: u64, actual: u64 },
    /// The stream's config refuses it (deny delete/purge), or another writer got there first.
    #[error("{0}")]
    Refused(String),
    /// A limit with discard-new refuses the write.
    #[error("{0}")]
    Full(String),
    /// The node stopped serving the stream through this store (reopened or moved): retry.
    #[error("stream {0} was closed on this node (reopened or moved): write again")]
    Closed(String),
    /// The stream was deleted while it was being read.
    #[error("stream {0} was deleted")]
    Deleted(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub type StreamResult<T> = Result<T, StreamError>;

impl StreamError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        StreamError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
