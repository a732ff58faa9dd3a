//! `tribctl` against a data node that takes a stream secret, and the external-origin flags:
//! the CA file and credentials go into the catalogue, the credentials never come back out.

use std::process::Output;
use tributary_integration::{wait, Cluster};

async fn tribctl(server: &str, env_secret: Option<&str>, args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (server, env_secret) = (server.to_string(), env_secret.map(str::to_string));
    tokio::task::spawn_blocking(move || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tribctl"));
        c.arg("--server")
            .arg(server)
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .env_remove("TRIBUTARY_STREAM_SECRET");
        if let Some(s) = env_secret {
            c.env("TRIBUTARY_STREAM_SECRET", s);
        }
        c.output().expect("run tribctl")
    })
    .await
    .expect("join")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_calls_carry_the_secret_and_external_credentials_stay_hidden() -> anyhow::Result<()>
{
    let c = Cluster::builder("a")
        .insecure()
        // The data nodes take no anonymous caller: the stream secret is what lets one in.
        .tune_data_nodes(|dn| {
            dn.stream_secrets = vec!["s3cret".into()];
            dn.anonymous_subjects.clear();
        })
        .start()
        .await?;
    let cp = c.cp_addr(1)?;
    let out = tribctl(
        &cp,
        None,
        &["stream", "create", "ORDERS", "--subjects", "o.>"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Without the secret the data node refuses, naming the header.
    let out = tribctl(&cp, None, &["stream", "publish", "o.new", "x"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("missing stream secret"),
        "{}",
        text(&out.stderr)
    );
    let publish = [
        "--stream-secret",
        "s3cret",
        "stream",
        "publish",
        "o.new",
        "x",
    ];
    let out = tribctl(&cp, None, &publish[..]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = tribctl(&cp, Some("s3cret"), &["--json", "stream", "info", "ORDERS"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["state"]["messages"], 1);

    // An origin in another cluster over TLS, with credentials.
    let dir = tempfile::tempdir()?;
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )?;
    let ca_flag = format!("EXT={}", ca.display());
    let args = [
        "stream",
        "create",
        "MX",
        "--mirror",
        "EXT",
        "--external",
        "EXT=https://127.0.0.1:1",
        "--external-ca",
        &ca_flag,
        "--external-credentials",
        "EXT=hush",
    ];
    let out = tribctl(&cp, None, &args[..]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = tribctl(&cp, None, &["--json", "stream", "get", "MX"]).await;
    let shown = text(&out.stdout);
    assert!(
        shown.contains("<redacted>") && !shown.contains("hush") && shown.contains("MIIB"),
        "{shown}"
    );
    let update = [
        "stream",
        "update",
        "MX",
        "--external-credentials",
        "EXT=new",
    ];
    let out = tribctl(&cp, None, &update[..]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The mirror worker starts once the data node sees the stream.
    let shown = wait::until("the mirror block", wait::WAIT, || async {
        let out = tribctl(&cp, Some("s3cret"), &["stream", "info", "MX"]).await;
        let shown = text(&out.stdout);
        shown.contains("Mirror Information").then_some(shown)
    })
    .await?;
    assert!(shown.contains("External TLS: yes"), "{shown}");
    assert!(
        !shown.contains("hush") && !shown.contains("new\n"),
        "{shown}"
    );
    let out = tribctl(&cp, None, &["--json", "stream", "get", "MX"]).await;
    assert!(text(&out.stdout).contains("MIIB"), "the update kept the CA");
    c.shutdown().await;
    Ok(())
}
