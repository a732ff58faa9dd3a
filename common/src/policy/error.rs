//! What is wrong with a policy, with the path of the field at fault.

use std::fmt;

/// A policy that cannot be taken. `path` names the field as the policy JSON nests it,
/// in `serde_path_to_error`'s notation: `entries.owner.resources.well:/acme:orders.grant[0]`;
/// `.` is the whole policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A field breaks a rule of the model.
    #[error("{}", at(path, reason))]
    Invalid { path: String, reason: String },
    /// A field or the whole policy is over one of the limits in [`super::limits`].
    #[error("{}", at(path, &format!("{what} is {actual}, over the limit of {limit} ({name})")))]
    OverLimit {
        path: String,
        what: &'static str,
        actual: usize,
        limit: usize,
        /// The constant that holds the limit.
        name: &'static str,
    },
    /// Not JSON, or JSON of another shape than Ditto's policy.
    #[error("{}", at(path, &format!("not a Ditto policy: {message}")))]
    Json { path: String, message: String },
}

impl PolicyError {
    pub(crate) fn invalid(path: impl Into<String>, reason: impl fmt::Display) -> Self {
        PolicyError::Invalid {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    /// The path of the field at fault (`.` for the whole policy).
    pub fn path(&self) -> &str {
        match self {
            PolicyError::Invalid { path, .. }
            | PolicyError::OverLimit { path, .. }
            | PolicyError::Json { path, .. } => path,
        }
    }
}

fn at(path: &str, reason: &str) -> String {
    if path == "." || path.is_empty() {
        format!("policy: {reason}")
    } else {
        format!("policy {path}: {reason}")
    }
}

/// Builds the paths of [`PolicyError`]: `entries.LABEL`, or `entries[i]` while an entry has
/// no usable label.
pub(crate) fn entry_path(index: usize, label: &str) -> String {
    if label.is_empty() {
        format!("entries[{index}]")
    } else {
        format!("entries.{label}")
    }
}
