//! The inheritance and weighting rules of `common::policy::check`, each as an operator
//! would write it in Ditto's policy JSON.

use serde_json::json;
use tributary_common::policy::{
    check, permissions_of, Effect, Permission, PermissionSet, Policy, Resource,
};

use Permission::{Admin, Read, Write};

/// (resource, grant, revoke) of one entry.
type Rule<'a> = (&'a str, &'a [&'a str], &'a [&'a str]);

/// A policy in shorthand: each entry is (label, subjects, rules), built through Ditto's JSON.
fn policy(entries: &[(&str, &[&str], &[Rule])]) -> Policy {
    let mut doc = serde_json::Map::new();
    for (label, subjects, resources) in entries {
        let subjects: serde_json::Map<_, _> = subjects
            .iter()
            .map(|s| (s.to_string(), json!({"type": "test"})))
            .collect();
        let resources: serde_json::Map<_, _> = resources
            .iter()
            .map(|(r, g, v)| (r.to_string(), json!({"grant": g, "revoke": v})))
            .collect();
        doc.insert(
            label.to_string(),
            json!({"subjects": subjects, "resources": resources}),
        );
    }
    let text = json!({"policyId": "acme:p", "entries": doc}).to_string();
    Policy::from_json(&text, None).expect("test policy is valid")
}

fn allowed(p: &Policy, subject: &str, resource: &str, perm: Permission) -> bool {
    check(p, &[subject.to_string()], resource, perm).allowed
}

#[test]
fn a_grant_at_the_root_is_inherited_and_a_deeper_revoke_beats_it() {
    let p = policy(&[
        ("all", &["oidc:alice"], &[("cluster:/", &["READ"], &[])]),
        (
            "no-secret",
            &["oidc:alice"],
            &[("well:/acme:secret", &[], &["READ"])],
        ),
    ]);
    assert!(allowed(&p, "oidc:alice", "well:/acme:orders", Read));
    assert!(allowed(&p, "oidc:alice", "stream:/other:x", Read));
    let d = check(&p, &["oidc:alice".into()], "well:/acme:secret", Read);
    assert!(!d.allowed, "{}", d.reason);
    let by = d.decided_by.expect("an entry decided");
    assert_eq!(
        (by.label.as_str(), by.resource.as_str(), by.effect),
        ("no-secret", "well:/acme:secret", Effect::Revoke)
    );
    // The grant was inherited from cluster:/, and says so.
    let d = check(&p, &["oidc:alice".into()], "well:/acme:orders", Read);
    let by = d.decided_by.expect("an entry decided");
    assert_eq!(
        (by.label.as_str(), by.resource.as_str(), by.effect),
        ("all", "cluster:/", Effect::Grant)
    );
    assert!(d.reason.contains("\"all\" on cluster:/"), "{}", d.reason);
}

#[test]
fn a_revoke_at_the_root_loses_to_a_deeper_grant() {
    let p = policy(&[
        (
            "none",
            &["oidc:bob"],
            &[("cluster:/", &[], &["READ", "WRITE"])],
        ),
        (
            "orders",
            &["oidc:bob"],
            &[("well:/acme:orders", &["READ"], &[])],
        ),
        (
            "acme",
            &["oidc:bob"],
            &[("namespace:/acme", &["WRITE"], &[])],
        ),
    ]);
    assert!(allowed(&p, "oidc:bob", "well:/acme:orders", Read));
    assert!(!allowed(&p, "oidc:bob", "well:/acme:other", Read));
    // Level 1 (the namespace) outweighs level 0 (the cluster).
    assert!(allowed(&p, "oidc:bob", "stream:/acme:events", Write));
    assert!(!allowed(&p, "oidc:bob", "stream:/beta:events", Write));
}

