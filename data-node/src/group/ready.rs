//! The ready loop every group of this node shares (TiKV's raftstore in miniature): take the
//! inputs that arrived (peer messages, proposals, questions), tick every group on the clock,
//! then for each group with something ready stage its new entries and hard state into one
//! batch, write that batch once for all groups, send what may go after the write, apply what
//! is committed to the streams, and answer the proposals applied here.

mod leadership;

use super::log::{GroupLog, Staged};
use super::op::{Op, Outcome};
use super::{GroupError, Input, Outbound};
use crate::storage::engine::Batch;
use crate::storage::streams::{StreamLimits, StreamStore};
use crate::storage::KvEngine;
use raft::prelude::{Entry, EntryType, Message};
use raft::{RawNode, StateRole};
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;
use tributary_common::sync::write;
use tributary_common::telemetry::raft_group::{RaftGroupMetrics, RaftView};

/// How long a proposal may wait to be applied before its client hears "outcome unknown".
const PROPOSAL_DEADLINE: Duration = Duration::from_secs(5);
/// Entries a follower keeps below what its stream holds, for the peers it may come to lead
/// (snapshots are not built yet: a replica further behind than this cannot catch up).
const FOLLOWER_KEEPS: u64 = 100_000;
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// The groups' clock (`[replication]`).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub tick: Duration,
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
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
    metrics: RaftGroupMetrics,
}

struct Pending {
    group: u64,
    reply: oneshot::Sender<Result<Outcome, GroupError>>,
    deadline: Instant,
}

pub(super) struct Loop {
    me: u64,
    engine: Arc<dyn KvEngine>,
    timing: Timing,
    outbox: tokio::sync::mpsc::UnboundedSender<Outbound>,
    leaders: Arc<RwLock<HashMap<u64, (u64, u64)>>>,
    groups: HashMap<u64, Group>,
    pending: HashMap<u64, Pending>,
    next_proposal: u64,
    logger: slog::Logger,
    on_leader_change: Box<dyn Fn() + Send>,
}

fn context(me: u64, proposal: u64) -> Vec<u8> {
    let mut c = me.to_be_bytes().to_vec();
    c.extend_from_slice(&proposal.to_be_bytes());
    c
}

/// The proposal an entry answers, if this node proposed it.
fn proposal_of(me: u64, ctx: &[u8]) -> Option<u64> {
    let node = u64::from_be_bytes(ctx.get(..8)?.try_into().ok()?);
    let id = u64::from_be_bytes(ctx.get(8..16)?.try_into().ok()?);
    (node == me).then_some(id)
}

