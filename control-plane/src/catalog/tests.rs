//! Property tests of the state machine: determinism and validation.

use super::{apply_command, Catalogue};
use crate::error::CatalogError;
use proptest::prelude::*;
use rocksdb::WriteBatch;
use tributary_proto::v1::command::Op;
use tributary_proto::v1::{
    entity::Kind, Command, DataNode, Entity, EntityKind, EntityRef, Stream, StreamSource, Target,
    Well,
};

pub(super) fn open() -> (tempfile::TempDir, Catalogue) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = crate::open_db(dir.path()).expect("db");
    (dir, Catalogue::open(db, 1000).expect("catalogue"))
}

pub(super) fn apply(cat: &Catalogue, index: u64, cmd: &Command) -> Result<u64, CatalogError> {
    let mut batch = WriteBatch::default();
    let (r, revision, events) = apply_command(cat, index, cmd, &mut batch);
    cat.db().write(batch).expect("write");
    cat.committed(index, revision, events);
    r.map(|w| w.revision)
}

fn arb_command() -> impl Strategy<Value = Command> {
    let name = prop_oneof!["[a-c]", "acme:[a-c]", "bad name", ""];
    let tags = prop::collection::vec("[t-v]", 0..3);
    let well = (name.clone(), tags, any::<bool>()).prop_map(|(n, tags, d)| Entity {
        kind: Some(Kind::Well(Well {
            name: n,
            tags,
            default_well: d,
            ..Default::default()
        })),
    });
    let stream =
        (name.clone(), prop::option::of("[a-c]"), "[a-c](\\.>)?").prop_map(|(n, mirror, subj)| {
            Entity {
                kind: Some(Kind::Stream(Stream {
                    name: n,
                    subjects: if mirror.is_some() { vec![] } else { vec![subj] },
                    mirror: mirror.map(|m| StreamSource {
                        stream: m,
                        ..Default::default()
                    }),
                    ..Default::default()
                })),
            }
        });
    let target = (name.clone(), "[a-z]{1,3}:[0-9]{1,5}").prop_map(|(n, ep)| Entity {
        kind: Some(Kind::Target(Target {
            name: n,
            cleartext_endpoints: vec![ep],
            ingest_secret: "s".into(),
            ..Default::default()
        })),
    });
    let entity = prop_oneof![well, stream, target];
    let op = prop_oneof![
        entity.clone().prop_map(Op::Create),
        entity.prop_map(Op::Update),
        (
            prop_oneof![
                Just(EntityKind::Well),
                Just(EntityKind::Stream),
                Just(EntityKind::Target)
            ],
            name
        )
            .prop_map(|(k, n)| Op::Delete(EntityRef {
                kind: k as i32,
                name: n
            })),
        (1u64..3).prop_map(|id| Op::RegisterNode(DataNode {
            id,
            addr: format!("127.0.0.1:{id}"),
            capacity: 1,
            tags: vec![],
        })),
    ];
    (op, prop::collection::vec(1u64..3, 0..2)).prop_map(|(op, live)| Command {
        op: Some(op),
        live_nodes: live,
        erasure: false,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn same_commands_give_the_same_catalogue(cmds in prop::collection::vec(arb_command(), 1..40)) {
        let (_d1, a) = open();
        let (_d2, b) = open();
        for (i, cmd) in cmds.iter().enumerate() {
            let ra = apply(&a, i as u64 + 1, cmd);
            let rb = apply(&b, i as u64 + 1, cmd);
            prop_assert_eq!(ra, rb);
        }
        prop_assert_eq!(a.export().expect("export"), b.export().expect("export"));
        prop_assert_eq!(a.applied_index(), cmds.len() as u64);
    }

    #[test]
    fn a_rejected_command_changes_nothing(cmds in prop::collection::vec(arb_command(), 1..30)) {
        let (_d, cat) = open();
        for (i, cmd) in cmds.iter().enumerate() {
            let before = (cat.revision(), cat.export().expect("export"));
            if apply(&cat, i as u64 + 1, cmd).is_err() {
                prop_assert_eq!(before, (cat.revision(), cat.export().expect("export")));
            }
        }
    }

    #[test]
    fn names_are_accepted_exactly_when_valid(ns in "[a-z0-9:_ -]{0,6}", n in "[A-Za-z0-9._/-]{0,6}") {
        let raw = if ns.is_empty() { n.clone() } else { format!("{ns}:{n}") };
        let (_d, cat) = open();
        let cmd = Command { op: Some(Op::Create(Entity { kind: Some(Kind::Well(Well { name: raw.clone(), ..Default::default() })) })), live_nodes: vec![], erasure: false };
        let valid = tributary_common::names::EntityName::parse(&raw).is_ok();
        let r = apply(&cat, 1, &cmd);
        prop_assert_eq!(r.is_ok(), valid, "{:?} -> {:?}", raw, r);
    }
}

#[test]
fn placement_prefers_the_least_loaded_live_node() {
    let (_d, cat) = open();
    let mut i = 0;
    let mut run = |cmd: Command| {
        i += 1;
        apply(&cat, i, &cmd).expect("apply")
    };
    for id in [1, 2] {
        run(Command {
            op: Some(Op::RegisterNode(DataNode {
                id,
                addr: format!("h:{id}"),
                capacity: 1,
                tags: vec![],
            })),
            live_nodes: vec![],
            erasure: false,
        });
    }
    let create = |n: &str, live: Vec<u64>| Command {
        op: Some(Op::Create(Entity {
            kind: Some(Kind::Well(Well {
                name: n.into(),
                ..Default::default()
            })),
        })),
        live_nodes: live,
        erasure: false,
    };
    run(create("a", vec![1, 2]));
    run(create("b", vec![1, 2]));
    run(create("c", vec![2]));
    let owner = |n: &str| match cat
        .get(EntityKind::Well, &format!("default:{n}"))
        .expect("get")
        .and_then(|e| e.kind)
    {
        Some(Kind::Well(w)) => w.owner_node,
        _ => 0,
    };
    assert_eq!((owner("a"), owner("b"), owner("c")), (1, 2, 2));
}

#[test]
fn external_credentials_are_write_only() {
    use super::entity::{redacted, REDACTED};
    let (_d, cat) = open();
    let mirror = |creds: &str, external: &str| Command {
        op: Some(Op::Update(Entity {
            kind: Some(Kind::Stream(Stream {
                name: "MX".into(),
                mirror: Some(StreamSource {
                    stream: "EXT".into(),
                    external: external.into(),
                    external_credentials: creds.into(),
                    ..Default::default()
                }),
                ..Default::default()
            })),
        })),
        live_nodes: vec![],
        erasure: false,
    };
    let stored = |cat: &Catalogue| match cat
        .get(EntityKind::Stream, "default:MX")
        .expect("get")
        .and_then(|e| e.kind)
    {
        Some(Kind::Stream(s)) => s.mirror.map(|m| m.external_credentials),
        _ => None,
    };
    let mut create = mirror("hush", "https://b:7100");
    if let Some(Op::Update(e)) = create.op.take() {
        create.op = Some(Op::Create(e));
    }
    let mut batch = WriteBatch::default();
    let (reply, revision, events) = apply_command(&cat, 1, &create, &mut batch);
    cat.db().write(batch).expect("write");
    cat.committed(1, revision, events);
    // What the writer gets back is redacted; the catalogue keeps the secret.
    let shown = match reply.expect("create").entity.and_then(|e| e.kind) {
        Some(Kind::Stream(s)) => s.mirror.map(|m| m.external_credentials),
        _ => None,
    };
    assert_eq!(shown.as_deref(), Some(REDACTED));
    assert_eq!(stored(&cat).as_deref(), Some("hush"));
    let read = cat.get(EntityKind::Stream, "default:MX").expect("get");
    match read.map(redacted).and_then(|e| e.kind) {
        Some(Kind::Stream(s)) => {
            assert_eq!(
                s.mirror.map(|m| m.external_credentials).as_deref(),
                Some(REDACTED)
            )
        }
        other => panic!("{other:?}"),
    }
    // Echoing the marker back keeps the stored credentials; new ones replace them.
    apply(&cat, 2, &mirror(REDACTED, "https://b:7100")).expect("echo");
    assert_eq!(stored(&cat).as_deref(), Some("hush"));
    apply(&cat, 3, &mirror("new", "https://b:7100")).expect("replace");
    assert_eq!(stored(&cat).as_deref(), Some("new"));
    // The marker never carries credentials over to another cluster.
    let err = apply(&cat, 4, &mirror(REDACTED, "https://c:7100")).expect_err("other cluster");
    assert!(err.to_string().contains("external_credentials"), "{err}");
    assert_eq!(stored(&cat).as_deref(), Some("new"));
}

#[test]
fn a_source_given_twice_is_refused_unless_the_filters_differ() {
    let (_d, cat) = open();
    let stream = |name: &str, subjects: Vec<String>, sources: Vec<StreamSource>| Command {
        op: Some(Op::Create(Entity {
            kind: Some(Kind::Stream(Stream {
                name: name.into(),
                subjects,
                sources,
                ..Default::default()
            })),
        })),
        live_nodes: vec![],
        erasure: false,
    };
    let source = |stream: &str, filter: &str| StreamSource {
        stream: stream.into(),
        filter_subject: filter.into(),
        ..Default::default()
    };
    apply(&cat, 1, &stream("ORDERS", vec!["ORDERS.>".into()], vec![])).expect("ORDERS");

    // The same origin twice, once written with its namespace: the same source.
    let twice = vec![source("ORDERS", ""), source("default:ORDERS", "")];
    let err = apply(&cat, 2, &stream("COPY", vec![], twice)).expect_err("duplicate");
    let msg = err.to_string();
    assert!(
        matches!(&err, CatalogError::Invalid { field, .. } if field == "sources[1]"),
        "{err:?}"
    );
    assert!(msg.contains("duplicates sources[0]"), "{msg}");
    let filtered_twice = vec![
        source("ORDERS", "ORDERS.b"),
        source("ORDERS", "ORDERS.a"),
        source("ORDERS", "ORDERS.b"),
    ];
    let err = apply(&cat, 3, &stream("COPY", vec![], filtered_twice)).expect_err("duplicate");
    assert!(
        err.to_string()
            .contains("invalid sources[2]: duplicates sources[0]"),
        "{err}"
    );
    assert_eq!(
        cat.get(EntityKind::Stream, "default:COPY").expect("get"),
        None
    );

    // One origin with two different filters is two sources, as in JetStream.
    let two_filters = vec![source("ORDERS", "ORDERS.a"), source("ORDERS", "ORDERS.b")];
    apply(&cat, 4, &stream("COPY", vec![], two_filters)).expect("two filters");
    match cat
        .get(EntityKind::Stream, "default:COPY")
        .expect("get")
        .and_then(|e| e.kind)
    {
        Some(Kind::Stream(s)) => {
            let filters: Vec<&str> = s
                .sources
                .iter()
                .map(|o| o.filter_subject.as_str())
                .collect();
            assert_eq!(filters, ["ORDERS.a", "ORDERS.b"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn locations_are_relative_paths_under_the_data_nodes_root() {
    let (_d, cat) = open();
    let well = |name: &str, hot: &str, cold: &str| Command {
        op: Some(Op::Create(Entity {
            kind: Some(Kind::Well(Well {
                name: name.into(),
                hot_location: hot.into(),
                cold_location: cold.into(),
                hot_duration_secs: 60,
                ..Default::default()
            })),
        })),
        live_nodes: vec![],
        erasure: false,
    };
    let mut i = 0;
    for (hot, cold, field, why) in [
        ("", "/tmp/pwned", "cold_location", "absolute"),
        ("", "../../etc", "cold_location", "\"..\" component"),
        ("", "cold/../x", "cold_location", "\"..\" component"),
        ("", "a//b", "cold_location", "empty component"),
        ("", "a/", "cold_location", "empty component"),
        ("", "./a", "cold_location", "\".\" component"),
        ("", ".hidden", "cold_location", "letter or digit"),
        ("", "a\\b", "cold_location", "contains"),
        ("", "a\0b", "cold_location", "contains"),
        ("/var/lib/x", "", "hot_location", "absolute"),
        ("C:", "", "hot_location", "contains ':'"),
    ] {
        i += 1;
        let err = apply(&cat, i, &well("w", hot, cold)).expect_err(cold);
        let msg = err.to_string();
        assert!(
            matches!(&err, CatalogError::Invalid { field: f, .. } if f == field)
                && msg.contains(why),
            "{hot:?} {cold:?}: {msg}"
        );
    }
    assert_eq!(cat.list(EntityKind::Well, "").expect("list"), vec![]);
    for (k, (hot, cold)) in [("hot", "cold"), ("ssd/hot-1", "archive/2024.q1")]
        .into_iter()
        .enumerate()
    {
        i += 1;
        apply(&cat, i, &well(&format!("ok{k}"), hot, cold)).expect(cold);
    }
}

#[test]
fn a_command_over_a_limit_is_refused_naming_the_field_and_the_limit() {
    use super::{check_sizes, Limits};
    use tributary_proto::v1::{Policy, PolicyEntry};
    let limits = Limits::default();
    let create = |e: Entity| Command {
        op: Some(Op::Create(e)),
        live_nodes: vec![],
        erasure: false,
    };
    let stream = |subjects: Vec<String>| {
        create(Entity {
            kind: Some(Kind::Stream(Stream {
                name: "S".into(),
                subjects,
                ..Default::default()
            })),
        })
    };
    let policy = |entries: usize, subject_bytes: usize| {
        create(Entity {
            kind: Some(Kind::Policy(Policy {
                name: "p".into(),
                entries: (0..entries)
                    .map(|i| PolicyEntry {
                        label: i.to_string(),
                        subjects: vec![format!("i:{}", "s".repeat(subject_bytes))],
                        resources: vec![],
                        ..Default::default()
                    })
                    .collect(),
            })),
        })
    };
    let cases = [
        (
            stream((0..1001).map(|i| format!("s.{i}")).collect()),
            "subjects",
            "limits.max_subjects_per_stream",
        ),
        (
            stream(vec![format!("big.{}", "z".repeat(300))]),
            "subjects",
            "limits.max_subject_bytes",
        ),
        // The audit's probe: one policy subject of 1 MB.
        (policy(1, 1 << 20), "policy", "limits.max_entity_bytes"),
        (policy(100, 4000), "policy", "limits.max_entity_bytes"),
        (
            policy(1, 5000),
            "entries[0].subjects",
            "limits.max_field_bytes",
        ),
        (policy(1001, 1), "entries", "limits.max_list_items"),
    ];
    for (cmd, field, limit) in cases {
        let err = check_sizes(&cmd, &limits).expect_err(limit);
        let msg = err.to_string();
        assert!(
            matches!(&err, CatalogError::Invalid { field: f, .. } if f == field)
                && msg.contains(limit),
            "{field}: {msg}"
        );
        assert!(msg.len() < 300, "the message quotes too much: {msg}");
    }
    assert!(check_sizes(&policy(50, 4000), &limits).is_ok());
    assert!(check_sizes(
        &stream((0..1000).map(|i| format!("s.{i}")).collect()),
        &limits
    )
    .is_ok());
}

#[test]
fn an_update_if_applies_only_to_the_entity_as_read() {
    use tributary_proto::v1::UpdateIf;
    let (_d, cat) = open();
    let target = |secret: &str| Entity {
        kind: Some(Kind::Target(Target {
            name: "default:t".into(),
            cleartext_endpoints: vec!["b:1".into()],
            ingest_secret: secret.into(),
            ..Default::default()
        })),
    };
    let cmd = |op| Command {
        op: Some(op),
        live_nodes: vec![],
        erasure: false,
    };
    let stored = |cat: &Catalogue| cat.get(EntityKind::Target, "default:t").expect("get");
    apply(&cat, 1, &cmd(Op::Create(target("one")))).expect("create");
    let read = stored(&cat).expect("created");
    // A client's update lands between the read and the conditional write.
    apply(&cat, 2, &cmd(Op::Update(target("two")))).expect("client update");
    let stale = UpdateIf {
        expected: Some(Box::new(read)),
        entity: Some(Box::new(target("one-resealed"))),
    };
    let err = apply(&cat, 3, &cmd(Op::UpdateIf(stale))).expect_err("stale");
    assert!(matches!(err, CatalogError::FailedPrecondition(_)), "{err}");
    assert_eq!(
        stored(&cat),
        Some(target("two")),
        "the client's update stays"
    );
    let fresh = UpdateIf {
        expected: stored(&cat).map(Box::new),
        entity: Some(Box::new(target("two-resealed"))),
    };
    apply(&cat, 4, &cmd(Op::UpdateIf(fresh))).expect("fresh");
    assert_eq!(stored(&cat), Some(target("two-resealed")));
}
