//! Committed entries applied to the group's stream, and the proposals made here answered (an
//! entry's context names the node and proposal it answers); a snapshot installed in place of
//! the entries a replica was too far behind for.

use super::Group;
use crate::group::log::GroupLog;
use crate::group::op::{Op, Outcome};
use crate::group::{snapshot, GroupError};
use crate::storage::engine::{Batch, KvEngine};
use crate::storage::streams::StreamStore;
use protobuf::Message as _;
use raft::prelude::{ConfChange, Entry, EntryType, Snapshot};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

/// A proposal made on this node, waiting to be applied.
pub(super) struct Pending {
    pub group: u64,
    pub reply: oneshot::Sender<Result<Outcome, GroupError>>,
    pub deadline: Instant,
}

/// The context of a proposal's entry.
pub(super) fn context(me: u64, proposal: u64) -> Vec<u8> {
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

/// Applies committed entries to the group's stream, answering the proposals made here. Every
/// entry moves the stream's applied index, so a snapshot built from it names the index it
/// holds (an empty entry or a configuration change stores nothing, but is applied too).
pub(super) fn apply(
    me: u64,
    g: &mut Group,
    entries: Vec<Entry>,
    pending: &mut HashMap<u64, Pending>,
) {
    for e in entries {
        if e.get_entry_type() == EntryType::EntryConfChange {
            apply_conf_change(g, &e);
            g.store.set_group_index(e.index);
            continue;
        }
        if e.get_entry_type() != EntryType::EntryNormal || e.data.is_empty() {
            g.store.set_group_index(e.index);
            continue;
        }
        let outcome = match Op::decode(&e.data) {
            Ok(op) => op.apply(&g.store, e.index),
            Err(err) => {
                // Every replica holds the same bytes, so every one skips it alike.
                g.store.set_group_index(e.index);
                tracing::error!(stream = %g.store.name, index = e.index, error = %err, "entry skipped");
                continue;
            }
        };
        if let Some(p) = proposal_of(me, &e.context).and_then(|id| pending.remove(&id)) {
            if let Some(proposed) = p.deadline.checked_sub(super::PROPOSAL_DEADLINE) {
                g.metrics.proposal_applied(proposed);
            }
            let _ = p.reply.send(Ok(outcome));
        }
    }
}

/// A membership change (one replica added, promoted or removed; see `membership`): Raft takes
/// it and the group's log stores the configuration, which snapshots carry to new replicas.
fn apply_conf_change(g: &mut Group, e: &Entry) {
    let cc = match ConfChange::parse_from_bytes(&e.data) {
        Ok(cc) => cc,
        Err(err) => {
            tracing::error!(stream = %g.store.name, index = e.index, error = %err, "configuration change skipped");
            return;
        }
    };
    match g.raw.apply_conf_change(&cc) {
        Ok(cs) => {
            tracing::info!(stream = %g.store.name, change = ?cc.get_change_type(), node = cc.node_id, voters = ?cs.voters, learners = ?cs.learners, "stream group configuration changed");
            if let Err(err) = g.log.set_conf_state(&cs) {
                tracing::error!(stream = %g.store.name, error = %err, "configuration not stored");
            }
        }
        Err(err) => {
            tracing::warn!(stream = %g.store.name, index = e.index, error = %err, "configuration change refused")
        }
    }
}

/// Replaces the group's stream with the snapshot and truncates the group log to its index,
/// in one write when the stream lives in the node's engine (a file stream). A memory stream
/// is written after the log: lost in a crash, as its messages are anyway.
pub(super) fn install(
    engine: &Arc<dyn KvEngine>,
    log: &GroupLog,
    store: &StreamStore,
    snapshot: &Snapshot,
) -> Result<(), String> {
    let meta = snapshot.get_metadata();
    let (limits, records) = snapshot::parse(snapshot.get_data())?;
    let mut raft_ops = Batch::default();
    let truncated = log
        .stage_snapshot(&mut raft_ops, meta.index, meta.term, meta.get_conf_state())
        .map_err(|e| e.to_string())?;
    if store.stored_in(engine) {
        store
            .replace_records(records, meta.index, raft_ops)
            .map_err(|e| e.to_string())?;
    } else {
        engine.write(raft_ops).map_err(|e| e.to_string())?;
        store
            .replace_records(records, meta.index, Batch::default())
            .map_err(|e| e.to_string())?;
    }
    log.staged(truncated);
    store.set_limits(limits);
    tracing::info!(stream = %store.name, index = meta.index, term = meta.term, "stream snapshot installed");
    Ok(())
}
