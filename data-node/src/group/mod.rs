//! Replicated streams: one Raft group (raft-rs) per stream of 3 or 5 replicas, among the data
//! nodes the control plane placed it on. As TiKV's raftstore, every group of this node is
//! driven by one ready loop on one thread ([`ready`]), their logs share the node's engine
//! (one write per round for all of them, [`log`]), and their messages leave through one
//! batched link per peer node (`raft_link`, outside this module: it speaks gRPC).
//!
//! The group's log holds operations ([`op`]); the stream's own storage is the state machine,
//! and its records are the snapshot a replica behind the log catches up from ([`snapshot`]).
//! The leader takes every write; acknowledged = committed by a quorum and applied on the
//! leader. Reads are served by the leader too (the services forward to it).

#[cfg(test)]
mod hibernate_tests;
pub mod log;
pub mod op;
mod ready;
pub mod snapshot;
#[cfg(test)]
mod tests;

use crate::storage::streams::{StreamLimits, StreamStore};
use crate::storage::KvEngine;
use op::{Op, Outcome};
use raft::prelude::Message;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;
use tributary_common::sync::{lock, read, write};

pub use ready::Settings;
use snapshot::Shelf;

/// Why a group could not take an operation.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("this data node does not lead stream {stream}'s group (leader: {leader:?})")]
    NotLeader { stream: String, leader: Option<u64> },
    #[error("stream {0} has no replica on this data node")]
    NoGroup(String),
    #[error("stream {stream}: {why}; the outcome is unknown: publish again with the same Msg-Id to be sure it is stored once")]
    Unknown { stream: String, why: String },
    #[error("the replication loop of this data node stopped")]
    Stopped,
}

/// The answer to a submitted proposal, once applied.
pub type Submitted = oneshot::Receiver<Result<Outcome, GroupError>>;

/// What the loop sends to another data node.
#[derive(Debug)]
pub enum Outbound {
    /// A Raft message of one group.
    Raft { to: u64, group: u64, msg: Message },
    /// "This node is up", every heartbeat to every peer: it stands for the heartbeats of the
    /// groups hibernating between the two nodes (`ready::hibernate`).
    Alive { to: u64 },
}

/// When each peer data node was last heard from (any batch of its Raft link counts): a
/// hibernating group wakes when one of its replicas' nodes falls silent.
#[derive(Default)]
pub struct PeerLiveness {
    heard: std::sync::Mutex<HashMap<u64, Instant>>,
}

impl PeerLiveness {
    pub fn heard(&self, node: u64) {
        lock(&self.heard).insert(node, Instant::now());
    }

    /// Since when `node` has been silent (None: never heard).
    pub fn silent_for(&self, node: u64) -> Option<Duration> {
        lock(&self.heard).get(&node).map(Instant::elapsed)
    }

    /// The peers not heard from within `within` among `nodes`.
    fn silent(&self, nodes: &[u64], within: Duration) -> Vec<u64> {
        let heard = lock(&self.heard);
        nodes
            .iter()
            .filter(|n| heard.get(n).is_none_or(|t| t.elapsed() > within))
            .copied()
            .collect()
    }
}

/// A replica as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub node: u64,
    /// Holds every entry the leader has.
    pub current: bool,
    /// Not heard from within twice the election timeout.
    pub offline: bool,
    /// Since the leader last heard from it (None: never).
    pub active: Option<Duration>,
    /// Entries behind the leader.
    pub lag: u64,
}

/// A group's state as `Streams.Info` shows it (from the leader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStatus {
    pub leader: u64,
    pub term: u64,
    pub leader_since: Option<SystemTime>,
    /// The other replicas (on the leader; empty elsewhere).
    pub replicas: Vec<ReplicaStatus>,
    /// The first index this node's log still holds: a replica behind it needs a snapshot.
    pub log_first: u64,
}

/// Where the catalogue places a group's replicas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// The data nodes its replicas are to be on.
    pub replicas: Vec<u64>,
    /// Its first configuration: a founder starts as a voter, any other replica joins empty
    /// and is brought in by the leader (learner, snapshot, voter).
    pub founders: Vec<u64>,
}

