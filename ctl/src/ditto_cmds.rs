//! `tribctl ditto stats [--watch]` (every data node's ditto workers) and
//! `tribctl apply --gravwell FILE` (Gravwell's `[Ditto-Target]` / well blocks into the catalogue).

use crate::client::ControlPlane;
use crate::output;
use anyhow::{anyhow, Context, Result};
use std::collections::BTreeMap;
use std::time::Duration;
use tributary_common::duration;
use tributary_proto::v1::{
    ditto_client::DittoClient, entity::Kind, DittoStatsRequest, DittoWorkerStats, Entity,
    EntityKind, ListRequest, Target, Well,
};

#[derive(clap::Subcommand)]
pub enum DittoCmd {
    /// Per (well, target): state, shard n of m, entries behind, counters, last error.
    Stats {
        /// Refresh every 2 s until interrupted.
        #[arg(long)]
        watch: bool,
    },
}

/// Every data node's workers, with the node id.
pub async fn collect(cp: &ControlPlane) -> Result<Vec<(u64, DittoWorkerStats)>> {
    let req = ListRequest {
        kind: EntityKind::DataNode as i32,
        namespace: String::new(),
    };
    let nodes = cp
        .catalog(|mut c| {
            let r = req.clone();
            async move { c.list(r).await }
        })
        .await?;
    let mut out = Vec::new();
    for e in nodes.entities {
        let Some(Kind::DataNode(n)) = e.kind else {
            continue;
        };
        let ch = cp.node_channel(&n.addr)?;
        match DittoClient::new(ch).stats(DittoStatsRequest {}).await {
            Ok(r) => out.extend(r.into_inner().workers.into_iter().map(|w| (n.id, w))),
            Err(s) => eprintln!("data node {} ({}): {}", n.id, n.addr, s.message()),
        }
    }
    Ok(out)
}

pub fn table(rows: &[(u64, DittoWorkerStats)]) -> comfy_table::Table {
    output::table(
        &[
            "well",
            "target",
            "node",
            "state",
            "shard",
            "sent",
            "bytes",
            "behind",
            "B/s",
            "retagged",
            "dropped",
            "corrupt",
            "last error",
        ],
        rows.iter()
            .map(|(node, w)| {
                vec![
                    w.well.clone(),
                    w.target.clone(),
                    node.to_string(),
                    w.state.clone(),
                    format!("{} of {}", w.shard_index, w.shard_count),
                    w.entries_sent.to_string(),
                    w.bytes_sent.to_string(),
                    w.entries_behind.to_string(),
                    format!("{:.0}", w.bps),
                    w.unresolvable_retagged.to_string(),
                    w.unresolvable_dropped.to_string(),
                    w.corrupt_skipped.to_string(),
                    w.last_error.clone(),
                ]
            })
            .collect(),
    )
}

pub async fn run(cmd: DittoCmd, cp: &ControlPlane, json: bool) -> Result<()> {
    let DittoCmd::Stats { watch } = cmd;
    loop {
        let rows = collect(cp).await?;
        if json {
            let v: Vec<_> = rows
                .iter()
                .map(|(n, w)| serde_json::json!({ "node": n, "stats": w }))
                .collect();
            output::json(&v)?;
        } else {
            if watch {
                // Clear the screen and go home, as `watch` does.
                print!("\x1b[2J\x1b[H");
            }
            println!("{}", table(&rows));
        }
        if !watch {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// What a Gravwell config turns into.
#[derive(Debug, Default, PartialEq)]
pub struct GravwellPlan {
    pub targets: Vec<Target>,
    pub wells: Vec<Well>,
    pub max_workers: Option<u64>,
    /// Lines or sections not understood, with their line numbers.
    pub ignored: Vec<String>,
}

fn unquote(v: &str) -> String {
    v.trim().trim_matches('"').to_string()
}

fn secs(v: &str) -> Result<u64, String> {
    duration::parse(v).map(|d| d.as_secs())
}

/// Parses `[Ditto-Target "x"]`, `[Default-Well]`, `[Storage-Well "x"]` and `[Global]`.
pub fn parse_gravwell(text: &str) -> GravwellPlan {
    let mut plan = GravwellPlan::default();
    enum Sec {
        Target(usize),
        Well(usize),
        Global,
        Other,
    }
    let mut sec = Sec::Other;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let n = i + 1;
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(h) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let (kind, name) = match h.split_once(char::is_whitespace) {
                Some((k, rest)) => (k.trim(), unquote(rest)),
                None => (h.trim(), String::new()),
            };
            sec = match kind.to_ascii_lowercase().as_str() {
                "ditto-target" if !name.is_empty() => {
                    plan.targets.push(Target {
                        name,
                        ..Default::default()
                    });
                    Sec::Target(plan.targets.len() - 1)
                }
                "default-well" | "storage-well" => {
                    let default = kind.eq_ignore_ascii_case("default-well");
                    plan.wells.push(Well {
                        name: if default { "default".into() } else { name },
                        default_well: default,
                        ..Default::default()
                    });
                    Sec::Well(plan.wells.len() - 1)
                }
                "global" => Sec::Global,
                _ => {
                    plan.ignored.push(format!("line {n}: section [{h}]"));
                    Sec::Other
                }
            };
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            plan.ignored.push(format!("line {n}: {line}"));
            continue;
        };
        let (key, v) = (k.trim().to_ascii_lowercase(), unquote(v));
        let mut bad = |why: String| plan.ignored.push(format!("line {n}: {}: {why}", k.trim()));
        match &sec {
            Sec::Target(t) => {
                let t = &mut plan.targets[*t];
                match key.as_str() {
                    "encrypted-backend-target" => t.encrypted_endpoints.push(with_port(&v, 4024)),
                    "cleartext-backend-target" => t.cleartext_endpoints.push(with_port(&v, 4023)),
                    "ingest-secret" => t.ingest_secret = v,
                    "start-time" => match crate::start_time::parse(&v) {
                        Ok(ns) => t.start_time_ns = ns,
                        Err(e) => bad(e),
                    },
                    "unresolvable-tag-destination" => t.unresolvable_tag_destination = v,
                    "enable-compression" => t.enable_compression = v.eq_ignore_ascii_case("true"),
                    _ => bad("not understood".into()),
                }
            }
            Sec::Well(w) => {
                let w = &mut plan.wells[*w];
                match key.as_str() {
                    "location" => w.hot_location = v,
                    "cold-location" => w.cold_location = v,
                    "tags" => w.tags.extend(
                        v.split(',')
                            .map(|t| t.trim().to_string())
                            .filter(|t| !t.is_empty()),
                    ),
                    "hot-duration" => match secs(&v) {
                        Ok(s) => w.hot_duration_secs = s,
                        Err(e) => bad(e),
                    },
                    "cold-duration" => match secs(&v) {
                        Ok(s) => w.cold_duration_secs = s,
                        Err(e) => bad(e),
                    },
                    "ditto-target" => w.ditto_targets.push(v),
                    _ => bad("not understood".into()),
                }
            }
            Sec::Global if key == "ditto-max-workers" => match v.parse() {
                Ok(m) => plan.max_workers = Some(m),
                Err(e) => bad(format!("{e}")),
            },
            Sec::Global | Sec::Other => bad("not understood".into()),
        }
    }
    plan
}

/// Gravwell's default ingest ports when a target names only a host.
fn with_port(v: &str, port: u16) -> String {
    if v.rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        v.to_string()
    } else {
        format!("{v}:{port}")
    }
}

