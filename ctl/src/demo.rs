//! `tribctl demo`: the showcase on an embedded default, all in this process on loopback: a
//! 3-member control plane and a data node, then JetStream's replication scenario (ORDERS and
//! RETURNS in memory, ARCHIVE on file sourcing both, REPORT on file mirroring ARCHIVE).

use crate::client::ControlPlane;
use crate::cluster_cmds::print_status;
use crate::launcher::in_process;
use crate::launcher::ready::{self, DataNodes};
use crate::output::{self, step};
use crate::stream_report;
use anyhow::{anyhow, Context, Result};
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;
use tributary_proto::v1::{
    entity::Kind, streams_client::StreamsClient, Entity, PublishRequest, StatusRequest,
    StorageType, Stream, StreamInfoRequest, StreamSource,
};

fn stream(name: &str, subjects: &[&str], storage: StorageType) -> Stream {
    Stream {
        name: name.into(),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        storage: storage as i32,
        ..Default::default()
    }
}

fn origin(name: &str) -> StreamSource {
    StreamSource {
        stream: name.into(),
        ..Default::default()
    }
}

async fn create(cp: &ControlPlane, s: Stream) -> Result<()> {
    let e = Entity {
        kind: Some(Kind::Stream(s)),
    };
    let r = cp
        .catalog(|mut c| {
            let e = e.clone();
            async move { c.create(e).await }
        })
        .await?;
    let name = r
        .entity
        .as_ref()
        .map(tributary_control_plane::catalog::entity::name_of)
        .unwrap_or_default();
    println!("created stream {name:<18} revision {}", r.revision);
    Ok(())
}

/// Publishes `n` messages pipelined and checks every ack.
async fn publish(node: &str, subject: &str, body: &str, n: u64) -> Result<()> {
    let mut c = StreamsClient::new(tributary_common::grpc::channel(node)?);
    let reqs: Vec<PublishRequest> = (1..=n)
        .map(|i| PublishRequest {
            subject: subject.into(),
            data: format!("{body} {i}").into_bytes().into(),
            id: i,
            ..Default::default()
        })
        .collect();
    let mut acks = tributary_common::publish::pipelined(&mut c, tokio_stream::iter(reqs)).await?;
    let mut ok = 0;
    while let Some(a) = acks.next().await {
        let a = a?;
        if !a.error.is_empty() {
            return Err(anyhow!("publish to {subject}: {}", a.error));
        }
        ok += 1;
    }
    println!("published {ok} messages to {subject}");
    Ok(())
}

/// Waits until every stream's node answers Info (the catalogue reached the data node).
async fn wait_served(node: &str, names: &[&str]) -> Result<()> {
    let mut c = StreamsClient::new(tributary_common::grpc::channel(node)?);
    let deadline = Instant::now() + Duration::from_secs(10);
    for n in names {
        while c
            .info(StreamInfoRequest {
                stream: n.to_string(),
            })
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                return Err(anyhow!("the data node did not take stream {n} within 10 s"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

pub async fn run(json: bool) -> Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    step("starting a 3-member control plane (raft-rs, RocksDB) and a data node on 127.0.0.1");
    let cluster = in_process::start(dir.path(), 3, 1, |_| {}).await?;
    let addrs: Vec<String> = cluster.members.iter().map(|m| m.addr.to_string()).collect();
    let node = cluster
        .data_nodes
        .first()
        .map(|d| d.addr.to_string())
        .ok_or_else(|| anyhow!("the demo cluster has no data node"))?;
    println!("control plane: {}\ndata node 1:   {node}", addrs.join(", "));
    let cp = ControlPlane::new(&cluster.servers())?;
    // Streams are placed on a registered data node: wait for the registration.
    let no_exits = || Ok(());
    ready::wait(
        &cp,
        1,
        DataNodes::Registered,
        Duration::from_secs(10),
        |_| {},
        no_exits,
    )
    .await?;

    step("creating ORDERS and RETURNS (memory), ARCHIVE (file, sources both), REPORT (file, mirrors ARCHIVE)");
    create(&cp, stream("ORDERS", &["ORDERS.>"], StorageType::Memory)).await?;
    create(&cp, stream("RETURNS", &["RETURNS.>"], StorageType::Memory)).await?;
    let mut archive = stream("ARCHIVE", &[], StorageType::File);
    archive.sources = vec![origin("ORDERS"), origin("RETURNS")];
    create(&cp, archive).await?;
    let mut report = stream("REPORT", &[], StorageType::File);
    report.mirror = Some(origin("ARCHIVE"));
    create(&cp, report).await?;
    // The control plane refuses what could never replicate: a mirror of a missing stream.
    let mut bad = stream("ORDERS2", &[], StorageType::File);
    bad.mirror = Some(origin("NOSUCH"));
    match cp
        .catalog(|mut c| {
            let e = Entity {
                kind: Some(Kind::Stream(bad.clone())),
            };
            async move { c.create(e).await }
        })
        .await
    {
        Err(s) => println!("refused ({:?}): {}", s.code(), s.message()),
        Ok(_) => return Err(anyhow!("a mirror of a missing stream was accepted")),
    }
    wait_served(&node, &["ORDERS", "RETURNS", "ARCHIVE", "REPORT"]).await?;

    step("publishing 100 messages into each origin");
    publish(&node, "ORDERS.new", "ORDER", 100).await?;
    publish(&node, "RETURNS.new", "RETURN", 100).await?;

    step("waiting until ARCHIVE and REPORT hold all 200 with lag 0");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(15);
    let r = loop {
        let r = stream_report::gather(&cp).await?;
        let count = |n: &str| r.streams.iter().find(|s| s.stream == n).map(|s| s.messages);
        let done = count("ARCHIVE") == Some(200)
            && count("REPORT") == Some(200)
            && r.replication.len() == 3
            && r.replication
                .iter()
                .all(|x| x.lag == Some(0) && x.active_ms.is_some());
        if done {
            break r;
        }
        if Instant::now() > deadline {
            stream_report::print(&r);
            return Err(anyhow!("replication did not catch up within 15 s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("caught up in {:?}", started.elapsed());
    let dot = std::env::temp_dir().join("tributary-demo-replication.dot");
    stream_report::write_dot(&r, &dot)?;
    if json {
        output::json(&r)?;
    } else {
        step("tribctl stream report --dot");
        stream_report::print(&r);
        println!("\nwrote the replication graph to {}", dot.display());
        println!(
            "(render it with: dot -Tpng {} -o replication.png)",
            dot.display()
        );
        step("tribctl stream info ARCHIVE (extract)");
        let info = StreamsClient::new(tributary_common::grpc::channel(&node)?)
            .info(StreamInfoRequest {
                stream: "ARCHIVE".into(),
            })
            .await?
            .into_inner();
        stream_report::print_info_blocks(&info.replication);
        step("cluster status");
        let status = cp
            .cluster(|mut c| async move { c.status(StatusRequest {}).await })
            .await?;
        print_status(&status);
    }
    crate::demo_ditto::run(json).await?;
    cluster.shutdown().await;
    Ok(())
}
