//! The one thread that owns raft-rs's `RawNode`: tick, step, ready, persist, send, apply,
//! advance — raft-rs's own loop in its plainest form.

mod log_retention;
mod membership;

use super::{Input, NodeConfig, NodeState, PeerProgress};
use crate::catalog::{apply_command, Catalogue};
use crate::error::CatalogError;
use crate::network::{Peers, SendReport, Transport};
use crate::raft_store::RaftStore;
use prost::Message as _;
use raft::prelude::{Entry, EntryType};
use raft::{RawNode, SnapshotStatus, StateRole};
use rocksdb::WriteBatch;
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use tributary_common::telemetry::raft_group::{RaftGroupMetrics, RaftView};
use tributary_proto::v1::{Command, WriteReply};

enum Pending {
    /// A catalogue write, when it was proposed (for the proposal latency) and the span of
    /// the call that proposed it.
    Write(
        oneshot::Sender<Result<WriteReply, CatalogError>>,
        Instant,
        tracing::Span,
    ),
    Conf(oneshot::Sender<Result<(), CatalogError>>),
}

pub struct Loop {
    id: u64,
    raw: RawNode<RaftStore>,
    store: RaftStore,
    catalogue: Catalogue,
    transport: Transport,
    peers: Peers,
    inputs: Receiver<Input>,
    state_tx: watch::Sender<NodeState>,
    pending: HashMap<u64, Pending>,
    next_proposal: u64,
    reads: HashMap<u64, oneshot::Sender<Result<(), CatalogError>>>,
    waiting_reads: Vec<(u64, oneshot::Sender<Result<(), CatalogError>>)>,
    tick: Duration,
    snapshot_entries: u64,
    snapshot_bytes: u64,
    /// Bytes of entries applied since the log was last compacted (since start, after a
    /// restart: the log then holds at most twice `snapshot_bytes`).
    applied_bytes: u64,
    metrics: RaftGroupMetrics,
    applied_marks: log_retention::AppliedMarks,
}

/// Publishes the member's role as "stopped", leading nothing (the loop has ended).
pub fn publish_stopped(state: &watch::Sender<NodeState>) {
    state.send_modify(|st| {
        st.role = "stopped".into();
        st.leader = 0;
    });
}

fn raft_err(e: raft::Error) -> CatalogError {
    CatalogError::Storage(format!("raft: {e}"))
}

