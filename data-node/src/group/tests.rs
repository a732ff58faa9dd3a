//! The ready loop on its own: a group of one replica (which elects itself) takes proposals
//! and answers once they are applied, decides dedupe once, and resumes after a restart at the
//! last publish stored; a log that cannot be written stops the loop and says why.

use super::op::{Op, Outcome};
use super::{Groups, Settings};
use crate::storage::engine::{Batch, KvEngine, Scan, Space};
use crate::storage::streams::{StreamLimits, StreamStore};
use crate::storage::{MemoryEngine, NewMessage, StorageError, StorageResult};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A memory engine whose writes fail once told to.
#[derive(Default)]
struct Flaky {
    inner: MemoryEngine,
    fail: AtomicBool,
}

impl KvEngine for Flaky {
    fn get(&self, space: Space, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.inner.get(space, key)
    }

    fn write(&self, batch: Batch) -> StorageResult<()> {
        if self.fail.load(Ordering::Relaxed) {
            return Err(StorageError::Engine("disk full".into()));
        }
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
        self.inner.scan_pinned(space, start, end, pinned, visit)
    }
}

const SETTINGS: Settings = Settings {
    tick: Duration::from_millis(10),
    election_ticks: 5,
    heartbeat_ticks: 1,
    log_tail: 100,
    hibernate: true,
};

fn start(engine: Arc<Flaky>) -> (Groups, Arc<StreamStore>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    // Nobody else: messages for peers would go nowhere.
    std::mem::forget(rx);
    let groups = Groups::start(1, engine.clone(), SETTINGS, tx, Box::new(|| {}));
    let store = Arc::new(
        StreamStore::open(7, "default:S".into(), engine, StreamLimits::default()).expect("store"),
    );
    let placement = super::Placement {
        replicas: vec![1],
        founders: vec![1],
    };
    groups.open(42, store.clone(), placement, StreamLimits::default());
    (groups, store)
}

fn msg(id: &str) -> (NewMessage, Option<u64>) {
    (
        NewMessage {
            subject: "S.a".into(),
            headers: [("Msg-Id".to_string(), id.to_string())].into(),
            data: bytes::Bytes::from_static(b"x"),
            timestamp_ns: 1,
        },
        None,
    )
}

async fn publish(g: &Groups, ids: &[&str]) -> Vec<(u64, bool)> {
    for _ in 0..200 {
        match g
            .propose(42, Op::Publish(ids.iter().map(|i| msg(i)).collect()))
            .await
        {
            Ok(Outcome::Published(r)) => {
                return r
                    .into_iter()
                    .map(|r| r.map(|p| (p.seq, p.duplicate)).expect("stored"))
                    .collect()
            }
            // Not elected yet.
            Err(super::GroupError::NotLeader { .. }) => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            other => panic!("{other:?}"),
        }
    }
    panic!("no leader");
}

#[tokio::test]
async fn proposals_are_answered_once_applied_and_resume_after_a_restart() {
    let engine = Arc::new(Flaky::default());
    let (g, store) = start(engine.clone());
    assert_eq!(publish(&g, &["a", "b"]).await, vec![(1, false), (2, false)]);
    assert_eq!(publish(&g, &["b", "c"]).await, vec![(2, true), (3, false)]);
    assert!(store.group_index() > 0);
    let st = g.status(42).await.expect("status");
    assert_eq!(st.leader, 1);
    g.stop();
    drop(store);

    // Restarted on the same storage: nothing applied twice, and it goes on.
    let (g, store) = start(engine);
    assert_eq!(publish(&g, &["d"]).await, vec![(4, false)]);
    assert_eq!(store.state().messages, 4);
    g.stop();
}

#[tokio::test]
async fn a_log_that_cannot_be_written_stops_the_loop_and_says_why() {
    let engine = Arc::new(Flaky::default());
    let (g, _store) = start(engine.clone());
    publish(&g, &["a"]).await;
    let mut failure = g.failure();
    engine.fail.store(true, Ordering::Relaxed);
    let r = g.propose(42, Op::Publish(vec![msg("b")])).await;
    assert!(r.is_err(), "{r:?}");
    tokio::time::timeout(Duration::from_secs(5), failure.wait_for(Option::is_some))
        .await
        .expect("reported in time")
        .expect("reported");
    let why = failure.borrow().clone().unwrap_or_default();
    assert!(why.contains("disk full"), "{why}");
    assert_eq!(g.leader(42), None, "nothing is led here any more");
}

#[tokio::test]
async fn a_new_groups_first_founder_leads_without_waiting_out_an_election_timeout() {
    // An election timeout of 10-20 s: a leader within 2 s is the first founder standing at once.
    let slow = Settings {
        election_ticks: 1000,
        ..SETTINGS
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::mem::forget(rx);
    let engine = Arc::new(Flaky::default());
    let groups = Groups::start(1, engine.clone(), slow, tx, Box::new(|| {}));
    let store = Arc::new(
        StreamStore::open(7, "default:S".into(), engine, StreamLimits::default()).expect("store"),
    );
    let placement = super::Placement {
        replicas: vec![1],
        founders: vec![1],
    };
    groups.open(42, store, placement, StreamLimits::default());
    tributary_common::wait::until(
        "a leader 2 s after the group opened",
        Duration::from_secs(2),
        || async { (groups.leader(42) == Some(1)).then_some(()) },
    )
    .await
    .expect("the first founder leads");
    groups.stop();
}
