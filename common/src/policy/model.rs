//! The policy model: validated once when built (from the proto, from Ditto's JSON or in
//! code), with its enforcement index built at the same time so every check is cheap.

use super::entry::{PolicyEntry, ResourceRule, Subject};
use super::error::{entry_path, PolicyError};
use super::index::PolicyIndex;
use super::limits::{
    MAX_ENTRIES, MAX_LABEL_LEN, MAX_POLICY_BYTES, MAX_RESOURCES_PER_ENTRY, MAX_SUBJECTS_PER_ENTRY,
    MAX_SUBJECT_TYPE_LEN,
};
use super::permission::{Permission, PermissionSet};
use super::resource::Resource;
use super::subject_id;
use crate::names::EntityName;
use prost::Message;
use std::collections::HashSet;
use tributary_proto::v1 as proto;

/// A validated policy. Immutable: build a new one to change it.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Canonical `namespace:name`, or empty while the caller has not named it.
    name: String,
    entries: Vec<PolicyEntry>,
    index: PolicyIndex,
}

impl PartialEq for Policy {
    fn eq(&self, other: &Self) -> bool {
        // The index is a function of the entries.
        self.name == other.name && self.entries == other.entries
    }
}

impl Eq for Policy {}

impl Policy {
    /// Validates `entries` (labels unique and non-empty, subject ids `issuer:subject`, no
    /// subject or resource twice in one entry, every limit of [`super::limits`]) and builds
    /// the index. `name` is `ns:name`, a bare name (namespace `default`), or empty.
    pub fn new(name: &str, entries: Vec<PolicyEntry>) -> Result<Self, PolicyError> {
        let name = if name.is_empty() {
            String::new()
        } else {
            EntityName::canonical(name).map_err(|e| PolicyError::invalid("policyId", e))?
        };
        validate_entries(&entries)?;
        let unindexed = Policy {
            name,
            entries,
            index: PolicyIndex::default(),
        };
        let size = unindexed.to_proto().encoded_len();
        if size > MAX_POLICY_BYTES {
            return Err(PolicyError::OverLimit {
                path: ".".into(),
                what: "the encoded policy (bytes)",
                actual: size,
                limit: MAX_POLICY_BYTES,
                name: "MAX_POLICY_BYTES",
            });
        }
        let index = PolicyIndex::build(&unindexed.entries);
        Ok(Policy { index, ..unindexed })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn entries(&self) -> &[PolicyEntry] {
        &self.entries
    }

    pub(crate) fn index(&self) -> &PolicyIndex {
        &self.index
    }

    /// Reads the catalogue's form. A message over [`MAX_POLICY_BYTES`] is refused before
    /// anything else is looked at.
    pub fn from_proto(p: &proto::Policy) -> Result<Self, PolicyError> {
        let size = p.encoded_len();
        if size > MAX_POLICY_BYTES {
            return Err(PolicyError::OverLimit {
                path: ".".into(),
                what: "the encoded policy (bytes)",
                actual: size,
                limit: MAX_POLICY_BYTES,
                name: "MAX_POLICY_BYTES",
            });
        }
        let entries = p
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| entry_from_proto(i, e))
            .collect::<Result<Vec<_>, _>>()?;
        Policy::new(&p.name, entries)
    }

