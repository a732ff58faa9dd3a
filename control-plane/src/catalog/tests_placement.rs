//! Placement of replicated streams: replica counts, distinct live nodes, least loaded first,
//! placement tags and `unique_tag`, and refusals that name why and create nothing.

use super::tests::{apply, open};
use super::Catalogue;
use crate::error::CatalogError;
use tributary_proto::v1::command::Op;
use tributary_proto::v1::{
    entity::Kind, Command, DataNode, Entity, EntityKind, Placement, StorageType, Stream,
};

struct Log<'a> {
    cat: &'a Catalogue,
    index: u64,
}

impl Log<'_> {
    fn run(&mut self, op: Op, live: &[u64]) -> Result<u64, CatalogError> {
        self.index += 1;
        apply(
            self.cat,
            self.index,
            &Command {
                op: Some(op),
                live_nodes: live.to_vec(),
                erasure: false,
            },
        )
    }

    fn node(&mut self, id: u64, tags: &[&str]) {
        self.run(
            Op::RegisterNode(DataNode {
                id,
                addr: format!("h:{id}"),
                capacity: 1,
                tags: tags.iter().map(|t| t.to_string()).collect(),
            }),
            &[],
        )
        .expect("register");
    }

    fn stream(&mut self, s: Stream, live: &[u64]) -> Result<Stream, CatalogError> {
        let name = s.name.clone();
        self.run(
            Op::Create(Entity {
                kind: Some(Kind::Stream(s)),
            }),
            live,
        )?;
        match self
            .cat
            .get(EntityKind::Stream, &format!("default:{name}"))
            .expect("get")
            .and_then(|e| e.kind)
        {
            Some(Kind::Stream(s)) => Ok(s),
            other => panic!("stream {name}: {other:?}"),
        }
    }
}

fn replicated(name: &str, replicas: u32) -> Stream {
    Stream {
        name: name.into(),
        subjects: vec![format!("{name}.>")],
        replicas,
        ..Default::default()
    }
}