impl Loop {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: &NodeConfig,
        store: RaftStore,
        catalogue: Catalogue,
        peers: Peers,
        self_tx: Sender<Input>,
        inputs: Receiver<Input>,
        state_tx: watch::Sender<NodeState>,
    ) -> Result<Self, CatalogError> {
        let config = raft::Config {
            id: cfg.id,
            election_tick: cfg.election_ticks,
            heartbeat_tick: cfg.heartbeat_ticks,
            applied: catalogue.applied_index(),
            check_quorum: true,
            pre_vote: true,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            ..Default::default()
        };
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&config, store.clone(), &logger).map_err(raft_err)?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| CatalogError::Storage("the raft loop needs a tokio runtime".into()))?;
        let report_tx = std::sync::Mutex::new(self_tx);
        let reporter: crate::network::Reporter = std::sync::Arc::new(move |r| {
            if let Ok(tx) = report_tx.lock() {
                let _ = tx.send(Input::Report(r));
            }
        });
        let transport = Transport::new(cfg.id, peers.clone(), reporter, runtime);
        Ok(Self {
            id: cfg.id,
            raw,
            store,
            catalogue,
            transport,
            peers,
            inputs,
            state_tx,
            pending: HashMap::new(),
            next_proposal: 1,
            reads: HashMap::new(),
            waiting_reads: Vec::new(),
            tick: cfg.tick,
            snapshot_entries: cfg.snapshot_entries.max(1),
            snapshot_bytes: cfg.snapshot_bytes.max(1),
            applied_bytes: 0,
            metrics: RaftGroupMetrics::new("catalogue"),
            applied_marks: Default::default(),
        })
    }

    /// Runs until asked to stop (`Ok`) or until Raft cannot go on (`Err`, why).
    pub fn run(mut self) -> Result<(), String> {
        let mut last_tick = Instant::now();
        let mut outcome = Ok(());
        loop {
            let wait = self.tick.saturating_sub(last_tick.elapsed());
            match self.inputs.recv_timeout(wait) {
                Ok(Input::Stop) => break,
                Ok(input) => {
                    self.handle(input);
                    // Drain what queued up so one ready covers many proposals (group commit).
                    let mut stop = false;
                    for _ in 0..4096 {
                        match self.inputs.try_recv() {
                            Ok(Input::Stop) => {
                                stop = true;
                                break;
                            }
                            Ok(i) => self.handle(i),
                            Err(_) => break,
                        }
                    }
                    if stop {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_tick.elapsed() >= self.tick {
                self.raw.tick();
                last_tick = Instant::now();
                // On the clock, so an idle log's last entries get a mark too.
                self.applied_marks.note(self.catalogue.applied_index());
            }
            if let Err(e) = self.on_ready() {
                // Raft cannot go on safely after a storage failure: stop this member.
                tracing::error!(node = self.id, error = %e, "raft loop stopped on a storage error");
                outcome = Err(format!("storage error: {e}"));
                break;
            }
        }
        self.publish_state();
        publish_stopped(&self.state_tx);
        outcome
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Raft(m) => {
                let peers = &self.peers;
                match super::inbound::against(&self.raw.raft, |id| peers.knows(id), &m) {
                    Ok(()) => {
                        let _ = self.raw.step(*m);
                    }
                    Err(refused) => refused.record(m.from),
                }
            }
            Input::Propose { cmd, reply, span } => {
                if self.raw.raft.state != StateRole::Leader {
                    let _ = reply.send(Err(CatalogError::NotLeader { leader: None }));
                    return;
                }
                let id = self.next_id();
                match self.raw.propose(self.ctx(id), cmd.encode_to_vec()) {
                    Ok(()) => {
                        self.pending
                            .insert(id, Pending::Write(reply, Instant::now(), span));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(CatalogError::Unavailable(format!(
                            "proposal dropped: {e}"
                        ))));
                    }
                }
            }
            Input::ConfChange { cc, reply } => {
                // On a follower raft-rs would forward it as a `MsgPropose`, which members
                // refuse from the network (`inbound`).
                if self.raw.raft.state != StateRole::Leader {
                    let _ = reply.send(Err(CatalogError::NotLeader { leader: None }));
                    return;
                }
                let id = self.next_id();
                match self.raw.propose_conf_change(self.ctx(id), cc) {
                    Ok(()) => {
                        self.pending.insert(id, Pending::Conf(reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(CatalogError::FailedPrecondition(format!(
                            "membership change refused (another may be in progress): {e}"
                        ))));
                    }
                }
            }
            Input::ReadIndex { reply } => {
                if self.raw.raft.leader_id == 0 {
                    let _ = reply.send(Err(CatalogError::NotLeader { leader: None }));
                    return;
                }
                let id = self.next_id();
                self.reads.insert(id, reply);
                self.raw.read_index(self.ctx(id));
            }
            Input::Report(SendReport::Unreachable(to)) => self.raw.report_unreachable(to),
            Input::Report(SendReport::Snapshot { to, ok }) => {
                let status = if ok {
                    self.metrics.snapshot_sent();
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                };
                self.raw.report_snapshot(to, status);
            }
            Input::TrimEvents { before, max, reply } => {
                let _ = reply.send(self.catalogue.trim_events_before(before, max));
            }
            Input::CompactLogBefore { before, reply } => {
                let _ = reply.send(self.compact_log_before(before));
            }
            Input::Stop => {}
            Input::PanicForTest(why) => panic!("{why}"),
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_proposal += 1;
        self.next_proposal
    }

    /// Context of a proposal: proposer id and proposal id, so only the proposer replies.
    fn ctx(&self, id: u64) -> Vec<u8> {
        let mut c = self.id.to_be_bytes().to_vec();
        c.extend_from_slice(&id.to_be_bytes());
        c
    }

    fn own_proposal(&self, ctx: &[u8]) -> Option<u64> {
        if ctx.len() != 16 || ctx[..8] != self.id.to_be_bytes() {
            return None;
        }
        Some(u64::from_be_bytes(ctx[8..].try_into().ok()?))
    }

    fn on_ready(&mut self) -> Result<(), CatalogError> {
        if !self.raw.has_ready() {
            self.resolve_reads();
            return Ok(());
        }
        let mut ready = self.raw.ready();
        self.transport.send(ready.take_messages());
        if !ready.snapshot().is_empty() {
            self.install_snapshot(ready.snapshot())?;
        }
        for rs in ready.take_read_states() {
            if let Some(id) = self.own_proposal(&rs.request_ctx) {
                if let Some(reply) = self.reads.remove(&id) {
                    self.waiting_reads.push((rs.index, reply));
                }
            }
        }
        self.apply(ready.take_committed_entries())?;
        self.store
            .append(ready.entries(), ready.hs())
            .map_err(raft_err)?;
        self.transport.send(ready.take_persisted_messages());
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.store.set_commit(commit).map_err(raft_err)?;
        }
        self.transport.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();
        self.maybe_compact()?;
        self.resolve_reads();
        self.publish_state();
        Ok(())
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), CatalogError> {
        for e in entries {
            self.applied_bytes += e.data.len() as u64;
            let mut batch = WriteBatch::default();
            match e.get_entry_type() {
                EntryType::EntryNormal if e.data.is_empty() => {
                    self.catalogue.mark_applied(&mut batch, e.index);
                    self.write(batch)?;
                    self.catalogue.set_applied(e.index);
                }
                EntryType::EntryNormal => {
                    let proposed = self
                        .own_proposal(&e.context)
                        .and_then(|id| self.pending.remove(&id));
                    let span = match &proposed {
                        Some(Pending::Write(_, _, call)) if !call.is_none() => {
                            tracing::info_span!(parent: call, "raft.apply", index = e.index)
                        }
                        _ => tracing::Span::none(),
                    };
                    let _applying = span.enter();
                    let outcome = Command::decode(e.data.as_ref()).map_err(|err| {
                        CatalogError::invalid("command", format!("undecodable: {err}"))
                    });
                    let (result, revision, events) = match outcome {
                        Ok(cmd) => apply_command(&self.catalogue, e.index, &cmd, &mut batch),
                        Err(err) => {
                            self.catalogue.mark_applied(&mut batch, e.index);
                            (Err(err), self.catalogue.revision(), Vec::new())
                        }
                    };
                    self.write(batch)?;
                    self.catalogue.committed(e.index, revision, events);
                    metrics::counter!("tributary_cp_applied_total").increment(1);
                    if let Some(Pending::Write(reply, at, _)) = proposed {
                        self.metrics.proposal_applied(at);
                        let _ = reply.send(result);
                    }
                }
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    let result = self.apply_conf_change(&e, &mut batch);
                    self.catalogue.mark_applied(&mut batch, e.index);
                    self.write(batch)?;
                    self.catalogue.set_applied(e.index);
                    if let Some(Pending::Conf(reply)) = self
                        .own_proposal(&e.context)
                        .and_then(|id| self.pending.remove(&id))
                    {
                        let _ = reply.send(result);
                    }
                }
            }
        }
        Ok(())
    }

    fn write(&self, batch: WriteBatch) -> Result<(), CatalogError> {
        self.catalogue.db().write(batch).map_err(CatalogError::from)
    }

    /// Compacts the log past `snapshot_entries` entries or `snapshot_bytes` bytes, and has
    /// RocksDB flush its memtables, so that the write-ahead log holding what was compacted
    /// away is dropped too: else big entities updated often grow the data dir for long after.
    fn maybe_compact(&mut self) -> Result<(), CatalogError> {
        let applied = self.catalogue.applied_index();
        let first = raft::Storage::first_index(&self.store).map_err(raft_err)?;
        let entries = if applied >= first {
            applied - first + 1
        } else {
            0
        };
        if entries == 0
            || (entries <= self.snapshot_entries && self.applied_bytes <= self.snapshot_bytes)
        {
            return Ok(());
        }
        self.store.compact(applied).map_err(raft_err)?;
        self.applied_bytes = 0;
        let db = self.catalogue.db();
        let mut flush = rocksdb::FlushOptions::default();
        // In the background: the Raft loop does not wait for the disk here.
        flush.set_wait(false);
        for name in crate::COLUMN_FAMILIES {
            if let Some(cf) = db.cf_handle(name) {
                db.flush_cf_opt(cf, &flush)?;
            }
        }
        Ok(())
    }

    fn resolve_reads(&mut self) {
        let applied = self.catalogue.applied_index();
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting_reads)
            .into_iter()
            .partition(|(idx, _)| *idx <= applied);
        self.waiting_reads = waiting;
        for (_, reply) in ready {
            let _ = reply.send(Ok(()));
        }
        if self.raw.raft.state != StateRole::Leader && self.raw.raft.leader_id == 0 {
            // Pending reads cannot be confirmed without a leader; let the callers retry.
            for (_, reply) in self.reads.drain() {
                let _ = reply.send(Err(CatalogError::Unavailable(
                    "the leader was lost before confirming the read".into(),
                )));
            }
        }
    }

    fn publish_state(&mut self) {
        let raft = &self.raw.raft;
        let role = match raft.state {
            StateRole::Leader => "leader",
            StateRole::Follower => "follower",
            StateRole::Candidate => "candidate",
            StateRole::PreCandidate => "pre-candidate",
        };
        let cs = self.store.conf_state();
        let progress = if raft.state == StateRole::Leader {
            raft.prs()
                .iter()
                .map(|(id, p)| {
                    (
                        *id,
                        PeerProgress {
                            matched: p.matched,
                            recent_active: p.recent_active,
                        },
                    )
                })
                .collect()
        } else {
            HashMap::new()
        };
        let st = NodeState {
            role: role.to_string(),
            term: raft.term,
            leader: raft.leader_id,
            commit: raft.raft_log.committed,
            applied: self.catalogue.applied_index(),
            voters: cs.voters,
            progress,
        };
        self.metrics.publish(RaftView {
            term: st.term,
            leader: st.leader,
            commit: st.commit,
            applied: st.applied,
            leading: raft.state == StateRole::Leader,
        });
        self.state_tx.send_if_modified(|old| {
            if *old != st {
                *old = st;
                true
            } else {
                false
            }
        });
    }
}
