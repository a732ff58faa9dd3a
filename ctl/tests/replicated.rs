//! Replicated streams through tribctl, with the servers started as the README says (TLS, the
//! certificates of `certs init`, defaults otherwise): `--replicas 3` on three data nodes, the
//! Cluster Information block of `stream info` and its JetStream JSON, the Cluster column of
//! `stream report` with the leader starred, `stream step-down`, and 2 replicas refused.

mod support;

use anyhow::{ensure, Result};
use serde_json::Value;
use support::{certs, data_node_k, member, text, As};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_three_replicas_through_tribctl() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let pki = certs(dir, 3).await?;
    let cp = member(dir, &pki, &[]).await?;
    let server = cp.addrs.grpc.to_string();
    let mut nodes = Vec::new();
    for k in 1..=3 {
        let zone = format!("az:{k}");
        nodes.push(data_node_k(dir, &pki, &server, k, &["--tag".into(), zone]).await?);
    }
    let admin = As::new(&server, &pki, Some("admin"));
    admin
        .ok(&["cluster", "wait", "--data-nodes", "3", "--timeout", "60s"])
        .await?;

    let two = admin
        .run(&[
            "stream",
            "create",
            "TWO",
            "--subjects",
            "TWO.>",
            "--replicas",
            "2",
        ])
        .await;
    ensure!(!two.status.success(), "2 replicas accepted");
    ensure!(
        text(&two.stderr).contains("quorum"),
        "{}",
        text(&two.stderr)
    );

    admin
        .ok(&[
            "stream",
            "create",
            "ORDERS",
            "--subjects",
            "ORDERS.>",
            "--replicas",
            "3",
            "--unique-tag",
            "az:",
        ])
        .await?;
    // Served once its replicas know the stream and have elected a leader.
    admin
        .eventually(&["stream", "info", "ORDERS"], None)
        .await?;
    let out = admin
        .ok(&[
            "stream",
            "publish",
            "ORDERS.new",
            "order {{Count}}",
            "--count",
            "100",
        ])
        .await?;
    ensure!(out.contains("published 100 of 100"), "{out}");

    let info = admin.ok(&["stream", "info", "ORDERS"]).await?;
    ensure!(info.contains("Cluster Information"), "{info}");
    ensure!(info.contains("Leader: node-"), "{info}");
    ensure!(info.matches("Replica: node-").count() == 2, "{info}");

    let js: Value =
        serde_json::from_str(&admin.ok(&["--json", "stream", "info", "ORDERS"]).await?)?;
    let leader = js["cluster"]["leader"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ensure!(leader.starts_with("node-"), "{js}");
    ensure!(
        js["cluster"]["replicas"].as_array().map(Vec::len) == Some(2),
        "{js}"
    );
    ensure!(js["state"]["messages"] == 100, "{js}");

    let report = admin.ok(&["stream", "report"]).await?;
    let starred = format!("{leader}*");
    ensure!(report.contains(&starred), "{report}");
    for k in 1..=3 {
        ensure!(report.contains(&format!("node-{k}")), "{report}");
    }

    let down = admin
        .ok(&["--json", "stream", "step-down", "ORDERS"])
        .await?;
    let down: Value = serde_json::from_str(&down)?;
    let new_leader = down["leader"].as_str().unwrap_or_default();
    ensure!(
        new_leader.starts_with("node-") && new_leader != leader,
        "{down}"
    );
    let report = admin.ok(&["--json", "stream", "report"]).await?;
    ensure!(report.contains(&format!("{new_leader}*")), "{report}");

    // Node 1 (the stream's owner_node, where tribctl went first) goes: tribctl reaches the
    // stream through another replica, which forwards to whichever node leads.
    drop(nodes.remove(0));
    let js = admin
        .eventually(&["--json", "stream", "info", "ORDERS"], None)
        .await?;
    let js: Value = serde_json::from_str(&js)?;
    ensure!(js["cluster"]["leader"] != "node-1", "{js}");
    admin
        .ok(&[
            "stream",
            "publish",
            "ORDERS.new",
            "late {{Count}}",
            "--count",
            "10",
        ])
        .await?;
    let js: Value =
        serde_json::from_str(&admin.ok(&["--json", "stream", "info", "ORDERS"]).await?)?;
    ensure!(js["state"]["messages"] == 110, "{js}");
    drop(nodes);
    Ok(())
}
