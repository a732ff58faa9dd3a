//! One picture of what copies what: every well with its ditto targets, every stream with its
//! mirror and sources (and the external streams they come from), each edge with its live lag
//! and last error. Built from the catalogue and the data nodes' live stats ([`gather`]), the
//! same for `tribctl topology`, `tribctl stream report` and a member's status page; drawn as
//! Graphviz ([`dot`]) or laid out here as SVG ([`svg`]).
//!
//! The lag is the data nodes' own figure, never recomputed: a mirror's or source's
//! `ReplicationInfo.lag` (messages the origin holds that the copy lacks), a ditto worker's
//! `entries_behind`. What could not be read is an edge with no lag and the reason as its error.

pub mod dot;
mod gather;
pub mod svg;

pub use gather::{gather, gather_streams, Snapshot, StreamState, TopologySource};

use crate::names::EntityName;
use serde::Serialize;
use tributary_proto::v1::{
    DittoStatsReply, ReplicationInfo, StorageType, Stream, StreamInfoReply, Target, Well,
};

/// `active_ms` of an origin never heard from (the data node's wire value).
pub const NEVER: u64 = u64::MAX;

/// `default:ORDERS` reads as `ORDERS`; other namespaces stay visible.
pub fn short(name: &str) -> &str {
    name.strip_prefix("default:").unwrap_or(name)
}

/// The name as stored (`ns:name`), so a bare and a qualified spelling meet; a name the
/// catalogue would refuse stays as given.
fn canonical(name: &str) -> String {
    EntityName::canonical(name).unwrap_or_else(|_| name.to_string())
}

/// What a vertex of the graph is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A stream of another cluster that a mirror or source copies from.
    Origin,
    Stream,
    Well,
    /// A ditto target: another cluster's ingest endpoints.
    Target,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    Mirror,
    Source,
    Ditto,
}

