//! The error of the node and its services, and its one mapping to gRPC status codes. The
//! storage layer's errors convert into it here, once.

use crate::storage::streams::StreamError;
use crate::storage::StorageError;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input; `field` names the request field at fault.
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    /// It existed and was deleted meanwhile (a subscription's stream).
    #[error("{0}")]
    Gone(String),
    #[error("wrong last sequence: expected {expected}, stream is at {actual}")]
    WrongLastSeq { expected: u64, actual: u64 },
    /// The request is well formed but the node's state refuses it (not the owner, mirror...).
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller may not do this; the message names who, what and where.
    #[error("{0}")]
    Denied(String),
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

impl From<tributary_common::access::Refusal> for Error {
    fn from(r: tributary_common::access::Refusal) -> Self {
        use tributary_common::access::Refusal;
        match r {
            Refusal::Unauthenticated(m) => Error::Unauthenticated(m),
            r @ Refusal::Denied { .. } => Error::Denied(r.to_string()),
        }
    }
}

impl From<StreamError> for Error {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Invalid { field, reason } => Error::invalid(field, reason),
            StreamError::NoMessage { stream, seq } => {
                Error::not_found("message", format!("{stream} seq {seq}"))
            }
            StreamError::WrongLastSeq { expected, actual } => {
                Error::WrongLastSeq { expected, actual }
            }
            StreamError::Refused(m) => Error::FailedPrecondition(m),
            StreamError::Full(m) => Error::ResourceExhausted(m),
            e @ StreamError::Closed(_) => Error::Unavailable(e.to_string()),
            e @ StreamError::Deleted(_) => Error::Gone(e.to_string()),
            StreamError::Storage(s) => Error::Storage(s),
        }
    }
}

impl From<crate::group::GroupError> for Error {
    fn from(e: crate::group::GroupError) -> Self {
        // Each is worth a retry: a leader is elected, the replica opens, the outcome is
        // settled by publishing again with the same Msg-Id.
        Error::Unavailable(e.to_string())
    }
}

impl From<StreamError> for Status {
    fn from(e: StreamError) -> Self {
        Error::from(e).into()
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::InvalidArgument { .. } => Status::invalid_argument(msg),
            Error::NotFound { .. } | Error::Gone(_) => Status::not_found(msg),
            Error::WrongLastSeq { .. } | Error::FailedPrecondition(_) => {
                Status::failed_precondition(msg)
            }
            Error::Unauthenticated(_) => Status::unauthenticated(msg),
            Error::Denied(_) => Status::permission_denied(msg),
            Error::ResourceExhausted(_) => Status::resource_exhausted(msg),
            Error::Unavailable(_) => Status::unavailable(msg),
            Error::Storage(StorageError::Corrupt(_)) => Status::data_loss(msg),
            Error::Storage(StorageError::Locked { .. }) => Status::unavailable(msg),
            Error::Storage(_) => Status::internal(msg),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
