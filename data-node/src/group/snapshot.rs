//! Snapshots of replicated streams, for a replica too far behind for the log (the log keeps
//! `[replication] log_tail` entries below what the stream holds, see `ready::housekeeping`).
//!
//! As TiKV does, the Raft message stays small: the leader builds the stream's state at the
//! index it has applied, keeps it on its [`Shelf`] and sends a [`Descriptor`] naming it in the
//! snapshot's data. The follower's link pulls it in chunks (`StreamGroups.FetchSnapshot`)
//! before Raft sees the message, and its ready loop then replaces the stream's records and
//! truncates the group log to the snapshot's index in one engine write
//! (`ready::apply::install`).
//!
//! Reading a stream of gigabytes takes seconds, and the ready loop drives every group of the
//! node: so, as TiKV's region worker does, the build runs on a thread of its own ([`build`]).
//! The first time raft-rs asks (`log::GroupLog::snapshot`), the loop holds the stream still
//! for as long as the builder takes to pin a view of the engine (microseconds: a RocksDB
//! snapshot), then goes on applying entries while the builder reads that view; raft-rs is told
//! the snapshot is temporarily unavailable and asks again on the follower's next heartbeat
//! response, when the built snapshot is on the shelf. So the payload is the stream exactly
//! at the index it names, though the stream has moved on since.
//!
//! What is replicated, so what a snapshot carries: every record of the stream (messages at
//! their seqs, the Msg-Id dedupe window, the state record, mirror and source origin progress)
//! and the limits the log last set. A snapshot is held in memory while it is pulled: bounded
//! by the stream's size, and dropped after [`KEEP`] (a newer one is built if needed); at most
//! [`build::MAX_BUILDS`] are built at once.

mod build;
#[cfg(test)]
mod tests;

use super::op::Op;
use crate::storage::codec::{Reader, Writer};
use crate::storage::streams::{check_records, Records, StreamLimits, StreamResult, StreamStore};
use crate::storage::StorageError;
use bytes::Bytes;
use raft::prelude::{ConfState, Snapshot, SnapshotMetadata};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
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

/// Why there is no snapshot to send yet. raft-rs only hears "temporarily unavailable" and
/// asks again on a later append or heartbeat response.
#[derive(Debug, thiserror::Error)]
pub enum NotYet {
    #[error("a snapshot build started")]
    Started,
    #[error("a snapshot of the stream is being built")]
    Building,
    #[error("{0} snapshot builds are under way on this node")]
    Busy(usize),
    #[error("the stream holds index {held}, not {asked}")]
    Moved { asked: u64, held: u64 },
    #[error("snapshot builds stopped on this node")]
    Stopped,
    #[error("cannot start a snapshot build: {0}")]
    Spawn(String),
}

/// What the shelf holds, by group; the builders put their snapshots here.
#[derive(Default)]
struct Held {
    built: HashMap<u64, Vec<Built>>,
    /// Group → id of the snapshot being built for it.
    building: HashMap<u64, u64>,
    last_id: u64,
}

/// The snapshots this node built as a leader, by group, until too old: a replica pulling one
/// finds it even after a newer one was built for another.
pub struct Shelf {
    me: u64,
    held: Arc<Mutex<Held>>,
    builders: build::Builders,
}

impl Shelf {
    pub fn new(me: u64) -> Arc<Shelf> {
        Arc::new(Shelf {
            me,
            held: Arc::default(),
            builders: build::Builders::default(),
        })
    }

    /// The snapshot of `store` built lately at `at_least` or above with the same
    /// configuration (a replica just added must find itself in it): raft-rs asks again each
    /// time it finds a follower behind the log. Else a build of `store` at `index` (what it
    /// has applied, of `term`) starts, unless one is under way, and the answer is to ask
    /// again later. Called on the ready loop, which applies nothing meanwhile: `store` holds
    /// `index` until the builder has pinned its view.
    pub(super) fn snapshot(
        &self,
        group: u64,
        store: &Arc<StreamStore>,
        (index, term): (u64, u64),
        conf_state: ConfState,
        at_least: u64,
    ) -> Result<Snapshot, NotYet> {
        let id = {
            let mut held = lock(&self.held);
            let reusable = held.built.get(&group).and_then(|built| {
                built.iter().rfind(|b| {
                    b.index >= at_least && b.at.elapsed() < KEEP && b.conf_state == conf_state
                })
            });
            if let Some(b) = reusable {
                return Ok(self.message(b));
            }
            if held.building.contains_key(&group) {
                return Err(NotYet::Building);
            }
            if held.building.len() >= build::MAX_BUILDS {
                return Err(NotYet::Busy(held.building.len()));
            }
            held.last_id += 1;
            let id = held.last_id;
            held.building.insert(group, id);
            id
        };
        let build = build::Build {
            group,
            id,
            index,
            term,
            conf_state,
        };
        let started = store.frozen(|frozen| {
            if frozen.group_index != index {
                return Err(NotYet::Moved {
                    asked: index,
                    held: frozen.group_index,
                });
            }
            self.builders
                .start(build, frozen.limits, frozen.records, self.held.clone())
        });
        match started {
            Ok(()) => Err(NotYet::Started),
            Err(e) => {
                let mut held = lock(&self.held);
                if held.building.get(&group) == Some(&id) {
                    held.building.remove(&group);
                }
                Err(e)
            }
        }
    }

    fn message(&self, b: &Built) -> Snapshot {
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
        s
    }

    /// The snapshot `id` of `group`, if still held.
    pub fn fetch(&self, group: u64, id: u64) -> Option<Bytes> {
        lock(&self.held)
            .built
            .get(&group)?
            .iter()
            .find(|b| b.id == id)
            .map(|b| b.payload.clone())
    }

    /// Drops what is older than [`KEEP`] (a pull under way holds its own copy).
    pub(super) fn expire(&self, now: Instant) {
        let mut held = lock(&self.held);
        for built in held.built.values_mut() {
            built.retain(|b| now.duration_since(b.at) < KEEP);
        }
        held.built.retain(|_, built| !built.is_empty());
    }

    /// Drops a group's snapshots, and what a build under way for it brings (the group closed
    /// here).
    pub(super) fn forget(&self, group: u64) {
        let mut held = lock(&self.held);
        held.built.remove(&group);
        held.building.remove(&group);
    }

    /// Stops the builds under way and waits for their threads (the node stops): none holds
    /// the node's storage open after this, and none starts.
    pub(super) fn stop(&self) {
        self.builders.stop();
    }
}

/// `[version][limits, as the log's operation][the stream's records]`, the records as of the
/// moment `pinned` is called.
fn payload(
    limits: &StreamLimits,
    records: &Records,
    pinned: &mut dyn FnMut(),
    stop: &AtomicBool,
) -> StreamResult<Vec<u8>> {
    let limits = Op::Limits(limits.clone()).encode();
    let mut w = Writer::default();
    w.u8(PAYLOAD_VERSION).bytes(&limits);
    records.read(&mut w, pinned, stop)?;
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
