//! Data-node liveness as every member reports it: three in-process members and a real data
//! node that talks to a follower only. Whichever member an operator asks, `Cluster.Status`
//! shows the serving node up with a recent heartbeat.

use anyhow::{anyhow, Result};
use std::time::Duration;
use tributary_control_plane::{ControlPlaneConfig, RunningControlPlane};
use tributary_data_node::{DataNodeConfig, RunningDataNode};
use tributary_proto::v1::{
    catalog_client::CatalogClient, cluster_client::ClusterClient, entity::Kind,
    streams_client::StreamsClient, DataNodeStatus, Entity, EntityKind, PublishRequest,
    StatusRequest, Stream,
};

/// Long enough that a node is never "down" merely because a slow machine polled late.
const HEARTBEAT_TIMEOUT_MS: u64 = 30_000;

/// Polls `check` until it yields a value, or fails naming `what` after `timeout`.
use tributary_common::wait::until;

/// `n` voters on 127.0.0.1, with an elected leader.
async fn members(n: u64, dir: &std::path::Path) -> Result<Vec<RunningControlPlane>> {
    let mut listeners = Vec::new();
    for _ in 0..n {
        listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await?);
    }
    let peers = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| Ok(format!("{}={}", i + 1, l.local_addr()?)))
        .collect::<Result<Vec<_>>>()?
        .join(",");
    let mut members = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let id = i as u64 + 1;
        let config = ControlPlaneConfig {
            insecure: true,
            cluster_secret: "test-cluster".into(),
            anonymous_subjects: vec!["test:anonymous".into()],
            admin_subjects: vec!["test:anonymous".into()],
            id,
            listen: l.local_addr()?.to_string(),
            peers: peers.clone(),
            data_dir: dir.join(format!("cp-{id}")),
            admin_listen: String::new(),
            heartbeat_timeout_ms: HEARTBEAT_TIMEOUT_MS,
            ..Default::default()
        };
        members.push(tributary_control_plane::start_on(config, l).await?);
    }
    until(
        "a leader every member agrees on",
        Duration::from_secs(15),
        || {
            let views: Vec<u64> = members.iter().map(|m| m.node.state().leader).collect();
            let agreed = views[0] != 0 && views.iter().all(|v| *v == views[0]);
            async move { agreed.then_some(()) }
        },
    )
    .await?;
    Ok(members)
}

/// The address of a member that does not lead: the data node talks to it alone.
fn follower(members: &[RunningControlPlane]) -> Result<String> {
    members
        .iter()
        .find(|m| !m.node.is_leader())
        .map(|m| m.addr.to_string())
        .ok_or_else(|| anyhow!("no follower"))
}

async fn data_node(
    dir: &std::path::Path,
    control_plane: String,
    heartbeat_ms: u64,
) -> Result<RunningDataNode> {
    Ok(tributary_data_node::start(DataNodeConfig {
        insecure: true,
        cluster_secret: "test-cluster".into(),
        anonymous_subjects: vec!["test:anonymous".into()],
        admin_subjects: vec!["test:anonymous".into()],
        id: 1,
        listen: "127.0.0.1:0".into(),
        data_dir: dir.join("data-node"),
        admin_listen: String::new(),
        control_plane,
        heartbeat_interval_ms: heartbeat_ms,
        ..Default::default()
    })
    .await?)
}

/// Data node 1 as each member's `Cluster.Status` reports it (`None` from a member that does
/// not list it yet).
async fn node_1_everywhere(members: &[RunningControlPlane]) -> Vec<Option<DataNodeStatus>> {
    let mut seen = Vec::new();
    for m in members {
        let status = match tributary_common::grpc::channel(&m.addr.to_string()) {
            Ok(ch) => ClusterClient::new(ch).status(StatusRequest {}).await.ok(),
            Err(_) => None,
        };
        seen.push(status.and_then(|s| s.into_inner().data_nodes.into_iter().find(|d| d.id == 1)));
    }
    seen
}

async fn shutdown(dn: RunningDataNode, members: Vec<RunningControlPlane>) {
    dn.shutdown().await;
    for m in members {
        m.shutdown().await;
    }
}

/// The demo asked for status right after the registration, before the first heartbeat, and
/// saw its serving node `down`, heartbeat `never`: registering is a sign of life too.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_just_registered_is_up_on_every_member() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let members = members(3, dir.path()).await?;
    // No heartbeat within the test: only the registration can make the node up.
    let dn = data_node(dir.path(), follower(&members)?, 600_000).await?;
    let views = until(
        "every member to report data node 1 up",
        Duration::from_secs(20),
        || async {
            let views = node_1_everywhere(&members).await;
            views
                .iter()
                .all(|v| v.as_ref().is_some_and(|d| d.up))
                .then_some(views)
        },
    )
    .await?;
    for d in views.into_iter().flatten() {
        assert!(
            d.last_heartbeat_ms_ago < HEARTBEAT_TIMEOUT_MS,
            "heartbeat reported {} ms ago",
            d.last_heartbeat_ms_ago
        );
    }
    shutdown(dn, members).await;
    Ok(())
}

/// Heartbeats sent to a follower reach the leader, and every member reports what they carry.
#[tokio::test(flavor = "multi_thread")]
async fn heartbeats_through_a_follower_show_on_every_member() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let members = members(3, dir.path()).await?;
    let via = follower(&members)?;
    let dn = data_node(dir.path(), via.clone(), 100).await?;
    until(
        "data node 1 to register",
        Duration::from_secs(20),
        || async { node_1_everywhere(&members).await[0].as_ref().map(|_| ()) },
    )
    .await?;
    let orders = Entity {
        kind: Some(Kind::Stream(Stream {
            name: "ORDERS".into(),
            subjects: vec!["ORDERS.>".into()],
            ..Default::default()
        })),
    };
    CatalogClient::new(tributary_common::grpc::channel(&via)?)
        .create(orders)
        .await?;
    let node_addr = dn.addr.to_string();
    until(
        "data node 1 to take a message",
        Duration::from_secs(20),
        || {
            let addr = node_addr.clone();
            async move {
                let mut streams = StreamsClient::new(tributary_common::grpc::channel(&addr).ok()?);
                let publish = PublishRequest {
                    subject: "ORDERS.new".into(),
                    data: b"o".to_vec().into(),
                    ..Default::default()
                };
                streams.publish(publish).await.ok().map(|_| ())
            }
        },
    )
    .await?;
    // Only a heartbeat carries stats: seen on every member, they came through the follower.
    until(
        "every member to report the stream's stats from a heartbeat",
        Duration::from_secs(20),
        || async {
            node_1_everywhere(&members)
                .await
                .iter()
                .all(|v| {
                    v.as_ref().is_some_and(|d| {
                        d.up && d.last_heartbeat_ms_ago < 5_000
                            && d.stats.iter().any(|s| {
                                s.kind == EntityKind::Stream as i32
                                    && s.name == "default:ORDERS"
                                    && s.entries == 1
                            })
                    })
                })
                .then_some(())
        },
    )
    .await?;
    shutdown(dn, members).await;
    Ok(())
}
