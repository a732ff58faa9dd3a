//! A bearer token from `--token-file` (or `TRIBUTARY_TOKEN`) reaches every server tribctl
//! talks to: the member that resolves `whoami` and the data node that takes a publish judge the
//! same OIDC token (a local issuer, JWKS over HTTPS), over TLS trusting `--ca`.

mod support;

use anyhow::{anyhow, Result};
use serde_json::Value;
use support::{certs, data_node, member, text, As};
use tributary_common::auth::test_issuer::{KeyKind, TestIssuer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_reaches_the_members_and_the_data_nodes() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let issuer = TestIssuer::start().await.map_err(|e| anyhow!("{e}"))?;
    let kid = issuer.add_key(KeyKind::Es256).map_err(|e| anyhow!("{e}"))?;
    let provider = issuer.provider_config(&issuer.write_ca(dir)?);
    let config = dir.join("oidc.toml");
    std::fs::write(
        &config,
        format!(
            "[oidc.test]\nissuer = {:?}\nca_file = {:?}\n",
            provider.issuer, provider.ca_file
        ),
    )?;
    let pki = certs(dir, 1).await?;
    let extra: Vec<String> = vec![
        "--config".into(),
        config.display().to_string(),
        "--admin-subject".into(),
        "test:alice".into(),
    ];
    let cp = member(dir, &pki, &extra).await?;
    let server = cp.addrs.grpc.to_string();
    let _dn = data_node(dir, &pki, &server, &extra).await?;

    let token = |sub: &str, lifetime: i64| {
        issuer
            .sign(&kid, &issuer.claims(sub, "tributary", lifetime))
            .map_err(|e| anyhow!("{e}"))
    };
    let token_file = dir.join("alice.jwt");
    std::fs::write(&token_file, format!("{}\n", token("alice", 600)?))?;
    let base = As::new(&server, &pki, None).0;
    let with = |k: &str, v: String| {
        let mut env = base.clone();
        env.push((k.to_string(), v));
        As(env)
    };
    let alice = with("TRIBUTARY_TOKEN_FILE", token_file.display().to_string());
    alice
        .ok(&["cluster", "wait", "--data-nodes", "1", "--timeout", "60s"])
        .await?;
    let who: Value = serde_json::from_str(&alice.ok(&["--json", "auth", "whoami"]).await?)?;
    assert_eq!(who["subjects"], serde_json::json!(["test:alice"]), "{who}");
    assert_eq!(who["method"], "jwt", "{who}");

    alice
        .ok(&["stream", "create", "EVENTS", "--subjects", "ev.>"])
        .await?;
    // The data node takes the publish on the strength of the same token.
    let publish = ["stream", "publish", "ev.a", "x", "--count", "3"];
    alice.eventually(&publish, None).await?;
    let info: Value =
        serde_json::from_str(&alice.ok(&["--json", "stream", "info", "EVENTS"]).await?)?;
    assert_eq!(info["state"]["messages"], 3, "{info}");

    // The token inline (environment) does the same; with the file too, tribctl refuses.
    let inline = with("TRIBUTARY_TOKEN", token("alice", 600)?);
    let who: Value = serde_json::from_str(&inline.ok(&["--json", "auth", "whoami"]).await?)?;
    assert_eq!(who["subjects"], serde_json::json!(["test:alice"]), "{who}");
    let file = token_file.display().to_string();
    let out = inline.run(&["--token-file", &file, "auth", "whoami"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--token-file"),
        "{}",
        text(&out.stderr)
    );

    // Another subject is authenticated but not permitted; an expired token is not taken.
    let bob = with("TRIBUTARY_TOKEN", token("bob", 600)?);
    let out = bob.run(&["stream", "info", "EVENTS"]).await;
    let err = text(&out.stderr);
    assert!(
        err.contains("PERMISSION_DENIED") && err.contains("test:bob"),
        "{err}"
    );
    let expired = with("TRIBUTARY_TOKEN", token("alice", -3600)?);
    let out = expired.run(&["stream", "info", "EVENTS"]).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("UNAUTHENTICATED"), "{err}");
    Ok(())
}
