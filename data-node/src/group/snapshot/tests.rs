//! A snapshot is the stream exactly at the index it names, though writes land while it is
//! built; the ready loop's request returns at once and the built snapshot comes later.

use super::*;
use crate::group::log::GroupLog;
use crate::storage::engine::{Batch, KvEngine, Scan, Space};
use crate::storage::{MemoryEngine, NewMessage, RocksEngine, StorageResult};
use raft::prelude::Entry;
use raft::Storage as _;
use std::sync::mpsc;

const GROUP: u64 = 42;

fn msg(i: usize) -> (NewMessage, Option<u64>) {
    (
        NewMessage {
            subject: format!("S.{}", i % 7),
            headers: Default::default(),
            data: bytes::Bytes::from(vec![b'x'; 100]),
            timestamp_ns: i as i64,
        },
        None,
    )
}

fn open(engine: Arc<dyn KvEngine>, id: u32) -> Arc<StreamStore> {
    Arc::new(StreamStore::open(id, "default:S".into(), engine, StreamLimits::default()).unwrap())
}

/// Applies the log's entry `index`: a publish of `n` messages.
fn apply(store: &StreamStore, index: u64, n: usize) {
    store.set_group_index(index);
    for r in store.publish_batch((0..n).map(msg).collect()) {
        r.unwrap();
    }
}

/// What a replica holds once it installs `payload`: its message count, last seq, limits.
fn installed(payload: &[u8], index: u64) -> (u64, u64, StreamLimits) {
    let (limits, records) = parse(payload).unwrap();
    let replica = open(Arc::new(MemoryEngine::new()), 9);
    replica
        .replace_records(records, index, Batch::default())
        .unwrap();
    assert_eq!(replica.group_index(), index);
    let st = replica.state();
    (st.messages, st.last_seq, limits)
}

fn engines() -> Vec<(Arc<dyn KvEngine>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let rocks = RocksEngine::open(dir.path(), false).unwrap();
    vec![
        (Arc::new(MemoryEngine::new()) as Arc<dyn KvEngine>, None),
        (Arc::new(rocks) as Arc<dyn KvEngine>, Some(dir)),
    ]
}

