//! Mirrors and sources under failure: the link to the origin's node blackholed mid-copy (the
//! stall shows, the copy resumes, exactly once), an external origin in another cluster that
//! goes away and comes back, and `kill -9` of the sourcing node mid-copy.

use anyhow::Result;
use std::collections::BTreeMap;
use tributary_integration::streams::{self, caught_up, count, file_stream as stream};
use tributary_integration::{wait, Cluster, Mode, Server::DataNode};
use tributary_proto::v1::streams_client::StreamsClient;
use tributary_proto::v1::{
    entity::Kind, Entity, PublishRequest, Stream, StreamInfoReply, StreamInfoRequest,
    StreamMessage, StreamSource,
};

fn entity(s: Stream) -> Entity {
    Entity {
        kind: Some(Kind::Stream(s)),
    }
}

/// Origin stream → its origin seqs in the order they were stored.
fn by_origin(msgs: &[StreamMessage]) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for m in msgs {
        let origin = m
            .headers
            .get(tributary_common::grpc::ORIGIN_STREAM_HEADER)
            .cloned();
        let seq = m
            .headers
            .get(tributary_common::grpc::ORIGIN_SEQ_HEADER)
            .and_then(|s| s.parse().ok());
        if let (Some(o), Some(s)) = (origin, seq) {
            out.entry(o).or_default().push(s);
        }
    }
    out
}

