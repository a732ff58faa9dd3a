//! `tribctl stream report [--dot FILE]`: the Stream Report and Replication Report tables of
//! `nats stream report`, a JSON form for scripts, and a Graphviz map of mirrors and sources.
//! Also the Mirror/Source Information blocks of `tribctl stream info`.

use crate::client::ControlPlane;
use crate::output;
use crate::topology_cmd::{active, CtlSource};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;
use tributary_common::topology::{self, short, Link, Topology, NEVER};
use tributary_proto::v1::{ReplicationInfo, StorageType, StreamInfoReply};

#[derive(Debug, Clone, Serialize, Default)]
pub struct StreamRow {
    pub stream: String,
    pub storage: String,
    /// "Mirror", "Sourced" or "".
    pub replication: String,
    pub consumers: u64,
    pub messages: u64,
    pub bytes: u64,
    pub lost: u64,
    pub deleted: u64,
    pub cluster: String,
    /// Why the stream's state could not be read (its node is down, …).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// A row of the Replication Report: one mirror or source (the topology's [`Link`]).
pub type ReplicationRow = Link;

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub streams: Vec<StreamRow>,
    pub replication: Vec<ReplicationRow>,
    /// The streams' part of the topology, for `--dot`.
    #[serde(skip)]
    pub graph: Topology,
}

pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn kind_title(kind: &str) -> &'static str {
    if kind == "mirror" {
        "Mirror"
    } else {
        "Source"
    }
}

/// Every stream in the catalogue with its state, read from the node that owns it.
pub async fn gather(cp: &ControlPlane) -> Result<Report> {
    let streams = topology::gather_streams(&CtlSource(cp)).await?;
    let mut report = Report {
        graph: Topology::of_streams(&streams),
        ..Default::default()
    };
    for (s, state) in &streams {
        let mut row = StreamRow {
            stream: short(&s.name).to_string(),
            storage: if s.storage == StorageType::Memory as i32 {
                "Memory"
            } else {
                "File"
            }
            .into(),
            replication: if s.mirror.is_some() {
                "Mirror"
            } else if !s.sources.is_empty() {
                "Sourced"
            } else {
                ""
            }
            .into(),
            cluster: crate::stream_cluster::column(s, None),
            ..Default::default()
        };
        match state {
            Ok(StreamInfoReply {
                state: st, cluster, ..
            }) => {
                row.cluster = crate::stream_cluster::column(s, cluster.as_ref());
                if let Some(st) = st {
                    row.consumers = st.subscribers;
                    row.messages = st.messages;
                    row.bytes = st.bytes;
                    row.deleted = st.deleted;
                }
            }
            Err(e) => row.error = e.clone(),
        }
        // Still the configured links when the node is down, so the map has its edges.
        report.replication.extend(topology::links(s, state));
        report.streams.push(row);
    }
    Ok(report)
}

pub fn print(r: &Report) {
    let rows = r
        .streams
        .iter()
        .map(|s| {
            vec![
                s.stream.clone(),
                s.storage.clone(),
                s.replication.clone(),
                s.consumers.to_string(),
                s.messages.to_string(),
                human_bytes(s.bytes),
                s.lost.to_string(),
                s.deleted.to_string(),
                if s.error.is_empty() {
                    s.cluster.clone()
                } else {
                    format!("{} (unreachable)", s.cluster)
                },
            ]
        })
        .collect();
    let header = [
        "Stream",
        "Storage",
        "Replication",
        "Consumers",
        "Messages",
        "Bytes",
        "Lost",
        "Deleted",
        "Cluster",
    ];
    println!("Stream Report\n{}", output::table(&header, rows));
    if r.replication.is_empty() {
        return;
    }
    let rows = r
        .replication
        .iter()
        .map(|x| {
            let source = if x.external.is_empty() {
                x.source.clone()
            } else {
                format!("{} ({})", x.source, x.external)
            };
            vec![
                x.stream.clone(),
                kind_title(&x.kind).into(),
                source,
                active(x.active_ms),
                x.lag.map_or("?".into(), |l| l.to_string()),
                x.error.clone(),
            ]
        })
        .collect();
    let header = ["Stream", "Kind", "Source Stream", "Active", "Lag", "Error"];
    println!("\nReplication Report\n{}", output::table(&header, rows));
}

pub fn write_dot(r: &Report, path: &Path) -> Result<()> {
    std::fs::write(path, topology::dot::render(&r.graph))
        .with_context(|| format!("writing {}", path.display()))
}

pub async fn run(cp: &ControlPlane, dot_file: Option<&Path>, json: bool) -> Result<()> {
    let r = gather(cp).await?;
    if let Some(p) = dot_file {
        write_dot(&r, p)?;
    }
    if json {
        return output::json(&r);
    }
    print(&r);
    if let Some(p) = dot_file {
        println!("\nwrote the replication graph to {}", p.display());
    }
    Ok(())
}

/// The Mirror Information / Source Information blocks of `stream info`.
pub fn print_info_blocks(replication: &[ReplicationInfo]) {
    for r in replication {
        let title = if r.kind == "mirror" {
            "Mirror Information"
        } else {
            "Source Information"
        };
        println!("{title}:\n");
        println!("{:>21}: {}", "Stream Name", short(&r.stream));
        if !r.external.is_empty() {
            println!("{:>21}: {}", "External", r.external);
            let tls = if r.external_tls { "yes" } else { "no" };
            println!("{:>21}: {tls}", "External TLS");
        }
        println!("{:>21}: {}", "Lag", r.lag);
        println!(
            "{:>21}: {}",
            "Last Seen",
            active((r.active_ms != NEVER).then_some(r.active_ms))
        );
        if !r.error.is_empty() {
            println!("{:>21}: {}", "Error", r.error);
        }
        println!();
    }
}
