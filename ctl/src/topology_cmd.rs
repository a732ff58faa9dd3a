//! `tribctl topology [--dot FILE] [--json]`: every well with its ditto targets and every
//! stream with its mirror and sources, as one graph whose edges carry the live lag and last
//! error (`tributary_common::topology`); a table of edges for people, the graph as JSON for
//! scripts, Graphviz to a file. Read through a member with the caller's credentials, so the
//! graph holds what the caller may read.

use crate::client::ControlPlane;
use crate::{locate, output};
use anyhow::{Context, Result};
use std::path::Path;
use tonic::Status;
use tributary_common::topology::{self, StreamState, Topology, TopologySource};
use tributary_proto::v1::{
    ditto_client::DittoClient, entity::Kind, streams_client::StreamsClient, DataNode,
    DittoStatsReply, DittoStatsRequest, EntityKind, ListRequest, Stream, StreamInfoRequest,
};

/// The catalogue through a member, the live stats from each data node, with tribctl's
/// credentials.
pub struct CtlSource<'a>(pub &'a ControlPlane);

#[tonic::async_trait]
impl TopologySource for CtlSource<'_> {
    type Error = Status;

    async fn list(&self, kind: EntityKind) -> Result<Vec<Kind>, Status> {
        let req = ListRequest {
            kind: kind as i32,
            namespace: String::new(),
        };
        let list = self
            .0
            .catalog(|mut c| {
                let q = req.clone();
                async move { c.list(q).await }
            })
            .await?;
        Ok(list.entities.into_iter().filter_map(|e| e.kind).collect())
    }

    async fn stream_info(&self, s: &Stream) -> StreamState {
        let info = async {
            let ch = locate::stream_channel(self.0, s).await?;
            let r = StreamsClient::new(ch)
                .info(StreamInfoRequest {
                    stream: s.name.clone(),
                })
                .await?;
            anyhow::Ok(r.into_inner())
        };
        info.await.map_err(|e| format!("{e:#}"))
    }

    async fn ditto_stats(&self, n: &DataNode) -> Result<DittoStatsReply, String> {
        let ch = self.0.node_channel(&n.addr).map_err(|e| e.to_string())?;
        DittoClient::new(ch)
            .stats(DittoStatsRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| tributary_common::grpc::describe(&s))
    }
}

/// Since the origin was last heard from: `0.25s`, `3m12s`, `never`.
pub fn active(ms: Option<u64>) -> String {
    match ms {
        None => "never".into(),
        Some(ms) if ms < 60_000 => format!("{:.2}s", ms as f64 / 1000.0),
        Some(ms) => format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

pub fn table(t: &Topology) -> comfy_table::Table {
    let rows = t
        .edges
        .iter()
        .map(|e| {
            let seen = match (e.active_ms, e.state.is_empty()) {
                (Some(ms), _) => active(Some(ms)),
                (None, false) => e.state.clone(),
                (None, true) => String::new(),
            };
            vec![
                e.from.clone(),
                e.to.clone(),
                e.kind.title().to_string(),
                e.lag.map_or("?".into(), |n| {
                    format!("{} {}", topology::human_count(n), e.kind.unit())
                }),
                seen,
                e.error.clone(),
            ]
        })
        .collect();
    output::table(
        &["From", "To", "Kind", "Lag", "Active / State", "Error"],
        rows,
    )
}

pub async fn run(cp: &ControlPlane, dot_file: Option<&Path>, json: bool) -> Result<()> {
    let snap = topology::gather(&CtlSource(cp)).await?;
    let t = Topology::build(&snap);
    if let Some(p) = dot_file {
        std::fs::write(p, topology::dot::render(&t))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if json {
        return output::json(&t);
    }
    if t.edges.is_empty() {
        println!(
            "no copies: {} streams and wells, none mirrored, sourced or with ditto targets",
            t.vertices.len()
        );
    } else {
        println!("{}", table(&t));
    }
    // What could not be read about a stream or well, beyond its edges.
    for v in t.vertices.iter().filter(|v| !v.error.is_empty()) {
        println!("{}: {}", v.id, v.error);
    }
    if let Some(p) = dot_file {
        println!("\nwrote the topology graph to {}", p.display());
    }
    Ok(())
}
