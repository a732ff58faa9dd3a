//! Idle replicated streams hibernate, on data node processes started with the defaults: each
//! node's `/metrics` counts its groups asleep and no Raft message goes between the nodes any
//! more; `kill -9` of a node leading some of them wakes them, each has a new leader, and
//! every stream takes writes again.

use anyhow::{anyhow, ensure, Result};
use std::time::Duration;
use tributary_integration::admin_http::Admin;
use tributary_integration::{streams, wait, Cluster, Server};

const N: usize = 6;

fn name(i: usize) -> String {
    format!("IDLE{i}")
}

/// A sample of an unlabelled series.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

async fn metrics(c: &Cluster, k: u64) -> Result<String> {
    let addr = c
        .addrs(Server::DataNode(k))?
        .admin
        .ok_or_else(|| anyhow!("data node {k} has no admin listener"))?;
    let ca = c.ca_pem();
    let (code, body) = Admin {
        addr,
        ca_pem: Some(&ca),
    }
    .get("/metrics")
    .await?;
    ensure!(code == 200, "/metrics of data node {k} answered {code}");
    Ok(body)
}

/// Raft messages the nodes in `nodes` have sent so far.
async fn raft_messages(c: &Cluster, nodes: &[u64]) -> Result<f64> {
    let mut sum = 0.0;
    for k in nodes {
        let m = metrics(c, *k).await?;
        sum += sample(&m, "tributary_dn_raft_messages_sent_total").unwrap_or(0.0);
    }
    Ok(sum)
}

/// The node leading stream `i`, as data node `ask` answers, once it is not `not`.
async fn leader(c: &Cluster, ask: u64, i: usize, not: Option<u64>) -> Result<u64> {
    let not: Vec<u64> = not.into_iter().collect();
    c.wait_leader_of(ask, &name(i), &not).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_sleep_and_wake_when_a_leaders_node_is_killed() -> Result<()> {
    let mut c = Cluster::builder("r3idle")
        .members(1)
        .data_nodes(3)
        .data_node_processes()
        .tune_data_nodes(|d| d.admin_listen = "127.0.0.1:0".into())
        .start()
        .await?;
    for i in 0..N {
        let n = name(i);
        c.create(streams::replicated(&n, 3)).await?;
        leader(&c, 1, i, None).await?;
        c.publish_n(1, &format!("{n}.x"), "first", 1).await?;
    }
    for k in 1..=3u64 {
        let what = format!("{N} groups asleep on data node {k}");
        wait::until(&what, wait::WAIT, || async {
            let m = metrics(&c, k).await.ok()?;
            let asleep = sample(&m, "tributary_dn_raft_hibernating_groups");
            (asleep == Some(N as f64)).then_some(())
        })
        .await?;
    }
    // Awake, six R3 groups send about 240 heartbeats and answers a second; asleep, none.
    let before = raft_messages(&c, &[1, 2, 3]).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = raft_messages(&c, &[1, 2, 3]).await? - before;
    ensure!(
        sent < N as f64,
        "{sent} Raft messages in 2 s with every group asleep"
    );

    let victim = leader(&c, 1, 0, None).await?;
    c.kill(Server::DataNode(victim)).await?;
    let survivor = if victim == 1 { 2 } else { 1 };
    for i in 0..N {
        let l = leader(&c, survivor, i, Some(victim)).await?;
        ensure!(l != victim, "{} still led by the killed node", name(i));
        c.publish_n(survivor, &format!("{}.x", name(i)), "after", 1)
            .await?;
    }
    c.shutdown().await;
    Ok(())
}
