//! A 3- and 5-member control plane in-process on 127.0.0.1: elections, forwarding, failover,
//! catch-up by snapshot, partitions, membership changes, watch, validation.

use std::time::Duration;
use tonic::Code;
use tributary_integration::{wait, CpCluster};
use tributary_proto::v1::{
    entity::Kind, Entity, EntityKind, EntityRef, ListRequest, MemberRequest, StatusRequest, Stream,
    StreamSource, Target, WatchRequest, Well,
};

const T: Duration = Duration::from_secs(15);

fn well(name: &str, tags: &[&str]) -> Entity {
    Entity {
        kind: Some(Kind::Well(Well {
            name: name.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        })),
    }
}

fn stream(name: &str, subjects: &[&str]) -> Entity {
    Entity {
        kind: Some(Kind::Stream(Stream {
            name: name.into(),
            subjects: subjects.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        })),
    }
}

async fn list_names(c: &CpCluster, member: u64, kind: EntityKind) -> anyhow::Result<Vec<String>> {
    let r = c
        .catalog(member)?
        .list(ListRequest {
            kind: kind as i32,
            namespace: String::new(),
        })
        .await?
        .into_inner();
    Ok(r.entities
        .iter()
        .map(tributary_control_plane::catalog::entity::name_of)
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_any_member_reach_every_member() -> anyhow::Result<()> {
    let c = CpCluster::start(3, |_| {}).await?;
    let leader = c.leader(T).await?;
    let mut last = 0;
    for id in c.ids() {
        let r = c
            .catalog(id)?
            .create(well(&format!("acme:w{id}"), &[&format!("t{id}")]))
            .await?
            .into_inner();
        assert!(
            r.revision > last,
            "revision must grow: {} after {last}",
            r.revision
        );
        last = r.revision;
    }
    for id in c.ids() {
        assert_eq!(
            list_names(&c, id, EntityKind::Well).await?,
            vec!["acme:w1", "acme:w2", "acme:w3"],
            "member {id}"
        );
    }
    // Tags were created with cluster-wide ids, the same on every member.
    let tags = list_names(&c, leader, EntityKind::Tag).await?;
    assert_eq!(tags, vec!["t1", "t2", "t3"]);
    let applied = c.members[&leader].node.catalogue.applied_index();
    c.wait_applied(applied, T).await?;
    let exports = c.exports()?;
    assert!(
        exports.windows(2).all(|w| w[0].1 == w[1].1),
        "catalogues differ between members"
    );
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_loss_keeps_acknowledged_writes_and_restart_catches_up_by_snapshot(
) -> anyhow::Result<()> {
    let mut c = CpCluster::start(3, |cfg| cfg.raft.snapshot_entries = 20).await?;
    let leader = c.leader(T).await?;
    let follower = c.ids().into_iter().find(|id| *id != leader).unwrap_or(1);
    let mut acked = Vec::new();
    for i in 0..10 {
        let name = format!("s{i}");
        c.catalog(follower)?
            .create(stream(&name, &[&format!("a{i}.>")]))
            .await?;
        acked.push(format!("default:{name}"));
    }
    c.kill(leader).await;
    let new_leader = c.leader(T).await?;
    assert_ne!(new_leader, leader);
    // Writes are accepted again, and enough of them to compact the log past the old leader.
    for i in 10..60 {
        let name = format!("s{i}");
        c.catalog(new_leader)?
            .create(stream(&name, &[&format!("a{i}.>")]))
            .await?;
        acked.push(format!("default:{name}"));
    }
    acked.sort();
    c.restart(leader).await?;
    let target = c.members[&new_leader].node.catalogue.applied_index();
    c.wait_applied(target, T).await?;
    let mut got = list_names(&c, leader, EntityKind::Stream).await?;
    got.sort();
    assert_eq!(got, acked, "the restarted member lost or invented writes");
    let first = c.members[&new_leader].node.log_first_index();
    assert!(
        first > 11,
        "the log should have been compacted (first index {first})"
    );
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minority_partition_takes_no_writes_and_rejoins() -> anyhow::Result<()> {
    let c = CpCluster::start(3, |cfg| cfg.request_timeout_ms = 1_500).await?;
    let old = c.leader(T).await?;
    c.faults.isolate(old, &c.ids());
    let majority: Vec<u64> = c.ids().into_iter().filter(|i| *i != old).collect();
    let new = wait::until("a leader in the majority", T, || async {
        let l = c.members[&majority[0]].node.state().leader;
        (l != 0 && l != old).then_some(l)
    })
    .await?;
    let err = c
        .catalog(old)?
        .create(well("acme:lost", &[]))
        .await
        .expect_err("minority accepted a write");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    c.catalog(new)?.create(well("acme:kept", &[])).await?;
    c.faults.heal();
    let applied = c.members[&new].node.catalogue.applied_index();
    c.wait_applied(applied, T).await?;
    for id in c.ids() {
        assert_eq!(
            list_names(&c, id, EntityKind::Well).await?,
            vec!["acme:kept"],
            "member {id}"
        );
    }
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_added_and_removed_at_runtime() -> anyhow::Result<()> {
    let mut c = CpCluster::start(3, |_| {}).await?;
    let leader = c.leader(T).await?;
    c.catalog(leader)?.create(well("acme:before", &[])).await?;
    let addr = c.start_joiner(4).await?;
    let r = c
        .cluster(1)?
        .add_member(MemberRequest {
            id: 4,
            addr: addr.to_string(),
        })
        .await?
        .into_inner();
    assert!(r.members.iter().any(|m| m.id == 4));
    // The new member gets the catalogue (by snapshot: it has no log of the bootstrap).
    wait::until("member 4 sees the catalogue", T, || async {
        c.members[&4]
            .node
            .catalogue
            .get(EntityKind::Well, "acme:before")
            .ok()
            .flatten()
    })
    .await?;
    c.cluster(2)?
        .remove_member(MemberRequest {
            id: 4,
            addr: String::new(),
        })
        .await?;
    wait::until("member 4 removed", T, || async {
        (c.members[&leader].node.state().voters.len() == 3).then_some(())
    })
    .await?;
    c.kill(4).await;
    // With one of three down, removing another live member would leave no quorum.
    let leader = c.leader(T).await?;
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|i| *i != leader).collect();
    c.kill(others[0]).await;
    wait::until(
        "the leader to see the stopped member unreachable",
        T,
        || async { (!c.members[&leader].node.peers.is_reachable(others[0])).then_some(()) },
    )
    .await?;
    let err = c
        .cluster(leader)?
        .remove_member(MemberRequest {
            id: others[1],
            addr: String::new(),
        })
        .await
        .expect_err("removal leaving no quorum was accepted");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_members_keep_working_with_two_down() -> anyhow::Result<()> {
    let mut c = CpCluster::start(5, |_| {}).await?;
    let leader = c.leader(T).await?;
    let down: Vec<u64> = c
        .ids()
        .into_iter()
        .filter(|i| *i != leader)
        .take(2)
        .collect();
    for id in &down {
        c.kill(*id).await;
    }
    let up: Vec<u64> = c.members.keys().copied().collect();
    for (i, id) in up.iter().enumerate() {
        c.catalog(*id)?
            .create(stream(&format!("five{i}"), &[&format!("five{i}")]))
            .await?;
    }
    assert_eq!(list_names(&c, up[0], EntityKind::Stream).await?.len(), 3);
    let status = c
        .cluster(up[1])?
        .status(StatusRequest {})
        .await?
        .into_inner();
    assert_eq!(status.members.len(), 5);
    assert_eq!(status.members.iter().filter(|m| !m.reachable).count(), 2);
    assert_eq!(
        status.members.iter().filter(|m| m.role == "leader").count(),
        1
    );
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_every_change_and_reports_compacted_revisions() -> anyhow::Result<()> {
    let c = CpCluster::start(1, |cfg| cfg.raft.max_watch_events = 5).await?;
    c.leader(T).await?;
    let mut cat = c.catalog(1)?;
    let mut watch = cat
        .watch(WatchRequest { from_revision: 0 })
        .await?
        .into_inner();
    cat.create(well("acme:a", &["x"])).await?;
    let first = watch
        .message()
        .await?
        .ok_or_else(|| anyhow::anyhow!("watch ended"))?;
    assert_eq!(first.revision, 1);
    let mut kinds = vec![first.kind];
    while kinds.len() < 3 {
        kinds.push(
            watch
                .message()
                .await?
                .ok_or_else(|| anyhow::anyhow!("watch ended"))?
                .kind,
        );
    }
    kinds.sort();
    // One revision: the namespace, the tag and the well.
    assert_eq!(
        kinds,
        vec![
            EntityKind::Well as i32,
            EntityKind::Tag as i32,
            EntityKind::Namespace as i32
        ]
    );
    cat.delete(EntityRef {
        kind: EntityKind::Well as i32,
        name: "acme:a".into(),
    })
    .await?;
    let del = watch
        .message()
        .await?
        .ok_or_else(|| anyhow::anyhow!("watch ended"))?;
    assert_eq!((del.revision, del.r#type), (2, 1));
    for i in 0..10 {
        cat.create(stream(&format!("w{i}"), &[&format!("w{i}")]))
            .await?;
    }
    let err = cat
        .watch(WatchRequest { from_revision: 1 })
        .await
        .expect_err("compacted revision accepted");
    assert_eq!(err.code(), Code::OutOfRange);
    assert!(err.message().contains("list again"), "{}", err.message());
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_the_field_named_and_changes_nothing() -> anyhow::Result<()> {
    let c = CpCluster::start(3, |_| {}).await?;
    let leader = c.leader(T).await?;
    let mut cat = c.catalog(leader)?;
    cat.create(stream("ORDERS", &["ORDERS.>"])).await?;
    let before = c.members[&leader].node.catalogue.revision();
    let target = |name: &str, ep: &str| Entity {
        kind: Some(Kind::Target(Target {
            name: name.into(),
            cleartext_endpoints: vec![ep.into()],
            ingest_secret: "s".into(),
            ..Default::default()
        })),
    };
    let mirror_and_source = Entity {
        kind: Some(Kind::Stream(Stream {
            name: "M".into(),
            mirror: Some(StreamSource {
                stream: "ORDERS".into(),
                ..Default::default()
            }),
            sources: vec![StreamSource {
                stream: "ORDERS".into(),
                ..Default::default()
            }],
            ..Default::default()
        })),
    };
    let cases: Vec<(Entity, Code, &str)> = vec![
        (well("bad name!", &[]), Code::InvalidArgument, "name"),
        (
            stream("ORDERS", &["ORDERS.x"]),
            Code::AlreadyExists,
            "ORDERS",
        ),
        (
            stream("DUP", &["ORDERS.new"]),
            Code::InvalidArgument,
            "subjects",
        ),
        (stream("BAD", &["a..b"]), Code::InvalidArgument, "subjects"),
        (mirror_and_source, Code::InvalidArgument, "mirror"),
        (
            target("t", "nohost"),
            Code::InvalidArgument,
            "cleartext_endpoints",
        ),
        (
            Entity {
                kind: Some(Kind::Well(Well {
                    name: "w".into(),
                    ditto_targets: vec!["nope".into()],
                    ..Default::default()
                })),
            },
            Code::NotFound,
            "nope",
        ),
        (
            Entity {
                kind: Some(Kind::Stream(Stream {
                    name: "S".into(),
                    mirror: Some(StreamSource {
                        stream: "GHOST".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })),
            },
            Code::NotFound,
            "GHOST",
        ),
    ];
    for (e, code, needle) in cases {
        let err = cat.create(e.clone()).await.expect_err("bad input accepted");
        assert_eq!(err.code(), code, "{e:?}: {}", err.message());
        assert!(
            err.message().contains(needle),
            "{:?} should name {needle}",
            err.message()
        );
    }
    // A cycle of mirrors: A mirrors ORDERS… then ORDERS cannot come to copy from A.
    cat.create(Entity {
        kind: Some(Kind::Stream(Stream {
            name: "A".into(),
            mirror: Some(StreamSource {
                stream: "ORDERS".into(),
                ..Default::default()
            }),
            ..Default::default()
        })),
    })
    .await?;
    let cyc = Entity {
        kind: Some(Kind::Stream(Stream {
            name: "ORDERS".into(),
            sources: vec![StreamSource {
                stream: "A".into(),
                ..Default::default()
            }],
            ..Default::default()
        })),
    };
    let err = cat.update(cyc).await.expect_err("cycle accepted");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("cycle"), "{}", err.message());
    assert_eq!(
        c.members[&leader].node.catalogue.revision(),
        before + 1,
        "rejected writes changed the catalogue"
    );
    let get = cat
        .get(EntityRef {
            kind: EntityKind::Stream as i32,
            name: "ORDERS".into(),
        })
        .await?
        .into_inner();
    let Some(Kind::Stream(s)) = get.entity.and_then(|e| e.kind) else {
        anyhow::bail!("not a stream")
    };
    assert_eq!(s.subjects, vec!["ORDERS.>"]);
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_secrets_are_shown_only_to_holders_of_the_cluster_secret() -> anyhow::Result<()> {
    let c = CpCluster::start(1, |cfg| cfg.cluster_secret = "cluster-s3cret".into()).await?;
    c.leader(T).await?;
    let t = Entity {
        kind: Some(Kind::Target(Target {
            name: "dr".into(),
            cleartext_endpoints: vec!["127.0.0.1:4023".into()],
            ingest_secret: "hush".into(),
            ..Default::default()
        })),
    };
    let created = c.catalog(1)?.create(t).await?.into_inner();
    let secret_of = |e: Option<Entity>| match e.and_then(|e| e.kind) {
        Some(Kind::Target(t)) => t.ingest_secret,
        _ => String::new(),
    };
    assert_eq!(secret_of(created.entity), "<redacted>");
    let get = |token: &'static str| {
        let mut req = tonic::Request::new(EntityRef {
            kind: EntityKind::Target as i32,
            name: "dr".into(),
        });
        req.metadata_mut().insert(
            tributary_common::grpc::CLUSTER_TOKEN_HEADER,
            tonic::metadata::MetadataValue::from_static(token),
        );
        req
    };
    assert_eq!(
        secret_of(c.catalog(1)?.get(get("wrong")).await?.into_inner().entity),
        "<redacted>"
    );
    assert_eq!(
        secret_of(
            c.catalog(1)?
                .get(get("cluster-s3cret"))
                .await?
                .into_inner()
                .entity
        ),
        "hush"
    );
    // An update that leaves the secret out (or redacted) keeps it.
    let mut t = Target {
        name: "dr".into(),
        cleartext_endpoints: vec!["127.0.0.1:4024".into()],
        ingest_secret: "<redacted>".into(),
        ..Default::default()
    };
    c.catalog(1)?
        .update(Entity {
            kind: Some(Kind::Target(t.clone())),
        })
        .await?;
    assert_eq!(
        secret_of(
            c.catalog(1)?
                .get(get("cluster-s3cret"))
                .await?
                .into_inner()
                .entity
        ),
        "hush"
    );
    t.ingest_secret = "new".into();
    c.catalog(1)?
        .update(Entity {
            kind: Some(Kind::Target(t)),
        })
        .await?;
    assert_eq!(
        secret_of(
            c.catalog(1)?
                .get(get("cluster-s3cret"))
                .await?
                .into_inner()
                .entity
        ),
        "new"
    );
    c.shutdown().await;
    Ok(())
}
