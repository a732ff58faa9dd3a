//! Ditto's policy JSON and the catalogue's proto, read and printed back; the errors a bad
//! policy gets; the limits.

use serde_json::{json, Value};
use tributary_common::policy::{check, limits, Permission, Policy, PolicyError};
use tributary_proto::v1 as proto;

/// Ditto's own example (basic-policy.md), with our resource types.
const EXAMPLE: &str = r#"{
  "policyId": "my.namespace:policy-a",
  "entries": {
    "owner": {
      "subjects": { "nginx:ditto": { "type": "nginx basic auth user" } },
      "resources": {
        "well:/my.namespace:thing-0123": { "grant": ["READ", "WRITE", "ADMIN"], "revoke": [] },
        "policy:/my.namespace:policy-a": { "grant": ["READ", "WRITE"], "revoke": [] }
      }
    },
    "observer": {
      "subjects": {
        "nginx:observer-client": { "type": "technical client" },
        "nginx:some-users": { "type": "a group of users" }
      },
      "resources": {
        "stream:/my.namespace:featureX": { "grant": ["READ"], "revoke": [] },
        "stream:/my.namespace:featureY": { "grant": ["READ"], "revoke": ["WRITE"] }
      }
    }
  }
}"#;

#[test]
fn ditto_json_round_trips_in_document_order() {
    let p = Policy::from_json(EXAMPLE, None).expect("valid policy");
    assert_eq!(p.name(), "my.namespace:policy-a");
    let labels: Vec<&str> = p.entries().iter().map(|e| e.label.as_str()).collect();
    assert_eq!(labels, ["owner", "observer"], "document order, not sorted");
    assert_eq!(p.entries()[1].subjects[1].kind, "a group of users");
    let printed = p.to_json();
    let a: Value = serde_json::from_str(EXAMPLE).unwrap();
    let b: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(a, b, "{printed}");
    assert!(printed.find("\"owner\"") < printed.find("\"observer\""));
    assert_eq!(Policy::from_json(&printed, None).unwrap(), p);
    let d = check(
        &p,
        &["nginx:some-users".into()],
        "stream:/my.namespace:featureY",
        Permission::Read,
    );
    assert!(d.allowed, "{}", d.reason);
}

