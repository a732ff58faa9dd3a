//! A member's gRPC limits (`[grpc]`) as a client meets them: connections beyond
//! `max_connections` are closed and the member stays up; `Watch` streams beyond
//! `max_concurrent_streams` on one connection wait while other connections are served.

use anyhow::{anyhow, Result};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};
use tributary_control_plane::{ControlPlaneConfig, RunningControlPlane};
use tributary_proto::v1::{
    catalog_client::CatalogClient, cluster_client::ClusterClient, entity::Kind, Entity,
    StatusRequest, Stream, WatchRequest,
};

const WAIT: Duration = Duration::from_secs(15);

use tributary_common::wait::until;

/// One insecure member (a credential-less client is admin), elected.
async fn member(
    dir: &std::path::Path,
    tune: impl FnOnce(&mut ControlPlaneConfig),
) -> Result<RunningControlPlane> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mut config = ControlPlaneConfig {
        insecure: true,
        anonymous_subjects: vec!["test:anonymous".into()],
        admin_subjects: vec!["test:anonymous".into()],
        listen: l.local_addr()?.to_string(),
        data_dir: dir.to_path_buf(),
        admin_listen: String::new(),
        ..Default::default()
    };
    tune(&mut config);
    let m = tributary_control_plane::start_on(config, l).await?;
    until("a leader", WAIT, || {
        let led = m.node.state().leader != 0;
        async move { led.then_some(()) }
    })
    .await?;
    Ok(m)
}

async fn connect(m: &RunningControlPlane) -> Result<Channel> {
    Ok(Endpoint::from_shared(format!("http://{}", m.addr))?
        .connect()
        .await?)
}

async fn status(ch: Channel) -> Result<()> {
    ClusterClient::new(ch).status(StatusRequest {}).await?;
    Ok(())
}

fn stream(name: &str) -> Entity {
    Entity {
        kind: Some(Kind::Stream(Stream {
            name: name.into(),
            subjects: vec![format!("{name}.>")],
            ..Default::default()
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_are_refused_and_the_member_stays_up() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let m = member(dir.path(), |c| c.grpc.max_connections = 2).await?;
    let mut held = Vec::new();
    for _ in 0..2 {
        let ch = connect(&m).await?;
        status(ch.clone()).await?;
        held.push(ch);
    }
    for _ in 0..3 {
        let third = async { status(connect(&m).await?).await };
        assert!(third.await.is_err(), "a third connection was served");
    }
    // The member is up: the admitted connections read and write the catalogue.
    CatalogClient::new(held[0].clone())
        .create(stream("ORDERS"))
        .await?;
    status(held[1].clone()).await?;
    held.pop();
    until(
        "a new connection is served once one closed",
        WAIT,
        || async { status(connect(&m).await.ok()?).await.ok() },
    )
    .await?;
    m.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_beyond_max_concurrent_streams_wait_while_others_are_served() -> Result<()> {
    const MAX: usize = 2;
    let dir = tempfile::tempdir()?;
    let m = member(dir.path(), |c| c.grpc.max_concurrent_streams = MAX as u32).await?;
    let crowded = connect(&m).await?;
    // One call first, so the client knows the member's settings (its limit) before the burst:
    // the extra watches then wait in the client (sent before, they would be refused).
    status(crowded.clone()).await?;
    let (tx, mut answers) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..MAX + 3 {
        let (mut c, tx) = (CatalogClient::new(crowded.clone()), tx.clone());
        tokio::spawn(async move {
            let r = c.watch(WatchRequest { from_revision: 0 }).await;
            let _ = tx.send(r.map(tonic::Response::into_inner));
        });
    }
    let mut open = Vec::new();
    while open.len() < MAX {
        let w = tokio::time::timeout(WAIT, answers.recv())
            .await?
            .ok_or_else(|| anyhow!("senders gone"))??;
        open.push(w);
    }
    // Another connection writes; every open watch sees the write, so the member has taken
    // what it was going to from the crowded connection: the others still wait.
    let other = connect(&m).await?;
    CatalogClient::new(other.clone())
        .create(stream("PAYMENTS"))
        .await?;
    for w in &mut open {
        tokio::time::timeout(WAIT, async {
            while let Some(ev) = w.message().await? {
                let named = ev.entity.and_then(|e| match e.kind {
                    Some(Kind::Stream(s)) => Some(s.name),
                    _ => None,
                });
                if named.is_some_and(|n| n.ends_with("PAYMENTS")) {
                    return Ok::<_, tonic::Status>(());
                }
            }
            Err(tonic::Status::aborted("watch ended"))
        })
        .await??;
    }
    if let Ok(answer) = answers.try_recv() {
        panic!("a watch beyond grpc.max_concurrent_streams was answered: {answer:?}");
    }
    status(other).await?;
    // One ends: one waiting watch gets in.
    open.pop();
    tokio::time::timeout(WAIT, answers.recv())
        .await?
        .ok_or_else(|| anyhow!("senders gone"))??;
    drop(open);
    m.shutdown().await;
    Ok(())
}
