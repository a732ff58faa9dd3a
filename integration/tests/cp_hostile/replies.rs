//! Per-client buffers beyond the probes: a `List` or `Status` reply is at most
//! `limits.max_reply_bytes`, registrations at most `limits.max_data_nodes`, and writes
//! waiting for Raft at most `limits.max_inflight_write_bytes` (they queue, none is lost).

use anyhow::{ensure, Result};
use tonic::Code;
use tributary_integration::cluster::CLUSTER_SECRET;
use tributary_integration::entities::stream;
use tributary_integration::Cluster;
use tributary_proto::v1::{
    entity::Kind, DataNode, Entity, EntityKind, HeartbeatRequest, ListRequest, OwnedStats, Policy,
    PolicyEntry, RegisterRequest, StatusRequest,
};

fn policy(name: &str) -> Entity {
    Entity {
        kind: Some(Kind::Policy(Policy {
            name: name.into(),
            entries: vec![PolicyEntry {
                label: "x".into(),
                // ~3.9 KB: 15 subjects near the longest a policy takes.
                subjects: (0..15)
                    .map(|i| format!("i:{i:02}{}", "s".repeat(250)))
                    .collect(),
                resources: vec![],
                ..Default::default()
            }],
        })),
    }
}

/// `msg` as a data node of the (insecure) harness cluster sends it: with the cluster token.
fn as_node<T>(msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Ok(v) = CLUSTER_SECRET.parse() {
        req.metadata_mut()
            .insert(tributary_common::grpc::CLUSTER_TOKEN_HEADER, v);
    }
    req
}

fn list(kind: EntityKind, namespace: &str) -> ListRequest {
    ListRequest {
        kind: kind as i32,
        namespace: namespace.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_status_replies_stay_within_their_bytes_and_say_so() -> Result<()> {
    let _one = crate::serial().await;
    let c = Cluster::builder("replies")
        .data_nodes(0)
        .tune_members(|cfg| {
            cfg.limits.max_reply_bytes = 64 << 10;
            cfg.limits.max_data_nodes = 3;
        })
        .start()
        .await?;
    c.wait_leader().await?;
    let mut cat = c.catalog(1)?;
    for i in 0..30 {
        cat.create(policy(&format!("big:p{i}"))).await?;
    }
    for i in 0..3 {
        cat.create(policy(&format!("small:p{i}"))).await?;
    }
    let err = cat
        .list(list(EntityKind::Policy, ""))
        .await
        .expect_err("120 KB of policies");
    ensure!(
        err.code() == Code::ResourceExhausted
            && err.message().contains("limits.max_reply_bytes")
            && err.message().contains("list one namespace at a time"),
        "{err:?}"
    );
    let small = cat
        .list(list(EntityKind::Policy, "small"))
        .await?
        .into_inner();
    ensure!(small.entities.len() == 3);
    let err = cat
        .list(list(EntityKind::Policy, "big"))
        .await
        .expect_err("namespace big");
    ensure!(err.message().contains("in namespace big"), "{err:?}");

    // Three nodes heartbeating 40 KiB of stats each: the reply carries what fits.
    let mut cluster = c.cluster(1)?;
    let stats: Vec<OwnedStats> = (0..1000)
        .map(|i| OwnedStats {
            kind: EntityKind::Stream as i32,
            name: format!("default:stream-{i:04}-padding-padding"),
            entries: i,
            ..Default::default()
        })
        .collect();
    for id in 1..=3 {
        let node = DataNode {
            id,
            addr: format!("127.0.0.1:{id}"),
            capacity: 1,
            tags: vec![],
        };
        cluster
            .register(as_node(RegisterRequest { node: Some(node) }))
            .await?;
        cluster
            .heartbeat(as_node(HeartbeatRequest {
                node_id: id,
                healthy: true,
                stats: stats.clone(),
            }))
            .await?;
    }
    let status = cluster.status(StatusRequest {}).await?.into_inner();
    let shown: Vec<(u64, usize)> = status
        .data_nodes
        .iter()
        .map(|n| (n.id, n.stats.len()))
        .collect();
    ensure!(shown == vec![(1, 1000), (2, 1), (3, 1)], "{shown:?}");
    let note = &status.data_nodes[1].stats[0].error;
    ensure!(note.contains("limits.max_reply_bytes"), "{note}");
    ensure!(status.data_nodes.iter().all(|n| n.up));

    // A fourth data node is one too many; the registered ones register again freely.
    let fourth = DataNode {
        id: 4,
        addr: "127.0.0.1:4".into(),
        capacity: 1,
        tags: vec![],
    };
    let err = cluster
        .register(as_node(RegisterRequest { node: Some(fourth) }))
        .await
        .expect_err("a fourth node");
    ensure!(
        err.code() == Code::ResourceExhausted && err.message().contains("limits.max_data_nodes"),
        "{err:?}"
    );
    let again = DataNode {
        id: 2,
        addr: "127.0.0.1:2".into(),
        capacity: 1,
        tags: vec![],
    };
    cluster
        .register(as_node(RegisterRequest { node: Some(again) }))
        .await?;
    ensure!(c.member(1)?.node.liveness.held().0 == 3);
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_beyond_the_in_flight_bytes_wait_their_turn_and_all_land() -> Result<()> {
    let _one = crate::serial().await;
    let c = Cluster::builder("inflight")
        .members(3)
        .data_nodes(0)
        // One write at a time may wait for Raft on each member.
        .tune_members(|cfg| {
            cfg.limits.max_inflight_write_bytes = 1;
            // Forty writes in single file on a loaded machine: give each time to wait.
            cfg.request_timeout_ms = 20_000;
        })
        .start()
        .await?;
    let leader = c.wait_leader().await?;
    let follower = c
        .member_ids()
        .into_iter()
        .find(|id| *id != leader)
        .ok_or_else(|| anyhow::anyhow!("no follower"))?;
    let mut writes = Vec::new();
    for i in 0..40 {
        // Half through a follower, which forwards: both members bound what they hold.
        let mut cat = c.catalog(if i % 2 == 0 { leader } else { follower })?;
        writes.push(tokio::spawn(async move {
            cat.create(stream(&format!("S{i}"), &[&format!("s{i}.>")]))
                .await
        }));
    }
    for w in writes {
        w.await??;
    }
    let names = c.names(leader, EntityKind::Stream).await?;
    ensure!(names.len() == 40, "{names:?}");
    c.shutdown().await;
    Ok(())
}
