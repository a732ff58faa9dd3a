//! The README's "Running a cluster" path, with real processes: `tribctl certs init`, a member
//! and a data node started with those certificates (on port 0, found through `--addr-file`),
//! tribctl showing `--ca/--cert/--key` to both; a caller without credentials or permission is
//! refused with a clear message. And policies in Eclipse Ditto's JSON with `policy check`.

mod support;

use anyhow::Result;
use serde_json::Value;
use support::{certs, data_node, member, text, As};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_path_with_certificates() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let pki = certs(dir, 1).await?;
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(pki.join("admin-key.pem"))?.permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "client key mode {mode:o}");
    let again = As(Vec::new())
        .run(&["certs", "init", "--dir", &pki.display().to_string()])
        .await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("refusing"),
        "{}",
        text(&again.stderr)
    );

    let cp = member(dir, &pki, &[]).await?;
    let server = cp.addrs.grpc.to_string();
    let _dn = data_node(dir, &pki, &server, &[]).await?;

    let admin = As::new(&server, &pki, Some("admin"));
    admin
        .ok(&["cluster", "wait", "--data-nodes", "1", "--timeout", "60s"])
        .await?;
    let who: Value = serde_json::from_str(&admin.ok(&["--json", "auth", "whoami"]).await?)?;
    assert_eq!(who["subjects"], serde_json::json!(["tls:admin"]), "{who}");
    assert_eq!(who["method"], "tls", "{who}");

    admin
        .ok(&["well", "create", "acme:orders", "--tags", "orders,payments"])
        .await?;
    // The data node learns of the well through its catalogue watch.
    let ingest = ["well", "ingest", "acme:orders"];
    let out = admin.eventually(&ingest, Some("hello\nworld\n")).await?;
    assert!(out.contains("2 of 2 entries stored"), "{out}");
    let out = admin
        .ok(&[
            "--json",
            "well",
            "query",
            "acme:orders",
            "--from",
            "2026-01-01T00:00:00Z",
        ])
        .await?;
    let rows: Vec<Value> = out
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let data: Vec<&str> = rows.iter().filter_map(|r| r["data"].as_str()).collect();
    assert_eq!(data, ["hello", "world"], "{out}");
    let shards: Value = serde_json::from_str(
        &admin
            .ok(&["--json", "well", "shards", "acme:orders"])
            .await?,
    )?;
    assert_eq!(shards["shards"][0]["entries"], 2, "{shards}");

    admin
        .ok(&[
            "stream",
            "create",
            "ORDERS",
            "--subjects",
            "ORDERS.>",
            "--storage",
            "file",
        ])
        .await?;
    let publish = [
        "stream",
        "publish",
        "ORDERS.new",
        "ORDER {{Count}}",
        "--count",
        "5",
    ];
    admin.eventually(&publish, None).await?;
    let info: Value =
        serde_json::from_str(&admin.ok(&["--json", "stream", "info", "ORDERS"]).await?)?;
    assert_eq!(info["state"]["messages"], 5, "{info}");
    let sub = admin
        .ok(&[
            "stream",
            "sub",
            "ORDERS",
            "--start-seq",
            "4",
            "--count",
            "2",
        ])
        .await?;
    assert!(sub.contains("ORDER 4") && sub.contains("ORDER 5"), "{sub}");

    // The same commands without credentials (the CA only, so the TLS handshake succeeds).
    let anonymous = As::new(&server, &pki, None);
    let who: Value = serde_json::from_str(&anonymous.ok(&["--json", "auth", "whoami"]).await?)?;
    assert_eq!(who["method"], "anonymous", "{who}");
    for args in [
        &["well", "create", "acme:more", "--tags", "more"][..],
        &["well", "query", "acme:orders"],
        &ingest,
        &publish,
        &["stream", "info", "ORDERS"],
    ] {
        let out = anonymous.run_with(args, Some("x\n")).await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("UNAUTHENTICATED") && err.contains("needs credentials"),
            "{args:?}: {err}"
        );
        assert!(err.contains("--cert"), "no hint for {args:?}: {err}");
    }
    // A client the policies grant nothing: refused, naming it.
    let reader = As::new(&server, &pki, Some("reader"));
    let out = reader.run(&["well", "query", "acme:orders"]).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("PERMISSION_DENIED") && err.contains("tls:reader"),
        "{err}"
    );
    // Cleartext to a TLS server: a hint at --ca.
    let plain = As(vec![("TRIBUTARY_SERVER".into(), server.clone())]);
    let out = plain.run(&["well", "list"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--ca"), "{}", text(&out.stderr));
    // The count did not move.
    let info: Value =
        serde_json::from_str(&admin.ok(&["--json", "stream", "info", "ORDERS"]).await?)?;
    assert_eq!(info["state"]["messages"], 5, "{info}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_in_dittos_json_and_the_entry_that_decides() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let pki = certs(dir, 0).await?;
    let cp = member(dir, &pki, &[]).await?;
    let server = cp.addrs.grpc.to_string();
    let admin = As::new(&server, &pki, Some("admin"));
    admin.ok(&["cluster", "wait", "--timeout", "60s"]).await?;

    let file = dir.join("readers.json");
    std::fs::write(
        &file,
        r#"{"policyId": "acme:readers",
            "entries": {
              "readers": {"subjects": {"tls:reader": {"type": "client certificate"}},
                          "resources": {"namespace:/acme": {"grant": ["READ"], "revoke": []}}},
              "no-payroll": {"subjects": {"tls:reader": {"type": "client certificate"}},
                             "resources": {"well:/acme:payroll": {"grant": [], "revoke": ["READ"]}}}}}"#,
    )?;
    let f = file.display().to_string();
    admin
        .ok(&["policy", "create", "acme:readers", "--file", &f])
        .await?;

    let check = |resource: &'static str, perm: &'static str| {
        let admin = admin.clone();
        async move {
            let args = [
                "--json",
                "policy",
                "check",
                "tls:reader",
                resource,
                perm,
                "--policy",
                "acme:readers",
            ];
            let out = admin.run(&args).await;
            let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            (out.status.code(), v, text(&out.stderr))
        }
    };
    let (code, v, err) = check("well:/acme:orders", "READ").await;
    assert_eq!(code, Some(0), "{v} {err}");
    assert_eq!(v["allowed"], true);
    assert_eq!(v["decided_by"]["label"], "readers", "{v}");
    assert_eq!(v["decided_by"]["resource"], "namespace:/acme", "{v}");
    let (code, v, _) = check("well:/acme:payroll", "read").await;
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["decided_by"]["label"], "no-payroll", "{v}");
    assert_eq!(v["decided_by"]["effect"], "revoke", "{v}");
    let (code, v, _) = check("well:/acme:orders", "WRITE").await;
    assert_eq!(code, Some(1), "{v}");
    assert!(
        v["decided_by"].is_null() && v["reason"].as_str().is_some_and(|r| r.contains("no entry")),
        "{v}"
    );
    let table = admin
        .ok(&[
            "policy",
            "check",
            "tls:reader",
            "well:/acme:orders",
            "READ",
            "--policy",
            "acme:readers",
        ])
        .await?;
    assert!(
        table.contains("GRANTED") && table.contains("readers"),
        "{table}"
    );

    // The servers decide alike: the reader may read the policy (under namespace:/acme), not
    // change it.
    let reader = As::new(&server, &pki, Some("reader"));
    let shown = reader.ok(&["policy", "get", "acme:readers"]).await?;
    assert!(shown.contains(r#""policyId": "acme:readers""#), "{shown}");
    let out = reader
        .run(&["policy", "update", "acme:readers", "--file", &f])
        .await;
    assert!(
        text(&out.stderr).contains("PERMISSION_DENIED"),
        "{}",
        text(&out.stderr)
    );

    // The cluster's policy, stored by the members from their admin_subjects once a leader is
    // elected, decides.
    let out = admin
        .eventually(
            &["policy", "check", "tls:admin", "cluster:/", "ADMIN"],
            None,
        )
        .await?;
    assert!(out.contains("cluster-admin"), "{out}");

    // A mistake is named by its path; the older tribctl shape is still read.
    std::fs::write(
        &file,
        r#"{"entries": {"x": {"subjects": {"tls:a": {}}, "resources": {"well:/a:b": {"grant": ["FLY"]}}}}}"#,
    )?;
    let out = admin
        .run(&["policy", "create", "acme:bad", "--file", &f])
        .await;
    let err = text(&out.stderr);
    assert!(
        err.contains("entries.x.resources") && err.contains("FLY"),
        "{err}"
    );
    std::fs::write(
        &file,
        r#"{"entries": [{"label": "ops", "subjects": ["tls:ops"],
                         "resources": [{"resource": "cluster:/", "grant": ["READ"]}]}]}"#,
    )?;
    admin
        .ok(&["policy", "create", "acme:old", "--file", &f])
        .await?;
    let out = admin
        .run(&[
            "policy",
            "check",
            "tls:ops",
            "stream:/x:y",
            "READ",
            "--policy",
            "acme:old",
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    Ok(())
}
