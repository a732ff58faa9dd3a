//! The catalogue's rules, checked when a command is applied (so every member decides alike).
//! Each error names the field that is wrong. Here: names and the per-kind dispatch; each
//! kind's own rules in its file, the rules for fields several kinds have in `fields.rs`, and
//! what may be deleted in `deletable.rs`. The configured size limits (`sizes.rs`) are the
//! exception: checked before proposing, as they may differ between members.

mod deletable;
mod draft;
mod fields;
mod policy;
mod sizes;
mod stream;
mod well;

pub use deletable::deletable;
pub use draft::Draft;
pub use fields::endpoint;
pub use sizes::check_command;
pub use stream::credentials_as_written;

use crate::catalog::entity::{is_namespaced, kind_of, name_of};
use crate::error::CatalogError;
use fields::invalid;
use tributary_common::names::{validate_part, EntityName};
use tributary_proto::v1::{entity::Kind, Entity, EntityKind};

/// The canonical name of an entity of `kind`.
pub fn name(kind: EntityKind, raw: &str) -> Result<String, CatalogError> {
    if is_namespaced(kind) {
        return EntityName::canonical(raw).map_err(|e| invalid("name", e.to_string()));
    }
    match kind {
        EntityKind::DataNode => match raw.parse::<u64>() {
            Ok(id) if id > 0 => Ok(id.to_string()),
            _ => Err(invalid(
                "name",
                format!("data node id {raw:?} is not a positive number"),
            )),
        },
        EntityKind::Unspecified => Err(invalid("kind", "entity kind is missing")),
        _ => validate_part(raw)
            .map(|_| raw.to_string())
            .map_err(|r| invalid("name", format!("{raw:?} {r}"))),
    }
}

/// Checks and normalizes `e` (canonical names, defaults); `old` is the stored version on update.
pub fn entity(
    txn: &mut dyn Draft,
    e: &mut Entity,
    old: Option<&Entity>,
) -> Result<(), CatalogError> {
    let kind = kind_of(e);
    let canonical = name(kind, &name_of(e))?;
    match &mut e.kind {
        Some(Kind::Well(w)) => {
            w.name = canonical;
            well::well(txn, w)
        }
        Some(Kind::Target(t)) => {
            t.name = canonical;
            let old = match old.and_then(|o| o.kind.as_ref()) {
                Some(Kind::Target(o)) => Some(o),
                _ => None,
            };
            well::target(txn, t, old)
        }
        Some(Kind::Stream(s)) => {
            s.name = canonical;
            let old = match old.and_then(|o| o.kind.as_ref()) {
                Some(Kind::Stream(o)) => Some(o),
                _ => None,
            };
            stream::stream(txn, s, old)
        }
        Some(Kind::Policy(p)) => {
            p.name = canonical;
            policy::policy(p)
        }
        Some(Kind::Namespace(n)) => {
            n.name = canonical;
            Ok(())
        }
        Some(Kind::Tag(t)) => {
            t.name = canonical;
            Ok(())
        }
        Some(Kind::DataNode(_)) => Err(invalid("kind", "data nodes are added by registering")),
        None => Err(invalid("kind", "entity kind is missing")),
    }
}