#[test]
fn the_proto_round_trips_and_keeps_subject_types() {
    let p = Policy::from_json(EXAMPLE, None).unwrap();
    let wire = p.to_proto();
    let observer = &wire.entries[1];
    assert_eq!(
        observer.subjects,
        ["nginx:observer-client", "nginx:some-users"]
    );
    assert_eq!(observer.subject_types[0].r#type, "technical client");
    assert_eq!(
        observer.resources[1].revoke,
        [proto::Permission::Write as i32]
    );
    assert_eq!(Policy::from_proto(&wire).unwrap(), p);
    // The fields older clients send (no subject types) still read.
    let old = proto::Policy {
        name: "acme:old".into(),
        entries: vec![proto::PolicyEntry {
            label: "e".into(),
            subjects: vec!["pre:admin".into()],
            resources: vec![proto::PolicyResource {
                resource: "cluster:/".into(),
                grant: vec![proto::Permission::Admin as i32],
                revoke: vec![],
            }],
            subject_types: vec![],
        }],
    };
    let p = Policy::from_proto(&old).unwrap();
    assert_eq!(p.entries()[0].subjects[0].kind, "");
    assert_eq!(p.to_proto(), old);
}

#[test]
fn policy_id_and_the_given_name_must_agree() {
    let p = Policy::from_json(EXAMPLE, Some("my.namespace:policy-a")).unwrap();
    assert_eq!(p.name(), "my.namespace:policy-a");
    let e = Policy::from_json(EXAMPLE, Some("acme:other")).unwrap_err();
    assert_eq!(e.path(), "policyId");
    let unnamed = r#"{"entries": {"e": {"subjects": {"pre:a": {}}, "resources": {"cluster:/": {"grant": ["READ"]}}}}}"#;
    assert_eq!(
        Policy::from_json(unnamed, Some("orders")).unwrap().name(),
        "default:orders"
    );
    assert_eq!(Policy::from_json(unnamed, None).unwrap().name(), "");
}

/// Replaces the value at `pointer` in [`EXAMPLE`] and reads it.
fn broken(pointer: &str, value: Value) -> PolicyError {
    let mut doc: Value = serde_json::from_str(EXAMPLE).unwrap();
    *doc.pointer_mut(pointer).expect("pointer into EXAMPLE") = value;
    Policy::from_json(&doc.to_string(), None).expect_err("broken policy accepted")
}

#[test]
fn errors_name_the_json_path_at_fault() {
    let cases: Vec<(PolicyError, &str, &str)> = vec![
        (
            broken(
                "/entries/owner/resources/well:~1my.namespace:thing-0123/grant/1",
                json!("EXECUTE"),
            ),
            "entries.owner.resources.well:/my.namespace:thing-0123.grant[1]",
            "unknown permission \"EXECUTE\"",
        ),
        (
            broken(
                "/entries/owner/resources",
                json!({"thing:/x": {"grant": ["READ"]}}),
            ),
            "entries.owner.resources.thing:/x",
            "unknown resource type \"thing\"",
        ),
        (
            broken(
                "/entries/observer/subjects",
                json!({"observer-client": {"type": "x"}}),
            ),
            "entries.observer.subjects.observer-client",
            "is not issuer:subject",
        ),
        (
            broken(
                "/entries/owner/subjects/nginx:ditto",
                json!({"type": "u", "expiry": "2030-01-01T00:00Z"}),
            ),
            "entries.owner.subjects.nginx:ditto.expiry",
            "expiring subjects are not supported",
        ),
        (
            broken(
                "/entries/owner/resources/policy:~1my.namespace:policy-a/grant",
                json!("READ"),
            ),
            "entries.owner.resources.policy:/my.namespace:policy-a.grant",
            "expected a sequence",
        ),
        (
            broken(
                "/entries/owner/subjects/nginx:ditto",
                json!({"type": "u", "colour": "red"}),
            ),
            "entries.owner.subjects.nginx:ditto.colour",
            "unknown field `colour`",
        ),
        (
            broken("/entries", json!({})),
            "entries",
            "at least one entry",
        ),
        (
            broken("/policyId", json!("a:b:c")),
            "policyId",
            "invalid name",
        ),
    ];
    for (err, path, needle) in cases {
        assert_eq!(err.path(), path, "{err}");
        assert!(err.to_string().contains(needle), "{err}");
        assert!(err.to_string().contains(path), "{err}");
    }
}

#[test]
fn what_json_objects_cannot_say_twice_is_caught() {
    let twice = r#"{"entries": {"a": {"subjects": {}, "resources": {}}, "a": {"subjects": {}, "resources": {}}}}"#;
    let e = Policy::from_json(twice, Some("x")).unwrap_err();
    assert_eq!(e.path(), "entries");
    assert!(e.to_string().contains("\"a\" is given twice"), "{e}");
    let same_resource = r#"{"entries": {"a": {"subjects": {"pre:a": {}},
        "resources": {"well:/orders": {"grant": ["READ"]}, "well:/default:orders": {"revoke": ["READ"]}}}}}"#;
    let e = Policy::from_json(same_resource, Some("x")).unwrap_err();
    assert!(e.to_string().contains("listed twice"), "{e}");
    let e = Policy::from_json("{\"entries\": {}} trailing", Some("x")).unwrap_err();
    assert!(matches!(e, PolicyError::Json { .. }), "{e}");
}

#[test]
fn proto_errors_name_the_field() {
    let mut wire = Policy::from_json(EXAMPLE, None).unwrap().to_proto();
    wire.entries[0].resources[0].grant.push(0);
    let e = Policy::from_proto(&wire).unwrap_err();
    assert_eq!(
        e.path(),
        "entries.owner.resources.well:/my.namespace:thing-0123.grant[3]"
    );
    let mut wire = Policy::from_json(EXAMPLE, None).unwrap().to_proto();
    wire.entries[1].label = "owner".into();
    assert!(Policy::from_proto(&wire)
        .unwrap_err()
        .to_string()
        .contains("used by another entry"));
    let mut wire = Policy::from_json(EXAMPLE, None).unwrap().to_proto();
    wire.entries[0].label.clear();
    assert_eq!(
        Policy::from_proto(&wire).unwrap_err().path(),
        "entries[0].label"
    );
    let mut wire = Policy::from_json(EXAMPLE, None).unwrap().to_proto();
    wire.entries[0].subject_types[0].subject = "nginx:nobody".into();
    assert_eq!(
        Policy::from_proto(&wire).unwrap_err().path(),
        "entries.owner.subject_types[0]"
    );
}