impl EdgeKind {
    pub fn title(self) -> &'static str {
        match self {
            EdgeKind::Mirror => "Mirror",
            EdgeKind::Source => "Source",
            EdgeKind::Ditto => "Ditto",
        }
    }

    /// What its lag counts.
    pub fn unit(self) -> &'static str {
        match self {
            EdgeKind::Mirror | EdgeKind::Source => "msgs",
            EdgeKind::Ditto => "entries",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Vertex {
    /// Unique in the graph: a stream's short name, `well/NAME`, `target/NAME`,
    /// `NAME@ENDPOINT` for an external origin (names hold no `/` or `@`).
    pub id: String,
    pub role: Role,
    /// The short name.
    pub name: String,
    /// A line about it: a stream's messages and storage, a well's node, a target's endpoints.
    pub detail: String,
    /// Why its state could not be read, if it could not.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// Data flowing `from` → `to`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
    /// Messages (mirror, source) or entries (ditto) behind; null when unknown.
    pub lag: Option<u64>,
    /// Milliseconds since the origin was last heard from (mirror, source); null = never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_ms: Option<u64>,
    /// A ditto worker's state (copying, tailing, queued, retrying).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub state: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

impl Edge {
    /// `Mirror lag 12 msgs`, `Ditto lag 3.4k entries`, `Source lag ?` when unknown.
    pub fn label(&self) -> String {
        match self.lag {
            Some(n) => format!(
                "{} lag {} {}",
                self.kind.title(),
                human_count(n),
                self.kind.unit()
            ),
            None => format!("{} lag ?", self.kind.title()),
        }
    }
}

/// Exact below 10 000, then `12.3k`, `4.5M`, `1.2G`.
pub fn human_count(n: u64) -> String {
    const STEPS: [(u64, &str); 3] = [(1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")];
    if n < 10_000 {
        return n.to_string();
    }
    let (div, unit) = STEPS
        .iter()
        .find(|(d, _)| n >= *d)
        .copied()
        .unwrap_or((1, ""));
    format!("{:.1}{unit}", n as f64 / div as f64)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Topology {
    pub vertices: Vec<Vertex>,
    pub edges: Vec<Edge>,
}

/// One mirror or source of a stream as its data node reports it (a row of `stream report`'s
/// Replication Report), or as configured when the node could not be asked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    /// The copying stream (short name).
    pub stream: String,
    /// "mirror" or "source".
    pub kind: String,
    /// The origin stream (short name).
    pub source: String,
    /// Milliseconds since the origin was last heard from; null = never.
    pub active_ms: Option<u64>,
    /// Null when the copying stream's node could not be asked.
    pub lag: Option<u64>,
    pub error: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub external: String,
}

impl Link {
    fn reported(dest: &str, r: &ReplicationInfo) -> Link {
        Link {
            stream: short(dest).to_string(),
            kind: r.kind.clone(),
            source: short(&r.stream).to_string(),
            active_ms: (r.active_ms != NEVER).then_some(r.active_ms),
            lag: Some(r.lag),
            error: r.error.clone(),
            external: r.external.clone(),
        }
    }
}

/// The mirror and sources of `s`: as its node reports them, else as configured, with the
/// reason the node could not be asked.
pub fn links(s: &Stream, state: &StreamState) -> Vec<Link> {
    match state {
        Ok(info) => info
            .replication
            .iter()
            .map(|r| Link::reported(&s.name, r))
            .collect(),
        Err(e) => s
            .mirror
            .iter()
            .map(|m| ("mirror", m))
            .chain(s.sources.iter().map(|m| ("source", m)))
            .map(|(kind, o)| Link {
                stream: short(&s.name).to_string(),
                kind: kind.into(),
                source: short(&o.stream).to_string(),
                active_ms: None,
                lag: None,
                error: format!("destination unreachable: {e}"),
                external: o.external.clone(),
            })
            .collect(),
    }
}

fn stream_vertex(s: &Stream, state: &StreamState) -> Vertex {
    let storage = match s.storage == StorageType::Memory as i32 {
        true => "Memory",
        false => "File",
    };
    let (detail, error) = match state {
        Ok(StreamInfoReply {
            state: Some(st), ..
        }) => (format!("{} msgs, {storage}", st.messages), String::new()),
        Ok(_) => (storage.to_string(), String::new()),
        Err(e) => (storage.to_string(), e.clone()),
    };
    Vertex {
        id: short(&s.name).to_string(),
        role: Role::Stream,
        name: short(&s.name).to_string(),
        detail,
        error,
    }
}

fn well_id(name: &str) -> String {
    format!("well/{}", short(name))
}

fn target_id(name: &str) -> String {
    format!("target/{}", short(name))
}

fn target_vertex(t: &Target) -> Vertex {
    let endpoints: Vec<&str> = t
        .encrypted_endpoints
        .iter()
        .chain(&t.cleartext_endpoints)
        .map(String::as_str)
        .collect();
    Vertex {
        id: target_id(&t.name),
        role: Role::Target,
        name: short(&t.name).to_string(),
        detail: endpoints.join(", "),
        error: String::new(),
    }
}

impl Topology {
    /// The streams' part: a vertex per stream and per external origin, an edge per mirror or
    /// source (what `stream report --dot` draws).
    pub fn of_streams(streams: &[(Stream, StreamState)]) -> Topology {
        let mut t = Topology::default();
        for (s, state) in streams {
            t.vertices.push(stream_vertex(s, state));
            for l in links(s, state) {
                let from = match l.external.is_empty() {
                    true => l.source.clone(),
                    false => {
                        let id = format!("{}@{}", l.source, l.external);
                        t.add_vertex(Vertex {
                            id: id.clone(),
                            role: Role::Origin,
                            name: l.source.clone(),
                            detail: l.external.clone(),
                            error: String::new(),
                        });
                        id
                    }
                };
                t.edges.push(Edge {
                    from,
                    to: l.stream.clone(),
                    kind: match l.kind.as_str() {
                        "mirror" => EdgeKind::Mirror,
                        _ => EdgeKind::Source,
                    },
                    lag: l.lag,
                    active_ms: l.active_ms,
                    state: String::new(),
                    error: l.error,
                });
            }
        }
        t
    }

    /// Everything: the streams' part, and a vertex per well and per ditto target with an edge
    /// per (well, target) carrying the worker's entries behind and last error.
    pub fn build(snap: &Snapshot) -> Topology {
        let mut t = Topology::of_streams(&snap.streams);
        for target in &snap.targets {
            t.add_vertex(target_vertex(target));
        }
        for w in &snap.wells {
            t.add_well(w, snap);
        }
        t.vertices
            .sort_by(|a, b| (a.role, &a.id).cmp(&(b.role, &b.id)));
        t
    }

    fn add_vertex(&mut self, v: Vertex) {
        if !self.vertices.iter().any(|x| x.id == v.id) {
            self.vertices.push(v);
        }
    }

    fn add_well(&mut self, w: &Well, snap: &Snapshot) {
        // The node that runs the well's workers, and what it answered.
        let node = snap.ditto.iter().find(|(id, _)| *id == w.owner_node);
        let node_error = match node {
            Some((_, Err(e))) => e.clone(),
            _ => String::new(),
        };
        self.add_vertex(Vertex {
            id: well_id(&w.name),
            role: Role::Well,
            name: short(&w.name).to_string(),
            detail: match w.owner_node {
                0 => "not placed".into(),
                n => format!("node {n}"),
            },
            error: node_error.clone(),
        });
        let well = canonical(&w.name);
        for target in &w.ditto_targets {
            let to = target_id(target);
            if !self.vertices.iter().any(|v| v.id == to) {
                // Named by the well, absent from the catalogue (or not readable by the caller).
                self.add_vertex(Vertex {
                    id: to.clone(),
                    role: Role::Target,
                    name: short(target).to_string(),
                    detail: String::new(),
                    error: "not in the catalogue".into(),
                });
            }
            let wanted = canonical(target);
            let worker = match node {
                Some((_, Ok(DittoStatsReply { workers, .. }))) => workers
                    .iter()
                    .find(|x| canonical(&x.well) == well && canonical(&x.target) == wanted),
                _ => None,
            };
            let edge = match worker {
                Some(x) => Edge {
                    from: well_id(&w.name),
                    to,
                    kind: EdgeKind::Ditto,
                    lag: Some(x.entries_behind),
                    active_ms: None,
                    state: x.state.clone(),
                    error: x.last_error.clone(),
                },
                None => Edge {
                    from: well_id(&w.name),
                    to,
                    kind: EdgeKind::Ditto,
                    lag: None,
                    active_ms: None,
                    state: String::new(),
                    error: match (w.owner_node, node_error.is_empty()) {
                        (0, _) => "the well is not placed on a data node".into(),
                        (n, false) => format!("data node {n}: {node_error}"),
                        (n, true) => format!("data node {n} reports no worker for it yet"),
                    },
                },
            };
            self.edges.push(edge);
        }
    }
}

#[cfg(test)]
mod tests;