#[test]
fn on_the_same_level_the_revoke_wins() {
    let p = policy(&[
        (
            "grant",
            &["oidc:carol"],
            &[("well:/acme:orders", &["READ", "WRITE"], &[])],
        ),
        (
            "revoke",
            &["oidc:carol"],
            &[("well:/acme:orders", &[], &["WRITE"])],
        ),
        (
            "both",
            &["oidc:dave"],
            &[("well:/", &["ADMIN"], &["ADMIN"])],
        ),
    ]);
    assert!(allowed(&p, "oidc:carol", "well:/acme:orders", Read));
    let d = check(&p, &["oidc:carol".into()], "well:/acme:orders", Write);
    assert!(!d.allowed);
    assert_eq!(d.decided_by.map(|b| b.label), Some("revoke".to_string()));
    assert!(!allowed(&p, "oidc:dave", "well:/acme:orders", Admin));
}

#[test]
fn the_two_parents_of_an_entity_weigh_the_same() {
    let p = policy(&[
        ("wells", &["oidc:erin"], &[("well:/", &["READ"], &[])]),
        (
            "not-acme",
            &["oidc:erin"],
            &[("namespace:/acme", &[], &["READ"])],
        ),
        (
            "acme",
            &["oidc:frank"],
            &[("namespace:/acme", &["READ"], &[])],
        ),
        ("no-wells", &["oidc:frank"], &[("well:/", &[], &["READ"])]),
    ]);
    assert!(allowed(&p, "oidc:erin", "well:/beta:orders", Read));
    assert!(!allowed(&p, "oidc:erin", "well:/acme:orders", Read));
    assert!(allowed(&p, "oidc:frank", "stream:/acme:events", Read));
    assert!(!allowed(&p, "oidc:frank", "well:/acme:orders", Read));
}

#[test]
fn write_does_not_imply_read_and_admin_implies_neither() {
    let p = policy(&[
        (
            "writer",
            &["ingest:main"],
            &[("well:/acme:orders", &["WRITE"], &[])],
        ),
        ("admin", &["pre:admin"], &[("cluster:/", &["ADMIN"], &[])]),
    ]);
    assert!(allowed(&p, "ingest:main", "well:/acme:orders", Write));
    let d = check(&p, &["ingest:main".into()], "well:/acme:orders", Read);
    assert!(!d.allowed && d.decided_by.is_none());
    assert!(
        d.reason.contains("no entry of policy acme:p grants READ"),
        "{}",
        d.reason
    );
    assert!(allowed(&p, "pre:admin", "well:/acme:orders", Admin));
    assert!(!allowed(&p, "pre:admin", "well:/acme:orders", Read));
    assert!(!allowed(&p, "pre:admin", "well:/acme:orders", Write));
}

#[test]
fn wildcard_subjects_match_and_their_revokes_count_too() {
    let p = policy(&[
        ("users", &["myprovider:*"], &[("stream:/", &["READ"], &[])]),
        (
            "not-guests",
            &["myprovider:guest-?"],
            &[("stream:/acme:orders", &[], &["READ"])],
        ),
    ]);
    assert!(allowed(&p, "myprovider:alice", "stream:/acme:orders", Read));
    assert!(allowed(
        &p,
        "myprovider:guest-1",
        "stream:/acme:other",
        Read
    ));
    let d = check(
        &p,
        &["myprovider:guest-1".into()],
        "stream:/acme:orders",
        Read,
    );
    assert!(!d.allowed);
    assert_eq!(
        d.decided_by.map(|b| b.subject),
        Some("myprovider:guest-?".to_string())
    );
    assert!(!allowed(
        &p,
        "otherprovider:alice",
        "stream:/acme:orders",
        Read
    ));
    // `?` is one character, not any number.
    assert!(allowed(
        &p,
        "myprovider:guest-12",
        "stream:/acme:orders",
        Read
    ));
}