/// What the loop is asked to do.
enum Input {
    Open {
        group: u64,
        store: Arc<StreamStore>,
        placement: Placement,
        limits: StreamLimits,
    },
    Close {
        group: u64,
        destroy: bool,
    },
    Step {
        group: u64,
        msg: Message,
    },
    Propose {
        group: u64,
        op: Op,
        reply: Option<oneshot::Sender<Result<Outcome, GroupError>>>,
    },
    Status {
        group: u64,
        reply: oneshot::Sender<Option<GroupStatus>>,
    },
    TransferLeader {
        group: u64,
        reply: oneshot::Sender<Result<u64, GroupError>>,
    },
    /// The node stops: the loop ends (its groups go silent, as if the node were gone).
    Stop,
}

/// The handle on this node's groups; cheap to clone.
#[derive(Clone)]
pub struct Groups {
    me: u64,
    tx: mpsc::Sender<Input>,
    /// Group → (leader, term), updated when a group's leader changes: what routing reads.
    leaders: Arc<RwLock<HashMap<u64, (u64, u64)>>>,
    /// Why the ready loop stopped on its own (a log write failed, a panic): `/health` fails.
    failure: tokio::sync::watch::Receiver<Option<String>>,
    /// The ready loop's thread, joined by [`Groups::stop`] or when the last handle goes, so
    /// the engine it holds closes before the node is gone (never during process exit).
    thread: Arc<LoopThread>,
    /// The snapshots built here as a leader, for replicas to pull.
    shelf: Arc<Shelf>,
    liveness: Arc<PeerLiveness>,
    /// How many groups hibernate here (the loop counts them).
    hibernating: Arc<AtomicUsize>,
}

