//! The seed's scenario with replicated streams (issue 13): ORDERS and RETURNS at 3 replicas,
//! ARCHIVE at 3 sourcing both, REPORT at 1 mirroring ARCHIVE, on 3 data nodes. ARCHIVE's
//! source workers run on its leader and their origin progress is part of its replicated
//! state: when that leader goes, the new one resumes the copies exactly once.

use anyhow::{anyhow, Result};
use std::collections::HashSet;
use tributary_common::grpc::{ORIGIN_SEQ_HEADER, ORIGIN_STREAM_HEADER};
use tributary_data_node::storage::streams::RawMessage;
use tributary_integration::streams::{caught_up, count, file_stream};
use tributary_integration::{wait, Cluster, Server};
use tributary_proto::v1::{entity::Kind, Entity, Stream, StreamInfoReply, StreamSource};

fn origin(name: &str) -> StreamSource {
    StreamSource {
        stream: name.into(),
        ..Default::default()
    }
}

fn entity(s: Stream) -> Entity {
    Entity {
        kind: Some(Kind::Stream(s)),
    }
}

fn leader(i: &StreamInfoReply) -> Option<u64> {
    i.cluster
        .as_ref()?
        .leader
        .strip_prefix("node-")?
        .parse()
        .ok()
}

/// Every replica of ARCHIVE on the running nodes holds `n` messages, the same ones, each
/// origin message once.
async fn archive_replicas(c: &Cluster, nodes: &[u64], n: u64) -> Result<Vec<RawMessage>> {
    let mut first: Option<Vec<RawMessage>> = None;
    for k in nodes {
        let s = c
            .data_node(*k)?
            .node
            .stream("default:ARCHIVE")
            .ok_or_else(|| anyhow!("data node {k} holds no ARCHIVE"))?;
        wait::until(
            &format!("ARCHIVE on node {k} at {n}"),
            wait::WAIT,
            || async { (s.state().messages == n).then_some(()) },
        )
        .await?;
        let msgs = s.read(1, "", usize::MAX)?.0;
        match &first {
            None => first = Some(msgs),
            Some(f) => assert_eq!(*f, msgs, "ARCHIVE on node {k} differs"),
        }
    }
    let msgs = first.unwrap_or_default();
    let mut seen = HashSet::new();
    for m in &msgs {
        let v = m.decode()?;
        let from = (
            v.headers.get(ORIGIN_STREAM_HEADER).cloned(),
            v.headers.get(ORIGIN_SEQ_HEADER).cloned(),
        );
        assert!(seen.insert(from.clone()), "{from:?} copied twice");
    }
    Ok(msgs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_scenario_with_replicated_streams_survives_archives_leader() -> Result<()> {
    let mut c = Cluster::builder("seed3")
        .members(1)
        .data_nodes(3)
        .start()
        .await?;
    for (name, subject) in [("ORDERS", "ORDERS.>"), ("RETURNS", "RETURNS.>")] {
        c.create(entity(Stream {
            replicas: 3,
            ..file_stream(name, &[subject])
        }))
        .await?;
    }
    c.create(entity(Stream {
        replicas: 3,
        sources: vec![origin("ORDERS"), origin("RETURNS")],
        ..file_stream("ARCHIVE", &[])
    }))
    .await?;
    c.create(entity(Stream {
        replicas: 1,
        mirror: Some(origin("ARCHIVE")),
        ..file_stream("REPORT", &[])
    }))
    .await?;
    c.create(entity(Stream {
        replicas: 3,
        mirror: Some(origin("ORDERS")),
        ..file_stream("MIRROR3", &[])
    }))
    .await?;
    c.wait_info(1, "ORDERS", "a leader", |i| leader(i).is_some())
        .await?;
    c.wait_info(1, "RETURNS", "a leader", |i| leader(i).is_some())
        .await?;
    c.publish_n(1, "ORDERS.new", "ORDER", 100).await?;
    c.publish_n(2, "RETURNS.new", "RETURN", 100).await?;
    let a = c
        .wait_info(1, "ARCHIVE", "200 messages, lag 0", |i| {
            count(i) == 200 && caught_up(i)
        })
        .await?;
    c.wait_info(1, "REPORT", "200 messages, lag 0", |i| {
        count(i) == 200 && caught_up(i)
    })
    .await?;
    archive_replicas(&c, &[1, 2, 3], 200).await?;

    // ARCHIVE's leader goes: its source workers move to the new leader and resume.
    let gone = leader(&a).ok_or_else(|| anyhow!("ARCHIVE has no leader"))?;
    c.kill(Server::DataNode(gone)).await?;
    let alive: Vec<u64> = (1..=3).filter(|k| *k != gone).collect();
    let ask = alive[0];
    c.wait_info(ask, "ORDERS", "a leader", |i| {
        leader(i).is_some_and(|l| l != gone)
    })
    .await?;
    c.publish_n(ask, "ORDERS.new", "ORDER after", 50).await?;
    c.wait_info(ask, "ARCHIVE", "250 messages, lag 0", |i| {
        count(i) == 250 && caught_up(i) && leader(i).is_some_and(|l| l != gone)
    })
    .await?;
    archive_replicas(&c, &alive, 250).await?;
    c.start(Server::DataNode(gone)).await?;
    archive_replicas(&c, &[1, 2, 3], 250).await?;

    // A replicated mirror: the origin's seqs on every replica.
    c.wait_info(ask, "MIRROR3", "150 messages, lag 0", |i| {
        count(i) == 150 && caught_up(i)
    })
    .await?;
    for k in 1..=3u64 {
        let s = c
            .data_node(k)?
            .node
            .stream("default:MIRROR3")
            .ok_or_else(|| anyhow!("data node {k} holds no MIRROR3"))?;
        wait::until(&format!("MIRROR3 on node {k}"), wait::WAIT, || async {
            (s.state().last_seq == 150).then_some(())
        })
        .await?;
        let seqs: Vec<u64> = s.read(1, "", usize::MAX)?.0.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=150).collect::<Vec<_>>(), "MIRROR3 on node {k}");
    }
    c.shutdown().await;
    Ok(())
}
