//! A planned cluster as real server processes (`tribctl dev`): the binaries beside `tribctl`
//! (else on `PATH`), each planned config turned into the flags and environment variables the
//! binary reads, started detached so it outlives `tribctl`.

use super::plan::{DataNodePlan, MemberPlan};
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use tributary_control_plane::ControlPlaneConfig;
use tributary_data_node::DataNodeConfig;

pub const CONTROL_PLANE_BIN: &str = "tributary-control-plane";
pub const DATA_NODE_BIN: &str = "tributary-data-node";

/// Config keys the control-plane binary takes as flags (`control-plane/src/main.rs`).
const MEMBER_FLAGS: &[(&str, &str)] = &[
    ("id", "--id"),
    ("listen", "--listen"),
    ("peers", "--peers"),
    ("data_dir", "--data-dir"),
    ("admin_listen", "--admin-listen"),
    ("peer_listen", "--peer-listen"),
    ("admin_subjects", "--admin-subject"),
    ("anonymous_subjects", "--anonymous-subject"),
];
/// Config keys the data-node binary takes as flags (`data-node/src/main.rs`).
const DATA_NODE_FLAGS: &[(&str, &str)] = &[
    ("id", "--id"),
    ("listen", "--listen"),
    ("advertise", "--advertise"),
    ("control_plane", "--control-plane"),
    ("data_dir", "--data-dir"),
    ("admin_listen", "--admin-listen"),
    ("ingest_secrets", "--ingest-secret"),
    ("stream_secrets", "--stream-secret"),
    ("sync_writes", "--sync-writes"),
    ("admin_subjects", "--admin-subject"),
    ("anonymous_subjects", "--anonymous-subject"),
];

pub struct Binaries {
    pub control_plane: PathBuf,
    pub data_node: PathBuf,
}

/// The server binaries beside the running `tribctl`, else on `PATH`.
pub fn find_binaries() -> Result<Binaries> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    Ok(Binaries {
        control_plane: find(CONTROL_PLANE_BIN, beside.as_deref())?,
        data_node: find(DATA_NODE_BIN, beside.as_deref())?,
    })
}

fn find(name: &str, beside: Option<&Path>) -> Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    beside
        .into_iter()
        .chain(on_path.iter().map(PathBuf::as_path))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            let here = beside.map_or("(unknown)".into(), |d| d.display().to_string());
            anyhow!(
                "cannot find {name}: not beside tribctl (in {here}) nor on PATH; build it \
                 (`cargo build --workspace`) or put its directory on PATH"
            )
        })
}

/// A server's program, flags and environment.
#[derive(Debug)]
pub struct ServerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

pub fn member_command(bin: &Path, m: &MemberPlan) -> Result<ServerCommand> {
    render(bin, &m.config, &ControlPlaneConfig::default(), MEMBER_FLAGS)
        .with_context(|| format!("member {}", m.name))
}

pub fn data_node_command(bin: &Path, d: &DataNodePlan) -> Result<ServerCommand> {
    render(bin, &d.config, &DataNodeConfig::default(), DATA_NODE_FLAGS)
        .with_context(|| format!("data node {}", d.name))
}

/// Every key of `config` reaches the server: a flag where the binary has one (empty values
/// left out), else `TRIBUTARY_<KEY>` when it differs from the default. Strings go only as
/// flags, since the environment would read `"007"` as a number.
fn render(
    bin: &Path,
    config: &impl Serialize,
    defaults: &impl Serialize,
    flags: &[(&str, &str)],
) -> Result<ServerCommand> {
    let (value, default) = (
        serde_json::to_value(config)?,
        serde_json::to_value(defaults)?,
    );
    let mut cmd = ServerCommand {
        program: bin.to_path_buf(),
        args: Vec::new(),
        env: Vec::new(),
    };
    let (Value::Object(keys), Value::Object(default)) = (value, default) else {
        bail!("a server config is not a table");
    };
    for (key, v) in keys {
        let d = default.get(&key).cloned().unwrap_or(Value::Null);
        if let Some((_, flag)) = flags.iter().find(|(k, _)| *k == key) {
            let values = match v {
                Value::Array(a) => a,
                other => vec![other],
            };
            for v in values {
                let s = scalar(&key, &v)?;
                if !s.is_empty() {
                    cmd.args.extend([flag.to_string(), s]);
                }
            }
        } else if v != d {
            environment(&key, &v, &d, &mut cmd.env)?;
        }
    }
    Ok(cmd)
}

fn scalar(key: &str, v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => bail!("key `{key}`: cannot pass {other} as one value"),
    }
}

