//! Replicated streams through tribctl, with the servers started as the README says (TLS, the
//! certificates of `certs init`, defaults otherwise): `--replicas 3` on three data nodes, the
//! Cluster Information block of `stream info` and its JetStream JSON, the Cluster column of
//! `stream report` with the leader starred, `stream step-down`, and 2 replicas refused; then
//! `stream edit --replicas` 1 → 3 → 1 and `stream move --from --to` on a live stream.

mod support;

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use support::{certs, data_node_k, member, text, As, DEADLINE};
use tributary_integration::wait;

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

/// `stream info --json` once the stream's leader names `replicas` others (those of `named`
/// when given), all current, and it holds `messages`.
async fn settled(
    admin: &As,
    name: &str,
    replicas: usize,
    named: Option<&[String]>,
    messages: u64,
) -> Result<Value> {
    let what = format!("{name}: {replicas} other replicas, current, {messages} messages");
    let last = std::cell::RefCell::new(String::new());
    let r = wait::until(&what, DEADLINE, || async {
        let out = admin.run(&["--json", "stream", "info", name]).await;
        *last.borrow_mut() = format!("{}{}", text(&out.stdout), text(&out.stderr));
        let js: Value = serde_json::from_str(&text(&out.stdout)).ok()?;
        let reps = js["cluster"]["replicas"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let names: Vec<String> = reps
            .iter()
            .map(|r| r["name"].as_str().unwrap_or_default().to_string())
            .collect();
        (reps.len() == replicas
            && named.is_none_or(|n| n.iter().all(|x| names.contains(x)))
            && reps.iter().all(|r| r["current"] == true)
            && js["state"]["messages"] == messages)
            .then_some(js)
    })
    .await;
    r.with_context(|| format!("last answer: {}", last.borrow()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_change_and_move_through_tribctl() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let pki = certs(dir, 4).await?;
    let cp = member(dir, &pki, &[]).await?;
    let server = cp.addrs.grpc.to_string();
    let mut nodes = Vec::new();
    for k in 1..=4 {
        nodes.push(data_node_k(dir, &pki, &server, k, &[]).await?);
    }
    let admin = As::new(&server, &pki, Some("admin"));
    admin
        .ok(&["cluster", "wait", "--data-nodes", "4", "--timeout", "60s"])
        .await?;
    admin
        .ok(&["stream", "create", "PLAIN", "--subjects", "PLAIN.>"])
        .await?;
    admin.eventually(&["stream", "info", "PLAIN"], None).await?;
    let publish = [
        "stream",
        "publish",
        "PLAIN.new",
        "p {{Count}}",
        "--count",
        "50",
    ];
    admin.ok(&publish).await?;

    admin
        .ok(&["stream", "edit", "PLAIN", "--replicas", "3"])
        .await?;
    let js = settled(&admin, "PLAIN", 2, None, 50).await?;
    let leader = js["cluster"]["leader"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let held: Vec<String> = js["cluster"]["replicas"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| r["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    let follower = held.first().cloned().unwrap_or_default();
    let spare = (1..=4)
        .map(|k| format!("node-{k}"))
        .find(|n| *n != leader && !held.contains(n))
        .unwrap_or_default();
    let id = |n: &str| n.trim_start_matches("node-").to_string();

    admin
        .ok(&[
            "stream",
            "move",
            "PLAIN",
            "--from",
            &id(&follower),
            "--to",
            &id(&spare),
        ])
        .await?;
    admin.ok(&publish).await?;
    let stays: Vec<String> = held.iter().filter(|n| **n != follower).cloned().collect();
    let moved: Vec<String> = stays.into_iter().chain([spare.clone()]).collect();
    settled(&admin, "PLAIN", 2, Some(&moved), 100).await?;

    admin
        .ok(&["stream", "edit", "PLAIN", "--replicas", "1"])
        .await?;
    let js = settled(&admin, "PLAIN", 0, None, 100).await?;
    ensure!(
        js["cluster"]["leader"] == leader.as_str(),
        "the leader's copy is kept: {js}"
    );
    drop(nodes);
    Ok(())
}
