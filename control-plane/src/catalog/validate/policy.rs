//! Policies: who (`issuer:subject`) is granted or revoked what on which resources.

use super::fields::invalid;
use crate::error::CatalogError;
use tributary_proto::v1::{Permission, Policy};

/// The resource types a policy entry may name.
const RESOURCE_TYPES: [&str; 6] = [
    "well:/",
    "stream:/",
    "target:/",
    "policy:/",
    "cluster:/",
    "namespace:/",
];

pub(super) fn policy(p: &mut Policy) -> Result<(), CatalogError> {
    if p.entries.is_empty() {
        return Err(invalid("entries", "a policy needs at least one entry"));
    }
    for (i, entry) in p.entries.iter().enumerate() {
        for subj in &entry.subjects {
            if !subj.contains(':') {
                return Err(invalid(
                    &format!("entries[{i}].subjects"),
                    format!("{subj:?} is not issuer:subject"),
                ));
            }
        }
        for r in &entry.resources {
            if !RESOURCE_TYPES.iter().any(|t| r.resource.starts_with(t)) {
                return Err(invalid(
                    &format!("entries[{i}].resources"),
                    format!(
                        "{:?} must start with one of {}",
                        r.resource,
                        RESOURCE_TYPES.join(", ")
                    ),
                ));
            }
            for perm in r.grant.iter().chain(r.revoke.iter()) {
                if !matches!(
                    Permission::try_from(*perm),
                    Ok(Permission::Read | Permission::Write | Permission::Admin)
                ) {
                    return Err(invalid(
                        &format!("entries[{i}].resources"),
                        "permissions are READ, WRITE or ADMIN",
                    ));
                }
            }
        }
    }
    Ok(())
}
