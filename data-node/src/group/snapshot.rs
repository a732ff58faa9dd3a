//! Snapshots of replicated streams, for a replica too far behind for the log (the log keeps
//! `[replication] log_tail` entries below what the stream holds, see `ready::housekeeping`).
//!
//! As TiKV does, the Raft message stays small: the leader builds the stream's state at the
//! index it has applied (in its ready loop, so nothing is applied meanwhile), keeps it on its
//! [`Shelf`] and sends a [`Descriptor`] naming it in the snapshot's data. The follower's link
//! pulls it in chunks (`StreamGroups.FetchSnapshot`) before Raft sees the message, and its
//! ready loop then replaces the stream's records and truncates the group log to the
//! snapshot's index in one engine write (`ready::apply::install`).
//!
//! What is replicated, so what a snapshot carries: every record of the stream (messages at
//! their seqs, the Msg-Id dedupe window, the state record, mirror and source origin progress)
//! and the limits the log last set. A snapshot is held in memory while it is pulled: bounded
//! by the stream's size, and dropped after [`KEEP`] (a newer one is built if needed).

use super::op::Op;
use crate::storage::codec::{Reader, Writer};
use crate::storage::streams::{check_records, StreamLimits, StreamResult, StreamStore};
use crate::storage::StorageError;
use bytes::Bytes;
use raft::prelude::{ConfState, Snapshot, SnapshotMetadata};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tributary_common::sync::lock;

/// How long a built snapshot is kept for followers to pull, and reused for later requests.
pub const KEEP: Duration = Duration::from_secs(60);
/// Bytes per chunk of a pull.
pub const CHUNK: usize = 1 << 20;
const DESCRIPTOR: u8 = b'D';
const PAYLOAD_VERSION: u8 = 1;

/// What the snapshot message carries: where to pull the state from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    pub leader: u64,
    pub id: u64,
    pub len: u64,
}

impl Descriptor {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(DESCRIPTOR).u64(self.leader).u64(self.id).u64(self.len);
        w.0
    }

    pub fn decode(buf: &[u8]) -> Result<Descriptor, String> {
        let mut r = Reader::new(buf, "snapshot descriptor");
        let read = |r: &mut Reader<'_>| -> Result<Descriptor, StorageError> {
            if r.u8()? != DESCRIPTOR {
                return Err(StorageError::Corrupt(
                    "not a stream snapshot descriptor".into(),
                ));
            }
            Ok(Descriptor {
                leader: r.u64()?,
                id: r.u64()?,
                len: r.u64()?,
            })
        };
        let d = read(&mut r).map_err(|e| e.to_string())?;
        if !r.is_empty() || d.leader == 0 || d.id == 0 {
            return Err(format!("malformed stream snapshot descriptor {d:?}"));
        }
        Ok(d)
    }
}

struct Built {
    id: u64,
    index: u64,
    term: u64,
    conf_state: ConfState,
    payload: Bytes,
    at: Instant,
}

/// The snapshots this node built as a leader, by group, until too old: a replica pulling one
/// finds it even after a newer one was built for another.
pub struct Shelf {
    me: u64,
    built: Mutex<HashMap<u64, Vec<Built>>>,
    next_id: AtomicU64,
}

impl Shelf {
    pub fn new(me: u64) -> Arc<Shelf> {
        Arc::new(Shelf {
            me,
            built: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        })
    }

    /// A snapshot of `store` at `index` (what it has applied, of `term`), or one built lately
    /// at `at_least` or above with the same configuration (a replica just added must find
    /// itself in it): raft-rs asks again each time it finds a follower behind the log.
    pub(super) fn snapshot(
        &self,
        group: u64,
        store: &StreamStore,
        (index, term): (u64, u64),
        conf_state: ConfState,
        at_least: u64,
    ) -> Result<Snapshot, String> {
        let mut shelf = lock(&self.built);
        let built = shelf.entry(group).or_default();
        let reusable = built.iter().rposition(|b| {
            b.index >= at_least && b.at.elapsed() < KEEP && b.conf_state == conf_state
        });
        let at = match reusable {
            Some(at) => at,
            None => {
                let payload = payload(store).map_err(|e| e.to_string())?;
                tracing::info!(stream = %store.name, index, bytes = payload.len(), "stream snapshot built");
                metrics::counter!("tributary_dn_stream_snapshots_built_total").increment(1);
                let b = Built {
                    id: self.next_id.fetch_add(1, Ordering::Relaxed),
                    index,
                    term,
                    conf_state,
                    payload: payload.into(),
                    at: Instant::now(),
                };
                built.push(b);
                built.len() - 1
            }
        };
        let b = &built[at];
        let mut meta = SnapshotMetadata {
            index: b.index,
            term: b.term,
            ..Default::default()
        };
        meta.set_conf_state(b.conf_state.clone());
        let mut s = Snapshot::default();
        s.set_metadata(meta);
        s.set_data(
            Descriptor {
                leader: self.me,
                id: b.id,
                len: b.payload.len() as u64,
            }
            .encode()
            .into(),
        );
        Ok(s)
    }

    /// The snapshot `id` of `group`, if still held.
    pub fn fetch(&self, group: u64, id: u64) -> Option<Bytes> {
        lock(&self.built)
            .get(&group)?
            .iter()
            .find(|b| b.id == id)
            .map(|b| b.payload.clone())
    }

    /// Drops what is older than [`KEEP`] (a pull under way holds its own copy).
    pub(super) fn expire(&self, now: Instant) {
        let mut shelf = lock(&self.built);
        for built in shelf.values_mut() {
            built.retain(|b| now.duration_since(b.at) < KEEP);
        }
        shelf.retain(|_, built| !built.is_empty());
    }

    /// Drops a group's snapshot (the group closed here).
    pub(super) fn forget(&self, group: u64) {
        lock(&self.built).remove(&group);
    }
}

/// `[version][limits, as the log's operation][the stream's records]`.
fn payload(store: &StreamStore) -> StreamResult<Vec<u8>> {
    let records = store.records()?;
    let limits = Op::Limits(store.limits()).encode();
    let mut w = Writer::with_capacity(records.len() + limits.len() + 8);
    w.u8(PAYLOAD_VERSION).bytes(&limits);
    w.0.extend_from_slice(&records);
    Ok(w.0)
}

/// The limits and the records of a payload, checked through.
pub(super) fn parse(payload: &[u8]) -> Result<(StreamLimits, &[u8]), String> {
    fn head<'a>(r: &mut Reader<'a>) -> Result<(u8, &'a [u8]), StorageError> {
        Ok((r.u8()?, r.bytes()?))
    }
    let mut r = Reader::new(payload, "stream snapshot");
    let (version, limits) = head(&mut r).map_err(|e| e.to_string())?;
    if version != PAYLOAD_VERSION {
        return Err(format!("stream snapshot of unknown version {version}"));
    }
    let limits = match Op::decode(limits) {
        Ok(Op::Limits(l)) => l,
        _ => return Err("stream snapshot without its limits".into()),
    };
    let records = r.rest();
    check_records(records).map_err(|e| e.to_string())?;
    Ok((limits, records))
}

/// Whether a pulled payload is one this node could install.
pub fn check(payload: &[u8]) -> Result<(), String> {
    parse(payload).map(|_| ())
}
