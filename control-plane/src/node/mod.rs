//! A control-plane member: the handle services use (writes, current reads, membership) in
//! front of the one thread that drives raft-rs (`ready_loop`).

mod cluster;
mod forward;
mod halt;
pub mod inbound;
mod membership;
mod ready_loop;

pub use halt::Halt;

use crate::catalog::{check_sizes, Catalogue, Limits};
use crate::error::CatalogError;
use crate::liveness::Liveness;
use crate::network::{Peers, SendReport};
use crate::raft_store::RaftStore;
use raft::prelude::{ConfChange, Message};
use std::collections::HashMap;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch, Semaphore, SemaphorePermit};
use tributary_proto::v1::{Command, WriteReply};

/// Raft timing and housekeeping.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: u64,
    pub tick: Duration,
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    /// Compact the log (and serve laggards a snapshot) past this many applied entries…
    pub snapshot_entries: u64,
    /// …or this many bytes of them.
    pub snapshot_bytes: u64,
    /// Bytes of events the watch event log keeps.
    pub max_watch_event_bytes: u64,
    /// How long a request waits for a leader or for its write to apply.
    pub request_timeout: Duration,
    pub limits: Limits,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerProgress {
    pub matched: u64,
    pub recent_active: bool,
}

/// What the Raft loop last reported about this member.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeState {
    pub role: String,
    pub term: u64,
    pub leader: u64,
    pub commit: u64,
    pub applied: u64,
    pub voters: Vec<u64>,
    /// The leader's view of each voter; empty on followers.
    pub progress: HashMap<u64, PeerProgress>,
}

pub enum Input {
    Raft(Box<Message>),
    Propose {
        cmd: Box<Command>,
        reply: oneshot::Sender<Result<WriteReply, CatalogError>>,
        /// The proposing call's span (none while tracing is off): the leader's apply of the
        /// proposal is traced under it. Kept beside the proposal on the leader, never in
        /// the log: followers' applies are not traced.
        span: tracing::Span,
    },
    ConfChange {
        cc: ConfChange,
        reply: oneshot::Sender<Result<(), CatalogError>>,
    },
    ReadIndex {
        reply: oneshot::Sender<Result<(), CatalogError>>,
    },
    Report(SendReport),
    /// Background cleanup: trim the watch-event log's revisions committed before `before`.
    TrimEvents {
        before: std::time::Instant,
        max: usize,
        reply: oneshot::Sender<Result<(u64, u64), CatalogError>>,
    },
    /// Background cleanup: compact the Raft log's entries applied before `before` that no
    /// follower needs; replies (index compacted to, entries removed).
    CompactLogBefore {
        before: std::time::Instant,
        reply: oneshot::Sender<Result<(u64, u64), CatalogError>>,
    },
    Stop,
    /// Test hook: the loop panics (what a raft-rs `fatal!` does), see `panic_raft_for_test`.
    PanicForTest(String),
}