/// A policy of `entries` entries with `subjects` subjects each, all on `cluster:/`.
fn big(entries: usize, subjects: usize) -> proto::Policy {
    proto::Policy {
        name: "acme:big".into(),
        entries: (0..entries)
            .map(|i| proto::PolicyEntry {
                label: format!("entry-{i}"),
                subjects: (0..subjects)
                    .map(|j| format!("oidc:user-{i}-{j}"))
                    .collect(),
                resources: vec![proto::PolicyResource {
                    resource: format!("well:/acme:w{i}"),
                    grant: vec![proto::Permission::Read as i32],
                    revoke: vec![],
                }],
                subject_types: vec![],
            })
            .collect(),
    }
}

#[test]
fn a_policy_of_one_megabyte_is_refused_naming_the_limit() {
    let huge = big(200, 250);
    let e = Policy::from_proto(&huge).unwrap_err();
    assert!(
        matches!(
            e,
            PolicyError::OverLimit {
                name: "MAX_POLICY_BYTES",
                limit: limits::MAX_POLICY_BYTES,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("over the limit of 102400 (MAX_POLICY_BYTES)"),
        "{e}"
    );
    let mut text = String::from(r#"{"policyId": "acme:big", "entries": {"#);
    let mut i = 0;
    while text.len() < 1024 * 1024 {
        text.push_str(&format!(r#""e{i}": {{"subjects": {{"oidc:u{i}": {{"type": "padding padding"}}}}, "resources": {{"cluster:/": {{"grant": ["READ"]}}}}}},"#));
        i += 1;
    }
    text.push_str(r#""last": {"subjects": {}, "resources": {}}}}"#);
    let e = Policy::from_json(&text, None).unwrap_err();
    assert!(e.to_string().contains("MAX_POLICY_BYTES"), "{e}");
    assert!(e.to_string().contains(&text.len().to_string()), "{e}");
}

#[test]
fn counts_are_bounded_and_each_limit_is_named() {
    let e = Policy::from_proto(&big(limits::MAX_ENTRIES + 1, 1)).unwrap_err();
    assert!(
        e.to_string().contains("MAX_ENTRIES") && e.path() == "entries",
        "{e}"
    );
    let e = Policy::from_proto(&big(1, limits::MAX_SUBJECTS_PER_ENTRY + 1)).unwrap_err();
    assert_eq!(e.path(), "entries.entry-0.subjects", "{e}");
    assert!(e.to_string().contains("MAX_SUBJECTS_PER_ENTRY"), "{e}");
    let mut many = big(1, 1);
    many.entries[0].resources = (0..=limits::MAX_RESOURCES_PER_ENTRY)
        .map(|i| proto::PolicyResource {
            resource: format!("stream:/acme:s{i}"),
            grant: vec![1],
            revoke: vec![],
        })
        .collect();
    assert!(Policy::from_proto(&many)
        .unwrap_err()
        .to_string()
        .contains("MAX_RESOURCES_PER_ENTRY"));
    let mut long = big(1, 1);
    long.entries[0].label = "l".repeat(limits::MAX_LABEL_LEN + 1);
    assert!(Policy::from_proto(&long)
        .unwrap_err()
        .to_string()
        .contains("MAX_LABEL_LEN"));
    // At the limits, a policy is taken.
    assert!(Policy::from_proto(&big(limits::MAX_ENTRIES, 1)).is_ok());
    assert!(Policy::from_proto(&big(1, limits::MAX_SUBJECTS_PER_ENTRY)).is_ok());
}
