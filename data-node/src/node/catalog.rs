//! The node's view of the catalogue: what exists (wells, streams, tags) and who owns it.
//! Filled from the control plane's List + Watch, persisted locally so a restart works with
//! the control plane down, and fillable directly in tests.

use prost::Message;
use std::collections::BTreeMap;
use tributary_common::names::EntityName;
use tributary_proto::v1::{
    entity::Kind, DataNode, Entity, EntityKind, EventType, ListReply, Namespace, Policy, Stream,
    Tag, Target, WatchEvent, Well,
};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogView {
    /// The control plane's revision this view reflects.
    pub revision: u64,
    pub wells: BTreeMap<String, Well>,
    pub streams: BTreeMap<String, Stream>,
    /// Tag name → cluster-wide id.
    pub tags: BTreeMap<String, u32>,
    /// Ditto targets (with their secrets when the node holds the cluster secret).
    pub targets: BTreeMap<String, Target>,
    /// Policies, by canonical name: what the node decides its RPCs with.
    pub policies: BTreeMap<String, Policy>,
    /// Namespaces with their erasure flags (blocked, shut down).
    pub namespaces: BTreeMap<String, Namespace>,
    /// The cluster's data nodes by id: where a replicated stream's peers are reached.
    pub data_nodes: BTreeMap<u64, DataNode>,
}

/// The namespace of a canonical `namespace:name`.
pub fn namespace_of(name: &str) -> &str {
    name.split_once(':').map_or("default", |(ns, _)| ns)
}

/// Entity names in canonical `namespace:name` form (a malformed name stays as it is, so it
/// can still be looked up and reported).
pub fn canonical(name: &str) -> String {
    EntityName::canonical(name).unwrap_or_else(|_| name.to_string())
}

impl CatalogView {
    pub fn from_entities(revision: u64, entities: impl IntoIterator<Item = Entity>) -> Self {
        let mut v = CatalogView {
            revision,
            ..Default::default()
        };
        for e in entities {
            v.put(e);
        }
        v
    }

    pub fn put(&mut self, e: Entity) {
        match e.kind {
            Some(Kind::Well(mut w)) => {
                w.name = canonical(&w.name);
                self.wells.insert(w.name.clone(), w);
            }
            Some(Kind::Stream(mut s)) => {
                s.name = canonical(&s.name);
                self.streams.insert(s.name.clone(), s);
            }
            Some(Kind::Tag(t)) => {
                self.tags.insert(t.name, t.id);
            }
            Some(Kind::Target(mut t)) => {
                t.name = canonical(&t.name);
                self.targets.insert(t.name.clone(), t);
            }
            Some(Kind::Policy(mut p)) => {
                p.name = canonical(&p.name);
                self.policies.insert(p.name.clone(), p);
            }
            Some(Kind::Namespace(n)) => {
                self.namespaces.insert(n.name.clone(), n);
            }
            Some(Kind::DataNode(n)) => {
                self.data_nodes.insert(n.id, n);
            }
            _ => {}
        }
    }

    /// Whether requests for entities of `ns` are refused (erasure, step 1).
    pub fn blocked(&self, ns: &str) -> bool {
        self.namespaces.get(ns).is_some_and(|n| n.blocked)
    }

    /// Whether no worker of `ns` may run (erasure, step 2).
    pub fn shut_down(&self, ns: &str) -> bool {
        self.namespaces.get(ns).is_some_and(|n| n.shut_down)
    }