impl Loop {
    pub(super) fn new(
        me: u64,
        engine: Arc<dyn KvEngine>,
        timing: Timing,
        outbox: tokio::sync::mpsc::UnboundedSender<Outbound>,
        leaders: Arc<RwLock<HashMap<u64, (u64, u64)>>>,
        on_leader_change: Box<dyn Fn() + Send>,
    ) -> Loop {
        Loop {
            me,
            engine,
            timing,
            outbox,
            leaders,
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
        let mut next_tick = Instant::now() + self.timing.tick;
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
                for g in self.groups.values_mut() {
                    g.raw.tick();
                }
                next_tick = now + self.timing.tick;
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
                voters,
                limits,
            } => self.open(group, store, voters, limits),
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

    fn open(&mut self, id: u64, store: Arc<StreamStore>, voters: Vec<u64>, limits: StreamLimits) {
        if let Some(g) = self.groups.get_mut(&id) {
            g.limits = limits;
            if !Arc::ptr_eq(&g.store, &store) && g.store.is_closed() {
                g.store = store;
            }
            return;
        }
        match self.new_group(id, store, voters, limits) {
            Ok(g) => {
                self.groups.insert(id, g);
            }
            Err(e) => tracing::error!(group = id, error = %e, "cannot open the stream's group"),
        }
    }

    fn new_group(
        &self,
        id: u64,
        store: Arc<StreamStore>,
        voters: Vec<u64>,
        limits: StreamLimits,
    ) -> raft::Result<Group> {
        let applied = store.group_index();
        let log = GroupLog::open(self.engine.clone(), id, &voters, applied)?;
        if applied > log.last_index() {
            return Err(raft::Error::ConfigInvalid(format!(
                "stream {} holds entry {applied} but its group log ends at {}",
                store.name,
                log.last_index()
            )));
        }
        let cfg = raft::Config {
            id: self.me,
            election_tick: self.timing.election_ticks,
            heartbeat_tick: self.timing.heartbeat_ticks,
            applied,
            check_quorum: true,
            pre_vote: true,
            max_size_per_msg: 4 << 20,
            max_inflight_msgs: 256,
            ..Default::default()
        };
        let raw = RawNode::new(&cfg, log.clone(), &self.logger)?;
        tracing::info!(group = id, stream = %store.name, ?voters, applied, "stream group opened");
        let metrics = RaftGroupMetrics::new(&format!("stream:{}", store.name));
        Ok(Group {
            raw,
            log,
            metrics,
            store,
            limits,
            limits_proposed: None,
            heard: HashMap::new(),
            leader_since: None,
        })
    }

    fn close(&mut self, id: u64, destroy: bool) {
        let Some(g) = self.groups.remove(&id) else {
            return;
        };
        g.metrics.clear();
        let ids: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.group == id)
            .map(|(k, _)| *k)
            .collect();
        for k in ids {
            if let Some(p) = self.pending.remove(&k) {
                let _ = p.reply.send(Err(GroupError::NoGroup(g.store.name.clone())));
            }
        }
        if destroy {
            let mut b = Batch::default();
            g.log.stage_destroy(&mut b);
            if let Err(e) = self.engine.write(b) {
                tracing::warn!(group = id, error = %e, "cannot drop a deleted stream's log");
            }
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
        if let Err(r) = tributary_common::raft_inputs::against(&g.raw.raft, |_| false, &msg) {
            r.record(msg.from);
            return;
        }
        g.heard.insert(msg.from, Instant::now());
        if let Err(e) = g.raw.step(msg) {
            tracing::debug!(group = id, error = %e, "raft message not taken");
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

    /// Once a second: proposals past their deadline, limits to put in the log, log compaction.
    fn housekeeping(&mut self) {
        let now = Instant::now();
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in late {
            if let Some(p) = self.pending.remove(&k) {
                let stream = self
                    .groups
                    .get(&p.group)
                    .map_or_else(String::new, |g| g.store.name.clone());
                let _ = p.reply.send(Err(GroupError::Unknown {
                    stream,
                    why: format!("not committed within {PROPOSAL_DEADLINE:?}"),
                }));
            }
        }
        let mut b = Batch::default();
        for g in self.groups.values_mut() {
            let leader = g.raw.raft.state == StateRole::Leader;
            if leader
                && g.limits != g.store.limits()
                && g.limits_proposed
                    .is_none_or(|t| t.elapsed() > Duration::from_secs(2))
            {
                g.limits_proposed = Some(now);
                let _ = g
                    .raw
                    .propose(Vec::new(), Op::Limits(g.limits.clone()).encode());
            }
            // What every replica holds (the leader knows), or on a follower what its stream
            // holds less a margin for the peers it may come to lead.
            let held = g.store.group_index();
            let upto = if leader {
                g.raw
                    .raft
                    .prs()
                    .iter()
                    .map(|(_, pr)| pr.matched)
                    .min()
                    .unwrap_or(0)
                    .min(held)
            } else {
                held.saturating_sub(FOLLOWER_KEEPS)
            };
            if upto > 0 {
                if let Err(e) = g.log.compact(&mut b, upto) {
                    tracing::debug!(stream = %g.store.name, error = %e, "log not compacted");
                }
            }
        }
        if !b.is_empty() {
            if let Err(e) = self.engine.write(b) {
                tracing::warn!(error = %e, "log compaction not written");
            }
        }
    }

    fn process_ready(&mut self) -> Result<(), crate::storage::StorageError> {
        let mut batch = Batch::default();
        let mut readies = Vec::new();
        let mut leader_changed = false;
        for (id, g) in self.groups.iter_mut() {
            if !g.raw.has_ready() {
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
                let _ = self.outbox.send((m.to, *id, m));
            }
            if !rd.snapshot().is_empty() {
                tracing::error!(stream = %g.store.name, "a snapshot arrived, which stream groups do not take yet");
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
                let _ = self.outbox.send((m.to, id, m));
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
                let _ = self.outbox.send((m.to, id, m));
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

/// Applies committed entries to the group's stream, answering the proposals made here.
fn apply(me: u64, g: &mut Group, entries: Vec<Entry>, pending: &mut HashMap<u64, Pending>) {
    for e in entries {
        if e.get_entry_type() != EntryType::EntryNormal || e.data.is_empty() {
            continue;
        }
        let outcome = match Op::decode(&e.data) {
            Ok(op) => op.apply(&g.store, e.index),
            Err(err) => {
                // Every replica holds the same bytes, so every one skips it alike.
                tracing::error!(stream = %g.store.name, index = e.index, error = %err, "entry skipped");
                continue;
            }
        };
        if let Some(p) = proposal_of(me, &e.context).and_then(|id| pending.remove(&id)) {
            if let Some(proposed) = p.deadline.checked_sub(PROPOSAL_DEADLINE) {
                g.metrics.proposal_applied(proposed);
            }
            let _ = p.reply.send(Ok(outcome));
        }
    }
}
