//! The compose cluster of `deploy/compose` driven from the host, as an operator drives it: the
//! compose CLI and `docker` for the containers, `tribctl` (with the client certificates the
//! `certs` service wrote and `--resolve` for the published ports) for the cluster, and gRPC
//! clients on the published ports for the data path. `scripts/container-tests.sh` builds the
//! images and says which compose CLI, images and tribctl to use (`TRIBUTARY_TEST_*`).

use crate::wait;
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tributary_common::tls::TlsFiles;

/// Members and data nodes of the compose file.
pub const MEMBERS: [u64; 3] = [1, 2, 3];
pub const DATA_NODES: [u64; 3] = [1, 2, 3];

/// What a container test needs from its environment, read once.
#[derive(Clone, Debug)]
pub struct Env {
    /// `docker compose` or `docker-compose`, split into words.
    pub compose: Vec<String>,
    /// The servers' image and Prometheus's.
    pub image: String,
    pub prometheus_image: String,
    pub tribctl: PathBuf,
    pub compose_file: PathBuf,
}

impl Env {
    pub fn from_env() -> Result<Env> {
        let var = |k: &str| {
            std::env::var(k).map_err(|_| {
                anyhow!("{k} is not set: run the container tests with scripts/container-tests.sh")
            })
        };
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        Ok(Env {
            compose: var("TRIBUTARY_TEST_COMPOSE")?
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            image: var("TRIBUTARY_TEST_IMAGE")?,
            prometheus_image: var("TRIBUTARY_TEST_PROMETHEUS_IMAGE")?,
            tribctl: var("TRIBUTARY_TEST_TRIBCTL")?.into(),
            compose_file: repo.join("deploy/compose/docker-compose.yml"),
        })
    }
}

/// One compose project: its own containers, network, volumes, published ports and client
/// certificates. `down` (also on drop) removes it all, volumes included.
pub struct ComposeCluster {
    env: Env,
    project: String,
    /// `TRIBUTARY_PORT_PREFIX`: members at 127.0.0.1:{prefix}10N, data nodes {prefix}20N.
    prefix: u16,
    client_dir: tempfile::TempDir,
    /// More variables for the compose file (`TRIBUTARY_INGEST_SECRETS`, …).
    vars: Vec<(String, String)>,
}

impl ComposeCluster {
    /// A project named `project` (lowercase letters and digits) on ports `{prefix}1xx`,
    /// `{prefix}2xx`; nothing is started yet. Leftovers of an earlier run of the same project
    /// are removed first.
    pub fn new(env: &Env, project: &str, prefix: u16) -> Result<ComposeCluster> {
        let c = ComposeCluster {
            env: env.clone(),
            project: project.to_string(),
            prefix,
            client_dir: tempfile::tempdir()?,
            vars: Vec::new(),
        };
        c.compose(&["down", "-v", "--remove-orphans"])?;
        let files = c.client_files();
        for i in MEMBERS {
            crate::tls::register(c.member_addr(i), &files);
        }
        for i in DATA_NODES {
            crate::tls::register(c.data_node_addr(i), &files);
        }
        Ok(c)
    }

