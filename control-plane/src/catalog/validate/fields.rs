//! Rules for fields several kinds have: policy references, endpoints, subjects.

use super::draft::Draft;
use crate::error::CatalogError;
use tributary_common::names::EntityName;
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
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(())
}

/// A NATS subject or filter (the one grammar, in `common::subject`).
pub fn subject(field: &str, s: &str) -> Result<(), CatalogError> {
    tributary_common::subject::validate_filter(s).map_err(|e| invalid(field, e.to_string()))
}
