//! `tribctl stream report [--dot FILE]`: the Stream Report and Replication Report tables of
//! `nats stream report`, a JSON form for scripts, and a Graphviz map of mirrors and sources.
//! Also the Mirror/Source Information blocks of `tribctl stream info`.

use crate::client::ControlPlane;
use crate::{locate, output};
use anyhow::{Context, Result};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;
use tributary_proto::v1::{
    entity::Kind, streams_client::StreamsClient, EntityKind, ListRequest, ReplicationInfo,
    StorageType, Stream, StreamInfoRequest,
};

/// `active_ms` of an origin never heard from.
const NEVER: u64 = u64::MAX;

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

#[derive(Debug, Clone, Serialize)]
pub struct ReplicationRow {
    pub stream: String,
    /// "mirror" or "source".
    pub kind: String,
    pub source: String,
    /// Milliseconds since the origin was last heard from; null = never.
    pub active_ms: Option<u64>,
    pub lag: u64,
    pub error: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub external: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub streams: Vec<StreamRow>,
    pub replication: Vec<ReplicationRow>,
}

/// `default:ORDERS` reads as `ORDERS`; other namespaces stay visible.
fn short(name: &str) -> &str {
    name.strip_prefix("default:").unwrap_or(name)
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

pub fn active(ms: Option<u64>) -> String {
    match ms {
        None => "never".into(),
        Some(ms) if ms < 60_000 => format!("{:.2}s", ms as f64 / 1000.0),
        Some(ms) => format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

fn kind_title(kind: &str) -> &'static str {
    if kind == "mirror" {
        "Mirror"
    } else {
        "Source"
    }
}

fn replication_row(dest: &str, r: &ReplicationInfo) -> ReplicationRow {
    ReplicationRow {
        stream: short(dest).to_string(),
        kind: r.kind.clone(),
        source: short(&r.stream).to_string(),
        active_ms: (r.active_ms != NEVER).then_some(r.active_ms),
        lag: r.lag,
        error: r.error.clone(),
        external: r.external.clone(),
    }
}

/// Every stream in the catalogue with its state, read from the node that owns it.
pub async fn gather(cp: &ControlPlane) -> Result<Report> {
    let req = ListRequest {
        kind: EntityKind::Stream as i32,
        namespace: String::new(),
    };
    let list = cp
        .catalog(|mut c| {
            let q = req.clone();
            async move { c.list(q).await }
        })
        .await?;
    let streams: Vec<Stream> = list
        .entities
        .into_iter()
        .filter_map(|e| match e.kind {
            Some(Kind::Stream(s)) => Some(s),
            _ => None,
        })
        .collect();
    // One Info per stream, all at once: a report of many streams should not take a round
    // trip each, and one down node must not hold the rest back.
    let infos = futures::future::join_all(streams.iter().map(|s| async move {
        let ch = locate::stream_channel(cp, s).await?;
        let r = StreamsClient::new(ch)
            .info(StreamInfoRequest {
                stream: s.name.clone(),
            })
            .await?;
        anyhow::Ok(r.into_inner())
    }))
    .await;
    let mut report = Report::default();
    for (s, info) in streams.iter().zip(infos) {
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
        match info {
            Ok(i) => {
                row.cluster = crate::stream_cluster::column(s, i.cluster.as_ref());
                if let Some(st) = i.state {
                    row.consumers = st.subscribers;
                    row.messages = st.messages;
                    row.bytes = st.bytes;
                    row.deleted = st.deleted;
                }
                report
                    .replication
                    .extend(i.replication.iter().map(|r| replication_row(&s.name, r)));
            }
            Err(e) => {
                row.error = format!("{e:#}");
                // Still show the configured links, so the map has its edges.
                let links = s
                    .mirror
                    .iter()
                    .map(|m| ("mirror", m))
                    .chain(s.sources.iter().map(|m| ("source", m)));
                for (kind, o) in links {
                    report.replication.push(ReplicationRow {
                        stream: short(&s.name).to_string(),
                        kind: kind.into(),
                        source: short(&o.stream).to_string(),
                        active_ms: None,
                        lag: 0,
                        error: format!("destination unreachable: {e:#}"),
                        external: o.external.clone(),
                    });
                }
            }
        }
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
                x.lag.to_string(),
                x.error.clone(),
            ]
        })
        .collect();
    let header = ["Stream", "Kind", "Source Stream", "Active", "Lag", "Error"];
    println!("\nReplication Report\n{}", output::table(&header, rows));
}

/// A Graphviz digraph: a node per stream, an edge origin → destination per mirror or
/// source, labelled with its kind and lag.
pub fn dot(r: &Report) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\\\""));
    let mut out = String::from("digraph Replication {\n  rankdir=LR;\n  node [shape=box];\n");
    for s in &r.streams {
        let _ = writeln!(
            out,
            "  {} [label={}];",
            q(&s.stream),
            q(&format!(
                "{}\\n{} msgs, {}",
                s.stream, s.messages, s.storage
            ))
        );
    }
    for x in &r.replication {
        let style = if x.kind == "mirror" {
            "solid"
        } else {
            "dashed"
        };
        let _ = writeln!(
            out,
            "  {} -> {} [label={}, style={style}];",
            q(&x.source),
            q(&x.stream),
            q(&format!("{} lag {}", kind_title(&x.kind), x.lag))
        );
    }
    out.push_str("}\n");
    out
}

pub fn write_dot(r: &Report, path: &Path) -> Result<()> {
    std::fs::write(path, dot(r)).with_context(|| format!("writing {}", path.display()))
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
