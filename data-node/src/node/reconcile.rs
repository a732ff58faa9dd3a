//! Making what the node serves match its catalogue view: open every well and stream it owns,
//! stop serving the rest. Each entity on its own: one that cannot be opened (a cold location
//! that is a file, a directory it may not write) is recorded with why, reported (`/health`,
//! the heartbeat's stats that `cluster status` shows, and the RPCs that name it) and tried
//! again on the next catalogue change and maintenance round, while the node starts and
//! serves everything else (issue 11: one such well kept a node from starting at all, even
//! after the well was deleted, since its saved view still held it).

use super::catalog::CatalogView;
use super::Node;
use crate::error::Result;
use crate::storage::keys::meta;
use crate::storage::streams::{StreamLimits, StreamStore};
use crate::storage::wells::WellConfig;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tributary_common::sync::{read, write};
use tributary_proto::v1::{EntityKind, OwnedStats, StorageType, Stream, Well};

/// Whether this node holds `s`: its owner, or one of its replicas.
pub(super) fn holds(s: &tributary_proto::v1::Stream, node: u64) -> bool {
    if s.replica_nodes.is_empty() {
        s.owner_node == node
    } else {
        s.replica_nodes.contains(&node)
    }
}

/// Where the catalogue places a replicated stream's replicas (a stream from before founders
/// were recorded was founded by all of them).
fn placement_of(s: &tributary_proto::v1::Stream) -> crate::group::Placement {
    crate::group::Placement {
        replicas: s.replica_nodes.clone(),
        founders: if s.group_founders.is_empty() {
            s.replica_nodes.clone()
        } else {
            s.group_founders.clone()
        },
    }
}