    /// Sets a variable of the compose file for every later command (before `up`).
    pub fn with_var(mut self, key: &str, value: &str) -> Self {
        self.vars.push((key.to_string(), value.to_string()));
        self
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    pub fn member_addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}10{id}", self.prefix)
    }

    pub fn data_node_addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}20{id}", self.prefix)
    }

    pub fn prometheus_addr(&self) -> String {
        format!("127.0.0.1:{}090", self.prefix)
    }

    /// The client certificate (`tls:admin`) and CA the `certs` service wrote for the host.
    pub fn client_files(&self) -> TlsFiles {
        let d = self.client_dir.path();
        TlsFiles {
            cert_file: d.join("admin.pem"),
            key_file: d.join("admin-key.pem"),
            ca_file: d.join("ca.pem"),
        }
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("TRIBUTARY_IMAGE", &self.env.image)
            .env("TRIBUTARY_PROMETHEUS_IMAGE", &self.env.prometheus_image)
            .env("TRIBUTARY_PORT_PREFIX", self.prefix.to_string())
            .env("TRIBUTARY_CLIENT_DIR", self.client_dir.path())
            .envs(self.vars.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs the compose CLI on this project; fails with its output unless it succeeds.
    pub fn compose(&self, args: &[&str]) -> Result<String> {
        let file = self.env.compose_file.display().to_string();
        let mut all = self.env.compose[1..]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>();
        all.extend(["-f", &file, "-p", &self.project]);
        all.extend(args);
        run(self.command(&self.env.compose[0], &all), "compose")
    }

    /// Runs `docker ARGS`.
    pub fn docker(&self, args: &[&str]) -> Result<String> {
        run(self.command("docker", args), "docker")
    }

    /// The container of `service` (running or not).
    pub fn container(&self, service: &str) -> Result<String> {
        let id = self.compose(&["ps", "-a", "-q", service])?;
        let id = id.trim();
        if id.is_empty() {
            bail!("{}: no container for {service}", self.project);
        }
        Ok(id.to_string())
    }

    /// The project's network (compose names it `<project>_tributary`).
    pub fn network(&self) -> String {
        format!("{}_tributary", self.project)
    }

    /// `compose up -d`, then waits until the cluster takes a catalogue write and every data
    /// node is up; returns how long that took from the `up`.
    pub async fn up(&self) -> Result<Duration> {
        let t0 = Instant::now();
        self.compose(&["up", "-d"])?;
        self.wait_writable().await?;
        Ok(t0.elapsed())
    }

    /// Waits until a catalogue write succeeds and all data nodes are up.
    pub async fn wait_writable(&self) -> Result<()> {
        self.tribctl(&["cluster", "wait", "--data-nodes", "3", "--timeout", "90s"])?;
        // A new name each time: a member still catching up may show an older probe of the
        // same name, deleted since.
        static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let probe = format!("probe{}x{n}", std::process::id());
        wait::until("a catalogue write", Duration::from_secs(60), || async {
            self.tribctl(&["well", "create", &format!("default:{probe}")])
                .ok()
                .or_else(|| {
                    // Applied before a failure was reported: it exists.
                    self.tribctl(&["well", "get", &probe]).ok()
                })
        })
        .await?;
        self.tribctl(&["well", "delete", &probe])?;
        Ok(())
    }

    /// `tribctl ARGS` from the host against this cluster, as its admin; fails with stderr.
    pub fn tribctl(&self, args: &[&str]) -> Result<String> {
        run(
            self.tribctl_command(args),
            &format!("tribctl {}", args.join(" ")),
        )
    }

    fn tribctl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.env.tribctl);
        let f = self.client_files();
        let servers = MEMBERS.map(|i| self.member_addr(i)).join(",");
        let resolve = DATA_NODES
            .map(|i| format!("data-node-{i}:7200={}", self.data_node_addr(i)))
            .join(",");
        cmd.args(args)
            .env("TRIBUTARY_SERVER", servers)
            .env("TRIBUTARY_CA", &f.ca_file)
            .env("TRIBUTARY_CERT", &f.cert_file)
            .env("TRIBUTARY_KEY", &f.key_file)
            .env("TRIBUTARY_RESOLVE", resolve);
        cmd
    }

    /// `tribctl --json ARGS`, parsed.
    pub fn tribctl_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut all = vec!["--json"];
        all.extend(args);
        let out = self.tribctl(&all)?;
        serde_json::from_str(&out).with_context(|| format!("tribctl {args:?} printed {out}"))
    }

    /// The member that leads now, as the members say (0: none known).
    pub fn leader(&self) -> Result<u64> {
        let s = self.tribctl_json(&["cluster", "status"])?;
        Ok(s["leader"].as_u64().unwrap_or(0))
    }

    /// `tribctl` run inside `service`'s container against its own client listener (how a
    /// member cut off from the network is still reached).
    pub fn tribctl_inside(&self, service: &str, args: &[&str]) -> Result<String> {
        let mut all = vec![
            "exec",
            "-e",
            "TRIBUTARY_SERVER=127.0.0.1:7100",
            "-e",
            "TRIBUTARY_CA=/etc/tributary/pki/ca.pem",
            "-e",
            "TRIBUTARY_CERT=/etc/tributary/pki/admin.pem",
            "-e",
            "TRIBUTARY_KEY=/etc/tributary/pki/admin-key.pem",
        ];
        let id = self.container(service)?;
        all.push(&id);
        all.push("tribctl");
        all.extend(args);
        self.docker(&all)
    }

    /// Waits until Docker reports `service`'s container healthy (the image's HEALTHCHECK on
    /// `/health`).
    pub async fn wait_healthy(&self, service: &str) -> Result<()> {
        let id = self.container(service)?;
        wait::until(
            &format!("{service} healthy"),
            Duration::from_secs(90),
            || async {
                let s = self
                    .docker(&["inspect", "-f", "{{.State.Health.Status}}", &id])
                    .ok()?;
                (s.trim() == "healthy").then_some(())
            },
        )
        .await
    }

    /// `tribctl ARGS` with `input` on its standard input.
    pub fn tribctl_stdin(&self, args: &[&str], input: &str) -> Result<String> {
        use std::io::Write;
        let mut cmd = self.tribctl_command(args);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().context("tribctl")?;
        child
            .stdin
            .take()
            .context("tribctl's stdin")?
            .write_all(input.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "tribctl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The containers' logs, for a failure report.
    pub fn logs(&self) -> String {
        self.compose(&["logs", "--no-color", "--tail", "40"])
            .unwrap_or_else(|e| e.to_string())
    }
}

impl Drop for ComposeCluster {
    fn drop(&mut self) {
        if std::env::var_os("TRIBUTARY_TEST_KEEP").is_none() {
            let _ = self.compose(&["down", "-v", "--remove-orphans"]);
        }
    }
}

fn run(mut cmd: Command, what: &str) -> Result<String> {
    let out: Output = cmd
        .output()
        .with_context(|| format!("{what}: cannot run {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{what} {:?} failed ({}): {}{}",
            cmd.get_args().collect::<Vec<_>>(),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
