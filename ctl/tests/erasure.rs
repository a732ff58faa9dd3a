//! `tribctl namespace erase` and `tribctl devops piggyback` on a cluster started as the README
//! says, with the admin's certificate (ADMIN on `cluster:/`): the four steps in order, the
//! namespace refused while blocked, nothing of it left after, the same names starting empty,
//! another namespace untouched.

mod support;

use anyhow::Result;
use serde_json::Value;
use support::{certs, data_node, member, text, As};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tribctl_erases_a_namespace_and_sends_piggyback_commands() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let pki = certs(dir, 1).await?;
    let cp = member(dir, &pki, &[]).await?;
    let server = cp.addrs.grpc.to_string();
    let _dn = data_node(dir, &pki, &server, &[]).await?;
    let admin = As::new(&server, &pki, Some("admin"));
    admin
        .ok(&["cluster", "wait", "--data-nodes", "1", "--timeout", "60s"])
        .await?;
    for (ns, subjects) in [("acme", "ACME.>"), ("other", "OTHER.>")] {
        let name = format!("{ns}:ORDERS");
        admin
            .ok(&["stream", "create", &name, "--subjects", subjects])
            .await?;
    }
    let publish = |subject: &'static str| {
        let admin = admin.clone();
        async move {
            admin
                .eventually(&["stream", "publish", subject, "x", "--count", "10"], None)
                .await
        }
    };
    publish("ACME.new").await?;
    publish("OTHER.new").await?;

    // Piggyback from a file: the mirror supervisor of the data node answers.
    let cmd = dir.join("health.json");
    std::fs::write(
        &cmd,
        r#"{"targetActorSelection": "/user/mirrorSupervisor", "headers": {"aggregate": false},
            "piggybackCommand": {"type": "status.commands:retrieveHealth"}}"#,
    )?;
    let cmd_s = cmd.display().to_string();
    let out = admin
        .ok(&["--json", "devops", "piggyback", "--file", &cmd_s])
        .await?;
    let v: Value = serde_json::from_str(&out)?;
    assert_eq!(v["type"], "status.responses:retrieveHealth", "{v}");
    assert_eq!(v["statusInfo"]["status"], "UP", "{v}");
    let table = admin.ok(&["devops", "piggyback", "--file", &cmd_s]).await?;
    assert!(table.contains("RUNNING"), "{table}");
    std::fs::write(
        &cmd,
        r#"{"targetActorSelection": "/user/nobody", "piggybackCommand": {"type": "x"}}"#,
    )?;
    let bad = admin.run(&["devops", "piggyback", "--file", &cmd_s]).await;
    assert!(
        !bad.status.success() && text(&bad.stderr).contains("/user/nobody"),
        "{}",
        text(&bad.stderr)
    );

    // Block alone: acme is refused, other is not.
    let out = admin.ok(&["namespace", "block", "acme"]).await?;
    assert!(out.contains("block") && out.contains("2/2"), "{out}");
    let refused = admin
        .run(&["stream", "publish", "ACME.new", "x", "--count", "1"])
        .await;
    assert!(
        text(&refused.stderr).contains("namespace acme is blocked"),
        "{}",
        text(&refused.stderr)
    );
    publish("OTHER.new").await?;
    // Purge before shutdown is fine; unblock of a blocked namespace is too. Erase does all.
    let out = admin.ok(&["namespace", "erase", "acme"]).await?;
    for step in ["block", "shutdown", "purge", "unblock"] {
        assert!(out.contains(step), "{step}:\n{out}");
    }
    let streams = admin.ok(&["--json", "stream", "list"]).await?;
    assert!(!streams.contains("acme:ORDERS"), "{streams}");
    assert!(streams.contains("other:ORDERS"), "{streams}");

    // The same name starts empty; other kept its messages.
    admin
        .ok(&["stream", "create", "acme:ORDERS", "--subjects", "ACME.>"])
        .await?;
    let info: Value = serde_json::from_str(
        &admin
            .ok(&["--json", "stream", "info", "acme:ORDERS"])
            .await?,
    )?;
    assert_eq!(info["state"]["messages"], 0, "{info}");
    let info: Value = serde_json::from_str(
        &admin
            .ok(&["--json", "stream", "info", "other:ORDERS"])
            .await?,
    )?;
    assert_eq!(info["state"]["messages"], 20, "{info}");

    // A purge of a namespace that is not blocked is refused, naming what to do.
    let out = admin.run(&["namespace", "purge", "other"]).await;
    assert!(
        !out.status.success() && text(&out.stderr).contains("block it"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}
