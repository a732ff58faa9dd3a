//! What the storage layer fails with: its own errors, knowing nothing of gRPC.

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage engine: {0}")]
    Engine(String),
    /// Another process (or a node of this process not yet fully stopped) holds the database.
    #[error("{path} is in use by another process: {reason}")]
    Locked { path: String, reason: String },
    /// Bytes on disk that do not decode: a bug or a damaged disk, never a client mistake.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

pub type StorageResult<T> = Result<T, StorageError>;
