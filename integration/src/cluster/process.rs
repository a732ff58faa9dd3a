//! A server run as its real binary (`tributary-control-plane`, `tributary-data-node`) so a
//! test can `kill -9` it: started on port 0 with `--addr-file`, and known to be serving once
//! that file appears.

use crate::wait;
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tributary_common::addr_file::BoundAddrs;

/// How long a binary may take to open its storage and bind (a loaded machine is slow).
const START: Duration = Duration::from_secs(30);

/// A running server binary; dropping it is `kill -9` (SIGKILL) and a wait, so a failing test
/// leaves nothing running behind.
pub struct ServerProcess {
    child: Child,
    pub addrs: BoundAddrs,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `<target>/debug/<name>` (or release) beside the running test or benchmark executable.
pub fn binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // Tests run from `<profile>/deps/`, binaries from `<profile>/`.
    let dirs = exe.ancestors().skip(1).take(2);
    for dir in dirs {
        let p = dir.join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    bail!(
        "{name} is not built beside {} (run `cargo build --workspace` first)",
        exe.display()
    )
}

/// Starts `bin` with `config` as its TOML file, all in `dir` under the file names `name.*`,
/// and waits until it has written the addresses it bound.
pub async fn spawn(
    bin: &str,
    config: &impl Serialize,
    dir: &Path,
    name: &str,
) -> Result<ServerProcess> {
    std::fs::create_dir_all(dir)?;
    let config_file = dir.join(format!("{name}.toml"));
    let addr_file = dir.join(format!("{name}.addr.json"));
    let log_file = dir.join(format!("{name}.log"));
    std::fs::write(&config_file, toml_of(config)?)?;
    // A file left by the previous run of this server names a port nobody serves any more.
    match std::fs::remove_file(&addr_file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).context(format!("removing {}", addr_file.display())),
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_file)?;
    let mut cmd = Command::new(binary(bin)?);
    cmd.arg("--config")
        .arg(&config_file)
        .arg("--addr-file")
        .arg(&addr_file)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // The test's own environment must not configure the server behind the harness's back
    // (`OTEL_EXPORTER_OTLP_ENDPOINT` is `tracing.otlp_endpoint`).
    for (k, _) in std::env::vars_os() {
        let k_str = k.to_string_lossy();
        if k_str.starts_with("TRIBUTARY_") || k_str == "OTEL_EXPORTER_OTLP_ENDPOINT" {
            cmd.env_remove(k);
        }
    }
    let child = cmd.spawn().with_context(|| format!("spawning {bin}"))?;
    let mut p = ServerProcess {
        child,
        addrs: BoundAddrs {
            grpc: ([127, 0, 0, 1], 0).into(),
            admin: None,
            peer: None,
        },
    };
    let found = wait::until(&format!("{name} ({bin}) to serve"), START, || {
        let exited = p.child.try_wait();
        let read = BoundAddrs::read(&addr_file);
        async move {
            match exited {
                Ok(Some(status)) => Some(Err(anyhow!("{name} exited: {status}"))),
                Err(e) => Some(Err(anyhow!("{name}: {e}"))),
                Ok(None) => match read {
                    Ok(Some(a)) => Some(Ok(a)),
                    Ok(None) => None,
                    Err(e) => Some(Err(e.into())),
                },
            }
        }
    })
    .await
    .and_then(|r| r);
    match found {
        Ok(a) => {
            p.addrs = a;
            Ok(p)
        }
        Err(e) => Err(e.context(log_tail(&log_file))),
    }
}

/// The last lines a server logged, for the error when it did not start.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    format!("log {}:\n{tail}", path.display())
}

/// A config struct as the TOML file the servers read.
pub fn toml_of(config: &impl Serialize) -> Result<String> {
    toml::to_string(config).context("writing a server config as TOML")
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Format;

    #[test]
    fn configs_become_toml_the_servers_read_back() {
        let mut c = tributary_control_plane::ControlPlaneConfig {
            peers: "1=127.0.0.1:1,2=127.0.0.1:2,3=127.0.0.1:3".into(),
            cluster_secret: "with \"quotes\" and \\".into(),
            ..Default::default()
        };
        c.raft.tick_ms = 7;
        c.admin_subjects = vec!["tls:admin".into()];
        c.entity_creation.grant = vec![tributary_common::policy::CreationRule {
            auth_subjects: vec!["pre:admin".into()],
            ..Default::default()
        }];
        let text = toml_of(&c).unwrap();
        let back: tributary_control_plane::ControlPlaneConfig =
            figment::Figment::from(figment::providers::Toml::string(&text))
                .extract()
                .unwrap();
        assert_eq!(back.raft.tick_ms, 7);
        assert_eq!(back.cluster_secret, c.cluster_secret);
        assert_eq!(back.peers, c.peers);
        assert_eq!(back.admin_subjects, c.admin_subjects);
        assert_eq!(back.entity_creation, c.entity_creation);
        let d = tributary_data_node::DataNodeConfig {
            ingest_secrets: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        let back: tributary_data_node::DataNodeConfig =
            figment::Figment::from(figment::providers::Toml::string(&toml_of(&d).unwrap()))
                .extract()
                .unwrap();
        assert_eq!(back, d);
    }
}
