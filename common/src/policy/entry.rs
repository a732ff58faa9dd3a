//! The parts of a policy: entries with their subjects and resource rules, plain data that
//! `Policy::new` validates.

use super::permission::PermissionSet;
use super::resource::Resource;

/// Who an entry speaks for: an `issuer:subject` id (wildcards `*` and `?` allowed) and
/// Ditto's free-text `type`, which only describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub id: String,
    pub kind: String,
}

/// What an entry grants and revokes on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRule {
    pub resource: Resource,
    pub grant: PermissionSet,
    pub revoke: PermissionSet,
}

/// One labelled entry: its subjects get its grants and revokes on its resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyEntry {
    pub label: String,
    pub subjects: Vec<Subject>,
    pub resources: Vec<ResourceRule>,
}
