//! The enforcement index a policy builds once (Ditto's `PolicyTrie` and `GrantRevokeIndex`,
//! flattened because our hierarchy has fixed levels): for each resource the policy names,
//! its grants and revokes keyed by exact subject, plus the few wildcard subjects to scan.

use super::entry::PolicyEntry;
use super::permission::{Permission, PermissionSet};
use super::resource::Resource;
use super::subject_id::{is_wildcard, wildcard_matches};
use std::collections::HashMap;

/// One (entry, subject, resource) of the policy with what it grants and revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rule {
    /// Index into the policy's entries.
    pub entry: usize,
    /// Index into that entry's subjects.
    pub subject: usize,
    pub grant: PermissionSet,
    pub revoke: PermissionSet,
}

impl Rule {
    /// Policy order, so that the entry reported as deciding is the same on every node.
    fn order(&self) -> (usize, usize) {
        (self.entry, self.subject)
    }
}

/// The rules on one resource.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules {
    exact: HashMap<String, Vec<Rule>>,
    wildcard: Vec<(String, Rule)>,
}

/// The first grant and the first revoke (in policy order) found on one level of the
/// hierarchy, with the resource each sits on.
#[derive(Debug, Default)]
pub(crate) struct LevelHits<'a> {
    pub grant: Option<(Rule, &'a Resource)>,
    pub revoke: Option<(Rule, &'a Resource)>,
}

impl<'a> LevelHits<'a> {
    fn offer(&mut self, rule: Rule, on: &'a Resource, permission: Permission) {
        let keep_first = |slot: &mut Option<(Rule, &'a Resource)>| {
            if slot.is_none_or(|(r, _)| rule.order() < r.order()) {
                *slot = Some((rule, on));
            }
        };
        if rule.revoke.contains(permission) {
            keep_first(&mut self.revoke);
        }
        if rule.grant.contains(permission) {
            keep_first(&mut self.grant);
        }
    }
}

impl Rules {
    /// Adds to `hits` every rule of this resource that grants or revokes `permission` to
    /// any of `subjects`.
    pub fn collect<'a>(
        &self,
        on: &'a Resource,
        subjects: &[String],
        permission: Permission,
        hits: &mut LevelHits<'a>,
    ) {
        for s in subjects {
            for rule in self.exact.get(s.as_str()).into_iter().flatten() {
                hits.offer(*rule, on, permission);
            }
        }
        for (pattern, rule) in &self.wildcard {
            if subjects.iter().any(|s| wildcard_matches(pattern, s)) {
                hits.offer(*rule, on, permission);
            }
        }
    }
}

/// Every resource the policy names, with its rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct PolicyIndex {
    nodes: HashMap<Resource, Rules>,
}

impl PolicyIndex {
    pub fn build(entries: &[PolicyEntry]) -> Self {
        let mut nodes: HashMap<Resource, Rules> = HashMap::new();
        for (entry, e) in entries.iter().enumerate() {
            for r in e
                .resources
                .iter()
                .filter(|r| !(r.grant.is_empty() && r.revoke.is_empty()))
            {
                let rules = nodes.entry(r.resource.clone()).or_default();
                for (subject, s) in e.subjects.iter().enumerate() {
                    let rule = Rule {
                        entry,
                        subject,
                        grant: r.grant,
                        revoke: r.revoke,
                    };
                    if is_wildcard(&s.id) {
                        rules.wildcard.push((s.id.clone(), rule));
                    } else {
                        rules.exact.entry(s.id.clone()).or_default().push(rule);
                    }
                }
            }
        }
        PolicyIndex { nodes }
    }

    pub fn rules(&self, resource: &Resource) -> Option<&Rules> {
        self.nodes.get(resource)
    }

    /// The resources the policy names, in a stable order (by level, then by name).
    pub fn resources(&self) -> Vec<&Resource> {
        let mut all: Vec<&Resource> = self.nodes.keys().collect();
        all.sort_by_key(|r| (r.level(), r.to_string()));
        all
    }
}
