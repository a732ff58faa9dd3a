//! What may be deleted: nothing in the catalogue may still refer to it.

use super::draft::Draft;
use crate::catalog::entity::{kind_label, name_of};
use crate::error::CatalogError;
use tributary_proto::v1::{entity::Kind, EntityKind};

/// Whether the entity may be deleted: nothing may still refer to it.
pub fn deletable(txn: &dyn Draft, kind: EntityKind, name: &str) -> Result<(), CatalogError> {
    let busy = |by: String| {
        Err(CatalogError::FailedPrecondition(format!(
            "{} {name} is still used by {by}",
            kind_label(kind)
        )))
    };
    let wells = || txn.list(EntityKind::Well);
    match kind {
        EntityKind::Target => {
            for e in wells()? {
                if let Some(Kind::Well(w)) = &e.kind {
                    if w.ditto_targets.iter().any(|t| t == name) {
                        return busy(format!("well {}", w.name));
                    }
                }
            }
        }
        EntityKind::Tag => {
            for e in wells()? {
                if let Some(Kind::Well(w)) = &e.kind {
                    if w.tags.iter().any(|t| t == name) {
                        return busy(format!("well {}", w.name));
                    }
                }
            }
        }
        EntityKind::Policy => {
            for k in [EntityKind::Well, EntityKind::Stream, EntityKind::Target] {
                for e in txn.list(k)? {
                    let p = match &e.kind {
                        Some(Kind::Well(x)) => &x.policy,
                        Some(Kind::Stream(x)) => &x.policy,
                        Some(Kind::Target(x)) => &x.policy,
                        _ => continue,
                    };
                    if p == name {
                        return busy(format!("{} {}", kind_label(k), name_of(&e)));
                    }
                }
            }
        }
        EntityKind::Namespace => {
            for k in [
                EntityKind::Well,
                EntityKind::Stream,
                EntityKind::Target,
                EntityKind::Policy,
            ] {
                let prefix = format!("{name}:");
                if let Some(e) = txn
                    .list(k)?
                    .iter()
                    .find(|e| name_of(e).starts_with(&prefix))
                {
                    return busy(format!("{} {}", kind_label(k), name_of(e)));
                }
            }
        }
        EntityKind::DataNode => {
            for k in [EntityKind::Well, EntityKind::Stream] {
                for e in txn.list(k)? {
                    let owner = match &e.kind {
                        Some(Kind::Well(x)) => x.owner_node,
                        Some(Kind::Stream(x)) => x.owner_node,
                        _ => 0,
                    };
                    if owner.to_string() == name {
                        return busy(format!("{} {} (move it first)", kind_label(k), name_of(&e)));
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}
