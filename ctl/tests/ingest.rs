//! `tribctl well ingest` as a user runs it: an upload the data node stops before every batch is
//! acknowledged fails, saying how much was stored, whether the node gives a reason (an entry
//! over `max_entry_bytes`) or just ends the stream (a batch over `max_message_bytes`).

use std::process::Output;
use std::time::Duration;
use tributary_integration::{wait, Cluster, INGEST_SECRET};

const MAX_ENTRY: usize = 1024;

async fn tribctl(server: &str, args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let server = server.to_string();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tribctl"))
            .arg("--server")
            .arg(server)
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .env_remove("TRIBUTARY_INGEST_SECRET")
            .output()
            .expect("run tribctl")
    })
    .await
    .expect("join")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

async fn ingest(cp: &str, file: &std::path::Path) -> Output {
    let file = file.display().to_string();
    tribctl(
        cp,
        &[
            "well",
            "ingest",
            "logs",
            "--secret",
            INGEST_SECRET,
            "--file",
            &file,
        ],
    )
    .await
}

async fn stored(cp: &str) -> anyhow::Result<usize> {
    let out = tribctl(cp, &["--json", "well", "query", "logs"]).await;
    anyhow::ensure!(out.status.success(), "query: {}", text(&out.stderr));
    Ok(text(&out.stdout).lines().count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_cut_short_fails_and_says_what_was_stored() -> anyhow::Result<()> {
    // Cleartext: tribctl reaches the cluster as the README's local trial does.
    let c = Cluster::builder("ingest")
        .insecure()
        .tune_data_nodes(|dn| {
            dn.max_entry_bytes = MAX_ENTRY as u64;
            dn.max_message_bytes = 64 * 1024;
        })
        .start()
        .await?;
    let cp = c.cp_addr(1)?;
    wait::until(
        "the well to be created",
        Duration::from_secs(20),
        || async {
            let out = tribctl(&cp, &["well", "create", "logs", "--tags", "web"]).await;
            out.status.success().then_some(())
        },
    )
    .await?;
    c.wait_well_served("logs", 1).await?;
    let dir = tempfile::tempdir()?;

    // The node refuses batch 2 (one entry over max_entry_bytes) and says why.
    let refused = dir.path().join("refused.log");
    let mut lines: Vec<String> = (0..1000).map(|i| format!("GET /{i} 200")).collect();
    lines.push("x".repeat(MAX_ENTRY * 2));
    std::fs::write(&refused, lines.join("\n"))?;
    let out = ingest(&cp, &refused).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}\n{err}", text(&out.stdout));
    assert!(
        err.contains("batch 2") && err.contains("max_entry_bytes"),
        "{err}"
    );
    assert!(
        err.contains("1000 entries stored") && err.contains("nothing from batch 2 on"),
        "{err}"
    );
    assert_eq!(stored(&cp).await?, 1000);

    // A batch over max_message_bytes: the node ends the stream (with or without a reason).
    let cut = dir.path().join("cut.log");
    let line = "y".repeat(MAX_ENTRY / 2);
    std::fs::write(&cut, vec![line; 500].join("\n"))?;
    let out = ingest(&cp, &cut).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}\n{err}", text(&out.stdout));
    assert!(
        err.contains("0 entries stored") && err.contains("nothing from batch 1 on"),
        "{err}"
    );
    assert_eq!(stored(&cp).await?, 1000);

    // An upload the node takes whole still succeeds.
    let fine = dir.path().join("fine.log");
    std::fs::write(&fine, "a\nb\nc\n")?;
    let out = ingest(&cp, &fine).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("3 of 3 entries stored"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(stored(&cp).await?, 1003);
    c.shutdown().await;
    Ok(())
}
