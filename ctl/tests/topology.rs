//! `tribctl topology` on a running cluster: the reference scenario's streams and a ditto
//! edge to another cluster, as JSON (every vertex and edge, each edge's lag once caught up),
//! as a Graphviz file, and as the table of edges.

use anyhow::{ensure, Result};
use serde_json::Value;
use std::process::Command;
use tributary_integration::{scenario, wait, Cluster};

const TRIBCTL: &str = env!("CARGO_BIN_EXE_tribctl");

/// tribctl against `server` (cleartext: the harness's insecure cluster takes anyone as admin).
async fn tribctl(server: &str, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new(TRIBCTL);
    cmd.arg("--server").arg(server).args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TRIBUTARY_") {
            cmd.env_remove(k);
        }
    }
    let out = tokio::task::spawn_blocking(move || cmd.output()).await??;
    ensure!(
        out.status.success(),
        "tribctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn edge<'a>(t: &'a Value, from: &str, to: &str) -> Option<&'a Value> {
    t["edges"]
        .as_array()?
        .iter()
        .find(|e| e["from"] == from && e["to"] == to)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_shows_streams_and_ditto_as_json_dot_and_table() -> Result<()> {
    let dst = Cluster::builder("dst").insecure().start().await?;
    let src = Cluster::builder("src").insecure().start().await?;
    scenario::create(&src, &dst, 1, 20).await?;
    src.publish_n(1, "ORDERS.new", "order", 30).await?;
    src.publish_n(1, "RETURNS.new", "return", 10).await?;
    let server = src.cp_addr(1)?;

    // Once copied: ARCHIVE holds 40, REPORT mirrors them, every lag 0.
    let t: Value = wait::until("every edge at lag 0", wait::WAIT, || async {
        let out = tribctl(&server, &["--json", "topology"]).await.ok()?;
        let t: Value = serde_json::from_str(&out).ok()?;
        let edges = t["edges"].as_array()?;
        (edges.len() == 4 && edges.iter().all(|e| e["lag"] == 0)).then_some(t)
    })
    .await?;
    let ids: Vec<&str> = t["vertices"]
        .as_array()
        .map(|v| v.iter().filter_map(|x| x["id"].as_str()).collect())
        .unwrap_or_default();
    for name in scenario::STREAMS {
        ensure!(ids.contains(&name), "{name} missing from {ids:?}");
    }
    ensure!(
        ids.contains(&"well/logs") && ids.contains(&"target/dr"),
        "{ids:?}"
    );
    for (from, to, kind) in [
        ("ORDERS", "ARCHIVE", "source"),
        ("RETURNS", "ARCHIVE", "source"),
        ("ARCHIVE", "REPORT", "mirror"),
        ("well/logs", "target/dr", "ditto"),
    ] {
        let e = edge(&t, from, to);
        ensure!(
            e.is_some_and(|e| e["kind"] == kind),
            "{from} -> {to} ({kind}): {t}"
        );
    }
    let archive = t["vertices"]
        .as_array()
        .and_then(|v| v.iter().find(|x| x["id"] == "ARCHIVE"))
        .map(|x| x["detail"].clone());
    ensure!(
        archive.as_ref().and_then(Value::as_str) == Some("40 msgs, File"),
        "{archive:?}"
    );

    let dir = tempfile::tempdir()?;
    let dot = dir.path().join("topology.dot");
    let dot_arg = dot.display().to_string();
    let table = tribctl(&server, &["topology", "--dot", &dot_arg]).await?;
    let dot = std::fs::read_to_string(&dot)?;
    ensure!(dot.starts_with("digraph Topology {"), "{dot}");
    ensure!(dot.matches(" -> ").count() == 4, "{dot}");
    ensure!(
        dot.contains(r#""ORDERS" -> "ARCHIVE" [label="Source lag 0 msgs", style=dashed];"#),
        "{dot}"
    );
    ensure!(
        dot.contains(r#""well/logs" -> "target/dr" [label="Ditto lag 0 entries"#),
        "{dot}"
    );
    ensure!(
        dot.contains(r#""well/logs" [label="logs\nnode 1", shape=cylinder];"#),
        "{dot}"
    );
    for needle in ["Mirror", "Ditto", "target/dr", "wrote the topology graph"] {
        ensure!(table.contains(needle), "{needle} not in:\n{table}");
    }
    src.shutdown().await;
    dst.shutdown().await;
    Ok(())
}
