//! How big a policy may be. Every member and data node holds every policy in memory and
//! a check walks the matching entries, so a policy is bounded in every dimension.

/// The whole policy: its Ditto JSON text, and its protobuf encoding as the catalogue stores
/// it (Eclipse Ditto's `ditto.limits.policies.max-size` default, 100k).
pub const MAX_POLICY_BYTES: usize = 100 * 1024;
/// Entries (labels) in one policy.
pub const MAX_ENTRIES: usize = 256;
/// Subjects in one entry.
pub const MAX_SUBJECTS_PER_ENTRY: usize = 100;
/// Resources in one entry.
pub const MAX_RESOURCES_PER_ENTRY: usize = 100;
/// Bytes of a label.
pub const MAX_LABEL_LEN: usize = 256;
/// Bytes of a subject id.
pub const MAX_SUBJECT_LEN: usize = super::subject_id::MAX_SUBJECT_LEN;
/// Bytes of a subject's `type` note.
pub const MAX_SUBJECT_TYPE_LEN: usize = 256;
