//! Entity-creation rules as Eclipse Ditto's "Restricting entity creation", loaded the way the
//! servers load their config (defaults, TOML, `TRIBUTARY_…` environment with indexed keys).

// figment's `Jail` fixes the closure's error type.
#![allow(clippy::result_large_err)]

use serde::{Deserialize, Serialize};
use std::path::Path;
use tributary_common::config;
use tributary_common::policy::{CreationRule, EntityCreationConfig, EntityType};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct ServerConfig {
    entity_creation: EntityCreationConfig,
}

#[derive(Serialize)]
struct NoFlags {}

fn load(file: Option<&str>) -> Result<EntityCreationConfig, config::ConfigError> {
    config::load::<ServerConfig, _>(file.map(Path::new), &NoFlags {}).map(|c| c.entity_creation)
}

fn may(rules: &EntityCreationConfig, kind: EntityType, ns: &str, subjects: &[&str]) -> bool {
    let subjects: Vec<String> = subjects.iter().map(|s| s.to_string()).collect();
    rules.check(kind, ns, &subjects).allowed
}

#[test]
fn by_default_every_authenticated_subject_may_create_anything_anywhere() {
    figment::Jail::expect_with(|_jail| {
        let rules = load(None).map_err(|e| e.to_string())?;
        assert_eq!(rules, EntityCreationConfig::default());
        assert_eq!(rules.grant, [CreationRule::default()]);
        for kind in [
            EntityType::Well,
            EntityType::Stream,
            EntityType::Target,
            EntityType::Policy,
            EntityType::Namespace,
            EntityType::Tag,
        ] {
            assert!(may(&rules, kind, "acme", &["myprovider:alice"]), "{kind}");
        }
        assert!(
            !may(&rules, EntityType::Well, "acme", &[]),
            "no subject, no creation"
        );
        Ok(())
    });
}

/// The reference page's example, as environment variables with indexed keys: only
/// `pre:admin` and `integration:some-connection` may create entities.
#[test]
fn the_reference_example_from_indexed_environment_keys() {
    figment::Jail::expect_with(|jail| {
        jail.set_env(
            "TRIBUTARY_ENTITY_CREATION__GRANT__0__AUTH_SUBJECTS__0",
            "pre:admin",
        );
        jail.set_env(
            "TRIBUTARY_ENTITY_CREATION__GRANT__0__AUTH_SUBJECTS__1",
            "integration:some-connection",
        );
        let rules = load(None).map_err(|e| e.to_string())?;
        assert_eq!(rules.grant.len(), 1);
        assert_eq!(
            rules.grant[0].auth_subjects,
            ["pre:admin", "integration:some-connection"]
        );
        assert!(rules.grant[0].resource_types.is_empty() && rules.grant[0].namespaces.is_empty());
        for kind in [EntityType::Well, EntityType::Policy, EntityType::Stream] {
            assert!(may(&rules, kind, "acme", &["pre:admin"]));
            assert!(may(&rules, kind, "other", &["integration:some-connection"]));
            assert!(!may(&rules, kind, "acme", &["myprovider:alice"]));
            assert!(!may(&rules, kind, "acme", &["pre:admin2"]));
        }
        // One matching subject of the request is enough.
        assert!(may(
            &rules,
            EntityType::Well,
            "acme",
            &["myprovider:alice", "pre:admin"]
        ));
        let refused = rules.check(EntityType::Well, "acme", &["myprovider:alice".into()]);
        assert_eq!(refused.decided_by, None);
        assert!(
            refused.reason.contains("no entry of entity_creation.grant"),
            "{}",
            refused.reason
        );
        Ok(())
    });
}

#[test]
fn toml_with_wildcards_types_and_a_revoke_after_the_grant() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "server.toml",
            r#"
[[entity_creation.grant]]
resource-types = ["well", "stream"]
namespaces = ["acme*", "team-?"]
auth-subjects = ["myprovider:*"]