#[test]
fn the_payload_is_the_stream_as_pinned_though_writes_land_while_it_is_read() {
    for (engine, _dir) in engines() {
        let store = open(engine, 1);
        apply(&store, 1, 1000);
        let (index, limits, records) = store.frozen(|f| (f.group_index, f.limits, f.records));
        assert_eq!(index, 1);
        // Once pinned, the loop goes on: more publishes, new limits.
        let mut pins = 0;
        let payload = payload(
            &limits,
            &records,
            &mut || {
                pins += 1;
                apply(&store, 2, 1000);
                store.set_limits(StreamLimits {
                    max_msgs: 5000,
                    ..Default::default()
                });
            },
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(pins, 1);
        assert_eq!(store.state().messages, 2000);
        assert_eq!(
            installed(&payload, 1),
            (1000, 1000, StreamLimits::default())
        );
    }
}

#[test]
fn a_stopped_build_ends_without_a_payload() {
    let store = open(Arc::new(MemoryEngine::new()), 1);
    apply(&store, 1, 10);
    let records = store.frozen(|f| f.records);
    let stop = AtomicBool::new(true);
    let r = payload(&StreamLimits::default(), &records, &mut || {}, &stop);
    assert!(
        matches!(r, Err(crate::storage::streams::StreamError::Closed(_))),
        "{r:?}"
    );
}

/// An engine whose pinned scans wait, once pinned, until the test lets them read.
struct Gated {
    inner: MemoryEngine,
    gate: Mutex<Option<mpsc::Receiver<()>>>,
}

impl Gated {
    fn new() -> (Arc<Gated>, mpsc::Sender<()>) {
        let (tx, rx) = mpsc::channel();
        let engine = Gated {
            inner: MemoryEngine::new(),
            gate: Mutex::new(Some(rx)),
        };
        (Arc::new(engine), tx)
    }
}

impl KvEngine for Gated {
    fn get(&self, space: Space, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.inner.get(space, key)
    }

    fn write(&self, batch: Batch) -> StorageResult<()> {
        self.inner.write(batch)
    }

    fn scan(
        &self,
        space: Space,
        start: &[u8],
        end: &[u8],
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> Scan,
    ) -> StorageResult<()> {
        self.inner.scan(space, start, end, reverse, visit)
    }

    fn scan_pinned(
        &self,
        space: Space,
        start: &[u8],
        end: &[u8],
        pinned: &mut dyn FnMut(),
        visit: &mut dyn FnMut(&[u8], &[u8]) -> Scan,
    ) -> StorageResult<()> {
        let gate = lock(&self.gate).take();
        self.inner.scan_pinned(
            space,
            start,
            end,
            &mut || {
                pinned();
                if let Some(gate) = &gate {
                    // Bounded, so a failed test ends rather than hangs on the join.
                    let _ = gate.recv_timeout(Duration::from_secs(30));
                }
            },
            visit,
        )
    }
}

/// A group log holding entries 1..=`last` of term 2, for three voters.
fn group_log(
    engine: Arc<dyn KvEngine>,
    store: Arc<StreamStore>,
    shelf: Arc<Shelf>,
    last: u64,
) -> GroupLog {
    let log = GroupLog::open(engine.clone(), GROUP, &[1, 2, 3], store, shelf).unwrap();
    let entries: Vec<Entry> = (1..=last)
        .map(|index| Entry {
            index,
            term: 2,
            ..Default::default()
        })
        .collect();
    let mut b = Batch::default();
    let staged = log.stage(&mut b, &entries, None).unwrap();
    engine.write(b).unwrap();
    log.staged(staged);
    log
}

fn temporarily_unavailable(r: raft::Result<Snapshot>) -> bool {
    matches!(
        r,
        Err(raft::Error::Store(
            raft::StorageError::SnapshotTemporarilyUnavailable
        ))
    )
}

#[tokio::test]
async fn the_request_returns_at_once_and_the_stream_goes_on_while_the_snapshot_is_built() {
    let (engine, gate) = Gated::new();
    let store = open(engine.clone(), 1);
    let shelf = Shelf::new(1);
    apply(&store, 1, 1000);
    let log = group_log(engine.clone(), store.clone(), shelf.clone(), 3);

    // The builder is held after pinning its view: the request came back all the same.
    assert!(temporarily_unavailable(log.snapshot(0, 2)));
    assert_eq!(lock(&shelf.held).building.len(), 1);
    // Asked again meanwhile: no second build.
    assert!(temporarily_unavailable(log.snapshot(0, 2)));
    assert_eq!(lock(&shelf.held).building.len(), 1);
    // The stream takes writes while its snapshot is read (its lock is free).
    apply(&store, 2, 1000);
    apply(&store, 3, 1);

    gate.send(()).unwrap();
    let built = || async {
        match log.snapshot(0, 2) {
            Ok(s) => Some(s),
            r => {
                assert!(temporarily_unavailable(r));
                None
            }
        }
    };
    let snap = tributary_common::wait::until("the snapshot built", Duration::from_secs(30), built)
        .await
        .expect("built");
    let meta = snap.get_metadata();
    assert_eq!((meta.index, meta.term), (1, 2));
    assert_eq!(meta.get_conf_state().voters, vec![1, 2, 3]);
    let d = Descriptor::decode(snap.get_data()).unwrap();
    assert_eq!(d.leader, 1);
    let payload = shelf.fetch(GROUP, d.id).expect("on the shelf");
    assert_eq!(payload.len() as u64, d.len);
    assert_eq!(installed(&payload, 1).0, 1000);
    // Built once: the next request reuses it.
    assert_eq!(log.snapshot(0, 2).unwrap(), snap);
    assert!(lock(&shelf.held).building.is_empty());
}

#[test]
fn a_build_for_a_group_closed_meanwhile_is_dropped_and_stop_joins_the_builders() {
    let (engine, gate) = Gated::new();
    let store = open(engine.clone(), 1);
    let shelf = Shelf::new(1);
    apply(&store, 1, 10);
    let conf = ConfState {
        voters: vec![1, 2, 3],
        ..Default::default()
    };
    let r = shelf.snapshot(GROUP, &store, (1, 2), conf.clone(), 0);
    assert!(matches!(r, Err(NotYet::Started)), "{r:?}");
    shelf.forget(GROUP);
    gate.send(()).unwrap();
    shelf.stop();
    assert!(lock(&shelf.held).built.is_empty());
    assert!(lock(&shelf.held).building.is_empty());
    let r = shelf.snapshot(GROUP, &store, (1, 2), conf, 0);
    assert!(matches!(r, Err(NotYet::Stopped)), "{r:?}");
}

#[test]
fn builds_are_bounded_per_node() {
    let shelf = Shelf::new(1);
    let mut gates = Vec::new();
    let conf = ConfState::default();
    for group in 0..build::MAX_BUILDS as u64 {
        let (engine, gate) = Gated::new();
        gates.push(gate);
        let store = open(engine, 1);
        apply(&store, 1, 1);
        let r = shelf.snapshot(group, &store, (1, 1), conf.clone(), 0);
        assert!(matches!(r, Err(NotYet::Started)), "{r:?}");
    }
    let store = open(Arc::new(MemoryEngine::new()), 1);
    apply(&store, 1, 1);
    let r = shelf.snapshot(99, &store, (1, 1), conf, 0);
    assert!(
        matches!(r, Err(NotYet::Busy(n)) if n == build::MAX_BUILDS),
        "{r:?}"
    );
    for g in gates {
        g.send(()).unwrap();
    }
    shelf.stop();
}
