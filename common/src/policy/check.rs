//! Deciding one request: may these subjects do this on that resource? See the module doc of
//! `policy` for the rule; this walks the hierarchy from the resource up and stops at
//! the first level where any entry speaks for any of the subjects.

use super::index::{LevelHits, Rule};
use super::model::Policy;
use super::permission::{Effect, Permission, PermissionSet};
use super::resource::Resource;
use serde::Serialize;

/// The answer to one check, with the entry that gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// The entry whose grant or revoke decided; `None` when no entry speaks for the subjects
    /// (denied) or the resource is not valid.
    pub decided_by: Option<DecidedBy>,
    /// One line for logs and `tribctl policy check`.
    pub reason: String,
}

/// The entry that decided a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecidedBy {
    pub label: String,
    /// The resource the entry names: the one asked about, or a parent it inherits from.
    pub resource: String,
    pub effect: Effect,
    /// The policy's subject (maybe a wildcard) that matched one of the caller's subjects.
    pub subject: String,
}

/// Whether any of `subjects` (the caller's resolved `issuer:subject` ids) holds `permission`
/// on `resource` under `policy`. An unparsable resource is denied with the reason.
pub fn check(
    policy: &Policy,
    subjects: &[String],
    resource: &str,
    permission: Permission,
) -> Decision {
    match Resource::parse(resource) {
        Ok(r) => check_resource(policy, subjects, &r, permission),
        Err(e) => Decision {
            allowed: false,
            decided_by: None,
            reason: e.to_string(),
        },
    }
}

/// [`check`] for a resource already parsed.
pub fn check_resource(
    policy: &Policy,
    subjects: &[String],
    resource: &Resource,
    permission: Permission,
) -> Decision {
    for level in resource.levels() {
        let mut hits = LevelHits::default();
        for on in level.iter().flatten() {
            if let Some(rules) = policy.index().rules(on) {
                rules.collect(on, subjects, permission, &mut hits);
            }
        }
        // Same level: the revoke wins (Ditto: granted only if the grant outweighs it).
        if let Some((rule, on)) = hits.revoke {
            return decided(policy, rule, on, Effect::Revoke, resource, permission);
        }
        if let Some((rule, on)) = hits.grant {
            return decided(policy, rule, on, Effect::Grant, resource, permission);
        }
    }
    let who = if subjects.is_empty() {
        "no subject (unauthenticated)".to_string()
    } else {
        subjects.join(", ")
    };
    Decision {
        allowed: false,
        decided_by: None,
        reason: format!(
            "no entry of policy {} grants {permission} on {resource} or a resource above it to {who}",
            display_name(policy)
        ),
    }
}

fn decided(
    policy: &Policy,
    rule: Rule,
    on: &Resource,
    effect: Effect,
    resource: &Resource,
    permission: Permission,
) -> Decision {
    let entry = &policy.entries()[rule.entry];
    let subject = entry.subjects[rule.subject].id.clone();
    let inherited = if on == resource {
        String::new()
    } else {
        format!(" on {on}")
    };
    let reason = match effect {
        Effect::Grant => format!(
            "{permission} on {resource} granted to {subject} by entry {:?}{inherited} of policy {}",
            entry.label,
            display_name(policy)
        ),
        Effect::Revoke => format!(
            "{permission} on {resource} revoked from {subject} by entry {:?}{inherited} of policy {}",
            entry.label,
            display_name(policy)
        ),
    };
    Decision {
        allowed: effect == Effect::Grant,
        decided_by: Some(DecidedBy {
            label: entry.label.clone(),
            resource: on.to_string(),
            effect,
            subject,
        }),
        reason,
    }
}

fn display_name(policy: &Policy) -> &str {
    if policy.name().is_empty() {
        "(unnamed)"
    } else {
        policy.name()
    }
}

/// What `subjects` may do on one resource the policy names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    pub resource: Resource,
    pub permissions: PermissionSet,
}

/// Every resource the policy names on which `subjects` hold some permission, with those
/// permissions (for `tribctl auth whoami`-style reports). What is allowed on a resource is
/// also allowed below it, unless a deeper entry of the policy says otherwise.
pub fn permissions_of(policy: &Policy, subjects: &[String]) -> Vec<Allowed> {
    policy
        .index()
        .resources()
        .into_iter()
        .map(|r| Allowed {
            resource: r.clone(),
            permissions: Permission::ALL
                .into_iter()
                .filter(|p| check_resource(policy, subjects, r, *p).allowed)
                .collect(),
        })
        .filter(|a| !a.permissions.is_empty())
        .collect()
}
