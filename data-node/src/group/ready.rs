//! The ready loop every group of this node shares (TiKV's raftstore in miniature): take the
//! inputs that arrived (peer messages, proposals, questions), tick every group on the clock,
//! then for each group with something ready stage its new entries and hard state into one
//! batch, write that batch once for all groups, send what may go after the write, apply what
//! is committed to the streams, and answer the proposals applied here.

mod apply;
mod hibernate;
mod housekeeping;
mod leadership;
mod lifecycle;
mod membership;

use super::log::{GroupLog, Staged};
use super::op::{Op, Outcome};
use super::snapshot::Shelf;
use super::{GroupError, Input, Outbound, PeerLiveness, Placement};
use crate::storage::engine::Batch;
use crate::storage::streams::{StreamLimits, StreamStore};
use crate::storage::KvEngine;
use apply::{apply, context, Pending};
use raft::prelude::{Message, MessageType};
use raft::{RawNode, StateRole};
use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;
use tributary_common::sync::write;
use tributary_common::telemetry::raft_group::{RaftGroupMetrics, RaftView};

/// How long a proposal may wait to be applied before its client hears "outcome unknown".
const PROPOSAL_DEADLINE: Duration = Duration::from_secs(5);
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// The groups' clock and log (`[replication]`).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub tick: Duration,
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    /// Entries kept below what a stream holds for replicas behind it; one further behind
    /// catches up by snapshot.
    pub log_tail: u64,
    /// Idle groups stop ticking and heartbeating (`hibernate`).
    pub hibernate: bool,
}

impl Settings {
    fn election_timeout(&self) -> Duration {
        self.tick * self.election_ticks as u32
    }
}

/// What the loop shares with the `Groups` handle.
pub(super) struct Shared {
    /// Group → (leader, term): what routing reads.
    pub leaders: Arc<RwLock<HashMap<u64, (u64, u64)>>>,
    pub shelf: Arc<Shelf>,
    pub liveness: Arc<PeerLiveness>,
    pub hibernating: Arc<AtomicUsize>,
}

struct Group {
    raw: RawNode<GroupLog>,
    log: GroupLog,
    store: Arc<StreamStore>,
    /// The limits the catalogue gives the stream; the leader puts them in the log.
    limits: StreamLimits,
    limits_proposed: Option<Instant>,
    /// When each peer was last heard from.
    heard: HashMap<u64, Instant>,
    leader_since: Option<SystemTime>,
    /// Since when each replica has been waiting for a snapshot (on the leader).
    snapshot_wait: HashMap<u64, Instant>,
    /// Where the catalogue wants the replicas; the leader gets the group there.
    placement: Placement,
    /// When a leader last sent to this replica (one moved off leaves once it hears none).
    leader_contact: Instant,
    metrics: RaftGroupMetrics,
    /// Ticks left in which a new group's first founder stands again while no leader is known.
    founding: usize,
    /// Neither ticks nor heartbeats: idle, every replica holding everything (`hibernate`).
    hibernating: bool,
    /// Ticks since the group last had work (a proposal, a message other than a heartbeat's).
    quiet_ticks: usize,
    /// Given something since the last round: a sleeping group untouched has nothing ready,
    /// and the round does not ask it (1,000 idle groups cost no `has_ready` each round).
    touched: bool,
}

/// A new group's first founder stands at once, and again every other tick of its first
/// election timeout while no leader is known (a replica that opened the group after the
/// first pre-vote dropped it), as TiKV's first peer of a new region does: the stream takes
/// writes without waiting out an election timeout. Pre-vote makes a lost round cost no term.
fn stand(g: &mut Group) {
    if g.raw.raft.state == StateRole::Leader || g.raw.raft.leader_id != 0 {
        g.founding = 0;
        return;
    }
    if let Err(e) = g.raw.campaign() {
        tracing::debug!(stream = %g.store.name, error = %e, "first campaign not started");
    }
}

/// The group ticks again (and its next round asks it what is ready): any work wakes a group
/// that hibernates (`hibernate`).
fn wake(g: &mut Group) {
    g.quiet_ticks = 0;
    g.touched = true;
    if g.hibernating {
        g.hibernating = false;
        // Hibernation was contact: a replica moved off meanwhile counts from now.
        g.leader_contact = Instant::now();
    }
}

/// A Raft message of `group` to its peer.
fn send(outbox: &tokio::sync::mpsc::UnboundedSender<Outbound>, group: u64, msg: Message) {
    let _ = outbox.send(Outbound::Raft {
        to: msg.to,
        group,
        msg,
    });
}