/// Handle on a running member; cheap to clone.
#[derive(Clone)]
pub struct Node {
    pub id: u64,
    inputs: std_mpsc::Sender<Input>,
    state: watch::Receiver<NodeState>,
    halt: watch::Receiver<Halt>,
    pub catalogue: Catalogue,
    pub peers: Peers,
    pub liveness: Liveness,
    store: RaftStore,
    request_timeout: Duration,
    pub limits: Arc<Limits>,
    /// Bytes of writes this member may hold for Raft at once (`limits.max_inflight_write_bytes`).
    inflight: Arc<Semaphore>,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Node {
    pub fn start(
        cfg: NodeConfig,
        store: RaftStore,
        catalogue: Catalogue,
        peers: Peers,
        liveness: Liveness,
    ) -> Result<Self, CatalogError> {
        catalogue.limit_event_log_bytes(cfg.max_watch_event_bytes);
        let (inputs, rx) = std_mpsc::channel();
        let (state_tx, state) = watch::channel(NodeState::default());
        let (halt_tx, halt) = watch::channel(Halt::Running);
        let looper = ready_loop::Loop::new(
            &cfg,
            store.clone(),
            catalogue.clone(),
            peers.clone(),
            inputs.clone(),
            rx,
            state_tx.clone(),
        )?;
        metrics::gauge!("tributary_cp_raft_running").set(1.0);
        let thread = std::thread::Builder::new()
            .name(format!("raft-{}", cfg.id))
            .spawn(move || {
                let after_panic = move || ready_loop::publish_stopped(&state_tx);
                halt::run(cfg.id, move || looper.run(), after_panic, halt_tx)
            })
            .map_err(|e| CatalogError::Storage(format!("cannot start raft thread: {e}")))?;
        Ok(Self {
            id: cfg.id,
            inputs,
            state,
            halt,
            catalogue,
            peers,
            liveness,
            store,
            request_timeout: cfg.request_timeout,
            inflight: Arc::new(Semaphore::new(
                cfg.limits
                    .max_inflight_write_bytes
                    .clamp(1, Semaphore::MAX_PERMITS),
            )),
            limits: Arc::new(cfg.limits),
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    pub fn state(&self) -> NodeState {
        self.state.borrow().clone()
    }

    /// Wakes on every change of what the Raft loop reports (role, term, leader, …).
    pub fn state_changes(&self) -> watch::Receiver<NodeState> {
        self.state.clone()
    }

    /// The first index still in the Raft log (grows as the log is compacted).
    pub fn log_first_index(&self) -> u64 {
        raft::Storage::first_index(&self.store).unwrap_or(0)
    }

    pub fn is_leader(&self) -> bool {
        self.state.borrow().leader == self.id
    }

    pub fn leader_addr(&self) -> Option<String> {
        let leader = self.state.borrow().leader;
        (leader != 0).then(|| self.peers.addr(leader)).flatten()
    }

    /// Hands a Raft message from member `batch_from` to the loop, unless it is refused
    /// (`inbound`: what needs no Raft state is checked here, the rest on the loop).
    pub fn receive(&self, batch_from: u64, m: Message) -> Result<(), inbound::Refused> {
        if let Err(refused) = inbound::envelope(self.id, batch_from, &m) {
            refused.record(m.from);
            return Err(refused);
        }
        let _ = self.inputs.send(Input::Raft(Box::new(m)));
        Ok(())
    }

    /// Whether the Raft thread runs, stopped as asked, or failed (and why).
    pub fn halts(&self) -> watch::Receiver<Halt> {
        self.halt.clone()
    }

    /// Test hook: makes the Raft thread panic, as a raft-rs `fatal!` would.
    #[doc(hidden)]
    pub fn panic_raft_for_test(&self, why: &str) {
        let _ = self.inputs.send(Input::PanicForTest(why.to_string()));
    }

    /// Stops the Raft thread and waits for it (the database closes when the last handle goes).
    pub fn stop(&self) {
        let _ = self.inputs.send(Input::Stop);
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }

    /// Waits until some member leads or the deadline passes; returns the leader id.
    pub async fn wait_leader(&self, deadline: Instant) -> Option<u64> {
        let mut rx = self.state.clone();
        loop {
            let leader = rx.borrow().leader;
            if leader != 0 {
                return Some(leader);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if tokio::time::timeout(left, rx.changed()).await.is_err() {
                return None;
            }
        }
    }

    /// Applies a catalogue change through the leader, from any member. Waits a bounded time
    /// for a leader; only retries when the write surely was not proposed.
    pub async fn write(&self, cmd: Command) -> Result<WriteReply, CatalogError> {
        check_sizes(&cmd, &self.limits)?;
        let deadline = Instant::now() + self.request_timeout;
        loop {
            let leader = self.state.borrow().leader;
            let attempt = if leader == self.id {
                self.propose_local(cmd.clone(), deadline).await
            } else if leader != 0 {
                let _room = self.room(&cmd, deadline).await?;
                self.forward(leader, &cmd, deadline).await
            } else {
                Err(CatalogError::NotLeader { leader: None })
            };
            match attempt {
                Err(e) if e.retryable() && Instant::now() < deadline => {
                    let mut rx = self.state.clone();
                    let _ = tokio::time::timeout(Duration::from_millis(50), rx.changed()).await;
                }
                Err(e) if e.retryable() => {
                    return Err(CatalogError::NoLeader {
                        action: "could take the write",
                        waited: self.request_timeout,
                        cause: e.to_string(),
                    })
                }
                other => return other,
            }
        }
    }

    /// Proposes on this member, which must lead.
    pub async fn propose_local(
        &self,
        mut cmd: Command,
        deadline: Instant,
    ) -> Result<WriteReply, CatalogError> {
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        // Again here: a write forwarded by another member was checked against its limits.
        check_sizes(&cmd, &self.limits)?;
        let _room = self.room(&cmd, deadline).await?;
        cmd.live_nodes = self.liveness.live();
        let (reply, rx) = oneshot::channel();
        let span = match tributary_common::trace_context::enabled() {
            true => tracing::Span::current(),
            false => tracing::Span::none(),
        };
        self.send(Input::Propose {
            cmd: Box::new(cmd),
            reply,
            span,
        })?;
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx).await {
            Ok(Ok(Ok(r))) => Ok(r),
            // The loop lost the lead or dropped the proposal: it surely did not apply.
            Ok(Ok(Err(e))) if e.retryable() => Err(self.not_leader()),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) | Err(_) => Err(CatalogError::Uncertain(
                "the write was proposed but not seen applied in time (leadership may have changed); check before retrying".into(),
            )),
        }
    }

    /// Waits until this member has applied everything committed before now (ReadIndex), so
    /// a following local read is current.
    pub async fn read_index(&self) -> Result<(), CatalogError> {
        let deadline = Instant::now() + self.request_timeout;
        loop {
            let (reply, rx) = oneshot::channel();
            self.send(Input::ReadIndex { reply })?;
            let left = deadline.saturating_duration_since(Instant::now());
            let cause = match tokio::time::timeout(left.min(Duration::from_secs(1)), rx).await {
                Ok(Ok(Ok(()))) => return Ok(()),
                Ok(Ok(Err(e))) => e.to_string(),
                Ok(Err(_)) | Err(_) => "no answer in time".to_string(),
            };
            if Instant::now() >= deadline {
                return Err(CatalogError::NoLeader {
                    action: "confirmed the read",
                    waited: self.request_timeout,
                    cause,
                });
            }
            let mut st = self.state.clone();
            let _ = tokio::time::timeout(Duration::from_millis(50), st.changed()).await;
        }
    }

    /// Waits (until `deadline`) for room to hold `cmd` among the writes in flight here, so
    /// that many concurrent writes queue in front of Raft within a bounded number of bytes.
    async fn room(
        &self,
        cmd: &Command,
        deadline: Instant,
    ) -> Result<SemaphorePermit<'_>, CatalogError> {
        let max = self.limits.max_inflight_write_bytes;
        let bytes = prost::Message::encoded_len(cmd).clamp(1, max.clamp(1, u32::MAX as usize));
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.inflight.acquire_many(bytes as u32)).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(CatalogError::Unavailable("member is shutting down".into())),
            Err(_) => Err(CatalogError::Exhausted(format!(
                "more than {max} bytes of catalogue writes are waiting on this member (`limits.max_inflight_write_bytes`); retry later"
            ))),
        }
    }

