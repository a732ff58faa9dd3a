//! Namespace erasure in the catalogue (Eclipse Ditto's block → shutdown → purge → unblock):
//! a blocked namespace takes no write but the erasure's own (`Command.erasure`), checked when
//! a write is applied, so a write proposed before the block and applied after it is refused
//! too; its flags are set by the devops namespace commands only, never by a client's write.

use super::entity::{is_namespaced, kind_of, name_of};
use super::validate;
use crate::error::CatalogError;
use tributary_proto::v1::command::Op;
use tributary_proto::v1::{entity::Kind, Command, Entity, EntityKind, Namespace};

/// The namespace of an entity of `kind` named `raw` (None: a kind without namespaces).
pub fn namespace_of(kind: EntityKind, raw: &str) -> Option<String> {
    match kind {
        EntityKind::Namespace => Some(raw.to_string()),
        k if is_namespaced(k) => {
            let name = validate::name(k, raw).ok()?;
            name.split_once(':').map(|(ns, _)| ns.to_string())
        }
        _ => None,
    }
}

/// The refusal every member and data node gives for an entity of a blocked namespace.
pub fn refusal(ns: &str) -> CatalogError {
    CatalogError::FailedPrecondition(format!("namespace {ns} is blocked"))
}

/// Refuses a client's write in a blocked namespace, or one that sets a namespace's flags;
/// `stored` reads a namespace's record as the write would see it.
pub fn check(
    cmd: &Command,
    stored: impl Fn(&str) -> Result<Option<Namespace>, CatalogError>,
) -> Result<(), CatalogError> {
    if cmd.erasure {
        return Ok(());
    }
    let (kind, name, written): (EntityKind, String, Option<&Entity>) = match &cmd.op {
        Some(Op::Create(e)) | Some(Op::Update(e)) => (kind_of(e), name_of(e), Some(e)),
        Some(Op::UpdateIf(u)) => match &u.entity {
            Some(e) => (kind_of(e), name_of(e), Some(e)),
            None => return Ok(()),
        },
        Some(Op::Delete(r)) => (
            EntityKind::try_from(r.kind).unwrap_or(EntityKind::Unspecified),
            r.name.clone(),
            None,
        ),
        Some(Op::Move(m)) => (
            EntityKind::try_from(m.kind).unwrap_or(EntityKind::Unspecified),
            m.name.clone(),
            None,
        ),
        Some(Op::RegisterNode(_)) | None => return Ok(()),
    };
    let Some(ns) = namespace_of(kind, &name) else {
        return Ok(());
    };
    let stored = stored(&ns)?;
    if stored.as_ref().is_some_and(|n| n.blocked || n.shut_down) {
        return Err(refusal(&ns));
    }
    if let Some(Entity {
        kind: Some(Kind::Namespace(n)),
    }) = written
    {
        if n.blocked || n.shut_down {
            return Err(CatalogError::invalid(
                "blocked",
                format!(
                    "namespace {ns}: blocked and shut_down are set by the devops namespace commands (tribctl namespace block|unblock), not by a write"
                ),
            ));
        }
    }
    Ok(())
}
