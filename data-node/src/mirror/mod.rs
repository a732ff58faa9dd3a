//! Mirror and source workers: the node that owns a destination stream copies from its origins.
//!
//! One supervisor per node compares the catalogue with the running workers whenever the
//! catalogue changes (and every [`RECONCILE`] besides) and starts or stops them, so a source removed from a stream stops copying at
//! once and one added starts. Each origin of each stream gets its own task ([`worker`]):
//! sources never share a loop, so one slow or unreachable origin holds back no other.
//! Workers publish their state into a [`Registry`] that `Streams.Info` reads.

mod origin;
mod worker;

use crate::catalog::canonical;
use crate::node::Node;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tributary_proto::v1::{ReplicationInfo, StreamSource};

/// How often the supervisor compares the catalogue with its workers when nothing changed.
const RECONCILE: Duration = Duration::from_millis(100);

/// `active_ms` of an origin never heard from (reports show "never").
pub const NEVER_ACTIVE: u64 = u64::MAX;

/// What one worker copies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Spec {
    /// The destination stream (canonical name).
    pub dest: String,
    pub mirror: bool,
    /// The origin, with its name canonical.
    pub origin: StreamSource,
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

/// A worker's state as the reports show it.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub lag: u64,
    pub last_active: Option<Instant>,
    pub error: String,
}

/// Destination stream → its workers in config order (mirror, then sources).
type ByDest = BTreeMap<String, Vec<(Spec, Arc<Mutex<Status>>)>>;

/// Every worker's status, by destination stream.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<ByDest>,
}

impl Registry {
    pub fn report(&self, dest: &str) -> Vec<ReplicationInfo> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(workers) = inner.get(&canonical(dest)) else {
            return Vec::new();
        };
        workers
            .iter()
            .map(|(spec, st)| {
                let st = st.lock().unwrap_or_else(|p| p.into_inner()).clone();
                ReplicationInfo {
                    stream: spec.origin.stream.clone(),
                    kind: if spec.mirror { "mirror" } else { "source" }.into(),
                    lag: st.lag,
                    active_ms: st.last_active.map_or(NEVER_ACTIVE, |t| {
                        u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
                    }),
                    error: st.error,
                    external: spec.origin.external.clone(),
                    external_tls: origin::is_tls(&spec.origin),
                }
            })
            .collect()
    }

    fn set(&self, all: ByDest) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = all;
    }
}

/// Aborts its task when dropped, so stopping the supervisor stops every worker.
struct Running {
    task: JoinHandle<()>,
    status: Arc<Mutex<Status>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The workers this node should run, from its catalogue view.
fn desired(node: &Node) -> Vec<Spec> {
    node.with_catalog(|c| {
        let mut out = Vec::new();
        for s in c.streams.values().filter(|s| s.owner_node == node.id) {
            let named = |o: &StreamSource| {
                let mut o = o.clone();
                // External names are the other cluster's business: leave them as given.
                if o.external.is_empty() {
                    o.stream = canonical(&o.stream);
                }
                o
            };
            if let Some(m) = &s.mirror {
                out.push(Spec {
                    dest: s.name.clone(),
                    mirror: true,
                    origin: named(m),
                });
            }
            for src in &s.sources {
                out.push(Spec {
                    dest: s.name.clone(),
                    mirror: false,
                    origin: named(src),
                });
            }
        }
        out
    })
}

/// Starts the supervisor; `control_plane` locates origins owned by other nodes, which take
/// `own_secret` (this cluster's stream secret; empty: none).
pub fn spawn(node: Arc<Node>, control_plane: Vec<String>, own_secret: String) -> JoinHandle<()> {
    let resolver = Arc::new(origin::Resolver::new(control_plane, own_secret));
    tokio::spawn(async move {
        let mut running: HashMap<Spec, Running> = HashMap::new();
        let mut changes = node.catalog_changes();
        let mut tick = tokio::time::interval(RECONCILE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                // The sender lives as long as the node, which this task holds.
                _ = changes.changed() => {}
            }
            let want = desired(&node);
            let before = running.len();
            running.retain(|spec, _| want.contains(spec));
            let stopped = before - running.len();
            let mut started = 0;
            let mut all = ByDest::new();
            for spec in want {
                let r = running.entry(spec.clone()).or_insert_with(|| {
                    started += 1;
                    let status = Arc::new(Mutex::new(Status::default()));
                    let task = tokio::spawn(worker::run(
                        node.clone(),
                        spec.clone(),
                        status.clone(),
                        resolver.clone(),
                    ));
                    Running { task, status }
                });
                all.entry(spec.dest.clone())
                    .or_default()
                    .push((spec, r.status.clone()));
            }
            if started + stopped > 0 {
                tracing::info!(started, stopped, "mirror/source workers changed");
                node.replication.set(all);
            }
        }
    })
}