#[test]
fn any_subject_of_the_caller_counts_and_a_revoke_for_one_of_them_wins() {
    let p = policy(&[
        (
            "team",
            &["oidc:group-ops"],
            &[("target:/", &["WRITE"], &[])],
        ),
        (
            "suspended",
            &["oidc:mallory"],
            &[("target:/", &[], &["WRITE"])],
        ),
    ]);
    let both = ["oidc:alice".to_string(), "oidc:group-ops".to_string()];
    assert!(check(&p, &both, "target:/acme:dr", Write).allowed);
    let suspended = ["oidc:mallory".to_string(), "oidc:group-ops".to_string()];
    assert!(!check(&p, &suspended, "target:/acme:dr", Write).allowed);
    assert!(!check(&p, &[], "target:/acme:dr", Write).allowed);
}

#[test]
fn the_namespace_is_the_parent_of_every_entity_in_it_of_every_type() {
    let p = policy(&[(
        "acme",
        &["tls:node-1"],
        &[("namespace:/acme", &["READ"], &[])],
    )]);
    for r in [
        "well:/acme:a",
        "stream:/acme:b",
        "target:/acme:c",
        "policy:/acme:d",
        "namespace:/acme",
    ] {
        assert!(allowed(&p, "tls:node-1", r, Read), "{r}");
    }
    for r in [
        "well:/beta:a",
        "namespace:/beta",
        "namespace:/",
        "cluster:/",
        "well:/",
    ] {
        assert!(!allowed(&p, "tls:node-1", r, Read), "{r}");
    }
}

#[test]
fn the_type_root_is_the_parent_of_every_entity_of_its_type_only() {
    let p = policy(&[
        ("wells", &["devops:ops"], &[("well:/", &["WRITE"], &[])]),
        (
            "namespaces",
            &["devops:ops"],
            &[("namespace:/", &["ADMIN"], &[])],
        ),
    ]);
    assert!(allowed(&p, "devops:ops", "well:/acme:a", Write));
    assert!(allowed(&p, "devops:ops", "well:/orders", Write));
    assert!(!allowed(&p, "devops:ops", "stream:/acme:a", Write));
    // `namespace:/` covers the namespaces, not what is in them.
    assert!(allowed(&p, "devops:ops", "namespace:/acme", Admin));
    assert!(!allowed(&p, "devops:ops", "well:/acme:a", Admin));
}

#[test]
fn a_bare_name_means_namespace_default() {
    let p = policy(&[("d", &["pre:x"], &[("well:/orders", &["READ"], &[])])]);
    assert!(allowed(&p, "pre:x", "well:/default:orders", Read));
    assert!(allowed(&p, "pre:x", "well:/orders", Read));
    assert!(!allowed(&p, "pre:x", "well:/acme:orders", Read));
}

#[test]
fn an_invalid_resource_is_denied_with_the_reason() {
    let p = policy(&[("all", &["pre:x"], &[("cluster:/", &["READ"], &[])])]);
    let d = check(&p, &["pre:x".into()], "thing:/x", Read);
    assert!(!d.allowed);
    assert!(
        d.reason.contains("unknown resource type \"thing\""),
        "{}",
        d.reason
    );
}

#[test]
fn permissions_of_lists_what_a_subject_may_do_where() {
    let p = policy(&[
        (
            "read-all",
            &["oidc:alice"],
            &[("cluster:/", &["READ"], &[])],
        ),
        (
            "orders",
            &["oidc:alice"],
            &[("well:/acme:orders", &["WRITE"], &[])],
        ),
        (
            "hidden",
            &["oidc:alice"],
            &[("well:/acme:secret", &[], &["READ"])],
        ),
        ("other", &["oidc:bob"], &[("stream:/", &["ADMIN"], &[])]),
    ]);
    let got: Vec<(String, String)> = permissions_of(&p, &["oidc:alice".into()])
        .into_iter()
        .map(|a| (a.resource.to_string(), a.permissions.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            ("cluster:/".to_string(), "READ".to_string()),
            ("stream:/".into(), "READ".into()),
            ("well:/acme:orders".into(), "READ,WRITE".into()),
        ]
    );
    let bob = permissions_of(&p, &["oidc:bob".into()]);
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0].resource, Resource::parse("stream:/").unwrap());
    assert_eq!(
        bob[0].permissions,
        [Admin].into_iter().collect::<PermissionSet>()
    );
}
