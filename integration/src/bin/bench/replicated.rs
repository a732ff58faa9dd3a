//! `bench -- publish --replicas 3`: pipelined publishing to a stream of one replica and to a
//! replicated one, beside each other on the same three data nodes (one member, direct links,
//! cleartext), then leader failover: the leader's node stops while a client publishes through
//! another node, timed until the first publish acknowledged after it.

use anyhow::{anyhow, Result};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tributary_integration::{streams, wait, Cluster, Server};
use tributary_proto::v1::{Entity, PublishRequest};

pub(crate) fn stream(name: &str, replicas: u32) -> Entity {
    streams::replicated(name, replicas)
}

/// The node serving `name`: its leader ("node-ID"), as any node answers.
pub(crate) async fn leader_of(c: &Cluster, name: &str) -> Result<u64> {
    let i = c
        .wait_info(1, name, "a leader", |i| {
            i.cluster.as_ref().is_some_and(|c| !c.leader.is_empty())
        })
        .await?;
    i.cluster
        .and_then(|c| c.leader.strip_prefix("node-").and_then(|n| n.parse().ok()))
        .ok_or_else(|| anyhow!("no leader for {name}"))
}

/// Pipelined publishes of `payload` bytes to `subject` through data node `node`; msgs/s.
pub(crate) async fn pipelined(
    label: &str,
    c: &Cluster,
    node: u64,
    subject: &str,
    messages: u64,
    payload: usize,
) -> Result<f64> {
    let data = bytes::Bytes::from(vec![b'x'; payload]);
    let mut client = c.streams(node)?;
    let (tx, rx) = mpsc::channel::<PublishRequest>(8192);
    let subject = subject.to_string();
    let t = Instant::now();
    let producer = tokio::spawn(async move {
        for id in 1..=messages {
            let req = PublishRequest {
                subject: subject.clone(),
                data: data.clone(),
                id,
                ..Default::default()
            };
            if tx.send(req).await.is_err() {
                break;
            }
        }
    });
    let mut acks =
        tributary_common::publish::pipelined(&mut client, ReceiverStream::new(rx)).await?;
    let mut ok = 0u64;
    while let Some(a) = futures::StreamExt::next(&mut acks).await.transpose()? {
        if a.error.is_empty() {
            ok += 1;
        }
    }
    producer.await?;
    let secs = t.elapsed().as_secs_f64();
    let rate = ok as f64 / secs;
    println!(
        "{:<28} {:>10.0} msgs/s  {:>7.1} MB/s  ({ok} in {secs:.2} s)",
        format!("{label} via node {node}"),
        rate,
        rate * payload as f64 / 1e6
    );
    Ok(rate)
}

pub async fn publish(messages: u64, payload: usize, replicas: u32) -> Result<()> {
    println!(
        "publish: {messages} messages of {payload} B, pipelined, one client, {} data nodes on loopback",
        replicas.max(3)
    );
    let mut c = Cluster::builder("bench-replicas")
        .members(1)
        .data_nodes(u64::from(replicas.max(3)))
        .direct()
        .insecure()
        .start()
        .await?;
    c.create(stream("ONE", 1)).await?;
    c.create(stream("MANY", replicas)).await?;
    let one = leader_of(&c, "default:ONE").await?;
    let leader = leader_of(&c, "default:MANY").await?;
    let r1 = pipelined("R1", &c, one, "ONE.x", messages, payload).await?;
    let label = format!("R{replicas} (to its leader)");
    let rn = pipelined(&label, &c, leader, "MANY.x", messages, payload).await?;
    println!("ratio R{replicas} / R1: {:.0}%", rn / r1 * 100.0);

    // Failover: publish through another node, stop the leader's, time the first ack after.
    let via = (1..=u64::from(replicas.max(3)))
        .find(|k| *k != leader)
        .unwrap_or(1);
    let mut client = c.streams(via)?;
    let one_publish = |client: &mut tributary_proto::v1::streams_client::StreamsClient<_>,
                       i: u64| {
        let req = PublishRequest {
            subject: "MANY.failover".into(),
            data: format!("failover {i}").into_bytes().into(),
            headers: [("Msg-Id".to_string(), format!("failover-{i}"))].into(),
            ..Default::default()
        };
        let mut client = client.clone();
        async move { client.publish(req).await }
    };
    one_publish(&mut client, 0).await?;
    let stopped = Instant::now();
    c.kill(Server::DataNode(leader)).await?;
    let shutdown = stopped.elapsed();
    let mut i = 1;
    let acked = wait::until(
        "a publish acknowledged after the kill",
        Duration::from_secs(30),
        || {
            i += 1;
            let attempt = one_publish(&mut client, i);
            async move { attempt.await.ok().map(|_| ()) }
        },
    )
    .await;
    acked?;
    println!(
        "failover: leader's node stopped (its shutdown took {shutdown:?}); first publish acknowledged {:?} after the stop began",
        stopped.elapsed()
    );
    c.shutdown().await;
    Ok(())
}