/// What could not be opened, by kind label (`well`, `stream`) and name: why.
pub(super) type Unopened = BTreeMap<(&'static str, String), String>;

impl Node {
    pub(super) fn reconcile(&self, view: &CatalogView) -> Result<()> {
        let mut failed = Unopened::new();
        // What this node serves: what it owns, but nothing of a namespace shut down for its
        // erasure (its readers stop; a purge then drops its data by its ids).
        let serves = |name: &str, owner: u64| {
            owner == self.id && !view.shut_down(super::catalog::namespace_of(name))
        };
        // A stream is served by each of its replicas (its owner when it has none).
        let serves_stream = |s: &tributary_proto::v1::Stream| {
            holds(s, self.id) && !view.shut_down(super::catalog::namespace_of(&s.name))
        };
        for w in view
            .wells
            .values()
            .filter(|w| serves(&w.name, w.owner_node))
        {
            if let Err(e) = self.wells.open_well(well_config(w)) {
                failed.insert(("well", w.name.clone()), e.to_string());
            }
        }
        // Whatever is gone from the view or owned elsewhere stops being served, but its bytes
        // stay: a fresh or wiped control plane listing nothing must not erase a node. Only
        // an explicit delete event drops data (`apply_event`).
        for name in self.wells.names() {
            if view
                .wells
                .get(&name)
                .is_none_or(|w| !serves(&w.name, w.owner_node))
            {
                self.wells.close_well(&name, false)?;
            }
        }
        for s in view.streams.values().filter(|s| serves_stream(s)) {
            if let Err(e) = self.open_stream(s) {
                failed.insert(("stream", s.name.clone()), e.to_string());
            }
        }
        for store in self.streams.all() {
            let held = view.streams.get(&store.name);
            if held.is_none_or(|s| !serves_stream(s)) {
                // A replica moved off this node stays in its group until the group's leader
                // has removed it; the loop then destroys it and it goes below.
                let leaving = held.filter(|s| {
                    !s.replica_nodes.is_empty()
                        && !view.shut_down(super::catalog::namespace_of(&s.name))
                        && !store.is_destroyed()
                });
                if let (Some(s), Some(groups)) = (leaving, self.groups()) {
                    groups.open(s.group_id, store.clone(), placement_of(s), stream_limits(s));
                    continue;
                }
                if let (Some(s), Some(groups)) = (held, self.groups()) {
                    if s.group_id != 0 {
                        groups.close(s.group_id, false);
                    }
                }
                if let Some(gone) = self.streams.remove(&store.name) {
                    // A worker or reader still holding it must not write or wait behind a
                    // store opened later for the same stream.
                    gone.close();
                    if gone.is_destroyed() {
                        self.mark_for_compaction(gone.id)?;
                        self.ids.forget(&meta::stream_id(&gone.name))?;
                    }
                }
            }
        }
        self.record_unopened(failed);
        Ok(())
    }

    fn open_stream(&self, s: &tributary_proto::v1::Stream) -> Result<()> {
        let replicated = !s.replica_nodes.is_empty();
        if let Some(left) = self.streams.get(&s.name).filter(|st| st.is_destroyed()) {
            // A replica that left this node and is placed here again starts anew.
            self.streams.remove(&left.name);
            self.mark_for_compaction(left.id)?;
            self.ids.forget(&meta::stream_id(&left.name))?;
        }
        let store = match self.streams.get(&s.name) {
            // A replicated stream's limits change through its log (the leader puts them
            // there), so every replica applies each publish under the same limits.
            Some(store) if replicated => store,
            Some(store) => {
                store.set_limits(stream_limits(s));
                return Ok(());
            }
            None => {
                let memory = s.storage == StorageType::Memory as i32;
                let engine = if memory {
                    self.memory.clone()
                } else {
                    self.main.clone()
                };
                let id = self.ids.id_for(&meta::stream_id(&s.name))?;
                let store = Arc::new(StreamStore::open(
                    id,
                    s.name.clone(),
                    engine,
                    stream_limits(s),
                )?);
                self.streams.insert(store.clone());
                store
            }
        };
        if let (true, Some(groups)) = (replicated, self.groups()) {
            groups.open(s.group_id, store, placement_of(s), stream_limits(s));
        }
        Ok(())
    }

    /// Logs what newly fails to open or opens again, and keeps the list.
    fn record_unopened(&self, now: Unopened) {
        let mut held = write(&self.unopened);
        for ((kind, name), why) in &now {
            if held.get(&(*kind, name.clone())) != Some(why) {
                tracing::error!(
                    kind = *kind,
                    name = %name,
                    error = %why,
                    "cannot open; serving everything else, retrying on every catalogue change and maintenance round"
                );
            }
        }
        for (kind, name) in held.keys() {
            if !now.contains_key(&(*kind, name.clone())) {
                tracing::info!(kind = *kind, name = %name, "no longer failing to open");
            }
        }
        metrics::gauge!("tributary_dn_unopened_entities").set(now.len() as f64);
        *held = now;
    }

    /// What this node owns but cannot open, as `well NAME` / `stream NAME`: why.
    pub fn unopened(&self) -> BTreeMap<String, String> {
        read(&self.unopened)
            .iter()
            .map(|((kind, name), why)| (format!("{kind} {name}"), format!("cannot open: {why}")))
            .collect()
    }

    /// Why an entity this node owns is not open, if it failed to.
    pub(super) fn unopened_why(&self, kind: &'static str, name: &str) -> Option<String> {
        read(&self.unopened).get(&(kind, name.to_string())).cloned()
    }

    /// Tries what failed to open again (maintenance), without waiting for a catalogue change.
    pub fn retry_unopened(&self) -> Result<()> {
        if read(&self.unopened).is_empty() {
            return Ok(());
        }
        let view = self.with_catalog(Clone::clone);
        self.reconcile(&view)?;
        self.catalog_changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// The heartbeat's lines for what cannot be opened (`cluster status` shows them).
    pub(super) fn unopened_stats(&self) -> Vec<OwnedStats> {
        read(&self.unopened)
            .iter()
            .map(|((kind, name), why)| OwnedStats {
                kind: if *kind == "well" {
                    EntityKind::Well
                } else {
                    EntityKind::Stream
                } as i32,
                name: name.clone(),
                error: format!("cannot open: {why}"),
                ..Default::default()
            })
            .collect()
    }
}

fn well_config(w: &Well) -> WellConfig {
    WellConfig {
        name: w.name.clone(),
        shard_secs: w.shard_duration_secs,
        cold_location: (!w.cold_location.is_empty()).then(|| PathBuf::from(&w.cold_location)),
        hot_secs: w.hot_duration_secs,
        cold_secs: w.cold_duration_secs,
    }
}

fn stream_limits(s: &Stream) -> StreamLimits {
    let pos = |v: i64| u64::try_from(v).unwrap_or(0);
    StreamLimits {
        max_msgs: pos(s.max_msgs),
        max_bytes: pos(s.max_bytes),
        max_age_ns: s.max_age_ms.saturating_mul(1_000_000),
        max_msg_size: u64::try_from(s.max_msg_size).unwrap_or(0),
        max_msgs_per_subject: pos(s.max_msgs_per_subject),
        discard_new: s.discard == tributary_proto::v1::DiscardPolicy::DiscardNew as i32,
        duplicate_window_ns: s.duplicate_window_ms.saturating_mul(1_000_000),
        deny_delete: s.deny_delete,
        deny_purge: s.deny_purge,
    }
}