    /// Applies one watch event; the revision only moves forward.
    pub fn apply(&mut self, ev: WatchEvent) {
        self.revision = self.revision.max(ev.revision);
        match EventType::try_from(ev.r#type) {
            Ok(EventType::Put) => {
                if let Some(e) = ev.entity {
                    self.put(e);
                }
            }
            Ok(EventType::Delete) => match EntityKind::try_from(ev.kind) {
                Ok(EntityKind::Well) => {
                    self.wells.remove(&canonical(&ev.name));
                }
                Ok(EntityKind::Stream) => {
                    self.streams.remove(&canonical(&ev.name));
                }
                Ok(EntityKind::Tag) => {
                    self.tags.remove(&ev.name);
                }
                Ok(EntityKind::Target) => {
                    self.targets.remove(&canonical(&ev.name));
                }
                Ok(EntityKind::Policy) => {
                    self.policies.remove(&canonical(&ev.name));
                }
                Ok(EntityKind::Namespace) => {
                    self.namespaces.remove(&ev.name);
                }
                Ok(EntityKind::DataNode) => {
                    if let Ok(id) = ev.name.parse::<u64>() {
                        self.data_nodes.remove(&id);
                    }
                }
                _ => {}
            },
            Err(_) => {}
        }
    }

    pub fn tag_name(&self, id: u32) -> Option<&str> {
        self.tags
            .iter()
            .find(|(_, v)| **v == id)
            .map(|(k, _)| k.as_str())
    }

    /// The well entries of `tag` go to: the one routing it, else the default well.
    pub fn well_for_tag(&self, tag: &str) -> Option<&Well> {
        self.wells
            .values()
            .find(|w| w.tags.iter().any(|t| t == tag))
            .or_else(|| self.wells.values().find(|w| w.default_well))
    }

    /// The stream taking publishes on `subject` (mirrors take none).
    pub fn stream_for_subject(&self, subject: &str) -> Option<&Stream> {
        self.streams.values().find(|s| {
            s.mirror.is_none()
                && s.subjects
                    .iter()
                    .any(|f| tributary_common::subject::matches(f, subject))
        })
    }

    /// The encoded form stored in the node's meta space.
    pub fn encode(&self) -> Vec<u8> {
        let mut entities: Vec<Entity> = Vec::new();
        entities.extend(self.wells.values().map(|w| Entity {
            kind: Some(Kind::Well(w.clone())),
        }));
        entities.extend(self.streams.values().map(|s| Entity {
            kind: Some(Kind::Stream(s.clone())),
        }));
        entities.extend(self.policies.values().map(|p| Entity {
            kind: Some(Kind::Policy(p.clone())),
        }));
        entities.extend(self.targets.values().map(|t| Entity {
            kind: Some(Kind::Target(t.clone())),
        }));
        entities.extend(self.namespaces.values().map(|n| Entity {
            kind: Some(Kind::Namespace(n.clone())),
        }));
        entities.extend(self.data_nodes.values().map(|n| Entity {
            kind: Some(Kind::DataNode(n.clone())),
        }));
        entities.extend(self.tags.iter().map(|(n, id)| Entity {
            kind: Some(Kind::Tag(Tag {
                name: n.clone(),
                id: *id,
            })),
        }));
        ListReply {
            revision: self.revision,
            entities,
        }
        .encode_to_vec()
    }

    pub fn decode(buf: &[u8]) -> Result<Self, prost::DecodeError> {
        let r = ListReply::decode(buf)?;
        Ok(Self::from_entities(r.revision, r.entities))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn well(name: &str, tags: &[&str], default: bool) -> Entity {
        Entity {
            kind: Some(Kind::Well(Well {
                name: name.into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                default_well: default,
                ..Default::default()
            })),
        }
    }

    #[test]
    fn routes_tags_and_round_trips() {
        let mut v = CatalogView::from_entities(
            3,
            [well("web", &["nginx"], false), well("acme:all", &[], true)],
        );
        assert_eq!(v.well_for_tag("nginx").unwrap().name, "default:web");
        assert_eq!(v.well_for_tag("other").unwrap().name, "acme:all");
        v.apply(WatchEvent {
            revision: 4,
            r#type: EventType::Delete as i32,
            kind: EntityKind::Well as i32,
            name: "web".into(),
            entity: None,
        });
        assert_eq!(v.revision, 4);
        assert_eq!(v.well_for_tag("nginx").unwrap().name, "acme:all");
        v.tags.insert("nginx".into(), 9);
        assert_eq!(CatalogView::decode(&v.encode()).unwrap(), v);
        assert_eq!(v.tag_name(9), Some("nginx"));
    }
}