    /// "Not the leader", naming the leader when this member knows it.
    fn not_leader(&self) -> CatalogError {
        CatalogError::NotLeader {
            leader: self.leader_addr(),
        }
    }

    /// Hands a request to the Raft loop.
    /// Trims the watch-event log's revisions committed before `before` (at most `max`), on the
    /// Raft loop between applies; the new floor and how many went. Blocks: call it from a
    /// blocking thread (background cleanup does).
    pub fn trim_events_blocking(
        &self,
        before: std::time::Instant,
        max: usize,
    ) -> Result<(u64, u64), CatalogError> {
        let (reply, rx) = oneshot::channel();
        self.send(Input::TrimEvents { before, max, reply })?;
        futures::executor::block_on(rx)
            .map_err(|_| CatalogError::Unavailable("member is shutting down".into()))?
    }

    /// Compacts the Raft log's entries applied before `before` that no follower needs:
    /// (index compacted to, entries removed). Blocks: for the cleanup's blocking thread.
    pub fn compact_log_blocking(
        &self,
        before: std::time::Instant,
    ) -> Result<(u64, u64), CatalogError> {
        let (reply, rx) = oneshot::channel();
        self.send(Input::CompactLogBefore { before, reply })?;
        futures::executor::block_on(rx)
            .map_err(|_| CatalogError::Unavailable("member is shutting down".into()))?
    }

    fn send(&self, input: Input) -> Result<(), CatalogError> {
        self.inputs
            .send(input)
            .map_err(|_| CatalogError::Unavailable("member is shutting down".into()))
    }
}
