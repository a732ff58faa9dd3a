//! Catalogue errors: mapped once to gRPC status codes, and typed again (`from_status`) where a
//! member hears the leader's answer to a request it forwarded.

use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};
use tributary_common::grpc::{describe, leader_hint, not_leader, not_leader_message};
use tributary_common::grpc::{LEADER_HINT, UNCERTAIN_HEADER};

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
    /// Over a capacity limit (`limits.*`), named in the message; the request changed nothing.
    #[error("{0}")]
    Exhausted(String),
    #[error("revision {requested} was compacted (oldest watchable: {oldest}); list again and watch from the list's revision")]
    Compacted { requested: u64, oldest: u64 },
    #[error(
        "the catalogue was replaced by a snapshot; list again and watch from the list's revision"
    )]
    Replaced,
    /// No credentials, or wrong ones.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller may not do this; the message names who, what and where.
    #[error("{0}")]
    Denied(String),
    /// A peer's call refused: its certificate is not a member's, or names another member.
    #[error("peer refused: {0}")]
    PeerRefused(String),
    #[error("storage error: {0}")]
    Storage(String),
    /// This member does not lead; `leader` is the leader's address when it is known.
    #[error("{}", not_leader_message(leader.as_deref()))]
    NotLeader { leader: Option<String> },
    /// No leader took the request within the time a request may wait.
    #[error("no leader {action} within {waited:?}: {cause}")]
    NoLeader {
        action: &'static str,
        waited: Duration,
        cause: String,
    },
    /// Proposed, outcome unknown: it may have applied, so retrying it blindly could apply it
    /// twice.
    #[error("{0}")]
    Uncertain(String),
    /// The request surely did not take effect (member stopping, link down).
    #[error("{0}")]
    Unavailable(String),
    /// The leader's answer to a forwarded request, passed on as it came.
    #[error("{message}")]
    Relayed { code: Code, message: String },
}

impl CatalogError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Whether the request surely did not take effect and may go to another member.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::NotLeader { .. } | Self::NoLeader { .. } | Self::Unavailable(_)
        )
    }

    /// The leader's (or a peer's) answer to a forwarded call, typed again: the only place a
    /// `Status` turns back into an error, so retry logic never reads metadata or strings.
    pub fn from_status(s: Status) -> Self {
        match s.code() {
            Code::Unavailable if s.metadata().get(UNCERTAIN_HEADER).is_some() => {
                Self::Uncertain(s.message().to_string())
            }
            Code::Unavailable if s.metadata().get(LEADER_HINT).is_some() => Self::NotLeader {
                leader: leader_hint(&s),
            },
            // A call that never reached the leader reads "transport error"; keep the cause.
            Code::Unavailable => Self::Unavailable(describe(&s)),
            code => Self::Relayed {
                code,
                message: s.message().to_string(),
            },
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
            CatalogError::Exhausted(_) => Status::resource_exhausted(msg),
            CatalogError::Compacted { .. } | CatalogError::Replaced => Status::out_of_range(msg),
            CatalogError::Storage(_) => Status::internal(msg),
            CatalogError::PeerRefused(_) | CatalogError::Denied(_) => {
                Status::permission_denied(msg)
            }
            CatalogError::Unauthenticated(_) => Status::unauthenticated(msg),
            CatalogError::NotLeader { leader } => not_leader(leader.as_deref()),
            CatalogError::Uncertain(_) => {
                let mut s = Status::unavailable(msg);
                s.metadata_mut()
                    .insert(UNCERTAIN_HEADER, MetadataValue::from_static("1"));
                s
            }
            CatalogError::NoLeader { .. } | CatalogError::Unavailable(_) => {
                Status::unavailable(msg)
            }
            CatalogError::Relayed { code, message } => Status::new(code, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a follower hears back from the leader is the error the leader had, so a retry
    /// decision on the follower matches the leader's.
    #[test]
    fn an_error_survives_the_trip_through_a_status() {
        let cases = [
            CatalogError::NotLeader {
                leader: Some("10.0.0.1:7000".into()),
            },
            CatalogError::Uncertain("proposed, not seen applied".into()),
            CatalogError::Unavailable("member is shutting down".into()),
        ];
        for e in cases {
            assert_eq!(CatalogError::from_status(e.clone().into()), e);
        }
        let invalid: Status = CatalogError::invalid("name", "is empty").into();
        let relayed = CatalogError::from_status(invalid);
        assert!(!relayed.retryable());
        let back: Status = relayed.into();
        assert_eq!(back.code(), Code::InvalidArgument);
        assert_eq!(back.message(), "invalid name: is empty");
    }

    #[test]
    fn only_what_surely_did_not_apply_is_retried() {
        assert!(CatalogError::NotLeader { leader: None }.retryable());
        assert!(CatalogError::Unavailable("link down".into()).retryable());
        assert!(!CatalogError::Uncertain("maybe applied".into()).retryable());
        assert!(!CatalogError::invalid("name", "bad").retryable());
    }

    #[test]
    fn not_leader_carries_the_hint_and_uncertain_its_marker() {
        let s: Status = CatalogError::NotLeader {
            leader: Some("a:1".into()),
        }
        .into();
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(leader_hint(&s).as_deref(), Some("a:1"));
        let s: Status = CatalogError::Uncertain("maybe".into()).into();
        assert_eq!(s.code(), Code::Unavailable);
        assert!(s.metadata().get(UNCERTAIN_HEADER).is_some());
    }
}