[[entity_creation.grant]]
auth_subjects = ["pre:admin"]

[[entity_creation.revoke]]
namespaces = ["acme-secret"]
auth_subjects = ["myprovider:guest-*"]
"#,
        )?;
        let rules = load(Some("server.toml")).map_err(|e| e.to_string())?;
        let alice = &["myprovider:alice"][..];
        assert!(may(&rules, EntityType::Well, "acme", alice));
        assert!(may(&rules, EntityType::Stream, "acme-prod", alice));
        assert!(may(&rules, EntityType::Stream, "team-a", alice));
        assert!(
            !may(&rules, EntityType::Stream, "team-ab", alice),
            "? is one character"
        );
        assert!(
            !may(&rules, EntityType::Target, "acme", alice),
            "type not listed"
        );
        assert!(
            !may(&rules, EntityType::Well, "beta", alice),
            "namespace not listed"
        );
        assert!(may(&rules, EntityType::Well, "acme-secret", alice));
        let guest = rules.check(
            EntityType::Well,
            "acme-secret",
            &["myprovider:guest-1".into()],
        );
        assert!(!guest.allowed);
        assert_eq!(
            guest.decided_by.as_deref(),
            Some("entity_creation.revoke[0]")
        );
        let admin = rules.check(EntityType::Target, "beta", &["pre:admin".into()]);
        assert!(admin.allowed);
        assert_eq!(
            admin.decided_by.as_deref(),
            Some("entity_creation.grant[1]")
        );
        // The revoke applies to whoever passed the grant, admins too.
        assert!(!may(
            &rules,
            EntityType::Well,
            "acme-secret",
            &["pre:admin", "myprovider:guest-2"]
        ));
        Ok(())
    });
}

#[test]
fn an_environment_revoke_keeps_the_default_grant_and_numbers_are_names() {
    figment::Jail::expect_with(|jail| {
        jail.set_env(
            "TRIBUTARY_ENTITY_CREATION__REVOKE__0__NAMESPACES__0",
            "2024",
        );
        jail.set_env(
            "TRIBUTARY_ENTITY_CREATION__REVOKE__0__RESOURCE_TYPES__0",
            "namespace",
        );
        let rules = load(None).map_err(|e| e.to_string())?;
        assert_eq!(rules.grant, [CreationRule::default()]);
        assert!(!may(&rules, EntityType::Namespace, "2024", &["pre:x"]));
        assert!(may(&rules, EntityType::Well, "2024", &["pre:x"]));
        assert!(may(&rules, EntityType::Namespace, "2025", &["pre:x"]));
        Ok(())
    });
}

#[test]
fn a_bad_rule_stops_the_load_with_its_key_named() {
    figment::Jail::expect_with(|jail| {
        jail.set_env(
            "TRIBUTARY_ENTITY_CREATION__GRANT__0__RESOURCE_TYPES__0",
            "thing",
        );
        let e = load(None).expect_err("unknown type accepted").to_string();
        assert!(
            e.contains("key `entity_creation.grant.0.resource_types.0`"),
            "{e}"
        );
        assert!(e.contains("`thing`") && e.contains("`tag`"), "{e}");
        Ok(())
    });
    figment::Jail::expect_with(|jail| {
        jail.set_env(
            "TRIBUTARY_ENTITY_CREATION__GRANT__FIRST__NAMESPACES__0",
            "acme",
        );
        let e = load(None).expect_err("non-index key accepted").to_string();
        assert!(e.contains("\"first\" is not a list index"), "{e}");
        Ok(())
    });
    figment::Jail::expect_with(|jail| {
        jail.set_env(
            "TRIBUTARY_ENTITY_CREATION__GRANT__0__SUBJECTS__0",
            "pre:admin",
        );
        let e = load(None).expect_err("misspelt key accepted").to_string();
        assert!(e.contains("subjects"), "{e}");
        Ok(())
    });
}
