//! The devops API on a cluster started as the README says (certificates from `tribctl certs
//! init`, default settings otherwise): `tribctl devops` through the member, for the member
//! and the data node; who may call it (the admin's certificate, the devops token; nobody
//! without credentials or permission); the admin listener's `/devops` routes; gRPC health
//! over TLS; logs on stdout in the human format by default.

mod support;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::net::SocketAddr;
use support::{certs, data_node, member, text, As};
use tributary_integration::admin_http::Admin;

const TOKEN: &str = "the-devops-token";

async fn serving(addr: SocketAddr, pki: &std::path::Path) -> Result<i32> {
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let files = tributary_common::tls::TlsFiles {
        cert_file: pki.join("admin.pem"),
        key_file: pki.join("admin-key.pem"),
        ca_file: pki.join("ca.pem"),
    };
    let ch = tributary_common::tls::endpoint(&addr.to_string(), Some(&files), None)?.connect_lazy();
    let r = HealthClient::new(ch)
        .check(HealthCheckRequest::default())
        .await?;
    Ok(r.into_inner().status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devops_on_a_cluster_started_as_the_readme_says() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let pki = certs(dir, 1).await?;
    let token_file = dir.join("devops-token");
    std::fs::write(&token_file, TOKEN)?;
    let config = dir.join("devops.toml");
    std::fs::write(
        &config,
        format!(
            "devops_token_file = {:?}\n",
            token_file.display().to_string()
        ),
    )?;
    let with_config = ["--config".to_string(), config.display().to_string()];
    let cp = member(dir, &pki, &with_config).await?;
    let server = cp.addrs.grpc.to_string();
    let dn = data_node(dir, &pki, &server, &with_config).await?;
    let admin = As::new(&server, &pki, Some("admin"));
    admin
        .ok(&["cluster", "wait", "--data-nodes", "1", "--timeout", "60s"])
        .await?;

    let table = admin.ok(&["devops", "logging", "get"]).await?;
    for want in ["control-plane", "data-node", "ROOT = info"] {
        assert!(table.contains(want), "{want}:\n{table}");
    }
    let set = [
        "devops",
        "logging",
        "set",
        "tributary_data_node",
        "debug",
        "--service",
        "data-node",
    ];
    let out = admin.ok(&set).await?;
    assert!(out.contains("tributary_data_node = debug"), "{out}");
    let got: Value = serde_json::from_str(
        &admin
            .ok(&[
                "--json",
                "devops",
                "logging",
                "get",
                "--service",
                "data-node",
            ])
            .await?,
    )?;
    let configs = got["1"]["loggerConfigs"]
        .as_array()
        .context("loggerConfigs")?;
    assert!(
        configs.contains(&json!({"level": "debug", "logger": "tributary_data_node"})),
        "{got}"
    );
    let info: Value = serde_json::from_str(
        &admin
            .ok(&["--json", "devops", "config", "--path", "tributary.info"])
            .await?,
    )?;
    assert_eq!(
        info["control-plane"]["1"]["config"]["service"]["name"], "control-plane",
        "{info}"
    );
    assert_eq!(
        info["data-node"]["1"]["config"]["version"],
        env!("CARGO_PKG_VERSION"),
        "{info}"
    );
    let bad = admin
        .run(&["devops", "logging", "set", "ROOT", "loud"])
        .await;
    assert!(
        !bad.status.success() && text(&bad.stderr).contains("loud"),
        "{}",
        text(&bad.stderr)
    );

    // Who may: not a caller without credentials, not a client the policies give nothing;
    // the devops token, with no certificate at all.
    let anon = As::new(&server, &pki, None);
    let out = anon.run(&["devops", "logging", "get"]).await;
    assert!(!out.status.success(), "anonymous got in");
    assert!(
        text(&out.stderr).contains("UNAUTHENTICATED"),
        "{}",
        text(&out.stderr)
    );
    let reader = As::new(&server, &pki, Some("reader"));
    let out = reader.run(&["devops", "logging", "get"]).await;
    assert!(
        text(&out.stderr).contains("PERMISSION_DENIED"),
        "{}",
        text(&out.stderr)
    );
    let mut devops = anon.clone();
    devops.0.push(("TRIBUTARY_TOKEN".into(), TOKEN.into()));
    let out = devops
        .ok(&["devops", "config", "--path", "tributary.info.service"])
        .await?;
    assert!(out.contains("control-plane"), "{out}");

    // The admin listener: the same answers, only with credentials.
    let ca = std::fs::read_to_string(pki.join("ca.pem"))?;
    let http = Admin {
        addr: cp.addrs.admin.context("member admin address")?,
        ca_pem: Some(&ca),
    };
    let (status, body) = http.get("/devops/logging").await?;
    assert_eq!(status, 401, "{body}");
    let (status, body) = http
        .call(
            "GET",
            "/devops/config?path=tributary.info",
            Some(TOKEN),
            None,
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body)?;
    assert_eq!(
        v["data-node"]["1"]["type"], "common.responses:retrieveConfig",
        "{v}"
    );

    // gRPC health over TLS on both servers.
    let ok = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    assert_eq!(serving(cp.addrs.grpc, &pki).await?, ok);
    assert_eq!(serving(dn.addrs.grpc, &pki).await?, ok);

    // Default logging: human lines on stdout, no JSON.
    let log = std::fs::read_to_string(dir.join("cp1.log"))?;
    assert!(log.lines().any(|l| l.contains(" INFO ")), "{log}");
    assert!(
        !log.lines().any(|l| l.trim_start().starts_with('{')),
        "{log}"
    );
    Ok(())
}
