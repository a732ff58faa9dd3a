//! What may be deleted: nothing in the catalogue may still refer to it.

use super::draft::Draft;
use crate::catalog::entity::{kind_label, name_of};
use crate::error::CatalogError;
use tributary_proto::v1::{entity::Kind, Entity, EntityKind};

/// Whether an entity refers to the one being deleted.
type Uses<'a> = Box<dyn Fn(&Entity) -> bool + 'a>;

/// Whether the entity may be deleted: nothing may still refer to it.
pub fn deletable(txn: &dyn Draft, kind: EntityKind, name: &str) -> Result<(), CatalogError> {
    let (kinds, uses): (&[EntityKind], Uses<'_>) = match kind {
        EntityKind::Target => (
            &[EntityKind::Well],
            Box::new(
                |e| matches!(&e.kind, Some(Kind::Well(w)) if w.ditto_targets.iter().any(|t| t == name)),
            ),
        ),
        EntityKind::Tag => (
            &[EntityKind::Well],
            Box::new(
                |e| matches!(&e.kind, Some(Kind::Well(w)) if w.tags.iter().any(|t| t == name)),
            ),
        ),
        EntityKind::Policy => (
            &[EntityKind::Well, EntityKind::Stream, EntityKind::Target],
            Box::new(|e| match &e.kind {
                Some(Kind::Well(x)) => x.policy == name,
                Some(Kind::Stream(x)) => x.policy == name,
                Some(Kind::Target(x)) => x.policy == name,
                _ => false,
            }),
        ),
        EntityKind::Namespace => {
            let prefix = format!("{name}:");
            (
                &[
                    EntityKind::Well,
                    EntityKind::Stream,
                    EntityKind::Target,
                    EntityKind::Policy,
                ],
                Box::new(move |e| name_of(e).starts_with(&prefix)),
            )
        }
        EntityKind::DataNode => (
            &[EntityKind::Well, EntityKind::Stream],
            Box::new(|e| {
                let owner = match &e.kind {
                    Some(Kind::Well(x)) => x.owner_node,
                    Some(Kind::Stream(x)) => x.owner_node,
                    _ => 0,
                };
                owner.to_string() == name
            }),
        ),
        _ => return Ok(()),
    };
    for k in kinds {
        let mut user = None;
        txn.visit(*k, &mut |e| {
            if user.is_none() && uses(e) {
                user = Some(name_of(e));
            }
            Ok(())
        })?;
        if let Some(by) = user {
            let hint = if kind == EntityKind::DataNode {
                " (move it first)"
            } else {
                ""
            };
            return Err(CatalogError::FailedPrecondition(format!(
                "{} {name} is still used by {} {by}{hint}",
                kind_label(kind),
                kind_label(*k)
            )));
        }
    }
    Ok(())
}