fn errors(i: &StreamInfoReply) -> String {
    i.replication
        .iter()
        .map(|r| r.error.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_link_blackholed_mid_copy_stalls_then_resumes_exactly_once() -> Result<()> {
    // ~200 B a message, 4 MB in all: at 500 kB/s through the link the copy takes 8 s or more,
    // so it is surely under way when the link goes dark.
    const N: u64 = 20_000;
    let c = Cluster::builder("a").data_nodes(2).start().await?;
    c.create_stream(stream("ORIGIN", &["o.>"]), 1).await?;
    let pad = "p".repeat(180);
    let reqs = (1..=N).map(move |i| PublishRequest {
        subject: format!("o.{}", i % 7),
        data: format!("m {i} {pad}").into_bytes().into(),
        id: i,
        ..Default::default()
    });
    let mut origin = c.streams(1)?;
    let mut acks =
        tributary_common::publish::pipelined(&mut origin, tokio_stream::iter(reqs)).await?;
    let mut acked = 0;
    while let Some(a) = tokio_stream::StreamExt::next(&mut acks).await {
        anyhow::ensure!(a?.error.is_empty(), "a publish failed");
        acked += 1;
    }
    assert_eq!(acked, N);

    // Node 2 reaches node 1 only through the link in front of node 1.
    c.set_links_into(DataNode(1), Mode::Throttle(500_000))?;
    let mut m = stream("M", &[]);
    m.mirror = Some(StreamSource {
        stream: "ORIGIN".into(),
        ..Default::default()
    });
    c.create_stream(m, 2).await?;
    let started = c
        .wait_info(2, "M", "the copy under way", |i| count(i) > 0)
        .await?;
    c.set_links_into(DataNode(1), Mode::Blackhole)?;
    assert!(
        count(&started) < N,
        "the copy finished before the link went dark; slow the link further"
    );

    // No byte and no heartbeat crosses: the worker gives the silent link up and says so.
    let stalled = c
        .wait_info(2, "M", "the stall shown as the mirror's error", |i| {
            errors(i).contains("stall")
        })
        .await?;
    assert!(count(&stalled) < N, "{:?}", stalled.state);
    eprintln!(
        "blackholed at {} of {N} copied; stalled at {}: {}",
        count(&started),
        count(&stalled),
        errors(&stalled)
    );

    c.heal_all()?;
    c.wait_caught_up(2, "M", N).await?;
    let copied = c.messages(2, "M").await?;
    let seqs: Vec<u64> = copied.iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        (1..=N).collect::<Vec<_>>(),
        "every seq once, in order"
    );
    let original = c.messages(1, "ORIGIN").await?;
    assert!(
        copied == original,
        "the mirror differs from its origin (subjects, headers or bytes)"
    );
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_origin_goes_away_shows_the_error_and_recovers() -> Result<()> {
    let a = Cluster::builder("a").start().await?;
    // The other cluster's data node is a real process: killing it cuts every link, and it
    // comes back on another port behind the same link.
    // B takes cleartext: this is about an origin going away, not TLS (`mirror_external.rs`).
    let mut b = Cluster::builder("b")
        .insecure()
        .data_node_processes()
        .start()
        .await?;
    b.create_stream(stream("EXT", &["ext.>"]), 1).await?;
    b.publish_n(1, "ext.in", "e", 100).await?;

    let external = StreamSource {
        stream: "EXT".into(),
        external: b.cp_addr(1)?,
        ..Default::default()
    };
    let mut local = stream("LOCAL", &[]);
    local.sources = vec![external.clone()];
    a.create_stream(local, 1).await?;
    let mut mx = stream("MX", &[]);
    mx.mirror = Some(external);
    a.create_stream(mx, 1).await?;
    a.wait_caught_up(1, "LOCAL", 100).await?;
    let i = a.wait_caught_up(1, "MX", 100).await?;
    assert_eq!(i.replication[0].external, b.cp_addr(1)?);

    // The origin's node goes away: the error shows where users look.
    b.kill(DataNode(1)).await?;
    let i = a
        .wait_info(1, "LOCAL", "an error", |i| {
            i.replication.iter().any(|r| !r.error.is_empty())
        })
        .await?;
    assert!(
        i.replication[0].error.contains("EXT"),
        "{:?}",
        i.replication
    );

    // Back, with more data.
    b.start(DataNode(1)).await?;
    b.publish_n(1, "ext.in", "e2", 50).await?;
    a.wait_caught_up(1, "LOCAL", 150).await?;
    a.wait_info(1, "MX", "seq 150", |i| {
        caught_up(i) && i.state.as_ref().is_some_and(|s| s.last_seq == 150)
    })
    .await?;
    let got = by_origin(&a.messages(1, "LOCAL").await?);
    let got: Vec<(String, Vec<u64>)> = got.into_iter().collect();
    assert_eq!(got.len(), 1, "one origin");
    assert!(got[0].0.ends_with("EXT"), "{}", got[0].0);
    assert_eq!(
        got[0].1,
        (1..=150).collect::<Vec<u64>>(),
        "every message once, in order"
    );
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}

/// The first state of ARCHIVE with messages in it, polled on one connection: a same-node copy
/// is fast, and a poll that connects anew each time can see it only once it is complete.
async fn copying(addr: &str) -> Result<StreamInfoReply> {
    let c = StreamsClient::new(tributary_integration::tls::channel(addr)?);
    wait::until("ARCHIVE to start copying", wait::WAIT, || {
        let r = StreamInfoRequest {
            stream: "ARCHIVE".into(),
        };
        // Clones share the one connection.
        let mut c = c.clone();
        async move {
            let i = c.info(r).await.ok()?.into_inner();
            (count(&i) > 0).then_some(i)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_copy_then_exactly_once() -> Result<()> {
    // Enough that the copy outlasts a few status polls even on a fast machine.
    const N: u64 = 100_000;
    let mut c = Cluster::builder("a").data_node_processes().start().await?;
    c.create_stream(stream("ORDERS", &["ORDERS.>"]), 1).await?;
    c.create_stream(stream("RETURNS", &["RETURNS.>"]), 1)
        .await?;
    c.publish_n(1, "ORDERS.new", "ORDER", N).await?;
    c.publish_n(1, "RETURNS.new", "RETURN", N).await?;

    let mut archive = stream("ARCHIVE", &[]);
    archive.sources = ["ORDERS", "RETURNS"]
        .iter()
        .map(|o| StreamSource {
            stream: o.to_string(),
            ..Default::default()
        })
        .collect();
    c.create(entity(archive)).await?;
    // Kill as soon as copying has started, and again after the restart if it is still going.
    let mut kills = 0;
    let mut mid_copy = 0;
    while kills < 2 {
        let i = copying(&c.data_addr(1)?).await?;
        c.kill(DataNode(1)).await?;
        kills += 1;
        if count(&i) < 2 * N {
            mid_copy += 1;
        }
        c.start(DataNode(1)).await?;
    }
    let i = c.wait_caught_up(1, "ARCHIVE", 2 * N).await?;
    // A same-node copy can finish before the first poll sees it in flight; the exactly-once
    // checks below hold either way, so the timing is reported rather than asserted.
    eprintln!("{mid_copy} of {kills} kills landed mid-copy");
    assert_eq!(i.state.map(|s| s.last_seq), Some(2 * N));
    let got = by_origin(&streams::messages(&c.data_addr(1)?, "ARCHIVE").await?);
    for o in ["default:ORDERS", "default:RETURNS"] {
        assert_eq!(
            got.get(o).map(Vec::as_slice),
            Some((1..=N).collect::<Vec<_>>().as_slice()),
            "{o}: every message once, in order"
        );
    }
    c.shutdown().await;
    Ok(())
}
