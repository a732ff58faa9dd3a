//! Catalogue entities tests create over and over.

use tributary_proto::v1::{entity::Kind, Entity, Stream, Well};

pub fn entity(kind: Kind) -> Entity {
    Entity { kind: Some(kind) }
}

/// A well taking `tags`, placed wherever the control plane likes.
pub fn well(name: &str, tags: &[&str]) -> Entity {
    entity(Kind::Well(Well {
        name: name.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    }))
}

/// A stream taking `subjects`, with the default storage.
pub fn stream(name: &str, subjects: &[&str]) -> Entity {
    entity(Kind::Stream(Stream {
        name: name.into(),
        subjects: subjects.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    }))
}
