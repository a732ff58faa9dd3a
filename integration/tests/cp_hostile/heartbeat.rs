//! `probe_heartbeat.py`: 300 forged heartbeats with 3 MB of stats each, for made-up node ids,
//! grew a member to 1 GB, never evicted.

use crate::member::{as_node, within, Member};
use anyhow::{ensure, Result};
use tonic::Code;
use tributary_proto::v1::{
    DataNode, EntityKind, HeartbeatRequest, OwnedStats, RegisterRequest, StatusRequest,
};

/// `n` stats entries with names of `name_bytes` bytes.
fn stats(n: usize, name_bytes: usize) -> Vec<OwnedStats> {
    (0..n)
        .map(|i| OwnedStats {
            kind: EntityKind::Well as i32,
            name: format!("{}{i}", "w".repeat(name_bytes)),
            entries: i as u64,
            ..Default::default()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_heartbeats_are_refused_and_only_registered_nodes_are_remembered() -> Result<()> {
    let _one = crate::serial().await;
    let mut m = Member::start(&[]).await?;
    let mut cluster = m.cluster()?;
    let start = m.settled_rss_mib().await?;

    // With no credentials, nobody is a data node: refused before anything is read.
    let err = cluster
        .heartbeat(HeartbeatRequest {
            node_id: 1,
            healthy: true,
            stats: stats(1, 10),
        })
        .await
        .expect_err("an anonymous heartbeat");
    ensure!(
        matches!(err.code(), Code::Unauthenticated | Code::PermissionDenied),
        "{err:?}"
    );

    // The probe, from a data node of the cluster: ~3 MB of stats each, over `limits.max_heartbeat_bytes` (1 MiB).
    let big = stats(3000, 1000);
    for id in 1000..1300 {
        let err = cluster
            .heartbeat(as_node(HeartbeatRequest {
                node_id: id,
                healthy: true,
                stats: big.clone(),
            }))
            .await
            .expect_err("a 3 MB heartbeat");
        ensure!(
            err.code() == Code::InvalidArgument
                && err.message().contains("limits.max_heartbeat_bytes"),
            "{err:?}"
        );
    }
    // Within the limits, but for ids nobody registered: nothing is kept.
    let fits = stats(900, 1000);
    for id in 2000..2100 {
        let err = cluster
            .heartbeat(as_node(HeartbeatRequest {
                node_id: id,
                healthy: true,
                stats: fits.clone(),
            }))
            .await
            .expect_err("an unregistered node");
        ensure!(err.code() == Code::NotFound, "{err:?}");
    }
    ensure!(m.metric("tributary_cp_liveness_nodes").await? == 0.0);

    // A registered node's heartbeats replace each other: one beat is kept.
    cluster
        .register(as_node(RegisterRequest {
            node: Some(DataNode {
                id: 7,
                addr: "127.0.0.1:1".into(),
                capacity: 1,
                tags: vec![],
            }),
        }))
        .await?;
    for _ in 0..100 {
        cluster
            .heartbeat(as_node(HeartbeatRequest {
                node_id: 7,
                healthy: true,
                stats: fits.clone(),
            }))
            .await?;
    }
    ensure!(m.metric("tributary_cp_liveness_nodes").await? == 1.0);
    let status = cluster.status(StatusRequest {}).await?.into_inner();
    let node = status.data_nodes.iter().find(|n| n.id == 7);
    ensure!(
        node.is_some_and(|n| n.up && n.stats.len() == fits.len()),
        "node 7 in {:?}",
        status
            .data_nodes
            .iter()
            .map(|n| (n.id, n.up, n.stats.len()))
            .collect::<Vec<_>>()
    );

    let end = m.settled_rss_mib().await?;
    within(
        "rss growth after 500 forged heartbeats (~1 GB of stats sent), MiB",
        end.saturating_sub(start),
        48,
    )?;
    ensure!(m.alive(), "the member died; log in {}", m.log().display());
    Ok(())
}