/// `TRIBUTARY_<KEY>` (nested: `TRIBUTARY_<SECTION>__<KEY>`) for what differs from `default`.
fn environment(
    key: &str,
    v: &Value,
    default: &Value,
    env: &mut Vec<(String, String)>,
) -> Result<()> {
    match v {
        Value::Object(section) => {
            for (k, sv) in section {
                let d = default.get(k).cloned().unwrap_or(Value::Null);
                if *sv != d {
                    environment(&format!("{key}__{k}"), sv, &d, env)?;
                }
            }
            Ok(())
        }
        Value::Number(_) | Value::Bool(_) => {
            env.push((
                format!("TRIBUTARY_{}", key.to_ascii_uppercase()),
                scalar(key, v)?,
            ));
            Ok(())
        }
        _ => bail!(
            "key `{key}` has no flag, and only numbers and booleans are safe in the environment"
        ),
    }
}

/// Starts `cmd` detached: its own process group (a Ctrl-C at the terminal does not reach it),
/// no stdin, output appended to `log`, and none of this shell's `TRIBUTARY_*` variables, so
/// the server runs with exactly its planned config.
pub fn spawn(cmd: &ServerCommand, log: &Path) -> Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let mut c = Command::new(&cmd.program);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TRIBUTARY_") {
            c.env_remove(k);
        }
    }
    c.args(&cmd.args)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0);
    c.spawn()
        .with_context(|| format!("starting {}", cmd.program.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launcher::plan::{ClusterPlan, Ports};

    /// The keys a command sets, as the config names them.
    fn keys(cmd: &ServerCommand, flags: &[(&str, &str)]) -> Vec<String> {
        let from_flags = cmd.args.iter().filter_map(|a| {
            flags
                .iter()
                .find(|(_, f)| f == a)
                .map(|(k, _)| k.to_string())
        });
        let from_env = cmd
            .env
            .iter()
            .map(|(k, _)| k.trim_start_matches("TRIBUTARY_").to_ascii_lowercase());
        from_flags.chain(from_env).collect()
    }

    fn changed(config: &impl Serialize, default: &impl Serialize) -> Vec<String> {
        let (Ok(Value::Object(c)), Ok(Value::Object(d))) =
            (serde_json::to_value(config), serde_json::to_value(default))
        else {
            return vec!["not a table".into()];
        };
        c.into_iter()
            .filter(|(k, v)| d.get(k) != Some(v))
            .map(|(k, _)| k)
            .collect()
    }

    #[test]
    fn every_planned_key_reaches_the_server() -> Result<()> {
        let mut plan = ClusterPlan::new(Path::new("/d"), &Ports::from_base(7100, 3, 2)?);
        plan.data_nodes[1].config.ditto_max_workers = 4;
        let bin = Path::new("/bin/x");
        for m in &plan.members {
            let got = keys(&member_command(bin, m)?, MEMBER_FLAGS);
            for k in changed(&m.config, &ControlPlaneConfig::default()) {
                assert!(got.contains(&k), "{} lacks {k}: {got:?}", m.name);
            }
        }
        let cmd = data_node_command(bin, &plan.data_nodes[1])?;
        let got = keys(&cmd, DATA_NODE_FLAGS);
        for k in changed(&plan.data_nodes[1].config, &DataNodeConfig::default()) {
            assert!(got.contains(&k), "dn-2 lacks {k}: {got:?}");
        }
        let env = |k: &str, v: &str| cmd.env.contains(&(k.into(), v.into()));
        assert!(
            env("TRIBUTARY_HEARTBEAT_INTERVAL_MS", "200"),
            "{:?}",
            cmd.env
        );
        assert!(env("TRIBUTARY_DITTO_MAX_WORKERS", "4"), "{:?}", cmd.env);
        let at = cmd.args.iter().position(|a| a == "--control-plane");
        assert_eq!(
            at.and_then(|i| cmd.args.get(i + 1)).map(String::as_str),
            Some(plan.servers().as_str())
        );
        // A string key without a flag is refused, not dropped.
        plan.set_cluster_secret("s");
        let e = format!("{:#}", member_command(bin, &plan.members[0]).unwrap_err());
        assert!(e.contains("cluster_secret") && e.contains("cp-1"), "{e}");
        Ok(())
    }

    #[test]
    fn a_missing_binary_names_both_places() {
        let e = find("no-such-tributary-binary", Some(Path::new("/opt/trib/bin")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/opt/trib/bin") && e.contains("PATH"), "{e}");
    }
}
