//! `bench -- mirror --replicas 3`: one origin copied three ways on three data nodes, each
//! copy the median of `--rounds`: an R1 mirror on its origin's node (read from the node's own
//! storage), an R1 mirror on another node than its origin (every message crosses the network
//! once), and an R3 mirror of an R3 origin (the mirror's leader reads the origin through
//! whichever node leads it and replicates every batch to a quorum before storing it as done).
//! Each copy is timed from its create until its leader holds every message, election included.

use crate::mirror::{fill, median_of, origin};
use crate::replicated::{leader_of, pipelined, stream as replicated_stream};
use anyhow::Result;
use tributary_integration::streams::file_stream;
use tributary_integration::Cluster;
use tributary_proto::v1::Stream;

fn mirror_of(origin_name: &str, name: &str, replicas: u32) -> Stream {
    Stream {
        mirror: Some(origin(origin_name, "")),
        replicas,
        ..file_stream(name, &[])
    }
}

pub async fn mirror(messages: u64, payload: usize, rounds: u32, replicas: u32) -> Result<()> {
    let nodes = u64::from(replicas.max(3));
    println!(
        "mirror: {messages} x {payload} B, {nodes} data nodes on loopback, median of {rounds}"
    );
    let c = Cluster::builder("bench-mirror-replicas")
        .members(1)
        .data_nodes(nodes)
        .direct()
        .insecure()
        .start()
        .await?;
    c.create_stream(file_stream("ORDERS", &["ORDERS.>"]), 1)
        .await?;
    let rate = fill(
        &c.data_addr(1)?,
        &["ORDERS.a", "ORDERS.b"],
        messages,
        payload,
    )
    .await?;
    println!("filled ORDERS (R1, node 1) at {rate:.0} msgs/s");
    let args = (messages, payload, rounds);
    let same = median_of(&c, "mirror R1, same node", args, 1, |r| {
        mirror_of("ORDERS", &format!("SAME{r}"), 1)
    })
    .await?;
    let across = median_of(&c, "mirror R1, across nodes", args, 2, |r| {
        mirror_of("ORDERS", &format!("ACROSS{r}"), 1)
    })
    .await?;

    c.create(replicated_stream("ORDERS3", replicas)).await?;
    let leader = leader_of(&c, "default:ORDERS3").await?;
    let label = format!("filled ORDERS3 (R{replicas})");
    pipelined(&label, &c, leader, "ORDERS3.a", messages, payload).await?;
    let what = format!("mirror R{replicas} of R{replicas}");
    let many = median_of(&c, &what, args, 0, |r| {
        mirror_of("ORDERS3", &format!("MIRROR3_{r}"), replicas)
    })
    .await?;
    println!(
        "ratios: across nodes / same node {:.0}%, R{replicas} / R1 same node {:.0}%",
        across / same * 100.0,
        many / same * 100.0
    );
    c.shutdown().await;
    Ok(())
}
