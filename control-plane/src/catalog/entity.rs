//! What every entity has in common: its kind, its name, its storage key.

use tributary_proto::v1::{entity::Kind, Entity, EntityKind};

pub fn kind_of(e: &Entity) -> EntityKind {
    match &e.kind {
        Some(Kind::Well(_)) => EntityKind::Well,
        Some(Kind::Tag(_)) => EntityKind::Tag,
        Some(Kind::Target(_)) => EntityKind::Target,
        Some(Kind::Stream(_)) => EntityKind::Stream,
        Some(Kind::Policy(_)) => EntityKind::Policy,
        Some(Kind::Namespace(_)) => EntityKind::Namespace,
        Some(Kind::DataNode(_)) => EntityKind::DataNode,
        None => EntityKind::Unspecified,
    }
}

pub fn name_of(e: &Entity) -> String {
    match &e.kind {
        Some(Kind::Well(x)) => x.name.clone(),
        Some(Kind::Tag(x)) => x.name.clone(),
        Some(Kind::Target(x)) => x.name.clone(),
        Some(Kind::Stream(x)) => x.name.clone(),
        Some(Kind::Policy(x)) => x.name.clone(),
        Some(Kind::Namespace(x)) => x.name.clone(),
        Some(Kind::DataNode(x)) => x.id.to_string(),
        None => String::new(),
    }
}

/// Lower-case kind name for messages and resource paths ("well", "stream", …).
pub fn kind_label(k: EntityKind) -> &'static str {
    match k {
        EntityKind::Well => "well",
        EntityKind::Tag => "tag",
        EntityKind::Target => "target",
        EntityKind::Stream => "stream",
        EntityKind::Policy => "policy",
        EntityKind::Namespace => "namespace",
        EntityKind::DataNode => "data node",
        EntityKind::Unspecified => "entity",
    }
}

/// Whether names of this kind carry a namespace (`ns:name`).
pub fn is_namespaced(k: EntityKind) -> bool {
    matches!(
        k,
        EntityKind::Well | EntityKind::Target | EntityKind::Stream | EntityKind::Policy
    )
}

/// Storage key: one kind byte, then the canonical name.
pub fn key(kind: EntityKind, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(kind as i32 as u8);
    k.extend_from_slice(name.as_bytes());
    k
}

pub fn kind_prefix(kind: EntityKind) -> Vec<u8> {
    vec![kind as i32 as u8]
}

/// The entity as clients may see it: secrets (target ingest secrets, the external
/// credentials of stream origins) replaced by a marker.
pub fn redacted(mut e: Entity) -> Entity {
    match &mut e.kind {
        Some(Kind::Target(t)) if !t.ingest_secret.is_empty() => {
            t.ingest_secret = REDACTED.to_string();
        }
        Some(Kind::Stream(s)) => tributary_common::secrets::redact_stream(s),
        _ => {}
    }
    e
}

pub use tributary_common::secrets::REDACTED;
