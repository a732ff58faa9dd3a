//! The first policy of a cluster, built from the config's `admin_subjects`: before it exists
//! nobody could be granted anything, so the servers create it at first start.

use super::entry::{PolicyEntry, ResourceRule, Subject};
use super::error::PolicyError;
use super::model::Policy;
use super::permission::PermissionSet;
use super::resource::Resource;
use super::subject_id;

/// The name of the bootstrap policy.
pub const BOOTSTRAP_POLICY: &str = "default:cluster-admin";
/// The label of its one entry.
pub const BOOTSTRAP_LABEL: &str = "cluster-admin";
/// The `type` its subjects get.
const BOOTSTRAP_SUBJECT_TYPE: &str = "admin_subjects in the server config";

/// Builds [`BOOTSTRAP_POLICY`]: `admin_subjects` get `READ`, `WRITE` and `ADMIN` on
/// `cluster:/`, so on everything. Errors name `admin_subjects[i]`; an empty list is an error
/// too, since such a policy would lock everyone out.
pub fn bootstrap_policy(admin_subjects: &[String]) -> Result<Policy, PolicyError> {
    if admin_subjects.is_empty() {
        return Err(PolicyError::invalid(
            "admin_subjects",
            "is empty: name at least one issuer:subject to administer the cluster",
        ));
    }
    let mut subjects: Vec<Subject> = Vec::with_capacity(admin_subjects.len());
    for (i, id) in admin_subjects.iter().enumerate() {
        subject_id::validate(id).map_err(|r| {
            PolicyError::invalid(format!("admin_subjects[{i}]"), format!("{id:?} {r}"))
        })?;
        // A subject listed twice in config is harmless; keep one.
        if !subjects.iter().any(|s| s.id == *id) {
            subjects.push(Subject {
                id: id.clone(),
                kind: BOOTSTRAP_SUBJECT_TYPE.into(),
            });
        }
    }
    Policy::new(
        BOOTSTRAP_POLICY,
        vec![PolicyEntry {
            label: BOOTSTRAP_LABEL.into(),
            subjects,
            resources: vec![ResourceRule {
                resource: Resource::Cluster,
                grant: PermissionSet::ALL,
                revoke: PermissionSet::EMPTY,
            }],
        }],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{check, Permission};

    #[test]
    fn admin_subjects_may_do_everything_and_nobody_else_anything() {
        let admins = vec!["pre:admin".to_string(), "tls:ops".to_string()];
        let p = bootstrap_policy(&admins).unwrap();
        assert_eq!(p.name(), BOOTSTRAP_POLICY);
        for perm in Permission::ALL {
            for resource in [
                "cluster:/",
                "well:/acme:orders",
                "namespace:/acme",
                "policy:/",
            ] {
                let d = check(&p, &["tls:ops".into()], resource, perm);
                assert!(d.allowed, "{perm} {resource}: {}", d.reason);
                assert_eq!(d.decided_by.unwrap().label, BOOTSTRAP_LABEL);
                assert!(!check(&p, &["pre:other".into()], resource, perm).allowed);
            }
        }
    }

    #[test]
    fn bad_admin_subjects_are_named() {
        let e = bootstrap_policy(&["pre:admin".into(), "admin".into()]).unwrap_err();
        assert_eq!(e.path(), "admin_subjects[1]");
        assert!(e.to_string().contains("issuer:subject"), "{e}");
        assert_eq!(bootstrap_policy(&[]).unwrap_err().path(), "admin_subjects");
    }
}
