//! What the tests of a secured cluster share: server processes started as the README starts
//! them (on port 0, found through `--addr-file`, killed when dropped), `tribctl certs init`,
//! and tribctl run as one client or another.
#![allow(dead_code)] // each test file uses its part

use anyhow::{anyhow, ensure, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use tributary_common::addr_file::BoundAddrs;
use tributary_integration::wait;

pub const TRIBCTL: &str = env!("CARGO_BIN_EXE_tribctl");
/// How long a server may take to start, or the cluster to do something, on a loaded machine.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A server process, killed (and reaped) however the test ends.
pub struct Server {
    child: Child,
    pub addrs: BoundAddrs,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server binaries, built beside tribctl.
pub fn binary(name: &str) -> Result<PathBuf> {
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
pub async fn start(bin: &str, args: &[String], dir: &Path, name: &str) -> Result<Server> {
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
pub fn server_tls(pki: &Path, name: &str) -> Vec<String> {
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
pub fn tribctl_sync(args: &[String], env: &[(String, String)], stdin: Option<&str>) -> Output {
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
pub struct As(pub Vec<(String, String)>);

impl As {
    pub fn new(server: &str, pki: &Path, client: Option<&str>) -> As {
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

    pub async fn run_with(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (env, stdin) = (self.0.clone(), stdin.map(str::to_string));
        tokio::task::spawn_blocking(move || tribctl_sync(&args, &env, stdin.as_deref()))
            .await
            .expect("join")
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, None).await
    }

    /// Runs and requires success; the stdout.
    pub async fn ok(&self, args: &[&str]) -> Result<String> {
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
    pub async fn eventually(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
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

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// `certs init` into `dir/pki`; returns the directory.
pub async fn certs(dir: &Path, data_nodes: u64) -> Result<PathBuf> {
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

/// Member 1 alone, as the README starts one (its own data dir, the certificate of
/// `certs init`, `--admin-subject tls:admin`), on port 0; `extra` flags appended.
pub async fn member(dir: &Path, pki: &Path, extra: &[String]) -> Result<Server> {
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
    args.extend(extra.iter().cloned());
    start("tributary-control-plane", &args, dir, "cp1").await
}

/// Data node 1 of the member at `server`, as the README starts it, on port 0.
pub async fn data_node(dir: &Path, pki: &Path, server: &str, extra: &[String]) -> Result<Server> {
    data_node_k(dir, pki, server, 1, extra).await
}

/// Data node `k` of the member at `server`, as the README starts it, on port 0.
#[allow(dead_code)] // Not every test binary starts several.
pub async fn data_node_k(
    dir: &Path,
    pki: &Path,
    server: &str,
    k: u64,
    extra: &[String],
) -> Result<Server> {
    let id = k.to_string();
    let mut args: Vec<String> = [
        "--id",
        &id,
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--admin-subject",
        "tls:admin",
        "--control-plane",
        server,
        "--data-dir",
    ]
    .map(String::from)
    .to_vec();
    args.push(dir.join(format!("dn{k}")).display().to_string());
    args.extend(server_tls(pki, &format!("data-node-{k}")));
    args.extend(extra.iter().cloned());
    start("tributary-data-node", &args, dir, &format!("dn{k}")).await
}