struct LoopThread {
    tx: mpsc::Sender<Input>,
    handle: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl LoopThread {
    /// Stops the loop and waits for it (unless called from the loop itself).
    fn stop_and_join(&self) {
        let _ = self.tx.send(Input::Stop);
        let handle = self
            .handle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(h) = handle {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for LoopThread {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl Groups {
    /// Starts the ready loop on its own thread. Messages for other nodes go to `outbox`;
    /// `on_leader_change` is called when a group's leader changes.
    pub fn start(
        me: u64,
        engine: Arc<dyn KvEngine>,
        settings: Settings,
        outbox: tokio::sync::mpsc::UnboundedSender<Outbound>,
        on_leader_change: Box<dyn Fn() + Send>,
    ) -> Groups {
        let (tx, rx) = mpsc::channel();
        let leaders = Arc::new(RwLock::new(HashMap::new()));
        let shelf = Shelf::new(me);
        let liveness = Arc::new(PeerLiveness::default());
        let hibernating = Arc::new(AtomicUsize::new(0));
        let lp = ready::Loop::new(
            me,
            engine,
            settings,
            outbox,
            ready::Shared {
                leaders: leaders.clone(),
                shelf: shelf.clone(),
                liveness: liveness.clone(),
                hibernating: hibernating.clone(),
            },
            on_leader_change,
        );
        let (failed, failure) = tokio::sync::watch::channel(None);
        let stopped = leaders.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("stream-groups-{me}"))
            .spawn(move || {
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run(rx)));
                let why = match run {
                    Ok(Ok(())) => return,
                    Ok(Err(why)) => why,
                    Err(panic) => format!(
                        "the replication loop panicked: {}",
                        panic
                            .downcast_ref::<String>()
                            .map(String::as_str)
                            .or_else(|| panic.downcast_ref::<&str>().copied())
                            .unwrap_or("(no message)")
                    ),
                };
                tracing::error!(error = %why, "replication stopped");
                metrics::gauge!("tributary_dn_replication_running").set(0.0);
                write(&stopped).clear();
                failed.send_replace(Some(why));
            });
        let thread = match spawned {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the replication thread");
                None
            }
        };
        let thread = Arc::new(LoopThread {
            tx: tx.clone(),
            handle: std::sync::Mutex::new(thread),
        });
        let groups = Groups {
            me,
            tx,
            leaders,
            failure,
            thread,
            shelf,
            liveness,
            hibernating,
        };
        metrics::gauge!("tributary_dn_replication_running").set(1.0);
        groups
    }

    /// Changes to `Some(why)` if the ready loop stops on its own.
    pub fn failure(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.failure.clone()
    }

    pub fn node_id(&self) -> u64 {
        self.me
    }

    /// The snapshots this node built as a leader, for replicas to pull.
    pub fn shelf(&self) -> &Shelf {
        &self.shelf
    }

    fn send(&self, input: Input) -> Result<(), GroupError> {
        self.tx.send(input).map_err(|_| GroupError::Stopped)
    }

    /// Serves a group for `store` (idempotent: an open group takes the new limits, and its
    /// leader moves the group towards the new placement).
    pub fn open(
        &self,
        group: u64,
        store: Arc<StreamStore>,
        placement: Placement,
        limits: StreamLimits,
    ) {
        let _ = self.send(Input::Open {
            group,
            store,
            placement,
            limits,
        });
    }

    /// Stops serving a group; `destroy` drops its log too (the stream was deleted).
    pub fn close(&self, group: u64, destroy: bool) {
        write(&self.leaders).remove(&group);
        let _ = self.send(Input::Close { group, destroy });
    }

    /// A batch of the Raft link came from `node`: it is up.
    pub fn peer_heard(&self, node: u64) {
        self.liveness.heard(node);
    }

    /// How many groups hibernate on this node.
    pub fn hibernating(&self) -> usize {
        self.hibernating.load(Ordering::Relaxed)
    }

    /// A message from a peer, already checked by `raft_inputs::envelope`.
    pub fn step(&self, group: u64, msg: Message) {
        let _ = self.send(Input::Step { group, msg });
    }

    /// The leader of a group as this node last heard (None: none known).
    pub fn leader(&self, group: u64) -> Option<u64> {
        read(&self.leaders)
            .get(&group)
            .map(|(l, _)| *l)
            .filter(|l| *l != 0)
    }

    /// Proposes `op` on this node, which must lead the group; resolves once it is applied.
    pub async fn propose(&self, group: u64, op: Op) -> Result<Outcome, GroupError> {
        self.submit(group, op)?
            .await
            .map_err(|_| GroupError::Stopped)?
    }

    /// Proposes `op` now (proposals enter the log in the order they are submitted); the
    /// receiver answers once it is applied. What a pipelining publisher awaits later.
    pub fn submit(&self, group: u64, op: Op) -> Result<Submitted, GroupError> {
        let (tx, rx) = oneshot::channel();
        self.send(Input::Propose {
            group,
            op,
            reply: Some(tx),
        })?;
        Ok(rx)
    }

    /// Proposes `op` if this node leads the group, not waiting for it.
    pub fn propose_quietly(&self, group: u64, op: Op) {
        let _ = self.send(Input::Propose {
            group,
            op,
            reply: None,
        });
    }

    pub async fn status(&self, group: u64) -> Option<GroupStatus> {
        let (tx, rx) = oneshot::channel();
        self.send(Input::Status { group, reply: tx }).ok()?;
        rx.await.ok().flatten()
    }

    /// Stops the ready loop for good (the node shuts down): nothing is led here any more.
    /// Waits for the loop to finish the round it is in, so its last write is done before the
    /// node's storage closes (unless called from the loop itself, which then ends on return),
    /// and for the snapshot builds under way, which stop early.
    pub fn stop(&self) {
        write(&self.leaders).clear();
        self.thread.stop_and_join();
        self.shelf.stop();
    }

    /// Hands leadership to the most current other replica; returns which.
    pub async fn transfer_leader(&self, group: u64) -> Result<u64, GroupError> {
        let (tx, rx) = oneshot::channel();
        self.send(Input::TransferLeader { group, reply: tx })?;
        rx.await.map_err(|_| GroupError::Stopped)?
    }
}
