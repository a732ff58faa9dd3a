//! `DIR/dev.json`: what `tribctl dev up` started, so later commands find it.

use crate::launcher::pid::Pid;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FILE: &str = "dev.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Member,
    DataNode,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Process {
    pub name: String,
    pub role: Role,
    pub id: u64,
    #[serde(flatten)]
    pub pid: Pid,
    pub addr: String,
    pub admin: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

/// The layout `up` was asked for: starting again over the same data needs the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub members: u16,
    pub data_nodes: u16,
    pub base_port: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    #[serde(flatten)]
    pub layout: Layout,
    /// The members' addresses, as TRIBUTARY_SERVER takes them.
    pub server: String,
    pub processes: Vec<Process>,
}

impl Record {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(FILE)
    }

    /// The record in `dir`, if a dev cluster was ever started there.
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        let path = Self::path(dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a tribctl dev record", path.display()))
            .map(Some)
    }

    /// The record in `dir`, or an error saying there is none.
    pub fn require(dir: &Path) -> Result<Self> {
        Self::load(dir)?.ok_or_else(|| {
            anyhow::anyhow!(
                "no dev cluster in {} (no {FILE}); start one with `tribctl dev up --dir {}`",
                dir.display(),
                dir.display()
            )
        })
    }

    /// Written whole to a temporary file and renamed, so a reader never sees half of it.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = Self::path(dir);
        let tmp = dir.join(format!(".{FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }

    pub fn running(&self) -> Vec<&Process> {
        self.processes.iter().filter(|p| p.pid.is_alive()).collect()
    }
}
