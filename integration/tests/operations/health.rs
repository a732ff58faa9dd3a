//! gRPC health and reflection on both servers: `NOT_SERVING` while a member has no leader and
//! while a data node has no catalogue, `SERVING` once they do; reflection lists the tributary
//! services each listener serves.

use anyhow::Result;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tributary_control_plane::ControlPlaneConfig;
use tributary_data_node::DataNodeConfig;
use tributary_integration::wait;

const ADMIN: &str = "test:admin";

async fn status(addr: SocketAddr, service: &str) -> Option<ServingStatus> {
    let ch = tributary_common::grpc::channel(&addr.to_string()).ok()?;
    let r = HealthClient::new(ch)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .ok()?;
    ServingStatus::try_from(r.into_inner().status).ok()
}

async fn wait_status(addr: SocketAddr, service: &str, want: ServingStatus) -> Result<()> {
    let what = format!("{service:?} on {addr} to be {want:?}");
    wait::until(&what, wait::WAIT, || async move {
        (status(addr, service).await == Some(want)).then_some(())
    })
    .await
}

async fn services(addr: SocketAddr) -> Result<Vec<String>> {
    let ch = tributary_common::grpc::channel(&addr.to_string())?;
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = ServerReflectionClient::new(ch)
        .server_reflection_info(tokio_stream::iter([req]))
        .await?
        .into_inner();
    let mut names = Vec::new();
    while let Some(r) = replies.next().await {
        if let Some(MessageResponse::ListServicesResponse(l)) = r?.message_response {
            names.extend(l.service.into_iter().map(|s| s.name));
        }
    }
    names.sort();
    Ok(names)
}

fn member(id: u64, addrs: &[String], dir: &std::path::Path) -> ControlPlaneConfig {
    let peers: Vec<String> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect();
    ControlPlaneConfig {
        id,
        listen: addrs[id as usize - 1].clone(),
        peers: peers.join(","),
        peer_listen: "127.0.0.1:0".into(),
        data_dir: dir.join(format!("cp-{id}")),
        admin_listen: String::new(),
        insecure: true,
        cluster_secret: "health-secret".into(),
        admin_subjects: vec![ADMIN.into()],
        anonymous_subjects: vec![ADMIN.into()],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_leader_and_the_catalogue() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(TcpListener::bind("127.0.0.1:0").await?);
    }
    let addrs: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.to_string()))
        .collect::<Result<_, _>>()?;
    let mut listeners = listeners.into_iter();
    let first = listeners
        .next()
        .ok_or_else(|| anyhow::anyhow!("no listener"))?;
    // One of three voters: no leader can be elected.
    let m1 = tributary_control_plane::start_on(member(1, &addrs, dir.path()), first).await?;
    let dn = tributary_data_node::start(DataNodeConfig {
        id: 1,
        listen: "127.0.0.1:0".into(),
        control_plane: addrs[0].clone(),
        data_dir: dir.path().join("dn-1"),
        admin_listen: String::new(),
        insecure: true,
        cluster_secret: "health-secret".into(),
        admin_subjects: vec![ADMIN.into()],
        anonymous_subjects: vec![ADMIN.into()],
        ..Default::default()
    })
    .await?;

    let (cp, node) = (m1.addr, dn.addr);
    assert_eq!(status(cp, "").await, Some(ServingStatus::NotServing));
    assert_eq!(
        status(cp, "tributary.v1.Catalog").await,
        Some(ServingStatus::NotServing)
    );
    assert_eq!(
        status(cp, "tributary.v1.Cluster").await,
        Some(ServingStatus::Serving)
    );
    assert_eq!(status(node, "").await, Some(ServingStatus::NotServing));
    assert_eq!(
        status(node, "tributary.v1.Streams").await,
        Some(ServingStatus::NotServing)
    );

    let on_member = services(cp).await?;
    // Raft is listed on the client port for its NodeState (Send and Forward are refused
    // there, naming the peer listener: the transport test).
    for s in [
        "tributary.v1.Admin",
        "tributary.v1.Catalog",
        "tributary.v1.Cluster",
        "tributary.v1.Raft",
        "grpc.health.v1.Health",
    ] {
        assert!(on_member.iter().any(|n| n == s), "{s} not in {on_member:?}");
    }
    let on_node = services(node).await?;
    for s in [
        "tributary.v1.Admin",
        "tributary.v1.Ingest",
        "tributary.v1.Streams",
        "tributary.v1.Wells",
    ] {
        assert!(on_node.iter().any(|n| n == s), "{s} not in {on_node:?}");
    }
    assert!(
        !on_node.iter().any(|n| n == "tributary.v1.Catalog"),
        "{on_node:?}"
    );

    // The other two voters: a leader, then the data node lists its catalogue.
    let mut rest = Vec::new();
    for (i, l) in listeners.enumerate() {
        let id = i as u64 + 2;
        rest.push(tributary_control_plane::start_on(member(id, &addrs, dir.path()), l).await?);
    }
    wait_status(cp, "", ServingStatus::Serving).await?;
    wait_status(cp, "tributary.v1.Catalog", ServingStatus::Serving).await?;
    wait_status(node, "", ServingStatus::Serving).await?;
    wait_status(node, "tributary.v1.Streams", ServingStatus::Serving).await?;

    dn.shutdown().await;
    for m in rest {
        m.shutdown().await;
    }
    m1.shutdown().await;
    Ok(())
}
