//! The data node's one error type and its one mapping to gRPC status codes.

use crate::storage::StorageError;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input; `field` names the request field at fault.
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("wrong last sequence: expected {expected}, stream is at {actual}")]
    WrongLastSeq { expected: u64, actual: u64 },
    /// The request is well formed but the node's state refuses it (not the owner, mirror...).
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Unauthenticated(String),
    /// A limit with discard-new refuses the write.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The control plane is needed (e.g. to create a tag) and cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn not_found(kind: &'static str, name: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            name: name.into(),
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::InvalidArgument { .. } => Status::invalid_argument(msg),
            Error::NotFound { .. } => Status::not_found(msg),
            Error::WrongLastSeq { .. } | Error::FailedPrecondition(_) => {
                Status::failed_precondition(msg)
            }
            Error::Unauthenticated(_) => Status::unauthenticated(msg),
            Error::ResourceExhausted(_) => Status::resource_exhausted(msg),
            Error::Unavailable(_) => Status::unavailable(msg),
            Error::Storage(StorageError::Corrupt(_)) => Status::data_loss(msg),
            Error::Storage(_) => Status::internal(msg),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
