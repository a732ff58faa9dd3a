//! `tribctl dev up|status|down`: a local cluster of real server processes on 127.0.0.1, for
//! trying Tributary out and for developing against it. What `up` started is recorded in
//! `DIR/dev.json`, so `status` and `down` work from any shell.

mod down;
mod record;
mod status;
mod up;

use clap::{Args, Subcommand};
use std::path::PathBuf;

const DIR_HELP: &str = "Directory of the dev cluster: dev.json, each server's data in \
    DIR/<name>/ and its output in DIR/<name>.log [default: $XDG_RUNTIME_DIR/tributary-dev, \
    or /tmp/tributary-dev-$USER without XDG_RUNTIME_DIR]";

#[derive(Subcommand)]
pub enum DevCmd {
    /// Start control-plane members and data nodes as background processes (the binaries beside
    /// tribctl, else on PATH), wait until a leader is elected and every data node is up, and
    /// print the cluster status and the TRIBUTARY_SERVER line. Members listen on the base port
    /// and up, data nodes right after them, admin HTTP (/metrics, /health) 1000 above each.
    /// The servers get only the flags planned here: this shell's TRIBUTARY_* variables are not
    /// passed on. The cluster is insecure (cleartext gRPC, no authentication).
    Up(UpArgs),
    /// Each recorded process (running or not, pid, address, log file) and the cluster status.
    Status(DirArg),
    /// Stop the recorded processes: SIGTERM, then SIGKILL after --timeout; data is kept
    /// (`up` with the same flags starts the cluster again) unless --purge.
    Down(DownArgs),
}

#[derive(Args)]
pub struct DirArg {
    #[arg(long, help = DIR_HELP)]
    dir: Option<PathBuf>,
}

impl DirArg {
    pub fn resolve(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(default_dir)
    }
}

#[derive(Args)]
pub struct UpArgs {
    /// Control-plane members (Raft voters).
    #[arg(long, default_value_t = 3)]
    members: u16,
    /// Data nodes.
    #[arg(long, default_value_t = 3)]
    data_nodes: u16,
    /// First member's port; the others, then the data nodes, take the ports after it.
    #[arg(long, default_value_t = 7100)]
    base_port: u16,
    /// How long to wait for a leader and every data node, e.g. `30s`.
    #[arg(long, default_value = "30s")]
    timeout: String,
    #[command(flatten)]
    dir: DirArg,
}

#[derive(Args)]
pub struct DownArgs {
    /// How long a server may take to exit after SIGTERM before it gets SIGKILL, e.g. `10s`.
    #[arg(long, default_value = "10s")]
    timeout: String,
    /// Also remove what the cluster left in DIR: data dirs, logs and dev.json.
    #[arg(long)]
    purge: bool,
    #[command(flatten)]
    dir: DirArg,
}

/// `$XDG_RUNTIME_DIR/tributary-dev` (per user, cleared at logout), else a per-user directory
/// under /tmp.
fn default_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("tributary-dev"),
        None => {
            let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
            std::env::temp_dir().join(format!("tributary-dev-{user}"))
        }
    }
}

fn duration_arg(flag: &str, raw: &str) -> anyhow::Result<std::time::Duration> {
    tributary_common::duration::parse(raw).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

pub async fn run(cmd: DevCmd, json: bool) -> anyhow::Result<()> {
    match cmd {
        DevCmd::Up(a) => up::run(a, json).await,
        DevCmd::Status(d) => status::run(&d.resolve(), json).await,
        DevCmd::Down(a) => down::run(a, json).await,
    }
}
