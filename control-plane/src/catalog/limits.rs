//! The bounds on what one caller can make a member hold or do (issue 11, "Resources under
//! hostile load"), as configured (`[limits]`). The checks are where the data arrives:
//! commands in `validate::sizes`, heartbeats in `node::cluster`, replies in `service`.

use serde::{Deserialize, Serialize};

/// Checked on the member that takes a request, before anything is proposed to Raft, so that
/// members with different limits never disagree when applying; over a limit the request is
/// refused naming its key (`limits.<key>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Encoded size of one entity (a well, stream, target, policy…).
    pub max_entity_bytes: usize,
    /// Subjects of one stream.
    pub max_subjects_per_stream: usize,
    /// Bytes of one subject or filter subject.
    pub max_subject_bytes: usize,
    /// Bytes of any other text field: endpoints, secrets, credentials, locations, policy
    /// subjects, labels and resources (PEM certificates are bounded by the entity size only).
    pub max_field_bytes: usize,
    /// Items of any other list field: tags, endpoints, sources, ditto targets, policy entries.
    pub max_list_items: usize,
    /// Data nodes that may register.
    pub max_data_nodes: usize,
    /// Stats entries in one heartbeat.
    pub max_heartbeat_stats: usize,
    /// Encoded size of one heartbeat.
    pub max_heartbeat_bytes: usize,
    /// Bytes of catalogue writes this member holds for Raft at once; a write beyond waits
    /// for room (up to the request timeout), then is refused.
    pub max_inflight_write_bytes: usize,
    /// Encoded size of one `List` or `Status` reply.
    pub max_reply_bytes: usize,
    /// Event-log bytes one `Watch` reads (and holds) at a time.
    pub watch_page_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entity_bytes: 256 << 10,
            max_subjects_per_stream: 1_000,
            max_subject_bytes: 256,
            max_field_bytes: 4 << 10,
            max_list_items: 1_000,
            max_data_nodes: 1_000,
            max_heartbeat_stats: 10_000,
            max_heartbeat_bytes: 1 << 20,
            max_inflight_write_bytes: 64 << 20,
            max_reply_bytes: 16 << 20,
            watch_page_bytes: 1 << 20,
        }
    }
}
