//! How long a check takes: a node decides every RPC from its catalogue view, so a check of a
//! policy of 100 entries must cost microseconds, and about what a check of a one-entry
//! policy costs (the index, not a scan of the entries, finds the rules).
//! `cargo test -p tributary-common --release --test policy_check_speed -- --nocapture`
//! prints the release figure.

use std::hint::black_box;
use std::time::{Duration, Instant};
use tributary_common::policy::{check, Permission, Policy};
use tributary_proto::v1 as proto;

/// `entries` entries of two subjects and three resources each; every tenth entry has a
/// wildcard subject, every fifth revokes.
fn policy(entries: usize) -> Policy {
    let resource = |r: String, grant: Vec<i32>, revoke: Vec<i32>| proto::PolicyResource {
        resource: r,
        grant,
        revoke,
    };
    let wire = proto::Policy {
        name: "acme:speed".into(),
        entries: (0..entries)
            .map(|i| proto::PolicyEntry {
                label: format!("entry-{i}"),
                subjects: vec![
                    format!("oidc:user-{i}"),
                    if i % 10 == 0 {
                        format!("group{i}:*")
                    } else {
                        format!("pre:service-{i}")
                    },
                ],
                resources: vec![
                    resource(format!("well:/ns{}:w{i}", i % 7), vec![1, 2], vec![]),
                    resource(format!("namespace:/ns{}", i % 7), vec![1], vec![]),
                    resource(
                        "stream:/".into(),
                        vec![1],
                        if i % 5 == 0 { vec![2] } else { vec![] },
                    ),
                ],
                subject_types: vec![],
            })
            .collect(),
    };
    Policy::from_proto(&wire).expect("valid policy")
}

/// The best of five rounds of `n` checks, per check.
fn per_check(p: &Policy, subjects: &[String], resource: &str, n: u32) -> Duration {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                black_box(check(
                    p,
                    black_box(subjects),
                    black_box(resource),
                    Permission::Read,
                ));
            }
            start.elapsed() / n
        })
        .min()
        .unwrap_or_default()
}

#[test]
fn a_check_of_a_100_entry_policy_costs_microseconds() {
    let (big, small) = (policy(100), policy(1));
    let subjects = [
        "oidc:user-42".to_string(),
        "myprovider:alice".into(),
        "group1:x".into(),
    ];
    let d = check(&big, &subjects, "well:/ns0:w42", Permission::Read);
    assert!(d.allowed, "{}", d.reason);
    let n = 5_000;
    let big_cost = per_check(&big, &subjects, "well:/ns0:w42", n);
    let denied_cost = per_check(&big, &subjects, "target:/ns3:nothing", n);
    let small_cost = per_check(&small, &subjects, "target:/ns3:nothing", n);
    println!(
        "policy check: 100 entries {big_cost:?} (allowed), {denied_cost:?} (denied after \
         walking every level); 1 entry {small_cost:?} (denied likewise)"
    );
    // Generous for an unoptimised build on a shared machine; the figure is what counts.
    assert!(big_cost < Duration::from_micros(50), "{big_cost:?}");
    assert!(denied_cost < Duration::from_micros(50), "{denied_cost:?}");
    // A scan of the entries would make the big policy ~100 times dearer.
    assert!(
        denied_cost < small_cost * 10,
        "{denied_cost:?} vs {small_cost:?}"
    );
}