/// Creates (or updates) each target, then each well.
pub async fn apply_gravwell(file: &std::path::Path, cp: &ControlPlane, json: bool) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let plan = parse_gravwell(&text);
    let mut done = BTreeMap::new();
    let entities = plan
        .targets
        .iter()
        .map(|t| Kind::Target(t.clone()))
        .chain(plan.wells.iter().map(|w| Kind::Well(w.clone())));
    for kind in entities {
        let e = Entity { kind: Some(kind) };
        let name = e
            .kind
            .as_ref()
            .map(|k| match k {
                Kind::Target(t) => format!("target {}", t.name),
                Kind::Well(w) => format!("well {}", w.name),
                _ => String::new(),
            })
            .unwrap_or_default();
        let created = cp
            .catalog(|mut c| {
                let e = e.clone();
                async move { c.create(e).await }
            })
            .await;
        let what = match created {
            Ok(_) => "created",
            Err(s) if s.code() == tonic::Code::AlreadyExists => {
                cp.catalog(|mut c| {
                    let e = e.clone();
                    async move { c.update(e).await }
                })
                .await
                .map_err(|s| anyhow!("{name}: {}", s.message()))?;
                "updated"
            }
            Err(s) => return Err(anyhow!("{name}: {}", s.message())),
        };
        done.insert(name, what);
    }
    if json {
        return output::json(&serde_json::json!({
            "applied": done,
            "ditto_max_workers": plan.max_workers,
            "not_understood": plan.ignored,
        }));
    }
    for (name, what) in &done {
        println!("{what} {name}");
    }
    if let Some(m) = plan.max_workers {
        println!("Ditto-Max-Workers={m}: a data-node setting; put `ditto_max_workers = {m}` in each data node's config (or TRIBUTARY_DITTO_MAX_WORKERS={m})");
    }
    for i in &plan.ignored {
        println!("not understood: {i}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_gravwell_blocks_and_reports_the_rest() {
        let plan = parse_gravwell(
            r#"
[Global]
Ditto-Max-Workers=4
Log-Level=INFO

[Ditto-Target "new-cluster"]
	Encrypted-Backend-Target=newidx1.example.org
	Cleartext-Backend-Target=10.0.0.2:4023
	Ingest-Secret=xyzzy
	Start-Time="2024-01-01T00:00:00"
	Unresolvable-Tag-Destination=lost
	Enable-Compression=true

[Default-Well]
	Location=/opt/gravwell/storage/default/
	Cold-Location=/opt/gravwell/cold_storage/default/
	Hot-Duration=7d
	Ditto-Target="new-cluster"

[Storage-Well "syslog"]
	Tags=syslog, kernel
	Cold-Duration=30d
	Bogus=1
"#,
        );
        assert_eq!(plan.max_workers, Some(4));
        let t = &plan.targets[0];
        assert_eq!(t.name, "new-cluster");
        assert_eq!(t.encrypted_endpoints, vec!["newidx1.example.org:4024"]);
        assert_eq!(t.cleartext_endpoints, vec!["10.0.0.2:4023"]);
        assert_eq!(t.start_time_ns, 1_704_067_200_000_000_000);
        assert!(t.enable_compression);
        assert_eq!(t.unresolvable_tag_destination, "lost");
        assert!(plan.wells[0].default_well);
        assert_eq!(plan.wells[0].hot_duration_secs, 7 * 86_400);
        assert_eq!(plan.wells[0].ditto_targets, vec!["new-cluster"]);
        assert_eq!(plan.wells[1].tags, vec!["syslog", "kernel"]);
        assert_eq!(plan.wells[1].cold_duration_secs, 30 * 86_400);
        assert_eq!(plan.ignored.len(), 2, "{:?}", plan.ignored);
    }
}
