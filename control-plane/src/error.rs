//! Catalogue errors, mapped once to gRPC status codes.

use tonic::Status;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{kind} {name} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {name} already exists")]
    AlreadyExists { kind: &'static str, name: String },
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("revision {requested} was compacted (oldest watchable: {oldest}); list again and watch from the list's revision")]
    Compacted { requested: u64, oldest: u64 },
    #[error("storage error: {0}")]
    Storage(String),
    #[error("{0}")]
    Unavailable(String),
}

impl CatalogError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<rocksdb::Error> for CatalogError {
    fn from(e: rocksdb::Error) -> Self {
        Self::Storage(e.to_string())
    }
}

impl From<CatalogError> for Status {
    fn from(e: CatalogError) -> Self {
        let msg = e.to_string();
        match e {
            CatalogError::Invalid { .. } => Status::invalid_argument(msg),
            CatalogError::NotFound { .. } => Status::not_found(msg),
            CatalogError::AlreadyExists { .. } => Status::already_exists(msg),
            CatalogError::FailedPrecondition(_) => Status::failed_precondition(msg),
            CatalogError::Compacted { .. } => Status::out_of_range(msg),
            CatalogError::Storage(_) => Status::internal(msg),
            CatalogError::Unavailable(_) => Status::unavailable(msg),
        }
    }
}
