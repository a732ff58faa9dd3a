//! The flags of `tribctl dev up|status|down`, and where the cluster lives by default.

use clap::Args;
use std::path::PathBuf;

const DIR_HELP: &str = "Directory of the dev cluster: dev.json, each server's data in \
    DIR/<name>/ and its output in DIR/<name>.log [default: $XDG_RUNTIME_DIR/tributary-dev, \
    or without XDG_RUNTIME_DIR /tmp/tributary-dev-$USER ($TMPDIR for /tmp if set)]";

#[derive(Args)]
pub struct DirArg {
    #[arg(long, help = DIR_HELP)]
    pub dir: Option<PathBuf>,
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
    pub members: u16,
    /// Data nodes.
    #[arg(long, default_value_t = 3)]
    pub data_nodes: u16,
    /// First member's port; the others, then the data nodes, take the ports after it.
    #[arg(long, default_value_t = 7100)]
    pub base_port: u16,
    /// How long to wait for a leader and every data node, e.g. `30s`.
    #[arg(long, default_value = "30s")]
    pub timeout: String,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(Args)]
pub struct DownArgs {
    /// How long a server may take to exit after SIGTERM before it gets SIGKILL, e.g. `10s`.
    #[arg(long, default_value = "10s")]
    pub timeout: String,
    /// Also remove what the cluster left in DIR: data dirs, logs and dev.json.
    #[arg(long)]
    pub purge: bool,
    #[command(flatten)]
    pub dir: DirArg,
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

pub fn duration_arg(flag: &str, raw: &str) -> anyhow::Result<std::time::Duration> {
    tributary_common::duration::parse(raw).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}
