//! Mirrors and sources under failure: an external origin in another cluster that goes away
//! and comes back, and `kill -9` of the sourcing node mid-copy (exactly once after restart).

use anyhow::Result;
use std::collections::BTreeMap;
use std::time::Duration;
use tributary_integration::ditto_pair::MiniCluster;
use tributary_integration::stream_cluster::file_stream as stream;
use tributary_integration::stream_cluster::{self, caught_up, count, StreamCluster};
use tributary_proto::v1::streams_client::StreamsClient;
use tributary_proto::v1::{
    entity::Kind, Entity, Stream, StreamInfoReply, StreamInfoRequest, StreamMessage, StreamSource,
};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_origin_goes_away_shows_the_error_and_recovers() -> Result<()> {
    let a = StreamCluster::start(1).await?;
    // The other cluster's data node is a real process, so taking it away cuts every link.
    let mut b = MiniCluster::start(true, |_| {}).await?;
    b.create(Entity {
        kind: Some(Kind::Stream(stream("EXT", &["ext.>"]))),
    })
    .await?;
    let b_addr = b.dn_addr.clone();
    stream_cluster::wait_info(&b_addr, "EXT", "served", |_| true).await?;
    stream_cluster::publish_n(&b_addr, "ext.in", "e", 100).await?;

    let external = StreamSource {
        stream: "EXT".into(),
        external: b.cp_addr.clone(),
        ..Default::default()
    };
    let mut local = stream("LOCAL", &[]);
    local.sources = vec![external.clone()];
    a.create(local, 1).await?;
    let mut mx = stream("MX", &[]);
    mx.mirror = Some(external);
    a.create(mx, 1).await?;
    a.wait_info(1, "LOCAL", "100 from the other cluster", |i| {
        caught_up(i) && count(i) == 100
    })
    .await?;
    let i = a
        .wait_info(1, "MX", "100", |i| caught_up(i) && count(i) == 100)
        .await?;
    assert_eq!(i.replication[0].external, b.cp_addr);

    // The origin's node goes away: the error shows where users look.
    b.kill_dn().await;
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
    b.restart_dn().await?;
    stream_cluster::publish_n(&b_addr, "ext.in", "e2", 50).await?;
    a.wait_info(1, "LOCAL", "150, error cleared", |i| {
        caught_up(i) && count(i) == 150
    })
    .await?;
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
    b.shutdown().await;
    Ok(())
}

/// The first state of ARCHIVE with messages in it, polled on one connection with no pause:
/// a same-node copy is fast, and a slower poll can see it only once it is complete.
async fn copying(addr: &str) -> Result<StreamInfoReply> {
    let mut c = StreamsClient::new(tributary_common::grpc::channel(addr)?);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(i) = c
            .info(StreamInfoRequest {
                stream: "ARCHIVE".into(),
            })
            .await
        {
            let i = i.into_inner();
            if count(&i) > 0 {
                return Ok(i);
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "ARCHIVE never started copying"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_copy_then_exactly_once() -> Result<()> {
    // Enough that the copy outlasts a few status polls even on a fast machine.
    const N: u64 = 100_000;
    let mut c = MiniCluster::start(true, |_| {}).await?;
    let create = |s: Stream| Entity {
        kind: Some(Kind::Stream(s)),
    };
    c.create(create(stream("ORDERS", &["ORDERS.>"]))).await?;
    c.create(create(stream("RETURNS", &["RETURNS.>"]))).await?;
    let addr = c.dn_addr.clone();
    stream_cluster::wait_info(&addr, "RETURNS", "served", |_| true).await?;
    stream_cluster::publish_n(&addr, "ORDERS.new", "ORDER", N).await?;
    stream_cluster::publish_n(&addr, "RETURNS.new", "RETURN", N).await?;

    let mut archive = stream("ARCHIVE", &[]);
    archive.sources = ["ORDERS", "RETURNS"]
        .iter()
        .map(|o| StreamSource {
            stream: o.to_string(),
            ..Default::default()
        })
        .collect();
    c.create(create(archive)).await?;
    // Kill as soon as copying has started, and again after the restart if it is still going.
    let mut kills = 0;
    let mut mid_copy = 0;
    while kills < 2 {
        let i = copying(&addr).await?;
        c.kill_dn().await;
        kills += 1;
        if count(&i) < 2 * N {
            mid_copy += 1;
        }
        c.restart_dn().await?;
    }
    let i = stream_cluster::wait_info(&addr, "ARCHIVE", "all copied", |i| {
        caught_up(i) && count(i) == 2 * N
    })
    .await?;
    // A same-node copy can finish before the first poll sees it in flight; the exactly-once
    // checks below hold either way, so the timing is reported rather than asserted.
    eprintln!("{mid_copy} of {kills} kills landed mid-copy");
    assert_eq!(i.state.map(|s| s.last_seq), Some(2 * N));
    let got = by_origin(&stream_cluster::messages(&addr, "ARCHIVE").await?);
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