    /// The catalogue's form; subject types are listed only where not empty.
    pub fn to_proto(&self) -> proto::Policy {
        proto::Policy {
            name: self.name.clone(),
            entries: self
                .entries
                .iter()
                .map(|e| proto::PolicyEntry {
                    label: e.label.clone(),
                    subjects: e.subjects.iter().map(|s| s.id.clone()).collect(),
                    resources: e
                        .resources
                        .iter()
                        .map(|r| proto::PolicyResource {
                            resource: r.resource.to_string(),
                            grant: r.grant.to_proto(),
                            revoke: r.revoke.to_proto(),
                        })
                        .collect(),
                    subject_types: e
                        .subjects
                        .iter()
                        .filter(|s| !s.kind.is_empty())
                        .map(|s| proto::PolicySubjectType {
                            subject: s.id.clone(),
                            r#type: s.kind.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

fn entry_from_proto(i: usize, e: &proto::PolicyEntry) -> Result<PolicyEntry, PolicyError> {
    let path = entry_path(i, &e.label);
    let mut subjects: Vec<Subject> = e
        .subjects
        .iter()
        .map(|id| Subject {
            id: id.clone(),
            kind: String::new(),
        })
        .collect();
    for (j, t) in e.subject_types.iter().enumerate() {
        let Some(s) = subjects.iter_mut().find(|s| s.id == t.subject) else {
            return Err(PolicyError::invalid(
                format!("{path}.subject_types[{j}]"),
                format!("{:?} is not one of the entry's subjects", t.subject),
            ));
        };
        if !s.kind.is_empty() {
            return Err(PolicyError::invalid(
                format!("{path}.subject_types[{j}]"),
                format!("{:?} has a type twice", t.subject),
            ));
        }
        s.kind = t.r#type.clone();
    }
    let resources = e
        .resources
        .iter()
        .map(|r| {
            let at = format!("{path}.resources.{}", r.resource);
            let resource =
                Resource::parse(&r.resource).map_err(|e| PolicyError::invalid(&at, e))?;
            let perms = |list: &[i32], field: &str| {
                list.iter()
                    .enumerate()
                    .map(|(k, p)| {
                        Permission::from_proto(*p)
                            .map_err(|e| PolicyError::invalid(format!("{at}.{field}[{k}]"), e))
                    })
                    .collect::<Result<PermissionSet, _>>()
            };
            Ok(ResourceRule {
                resource,
                grant: perms(&r.grant, "grant")?,
                revoke: perms(&r.revoke, "revoke")?,
            })
        })
        .collect::<Result<Vec<_>, PolicyError>>()?;
    Ok(PolicyEntry {
        label: e.label.clone(),
        subjects,
        resources,
    })
}

fn over(
    path: String,
    what: &'static str,
    actual: usize,
    limit: usize,
    name: &'static str,
) -> Result<(), PolicyError> {
    if actual > limit {
        return Err(PolicyError::OverLimit {
            path,
            what,
            actual,
            limit,
            name,
        });
    }
    Ok(())
}

fn validate_entries(entries: &[PolicyEntry]) -> Result<(), PolicyError> {
    if entries.is_empty() {
        return Err(PolicyError::invalid(
            "entries",
            "a policy needs at least one entry",
        ));
    }
    over(
        "entries".into(),
        "the number of entries",
        entries.len(),
        MAX_ENTRIES,
        "MAX_ENTRIES",
    )?;
    let mut labels = HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        let path = entry_path(i, &e.label);
        validate_label(&path, &e.label)?;
        if !labels.insert(e.label.as_str()) {
            return Err(PolicyError::invalid(
                &path,
                "the label is used by another entry",
            ));
        }
        over(
            format!("{path}.subjects"),
            "the number of subjects",
            e.subjects.len(),
            MAX_SUBJECTS_PER_ENTRY,
            "MAX_SUBJECTS_PER_ENTRY",
        )?;
        over(
            format!("{path}.resources"),
            "the number of resources",
            e.resources.len(),
            MAX_RESOURCES_PER_ENTRY,
            "MAX_RESOURCES_PER_ENTRY",
        )?;
        let mut ids = HashSet::new();
        for s in &e.subjects {
            let at = format!("{path}.subjects.{}", s.id);
            subject_id::validate(&s.id)
                .map_err(|r| PolicyError::invalid(&at, format!("subject {r}")))?;
            if !ids.insert(s.id.as_str()) {
                return Err(PolicyError::invalid(&at, "the subject is listed twice"));
            }
            over(
                format!("{at}.type"),
                "the length of the type (bytes)",
                s.kind.len(),
                MAX_SUBJECT_TYPE_LEN,
                "MAX_SUBJECT_TYPE_LEN",
            )?;
        }
        let mut resources = HashSet::new();
        for r in &e.resources {
            if !resources.insert(&r.resource) {
                return Err(PolicyError::invalid(
                    format!("{path}.resources.{}", r.resource),
                    "the resource is listed twice (bare names mean namespace default)",
                ));
            }
        }
    }
    Ok(())
}

fn validate_label(path: &str, label: &str) -> Result<(), PolicyError> {
    if label.is_empty() {
        return Err(PolicyError::invalid(
            format!("{path}.label"),
            "an entry needs a label",
        ));
    }
    over(
        path.to_string(),
        "the length of the label (bytes)",
        label.len(),
        MAX_LABEL_LEN,
        "MAX_LABEL_LEN",
    )?;
    if let Some(c) = label.chars().find(|c| c.is_control()) {
        return Err(PolicyError::invalid(
            path,
            format!("the label contains {c:?}"),
        ));
    }
    Ok(())
}
