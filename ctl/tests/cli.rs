//! `tribctl` as a user runs it: the real binary against a 3-member control plane.

use std::process::Output;
use tributary_integration::Cluster;

async fn tribctl(server: String, args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tribctl"))
            .arg("--server")
            .arg(server)
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .output()
            .expect("run tribctl")
    })
    .await
    .expect("join")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogue_commands_tables_json_and_errors() -> anyhow::Result<()> {
    let c = Cluster::builder("cli")
        .insecure()
        .members(3)
        .data_nodes(0)
        .start()
        .await?;
    c.wait_leader().await?;
    // The first address is dead: tribctl goes on to the next member.
    let servers = format!("127.0.0.1:1,{}", c.cp_addr(2)?);

    let out = tribctl(
        servers.clone(),
        &[
            "well",
            "create",
            "acme:orders",
            "--tags",
            "orders,pay",
            "--shard-duration",
            "36h",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("created at revision"));

    let out = tribctl(
        servers.clone(),
        &[
            "well",
            "update",
            "acme:orders",
            "--hot-duration",
            "1d",
            "--cold-location",
            "cold",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = tribctl(servers.clone(), &["--json", "well", "get", "acme:orders"]).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        v["entity"]["tags"],
        serde_json::json!(["orders", "pay"]),
        "update kept the tags"
    );
    assert_eq!(v["entity"]["hot_duration_secs"], 86400);
    assert_eq!(v["entity"]["shard_duration_secs"], 36 * 3600);

    let out = tribctl(
        servers.clone(),
        &[
            "target",
            "create",
            "dr",
            "--cleartext-endpoint",
            "10.1.1.1:4023",
            "--ingest-secret",
            "hush",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = tribctl(servers.clone(), &["target", "list"]).await;
    assert!(
        text(&out.stdout).contains("<redacted>") && !text(&out.stdout).contains("hush"),
        "secret leaked: {}",
        text(&out.stdout)
    );

    // Gravwell's Start-Time is unix seconds: 2024-01-01T02:10:00Z, not 1.7 s after 1970.
    let out = tribctl(
        servers.clone(),
        &["target", "update", "dr", "--start-time", "1704075000"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = tribctl(servers.clone(), &["--json", "target", "get", "dr"]).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["entity"]["start_time_ns"], 1_704_075_000_000_000_000i64);
    let out = tribctl(servers.clone(), &["target", "list"]).await;
    assert!(
        text(&out.stdout).contains("2024-01-01T02:10:00"),
        "{}",
        text(&out.stdout)
    );
    // Milliseconds could be meant as anything: refused, naming the flag, nothing changed.
    let out = tribctl(
        servers.clone(),
        &["target", "update", "dr", "--start-time", "1704075000000"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--start-time") && text(&out.stderr).contains("ambiguous"),
        "{}",
        text(&out.stderr)
    );
    let out = tribctl(servers.clone(), &["--json", "target", "get", "dr"]).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["entity"]["start_time_ns"], 1_704_075_000_000_000_000i64);

    // One origin sourced twice, each with its own filter (JetStream allows it).
    let out = tribctl(
        servers.clone(),
        &["stream", "create", "ORDERS", "--subjects", "ORDERS.>"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let two_filters = [
        "stream",
        "create",
        "SPLIT",
        "--source",
        "ORDERS",
        "--source",
        "ORDERS",
        "--filter",
        "ORDERS=ORDERS.a",
        "--filter",
        "ORDERS=ORDERS.b",
    ];
    let out = tribctl(servers.clone(), &two_filters).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = tribctl(servers.clone(), &["--json", "stream", "get", "SPLIT"]).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let filters: Vec<&str> = v["entity"]["sources"]
        .as_array()
        .expect("sources[]")
        .iter()
        .filter_map(|o| o["filter_subject"].as_str())
        .collect();
    assert_eq!(filters, ["ORDERS.a", "ORDERS.b"], "{v}");
    let out = tribctl(servers.clone(), &two_filters[..9]).await;
    assert_eq!(out.status.code(), Some(1), "one filter for two sources");
    assert!(
        text(&out.stderr).contains("are the same"),
        "{}",
        text(&out.stderr)
    );

    let out = tribctl(servers.clone(), &["well", "create", "bad name"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("invalid name"),
        "{}",
        text(&out.stderr)
    );
    let out = tribctl(
        servers.clone(),
        &["stream", "create", "S", "--max-age", "soon"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--max-age"),
        "{}",
        text(&out.stderr)
    );
    let out = tribctl(servers.clone(), &["well", "create", "acme:orders"]).await;
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );

    let out = tribctl(servers.clone(), &["--json", "cluster", "status"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert!(s["leader"].as_u64().is_some_and(|l| l > 0));
    assert!(s["term"].as_u64().is_some_and(|t| t > 0));
    assert!(s["revision"].as_u64().is_some_and(|r| r >= 3));
    let members = s["members"].as_array().expect("members[]");
    assert_eq!(members.len(), 3);
    for m in members {
        for key in ["id", "addr", "role", "commit", "applied"] {
            assert!(!m[key].is_null(), "member lacks {key}: {m}");
        }
    }
    assert!(s["data_nodes"].is_array());

    let out = tribctl(servers, &["cluster", "status"]).await;
    assert!(
        text(&out.stdout).contains("leader"),
        "{}",
        text(&out.stdout)
    );
    c.shutdown().await;
    Ok(())
}
