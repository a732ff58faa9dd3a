//! Mirror and source workers: the node that owns a destination stream copies from its origins.
//!
//! The node's supervisor compares the catalogue with the running workers whenever the
//! catalogue changes (and every [`RECONCILE`] besides) and starts or stops them, so a source
//! removed from a stream stops copying at once and one added starts. Each origin of each
//! stream gets its own task ([`worker`]): sources never share a loop, so one slow or
//! unreachable origin holds back no other. Workers post their state on the node's
//! [`ReplicationBoard`], which `Streams.Info` reads.

pub mod error;
pub mod host;
mod origin;
mod worker;

use crate::node::catalog::canonical;
use crate::node::replication::{BoardLine, CopyStatus, Lines, ReplicationBoard};
use crate::supervisor::{supervise, Workers};
use host::MirrorHost;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tributary_common::task::AbortOnDrop;
use tributary_proto::v1::{Stream, StreamSource};

/// How often the supervisor compares the catalogue with its workers when nothing changed.
const RECONCILE: Duration = Duration::from_millis(100);

/// What one worker copies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Spec {
    /// The destination stream (canonical name).
    pub dest: String,
    pub mirror: bool,
    /// The origin, with its name canonical.
    pub origin: StreamSource,
    /// The destination is replicated: copies go through its group's log.
    pub replicated: bool,
}

impl Spec {
    /// Names a source's progress: the same origin may be sourced twice with different
    /// filters, and a changed start seq must not make a running source start over.
    pub fn progress_key(&self) -> String {
        format!(
            "{}|{}|{}",
            self.origin.external, self.origin.stream, self.origin.filter_subject
        )
    }
}

/// What a stream copies: its mirror, then its sources in order, with canonical names.
pub fn specs(s: &Stream) -> Vec<Spec> {
    let named = |o: &StreamSource| {
        let mut o = o.clone();
        // External names are the other cluster's business: leave them as given.
        if o.external.is_empty() {
            o.stream = canonical(&o.stream);
        }
        o
    };
    let dest = canonical(&s.name);
    let replicated = !s.replica_nodes.is_empty();
    let mut out = Vec::new();
    if let Some(m) = &s.mirror {
        out.push(Spec {
            dest: dest.clone(),
            mirror: true,
            origin: named(m),
            replicated,
        });
    }
    for src in &s.sources {
        out.push(Spec {
            dest: dest.clone(),
            mirror: false,
            origin: named(src),
            replicated,
        });
    }
    out
}

/// A running worker and the status it posts.
struct Running {
    _task: AbortOnDrop,
    status: Arc<Mutex<CopyStatus>>,
}

struct MirrorWorkers {
    host: Arc<dyn MirrorHost>,
    resolver: Arc<origin::Resolver>,
    board: Arc<ReplicationBoard>,
}

impl Workers for MirrorWorkers {
    type Key = Spec;
    type Worker = Running;

    /// Every origin of every stream this node owns: the mirror, then the sources in order.
    fn wanted(&mut self) -> Vec<Spec> {
        self.host.copying_streams().iter().flat_map(specs).collect()
    }

    fn start(&mut self, spec: &Spec) -> Running {
        let status = Arc::new(Mutex::new(CopyStatus::default()));
        let task = AbortOnDrop::spawn(worker::run(
            self.host.clone(),
            spec.clone(),
            status.clone(),
            self.resolver.clone(),
        ));
        Running {
            _task: task,
            status,
        }
    }

    fn changed(&mut self, running: Vec<(&Spec, &Running)>) {
        tracing::info!(workers = running.len(), "mirror/source workers changed");
        let mut lines = Lines::new();
        for (spec, r) in running {
            lines.entry(spec.dest.clone()).or_default().push(BoardLine {
                origin: spec.origin.clone(),
                mirror: spec.mirror,
                external_tls: origin::is_tls(&spec.origin),
                status: r.status.clone(),
            });
        }
        self.board.set(lines);
    }
}

/// Starts the supervisor; `control_plane` locates origins owned by other nodes, which take
/// `own_secret` (this cluster's stream secret; empty: none) and, on an `insecure` cluster,
/// `cluster_token`.
pub fn spawn(
    host: Arc<dyn MirrorHost>,
    board: Arc<ReplicationBoard>,
    control_plane: Vec<String>,
    own_secret: String,
    tls: Option<tributary_common::tls::TlsFiles>,
    cluster_token: String,
) -> AbortOnDrop {
    let changes = host.catalog_changes();
    let workers = MirrorWorkers {
        host,
        resolver: Arc::new(origin::Resolver::new(
            control_plane,
            own_secret,
            tls,
            cluster_token,
        )),
        board,
    };
    AbortOnDrop::spawn(supervise(workers, changes, RECONCILE))
}
