//! Policy resources (`cluster:/`, `TYPE:/`, `namespace:/NS`, `TYPE:/NS:NAME`) and the
//! hierarchy they inherit along; see the module doc of `policy` for the levels.

use crate::names::{validate_part, EntityName};
use std::fmt;

/// The kinds of resource a policy names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    Cluster,
    Namespace,
    Well,
    Stream,
    Target,
    Policy,
}

impl ResourceType {
    pub const ALL: [ResourceType; 6] = [
        ResourceType::Cluster,
        ResourceType::Namespace,
        ResourceType::Well,
        ResourceType::Stream,
        ResourceType::Target,
        ResourceType::Policy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Cluster => "cluster",
            ResourceType::Namespace => "namespace",
            ResourceType::Well => "well",
            ResourceType::Stream => "stream",
            ResourceType::Target => "target",
            ResourceType::Policy => "policy",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

/// One resource, in canonical form (a bare entity name means namespace `default`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// `cluster:/`: the root of everything.
    Cluster,
    /// `well:/`, `stream:/`, `target:/`, `policy:/`, `namespace:/`: every resource of a type.
    TypeRoot(ResourceType),
    /// `namespace:/acme`: the namespace itself, and the parent of every entity in it.
    Namespace(String),
    /// `well:/acme:orders` and the like (never of type cluster or namespace).
    Entity {
        kind: ResourceType,
        name: EntityName,
    },
}

/// A resource string that is not one of the forms above.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("resource {resource:?}: {reason}")]
pub struct ResourceError {
    pub resource: String,
    pub reason: String,
}

/// How many levels below `cluster:/` the deepest resource sits; a check walks at most this
/// many levels up.
pub const MAX_LEVEL: usize = 2;

impl Resource {
    /// Parses `TYPE:/` or `TYPE:/PATH` with the type one of `cluster` (no path), `namespace`
    /// (path: a namespace), `well`, `stream`, `target`, `policy` (path: `ns:name` or `name`).
    pub fn parse(raw: &str) -> Result<Self, ResourceError> {
        let err = |reason: String| ResourceError {
            resource: raw.to_string(),
            reason,
        };
        let Some((kind, path)) = raw.split_once(":/") else {
            return Err(err(
                "is not TYPE:/PATH (such as well:/acme:orders or cluster:/)".into(),
            ));
        };
        let Some(kind) = ResourceType::parse(kind) else {
            return Err(err(format!(
                "unknown resource type {kind:?} (want {})",
                type_list()
            )));
        };
        if path.is_empty() {
            return Ok(match kind {
                ResourceType::Cluster => Resource::Cluster,
                other => Resource::TypeRoot(other),
            });
        }
        match kind {
            ResourceType::Cluster => Err(err(format!(
                "cluster:/ takes no path (got {path:?}): it is the one root of everything"
            ))),
            ResourceType::Namespace => validate_part(path)
                .map(|()| Resource::Namespace(path.to_string()))
                .map_err(|r| err(format!("namespace {r}"))),
            kind => EntityName::parse(path)
                .map(|name| Resource::Entity { kind, name })
                .map_err(|e| err(e.reason)),
        }
    }

    /// How far below `cluster:/` this resource sits: 0 for `cluster:/`; 1 for `TYPE:/` and
    /// for `namespace:/NS` when it is a parent; 2 for an entity, and for `namespace:/NS` when
    /// it is the resource asked about (below its own type root `namespace:/`).
    pub fn level(&self) -> usize {
        match self {
            Resource::Cluster => 0,
            Resource::TypeRoot(_) => 1,
            Resource::Namespace(_) | Resource::Entity { .. } => 2,
        }
    }

    /// The resources whose entries apply to `self`, deepest level first; one level may hold
    /// two (an entity's type root and its namespace), both with the same weight.
    pub fn levels(&self) -> [[Option<Resource>; 2]; MAX_LEVEL + 1] {
        match self {
            Resource::Cluster => [[Some(Resource::Cluster), None], [None, None], [None, None]],
            Resource::TypeRoot(t) => [
                [Some(Resource::TypeRoot(*t)), None],
                [Some(Resource::Cluster), None],
                [None, None],
            ],
            Resource::Namespace(ns) => [
                [Some(Resource::Namespace(ns.clone())), None],
                [Some(Resource::TypeRoot(ResourceType::Namespace)), None],
                [Some(Resource::Cluster), None],
            ],
            Resource::Entity { kind, name } => [
                [Some(self.clone()), None],
                [
                    Some(Resource::TypeRoot(*kind)),
                    Some(Resource::Namespace(name.namespace.clone())),
                ],
                [Some(Resource::Cluster), None],
            ],
        }
    }
}

fn type_list() -> String {
    let names: Vec<&str> = ResourceType::ALL.iter().map(|t| t.as_str()).collect();
    names.join(", ")
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Cluster => f.write_str("cluster:/"),
            Resource::TypeRoot(t) => write!(f, "{}:/", t.as_str()),
            Resource::Namespace(ns) => write!(f, "namespace:/{ns}"),
            Resource::Entity { kind, name } => write!(f, "{}:/{name}", kind.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_to_its_canonical_text() {
        for (raw, canonical, level) in [
            ("cluster:/", "cluster:/", 0),
            ("well:/", "well:/", 1),
            ("namespace:/", "namespace:/", 1),
            ("namespace:/acme", "namespace:/acme", 2),
            ("well:/acme:orders", "well:/acme:orders", 2),
            ("stream:/orders", "stream:/default:orders", 2),
            ("target:/acme:dr", "target:/acme:dr", 2),
            ("policy:/acme:p", "policy:/acme:p", 2),
        ] {
            let r = Resource::parse(raw).unwrap();
            assert_eq!(
                (r.to_string().as_str(), r.level()),
                (canonical, level),
                "{raw}"
            );
        }
    }

    #[test]
    fn bad_resources_say_what_is_wrong() {
        for (raw, needle) in [
            ("well", "TYPE:/PATH"),
            ("thing:/x", "unknown resource type \"thing\""),
            ("cluster:/x", "takes no path"),
            ("namespace:/a b", "namespace contains"),
            ("well:/a:b/c", "contains '/'"),
            ("well:/acme:", "name is empty"),
        ] {
            let e = Resource::parse(raw).unwrap_err();
            assert!(e.to_string().contains(needle), "{raw}: {e}");
        }
    }

    #[test]
    fn an_entity_has_its_type_root_and_namespace_as_parents() {
        let r = Resource::parse("well:/acme:orders").unwrap();
        let [own, parents, root] = r.levels();
        assert_eq!(own, [Some(r.clone()), None]);
        assert_eq!(
            parents,
            [
                Some(Resource::TypeRoot(ResourceType::Well)),
                Some(Resource::Namespace("acme".into()))
            ]
        );
        assert_eq!(root, [Some(Resource::Cluster), None]);
        let ns = Resource::parse("namespace:/acme").unwrap();
        assert_eq!(
            ns.levels()[1],
            [Some(Resource::TypeRoot(ResourceType::Namespace)), None]
        );
    }
}