pub(super) struct Loop {
    me: u64,
    engine: Arc<dyn KvEngine>,
    settings: Settings,
    outbox: tokio::sync::mpsc::UnboundedSender<Outbound>,
    leaders: Arc<RwLock<HashMap<u64, (u64, u64)>>>,
    shelf: Arc<Shelf>,
    liveness: Arc<PeerLiveness>,
    hibernating: Arc<AtomicUsize>,
    /// The data nodes sharing a group with this one (told "alive" every heartbeat).
    peers: Vec<u64>,
    ticks: u64,
    groups: HashMap<u64, Group>,
    pending: HashMap<u64, Pending>,
    next_proposal: u64,
    logger: slog::Logger,
    on_leader_change: Box<dyn Fn() + Send>,
}

impl Loop {
    pub(super) fn new(
        me: u64,
        engine: Arc<dyn KvEngine>,
        settings: Settings,
        outbox: tokio::sync::mpsc::UnboundedSender<Outbound>,
        shared: Shared,
        on_leader_change: Box<dyn Fn() + Send>,
    ) -> Loop {
        Loop {
            me,
            engine,
            settings,
            outbox,
            leaders: shared.leaders,
            shelf: shared.shelf,
            liveness: shared.liveness,
            hibernating: shared.hibernating,
            peers: Vec::new(),
            ticks: 0,
            groups: HashMap::new(),
            pending: HashMap::new(),
            next_proposal: 1,
            logger: slog::Logger::root(slog::Discard, slog::o!()),
            on_leader_change,
        }
    }

