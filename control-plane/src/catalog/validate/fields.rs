//! Rules for fields several kinds have: policy references, endpoints, subjects, locations.

use super::draft::Draft;
use crate::error::CatalogError;
use tributary_common::names::{validate_part, EntityName};
use tributary_proto::v1::EntityKind;

/// A bad value, naming its field.
pub fn invalid(field: &str, reason: impl Into<String>) -> CatalogError {
    CatalogError::invalid(field, reason)
}

/// The policy `field` names, made canonical; it must exist.
pub fn policy_ref(txn: &dyn Draft, field: &str, raw: &mut String) -> Result<(), CatalogError> {
    if raw.is_empty() {
        return Ok(());
    }
    *raw = EntityName::canonical(raw).map_err(|e| invalid(field, e.to_string()))?;
    if !txn.exists(EntityKind::Policy, raw)? {
        return Err(CatalogError::NotFound {
            kind: "policy",
            name: raw.clone(),
        });
    }
    Ok(())
}

/// `HOST:PORT` with a numeric port.
pub fn endpoint(field: &str, raw: &str) -> Result<(), CatalogError> {
    let bad = || invalid(field, format!("{raw:?} is not HOST:PORT"));
    let (host, port) = raw.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() || host.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok(())
}

/// A NATS subject or filter (the one grammar, in `common::subject`), without control
/// characters: a NUL or an escape in a subject only ever breaks the tools that print it.
pub fn subject(field: &str, s: &str) -> Result<(), CatalogError> {
    tributary_common::subject::validate_filter(s).map_err(|e| invalid(field, e.to_string()))?;
    if s.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("subject {s:?} contains a control character"),
        ));
    }
    Ok(())
}

/// A directory a data node opens under its own storage root, never a path of the client's
/// choosing: relative, `/`-separated components of letters, digits, `_`, `-` and `.`, each
/// starting with a letter or digit (so no `..`, `.`, hidden or empty components), as the
/// data node resolves it (`<root>/<location>`). Empty means the default place.
pub fn location(field: &str, raw: &str) -> Result<(), CatalogError> {
    if raw.is_empty() {
        return Ok(());
    }
    let bad = |why: String| {
        invalid(
            field,
            format!("{raw:?} {why}; give a path relative to the data node's storage root (components of letters, digits, '_', '-', '.', separated by '/')"),
        )
    };
    if raw.starts_with('/') || raw.starts_with('\\') {
        return Err(bad("is an absolute path".into()));
    }
    for part in raw.split('/') {
        match part {
            "" => return Err(bad("has an empty component".into())),
            "." | ".." => return Err(bad(format!("has a {part:?} component"))),
            _ => {
                validate_part(part).map_err(|r| bad(format!("has component {part:?} that {r}")))?
            }
        }
    }
    Ok(())
}
