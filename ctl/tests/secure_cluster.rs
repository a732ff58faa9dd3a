//! The README's "Running a cluster" path, with real processes: `tribctl certs init`, a member
//! and a data node started with those certificates (on port 0, found through `--addr-file`),
//! tribctl showing `--ca/--cert/--key` to both; a caller without credentials or permission is
//! refused with a clear message. And policies in Eclipse Ditto's JSON with `policy check`.

use anyhow::{anyhow, ensure, Context, Result};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use tributary_common::addr_file::BoundAddrs;
use tributary_integration::wait;

const TRIBCTL: &str = env!("CARGO_BIN_EXE_tribctl");
/// How long a server may take to start, or the cluster to do something, on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(60);

/// A server process, killed (and reaped) however the test ends.
struct Server {
    child: Child,
    addrs: BoundAddrs,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server binaries, built beside tribctl.
fn binary(name: &str) -> Result<PathBuf> {
    let p = Path::new(TRIBCTL)
        .parent()
        .ok_or_else(|| anyhow!("tribctl has no directory"))?
        .join(name);
    ensure!(
        p.is_file(),
        "{name} is not built beside tribctl: `cargo build -p tributary-control-plane -p \
         tributary-data-node` first"
    );
    Ok(p)
}

/// Starts `bin` with `args` plus `--addr-file`, and waits until it has bound.
async fn start(bin: &str, args: &[String], dir: &Path, name: &str) -> Result<Server> {
    let addr_file = dir.join(format!("{name}.addr.json"));
    let log_file = dir.join(format!("{name}.log"));
    let log = std::fs::File::create(&log_file)?;
    let mut cmd = Command::new(binary(bin)?);
    cmd.args(args)
        .arg("--addr-file")
        .arg(&addr_file)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TRIBUTARY_") {
            cmd.env_remove(k);
        }
    }
    let mut server = Server {
        child: cmd.spawn().with_context(|| format!("starting {bin}"))?,
        addrs: BoundAddrs {
            grpc: ([127, 0, 0, 1], 0).into(),
            admin: None,
            peer: None,
        },
    };
    let what = format!("{name} to write {}", addr_file.display());
    let found = wait::until(&what, DEADLINE, || {
        let state = match server.child.try_wait() {
            Ok(Some(status)) => Some(Err(anyhow!("{name} exited: {status}"))),
            Ok(None) => BoundAddrs::read(&addr_file).map_err(Into::into).transpose(),
            Err(e) => Some(Err(e.into())),
        };
        async move { state }
    })
    .await
    .and_then(|r| r);
    match found {
        Ok(a) => {
            server.addrs = a;
            Ok(server)
        }
        Err(e) => Err(e.context(std::fs::read_to_string(&log_file).unwrap_or_default())),
    }
}

/// The TLS flags `tribctl certs init` printed for `name`.
fn server_tls(pki: &Path, name: &str) -> Vec<String> {
    let f = |file: String| pki.join(file).display().to_string();
    vec![
        "--tls-cert".into(),
        f(format!("{name}.pem")),
        "--tls-key".into(),
        f(format!("{name}-key.pem")),
        "--tls-ca".into(),
        f("ca.pem".into()),
    ]
}

/// tribctl with exactly `env` of the `TRIBUTARY_*` variables, and `stdin` as its input.
fn tribctl_sync(args: &[String], env: &[(String, String)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(TRIBCTL);
    cmd.args(args).env("RUST_BACKTRACE", "0");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TRIBUTARY_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run tribctl");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.unwrap_or_default().as_bytes());
    }
    child.wait_with_output().expect("tribctl output")
}

/// Who tribctl is: the servers and the credentials, as environment variables.
#[derive(Clone)]
struct As(Vec<(String, String)>);

impl As {
    fn new(server: &str, pki: &Path, client: Option<&str>) -> As {
        let p = |f: String| pki.join(f).display().to_string();
        let mut env = vec![
            ("TRIBUTARY_SERVER".to_string(), server.to_string()),
            ("TRIBUTARY_CA".into(), p("ca.pem".into())),
        ];
        if let Some(c) = client {
            env.push(("TRIBUTARY_CERT".into(), p(format!("{c}.pem"))));
            env.push(("TRIBUTARY_KEY".into(), p(format!("{c}-key.pem"))));
        }
        As(env)
    }

    async fn run_with(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (env, stdin) = (self.0.clone(), stdin.map(str::to_string));
        tokio::task::spawn_blocking(move || tribctl_sync(&args, &env, stdin.as_deref()))
            .await
            .expect("join")
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, None).await
    }

    /// Runs and requires success; the stdout.
    async fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args).await;
        ensure!(
            out.status.success(),
            "tribctl {args:?} failed: {}{}",
            text(&out.stderr),
            text(&out.stdout)
        );
        Ok(text(&out.stdout))
    }

    /// Runs until it succeeds (what the data node learns through its catalogue watch).
    async fn eventually(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let last = std::cell::RefCell::new(String::new());
        let r = wait::until(&format!("tribctl {args:?}"), DEADLINE, || {
            let (run, last) = (self.run_with(args, stdin), &last);
            async move {
                let out = run.await;
                *last.borrow_mut() = text(&out.stderr);
                out.status.success().then(|| text(&out.stdout))
            }
        })
        .await;
        r.with_context(|| format!("last error: {}", last.borrow()))
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// `certs init` into `dir/pki`; returns the directory.
async fn certs(dir: &Path, data_nodes: u64) -> Result<PathBuf> {
    let pki = dir.join("pki");
    let dn = data_nodes.to_string();
    let pki_s = pki.display().to_string();
    let init = [
        "certs",
        "init",
        "--dir",
        &pki_s,
        "--members",
        "1",
        "--data-nodes",
        &dn,
        "--client",
        "admin",
        "--client",
        "reader",
    ];
    let nobody = As(Vec::new());
    let out = nobody.ok(&init).await?;
    ensure!(
        out.contains("--tls-cert"),
        "no server flags printed:\n{out}"
    );
    Ok(pki)
}

async fn member(dir: &Path, pki: &Path) -> Result<Server> {
    let mut args: Vec<String> = [
        "--id",
        "1",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--admin-subject",
        "tls:admin",
        "--data-dir",
    ]
    .map(String::from)
    .to_vec();
    args.push(dir.join("cp1").display().to_string());
    args.extend(server_tls(pki, "member-1"));
    start("tributary-control-plane", &args, dir, "cp1").await
}

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

    let cp = member(dir, &pki).await?;
    let server = cp.addrs.grpc.to_string();
    let mut args: Vec<String> = [
        "--id",
        "1",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--admin-subject",
        "tls:admin",
        "--control-plane",
        &server,
        "--data-dir",
    ]
    .map(String::from)
    .to_vec();
    args.push(dir.join("dn1").display().to_string());
    args.extend(server_tls(&pki, "data-node-1"));
    let _dn = start("tributary-data-node", &args, dir, "dn1").await?;

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
    let cp = member(dir, &pki).await?;
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

    // The cluster's policy is only in the servers' config until someone stores it.
    let out = admin
        .run(&["policy", "check", "tls:admin", "cluster:/", "ADMIN"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not in the catalogue"),
        "{}",
        text(&out.stderr)
    );

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