    /// Runs until stopped (`Ok`) or until the log cannot be written (`Err`: Raft state in
    /// memory would be ahead of the disk, so the groups cannot go on).
    pub(super) fn run(mut self, rx: Receiver<Input>) -> Result<(), String> {
        let mut next_tick = Instant::now() + self.settings.tick;
        let mut next_housekeeping = Instant::now() + HOUSEKEEPING;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Input::Stop) => return Ok(()),
                Ok(input) => {
                    self.handle(input);
                    // Whatever else already arrived joins this round (and its one write).
                    for input in rx.try_iter().take(4096) {
                        if matches!(input, Input::Stop) {
                            return Ok(());
                        }
                        self.handle(input);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            let now = Instant::now();
            if now >= next_tick {
                self.tick();
                next_tick = now + self.settings.tick;
            }
            if now >= next_housekeeping {
                self.housekeeping();
                next_housekeeping = now + HOUSEKEEPING;
            }
            if let Err(e) = self.process_ready() {
                // The engine refused a write: nothing of this round is stored or sent.
                return Err(format!("the replication log could not be written: {e}"));
            }
        }
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Open {
                group,
                store,
                placement,
                limits,
            } => self.open(group, store, placement, limits),
            Input::Close { group, destroy } => self.close(group, destroy),
            Input::Step { group, msg } => self.step(group, msg),
            Input::Propose { group, op, reply } => self.propose(group, op, reply),
            Input::Status { group, reply } => {
                let _ = reply.send(self.status(group));
            }
            Input::TransferLeader { group, reply } => {
                let _ = reply.send(self.transfer(group));
            }
            Input::Stop => {}
        }
    }

    fn step(&mut self, id: u64, msg: Message) {
        let Some(g) = self.groups.get_mut(&id) else {
            tributary_common::raft_inputs::Refused::new(
                "group",
                format!("no group {id} on this data node"),
            )
            .record(msg.from);
            return;
        };
        // A replica joining has no configuration yet: the leader that brings it one with its
        // first snapshot may be any data node of this cluster (the link checked which).
        if let Err(r) = tributary_common::raft_inputs::against(&g.raw.raft, |_| true, &msg) {
            r.record(msg.from);
            return;
        }
        g.heard.insert(msg.from, Instant::now());
        g.touched = true;
        if matches!(
            msg.get_msg_type(),
            MessageType::MsgAppend | MessageType::MsgHeartbeat | MessageType::MsgSnapshot
        ) {
            g.leader_contact = Instant::now();
        }
        let asks_to_hibernate = hibernate::asks_to_hibernate(&msg);
        if !asks_to_hibernate && msg.get_msg_type() != MessageType::MsgHeartbeatResponse {
            wake(g);
        }
        let from = msg.from;
        if let Err(e) = g.raw.step(msg) {
            tracing::debug!(group = id, error = %e, "raft message not taken");
        }
        if asks_to_hibernate && self.settings.hibernate {
            hibernate::follow_into_hibernation(g, from);
        }
    }

    fn propose(
        &mut self,
        id: u64,
        op: Op,
        reply: Option<oneshot::Sender<Result<Outcome, GroupError>>>,
    ) {
        let Some(g) = self.groups.get_mut(&id) else {
            if let Some(reply) = reply {
                let _ = reply.send(Err(GroupError::NoGroup(format!("group {id}"))));
            }
            return;
        };
        wake(g);
        if g.raw.raft.state != StateRole::Leader {
            let leader = g.raw.raft.leader_id;
            if let Some(reply) = reply {
                let _ = reply.send(Err(GroupError::NotLeader {
                    stream: g.store.name.clone(),
                    leader: (leader != 0).then_some(leader),
                }));
            }
            return;
        }
        let Some(reply) = reply else {
            let _ = g.raw.propose(Vec::new(), op.encode());
            return;
        };
        let pid = self.next_proposal;
        self.next_proposal += 1;
        match g.raw.propose(context(self.me, pid), op.encode()) {
            Ok(()) => {
                self.pending.insert(
                    pid,
                    Pending {
                        group: id,
                        reply,
                        deadline: Instant::now() + PROPOSAL_DEADLINE,
                    },
                );
            }
            Err(e) => {
                let _ = reply.send(Err(GroupError::NotLeader {
                    stream: format!("{} ({e})", g.store.name),
                    leader: None,
                }));
            }
        }
    }

    fn process_ready(&mut self) -> Result<(), crate::storage::StorageError> {
        let mut batch = Batch::default();
        let mut readies = Vec::new();
        let mut leader_changed = false;
        for (id, g) in self.groups.iter_mut() {
            let touched = std::mem::take(&mut g.touched);
            if (g.hibernating && !touched) || !g.raw.has_ready() {
                continue;
            }
            let mut rd = g.raw.ready();
            if let Some(ss) = rd.ss() {
                let leader = ss.leader_id;
                if ss.raft_state == StateRole::Leader {
                    g.leader_since = Some(SystemTime::now());
                    tracing::info!(stream = %g.store.name, term = g.raw.raft.term, "leading the stream's group");
                } else if leader != self.me {
                    g.leader_since = None;
                }
                let before = write(&self.leaders).insert(*id, (leader, g.raw.raft.term));
                leader_changed |= before.map(|(l, _)| l) != Some(leader);
            }
            for m in rd.take_messages() {
                send(&self.outbox, *id, m);
            }
            if !rd.snapshot().is_empty() {
                // Before this round's entries (which follow it) and hard state are staged.
                if let Err(e) = apply::install(&self.engine, &g.log, &g.store, rd.snapshot()) {
                    tracing::error!(stream = %g.store.name, error = %e, "cannot install a snapshot");
                    return Err(crate::storage::StorageError::Engine(format!(
                        "stream {}: a snapshot could not be installed: {e}",
                        g.store.name
                    )));
                }
                g.metrics.snapshot_applied();
            }
            match g.log.stage(&mut batch, rd.entries(), rd.hs()) {
                Ok(staged) => readies.push((*id, rd, staged)),
                Err(e) => {
                    tracing::error!(stream = %g.store.name, error = %e, "cannot stage the group's log");
                    return Err(crate::storage::StorageError::Engine(e.to_string()));
                }
            }
        }
        if leader_changed {
            (self.on_leader_change)();
        }
        if readies.is_empty() {
            return Ok(());
        }
        self.engine.write(batch)?;
        let mut commits = Batch::default();
        let mut staged_commits: Vec<(u64, Staged)> = Vec::new();
        for (id, mut rd, staged) in readies {
            let Some(g) = self.groups.get_mut(&id) else {
                continue;
            };
            g.log.staged(staged);
            for m in rd.take_persisted_messages() {
                send(&self.outbox, id, m);
            }
            apply(self.me, g, rd.take_committed_entries(), &mut self.pending);
            let mut light = g.raw.advance(rd);
            if let Some(c) = light.commit_index() {
                match g.log.stage_commit(&mut commits, c) {
                    Ok(s) => staged_commits.push((id, s)),
                    Err(e) => tracing::warn!(error = %e, "commit index not staged"),
                }
            }
            for m in light.take_messages() {
                send(&self.outbox, id, m);
            }
            apply(
                self.me,
                g,
                light.take_committed_entries(),
                &mut self.pending,
            );
            g.raw.advance_apply();
            let raft = &g.raw.raft;
            g.metrics.publish(RaftView {
                term: raft.term,
                leader: raft.leader_id,
                commit: raft.raft_log.committed,
                applied: raft.raft_log.applied,
                leading: raft.state == StateRole::Leader,
            });
        }
        if !commits.is_empty() {
            self.engine.write(commits)?;
            for (id, s) in staged_commits {
                if let Some(g) = self.groups.get(&id) {
                    g.log.staged(s);
                }
            }
        }
        Ok(())
    }
}
