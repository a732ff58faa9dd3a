//! Entity-creation rules, exactly as Eclipse Ditto's `ditto.entity-creation`: who may create
//! what kind of entity in which namespace. Enforcing: find a matching entry in `grant`; if
//! one was found, make sure no entry of `revoke` matches; then accept, otherwise refuse.
//! An entry matches when each of its lists is empty or holds a match: `resource_types` the
//! requested type; `namespaces` a wildcard matching the namespace; `auth_subjects` a
//! wildcard matching at least one of the caller's subjects (`*` any number of characters,
//! `?` exactly one). The default, `grant = [{}]`, lets every authenticated caller create
//! anything anywhere.
//!
//! In TOML (`[[entity_creation.grant]]` tables, Ditto's `auth-subjects` spelling accepted
//! too) or from the environment with indexed keys as Ditto's system properties:
//! `TRIBUTARY_ENTITY_CREATION__GRANT__0__AUTH_SUBJECTS__0=pre:admin`. An environment list
//! replaces the file's list of the same key as a whole.

use super::indexed_list;
use super::subject_id::wildcard_matches;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What may be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityType {
    Well,
    Stream,
    Target,
    Policy,
    Namespace,
    Tag,
}

impl EntityType {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Well => "well",
            EntityType::Stream => "stream",
            EntityType::Target => "target",
            EntityType::Policy => "policy",
            EntityType::Namespace => "namespace",
            EntityType::Tag => "tag",
        }
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `grant` or `revoke`; an empty list matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CreationRule {
    #[serde(alias = "resource-types", deserialize_with = "indexed_list::list")]
    pub resource_types: Vec<EntityType>,
    #[serde(deserialize_with = "indexed_list::strings")]
    pub namespaces: Vec<String>,
    #[serde(alias = "auth-subjects", deserialize_with = "indexed_list::strings")]
    pub auth_subjects: Vec<String>,
}

impl CreationRule {
    fn matches(&self, kind: EntityType, namespace: &str, subjects: &[String]) -> bool {
        (self.resource_types.is_empty() || self.resource_types.contains(&kind))
            && (self.namespaces.is_empty()
                || self
                    .namespaces
                    .iter()
                    .any(|p| wildcard_matches(p, namespace)))
            && (self.auth_subjects.is_empty()
                || self
                    .auth_subjects
                    .iter()
                    .any(|p| subjects.iter().any(|s| wildcard_matches(p, s))))
    }
}

/// The `entity_creation` config section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EntityCreationConfig {
    #[serde(deserialize_with = "indexed_list::list")]
    pub grant: Vec<CreationRule>,
    #[serde(deserialize_with = "indexed_list::list")]
    pub revoke: Vec<CreationRule>,
}

impl Default for EntityCreationConfig {
    fn default() -> Self {
        EntityCreationConfig {
            grant: vec![CreationRule::default()],
            revoke: Vec::new(),
        }
    }
}

/// Whether a creation may go ahead, and which rule said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreationDecision {
    pub allowed: bool,
    /// `entity_creation.grant[i]` or `entity_creation.revoke[i]`, the entry that decided.
    pub decided_by: Option<String>,
    pub reason: String,
}

impl EntityCreationConfig {
    /// May `subjects` create an entity of type `kind` in `namespace`? For a namespace, pass
    /// its own name; tags are cluster-wide and pass `""`, which only an entry without a
    /// namespace list, or with a pattern such as `*`, matches.
    pub fn check(
        &self,
        kind: EntityType,
        namespace: &str,
        subjects: &[String],
    ) -> CreationDecision {
        let what = format!("creating a {kind} in namespace {namespace:?}");
        if subjects.is_empty() {
            return CreationDecision {
                allowed: false,
                decided_by: None,
                reason: format!("{what} needs an authenticated subject"),
            };
        }
        let who = subjects.join(", ");
        let Some(g) = self
            .grant
            .iter()
            .position(|r| r.matches(kind, namespace, subjects))
        else {
            return CreationDecision {
                allowed: false,
                decided_by: None,
                reason: format!("no entry of entity_creation.grant allows {what} to {who}"),
            };
        };
        if let Some(r) = self
            .revoke
            .iter()
            .position(|r| r.matches(kind, namespace, subjects))
        {
            return CreationDecision {
                allowed: false,
                decided_by: Some(format!("entity_creation.revoke[{r}]")),
                reason: format!("entity_creation.revoke[{r}] refuses {what} to {who}"),
            };
        }
        CreationDecision {
            allowed: true,
            decided_by: Some(format!("entity_creation.grant[{g}]")),
            reason: format!("entity_creation.grant[{g}] allows {what} to {who}"),
        }
    }
}