fn invalid_field(r: Result<Stream, CatalogError>) -> (String, String) {
    match r {
        Err(CatalogError::Invalid { field, reason }) => (field, reason),
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}

#[test]
fn even_replica_counts_are_refused_with_the_reason() {
    let (_d, cat) = open();
    let mut log = Log {
        cat: &cat,
        index: 0,
    };
    for id in 1..=5 {
        log.node(id, &[]);
    }
    for n in [2, 4] {
        let (field, reason) = invalid_field(log.stream(replicated(&format!("e{n}"), n), &[]));
        assert_eq!(field, "replicas");
        assert!(reason.contains("quorum"), "{reason}");
    }
    let (_, reason) = invalid_field(log.stream(replicated("six", 6), &[]));
    assert!(reason.contains("1, 3 or 5"), "{reason}");
    for n in [1, 3, 5] {
        log.stream(replicated(&format!("ok{n}"), n), &[])
            .expect("1, 3 and 5 are accepted");
    }
    let mut mem = replicated("mem", 3);
    mem.storage = StorageType::Memory as i32;
    let (_, reason) = invalid_field(log.stream(mem, &[]));
    assert!(reason.contains("memory"), "{reason}");
}

#[test]
fn replicas_go_to_distinct_live_nodes_least_loaded_first() {
    let (_d, cat) = open();
    let mut log = Log {
        cat: &cat,
        index: 0,
    };
    for id in 1..=4 {
        log.node(id, &[]);
    }
    let a = log.stream(replicated("a", 3), &[1, 2, 3, 4]).expect("a");
    assert_eq!(a.replica_nodes, vec![1, 2, 3]);
    assert_eq!(a.owner_node, 1);
    assert_ne!(a.group_id, 0);
    // Node 4 holds nothing yet, so it comes first; node 2 is not live.
    let b = log.stream(replicated("b", 3), &[1, 3, 4]).expect("b");
    assert_eq!(b.replica_nodes, vec![4, 1, 3]);
    assert_ne!(a.group_id, b.group_id);
    let r1 = log.stream(replicated("c", 1), &[1, 2, 3, 4]).expect("c");
    assert_eq!(
        (r1.owner_node, r1.replica_nodes.len(), r1.group_id),
        (2, 0, 0)
    );

    // Not enough live nodes: refused, naming why, and nothing is created.
    let before = cat.revision();
    let r = log.stream(replicated("d", 5), &[1, 2, 3, 4]);
    match r {
        Err(CatalogError::FailedPrecondition(why)) => {
            assert!(
                why.contains("5 replicas need 5 distinct live data nodes; 4"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(cat.revision(), before);
    assert!(cat
        .get(EntityKind::Stream, "default:d")
        .expect("get")
        .is_none());
}

#[test]
fn placement_tags_and_unique_tag_choose_the_nodes() {
    let (_d, cat) = open();
    let mut log = Log {
        cat: &cat,
        index: 0,
    };
    log.node(1, &["az:1", "ssd"]);
    log.node(2, &["az:1", "ssd"]);
    log.node(3, &["az:2", "ssd"]);
    log.node(4, &["az:3"]);
    log.node(5, &["az:3", "ssd"]);
    let live = [1, 2, 3, 4, 5];
    let mut s = replicated("zones", 3);
    s.placement = Some(Placement {
        tags: vec![],
        unique_tag: "az:".into(),
    });
    let zones = log.stream(s, &live).expect("zones");
    assert_eq!(zones.replica_nodes, vec![1, 3, 4]);

    let mut s = replicated("fast", 3);
    s.placement = Some(Placement {
        tags: vec!["ssd".into()],
        unique_tag: "az:".into(),
    });
    let fast = log.stream(s, &live).expect("fast");
    assert_eq!(
        fast.replica_nodes,
        vec![2, 5, 3],
        "ssd nodes in three zones"
    );

    let mut s = replicated("five", 5);
    s.placement = Some(Placement {
        tags: vec!["ssd".into()],
        unique_tag: "az:".into(),
    });
    match log.stream(s, &live) {
        Err(CatalogError::FailedPrecondition(why)) => {
            assert!(why.contains("4 of them with tags ssd"), "{why}");
            assert!(why.contains("3 distinct \"az:\""), "{why}");
        }
        other => panic!("{other:?}"),
    }
}

fn stored(cat: &Catalogue, name: &str) -> Stream {
    match cat
        .get(EntityKind::Stream, &format!("default:{name}"))
        .expect("get")
    {
        Some(Entity {
            kind: Some(Kind::Stream(s)),
        }) => s,
        other => panic!("{other:?}"),
    }
}

fn update(log: &mut Log<'_>, s: Stream, live: &[u64]) -> Result<u64, CatalogError> {
    log.run(
        Op::Update(Entity {
            kind: Some(Kind::Stream(s)),
        }),
        live,
    )
}

fn move_replica(log: &mut Log<'_>, from: u64, to: u64, live: &[u64]) -> Result<u64, CatalogError> {
    log.run(
        Op::Move(tributary_proto::v1::MoveRequest {
            kind: EntityKind::Stream as i32,
            name: "a".into(),
            node_id: to,
            from_node: from,
        }),
        live,
    )
}

#[test]
fn a_replicated_stream_keeps_its_replicas_on_update_and_changes_them_only_when_asked() {
    let (_d, cat) = open();
    let mut log = Log {
        cat: &cat,
        index: 0,
    };
    for id in 1..=4 {
        log.node(id, &[]);
    }
    let s = log.stream(replicated("a", 3), &[1, 2, 3]).expect("a");
    assert_eq!(s.group_founders, s.replica_nodes);
    let mut changed = s.clone();
    changed.max_msgs = 10;
    changed.replica_nodes.clear();
    changed.group_id = 0;
    update(&mut log, changed.clone(), &[]).expect("update");
    let after = stored(&cat, "a");
    assert_eq!(after.replica_nodes, s.replica_nodes);
    assert_eq!(after.group_id, s.group_id);
    assert_eq!(after.max_msgs, 10);

    // Moving one replica: to a node of the caller's choice, or where placement puts it.
    let spare = (1..=4)
        .find(|n| !s.replica_nodes.contains(n))
        .expect("spare");
    let from = s.replica_nodes[1];
    move_replica(&mut log, from, spare, &[1, 2, 3, 4]).expect("move");
    let moved = stored(&cat, "a");
    assert_eq!(moved.replica_nodes[1], spare);
    assert_eq!(
        (moved.group_id, &moved.group_founders),
        (s.group_id, &s.group_founders)
    );
    let r = move_replica(&mut log, from, 0, &[1, 2, 3, 4]);
    assert!(
        matches!(&r, Err(CatalogError::Invalid { field, .. }) if field == "from_node"),
        "{r:?}"
    );
    let r = move_replica(&mut log, spare, moved.replica_nodes[0], &[1, 2, 3, 4]);
    assert!(
        matches!(&r, Err(CatalogError::Invalid { field, .. }) if field == "node_id"),
        "{r:?}"
    );
    move_replica(&mut log, spare, 0, &[1, 2, 3, 4]).expect("placed by the control plane");
    assert_eq!(stored(&cat, "a").replica_nodes[1], from);

    // 3 → 1 keeps the replica asked for; 1 → 3 places two more beside it.
    let keep = stored(&cat, "a").replica_nodes[2];
    let mut shrink = stored(&cat, "a");
    shrink.replicas = 1;
    shrink.replica_nodes = vec![keep];
    update(&mut log, shrink, &[1, 2, 3, 4]).expect("3 -> 1");
    let one = stored(&cat, "a");
    assert_eq!(
        (one.replica_nodes.clone(), one.owner_node, one.group_id),
        (vec![keep], keep, s.group_id)
    );
    let mut grow = one.clone();
    grow.replicas = 3;
    update(&mut log, grow, &[1, 2, 3, 4]).expect("1 -> 3");
    let three = stored(&cat, "a");
    assert_eq!(three.replica_nodes.len(), 3);
    assert_eq!(three.replica_nodes[0], keep);
    assert_eq!(
        three
            .replica_nodes
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        3
    );

    // A plain stream becomes a group founded by its owner.
    let b = log.stream(replicated("b", 1), &[1, 2, 3, 4]).expect("b");
    assert!(b.replica_nodes.is_empty() && b.owner_node != 0);
    let mut grow = b.clone();
    grow.replicas = 3;
    update(&mut log, grow, &[1, 2, 3, 4]).expect("b 1 -> 3");
    let b3 = stored(&cat, "b");
    assert_eq!(b3.group_founders, vec![b.owner_node]);
    assert_eq!(b3.replica_nodes[0], b.owner_node);
    assert_eq!(b3.replica_nodes.len(), 3);
    assert_ne!(b3.group_id, 0);
}
