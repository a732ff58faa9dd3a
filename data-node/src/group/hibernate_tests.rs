//! Hibernation among three nodes' loops, wired by an in-process router that can silence a
//! node: idle groups go to sleep and stop sending Raft messages, a write wakes its group and
//! is replicated, and a leader's node falling silent gets every sleeping group a new leader
//! on production timings.

use super::op::{Op, Outcome};
use super::{Groups, Outbound, Placement, Settings};
use crate::storage::streams::{StreamLimits, StreamStore};
use crate::storage::{MemoryEngine, NewMessage};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tributary_common::wait::until;

/// `[replication]`'s defaults.
const PRODUCTION: Settings = Settings {
    tick: Duration::from_millis(50),
    election_ticks: 10,
    heartbeat_ticks: 2,
    log_tail: 100_000,
    hibernate: true,
};

struct Net {
    nodes: Arc<OnceLock<Vec<Groups>>>,
    stores: Vec<Vec<Arc<StreamStore>>>,
    /// Nodes whose messages, in and out, are lost.
    silenced: Arc<Mutex<HashSet<u64>>>,
    /// Raft messages the loops sent (node "alive" messages not counted).
    raft_messages: Arc<AtomicU64>,
}

impl Net {
    /// Three nodes serving `n` R3 groups (ids 1..=n), node 1 their first founder.
    fn start(settings: Settings, n: u64) -> Net {
        let nodes = Arc::new(OnceLock::<Vec<Groups>>::new());
        let silenced = Arc::new(Mutex::new(HashSet::new()));
        let raft_messages = Arc::new(AtomicU64::new(0));
        let mut started = Vec::new();
        let mut stores = Vec::new();
        for me in 1..=3u64 {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let engine: Arc<dyn crate::storage::KvEngine> = Arc::new(MemoryEngine::default());
            started.push(Groups::start(
                me,
                engine.clone(),
                settings,
                tx,
                Box::new(|| {}),
            ));
            let mine: Vec<Arc<StreamStore>> = (1..=n)
                .map(|id| {
                    let name = format!("default:S{id}");
                    Arc::new(
                        StreamStore::open(id as u32, name, engine.clone(), StreamLimits::default())
                            .expect("store"),
                    )
                })
                .collect();
            stores.push(mine);
            let (nodes, silenced, count) = (nodes.clone(), silenced.clone(), raft_messages.clone());
            tokio::spawn(async move {
                while let Some(out) = rx.recv().await {
                    let to = match &out {
                        Outbound::Raft { to, .. } | Outbound::Alive { to } => *to,
                    };
                    if matches!(out, Outbound::Raft { .. }) {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    let cut = {
                        let s = silenced.lock().expect("lock");
                        s.contains(&me) || s.contains(&to)
                    };
                    let Some(peer) = nodes.get().and_then(|n| n.get(to as usize - 1)) else {
                        continue;
                    };
                    if cut {
                        continue;
                    }
                    peer.peer_heard(me);
                    if let Outbound::Raft { group, msg, .. } = out {
                        peer.step(group, msg);
                    }
                }
            });
        }
        let placement = Placement {
            replicas: vec![1, 2, 3],
            founders: vec![1, 2, 3],
        };
        for (k, g) in started.iter().enumerate() {
            for (i, s) in stores[k].iter().enumerate() {
                g.open(
                    i as u64 + 1,
                    s.clone(),
                    placement.clone(),
                    StreamLimits::default(),
                );
            }
        }
        assert!(nodes.set(started).is_ok());
        Net {
            nodes,
            stores,
            silenced,
            raft_messages,
        }
    }

    fn node(&self, k: u64) -> &Groups {
        &self.nodes.get().expect("started")[k as usize - 1]
    }

    fn asleep(&self) -> usize {
        (1..=3).map(|k| self.node(k).hibernating()).sum()
    }

    /// Publishes one message to `group` through whichever node leads it.
    async fn publish(&self, group: u64, id: &str) -> u64 {
        let what = format!("a publish to group {group} acknowledged");
        until(&what, Duration::from_secs(10), || async {
            for k in 1..=3 {
                if self.silenced.lock().expect("lock").contains(&k) {
                    continue;
                }
                let m = NewMessage {
                    subject: "S.a".into(),
                    headers: [("Msg-Id".to_string(), id.to_string())].into(),
                    data: bytes::Bytes::from_static(b"x"),
                    timestamp_ns: 1,
                };
                if let Ok(Outcome::Published(r)) = self
                    .node(k)
                    .propose(group, Op::Publish(vec![(m, None)]))
                    .await
                {
                    return r.into_iter().next().and_then(Result::ok).map(|p| p.seq);
                }
            }
            None
        })
        .await
        .expect("acknowledged")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_groups_hibernate_and_a_write_wakes_its_group() {
    let fast = Settings {
        tick: Duration::from_millis(10),
        election_ticks: 5,
        heartbeat_ticks: 1,
        log_tail: 100,
        hibernate: true,
    };
    let n = 20;
    let net = Net::start(fast, n);
    for g in 1..=n {
        assert_eq!(net.publish(g, "first").await, 1);
    }
    let r = until(
        "every replica of every group asleep",
        Duration::from_secs(10),
        || async { (net.asleep() == 3 * n as usize).then_some(()) },
    )
    .await;
    let counts: Vec<usize> = (1..=3).map(|k| net.node(k).hibernating()).collect();
    r.unwrap_or_else(|e| panic!("{e}: asleep per node {counts:?}"));

    // Awake, 20 groups heartbeat their two followers every 10 ms: about 8,000 messages a
    // second. Asleep, none.
    let before = net.raft_messages.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = net.raft_messages.load(Ordering::Relaxed) - before;
    assert!(
        sent < n,
        "{sent} raft messages in 0.5 s with every group asleep"
    );

    // A write wakes its group, is acknowledged and reaches every replica.
    assert_eq!(net.publish(7, "second").await, 2);
    until(
        "every replica of group 7 at seq 2",
        Duration::from_secs(5),
        || async {
            net.stores
                .iter()
                .all(|s| s[6].state().last_seq == 2)
                .then_some(())
        },
    )
    .await
    .expect("replicated");
    until("group 7 asleep again", Duration::from_secs(10), || async {
        (net.asleep() == 3 * n as usize).then_some(())
    })
    .await
    .expect("asleep again");
    for k in 1..=3 {
        net.node(k).stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_leaders_sleeping_groups_elect_new_leaders() {
    let n = 10;
    let net = Net::start(PRODUCTION, n);
    for g in 1..=n {
        net.publish(g, "first").await;
    }
    let r = until("every group asleep", Duration::from_secs(20), || async {
        (net.asleep() == 3 * n as usize).then_some(())
    })
    .await;
    let counts: Vec<usize> = (1..=3).map(|k| net.node(k).hibernating()).collect();
    r.unwrap_or_else(|e| panic!("{e}: asleep per node {counts:?}"));
    let net = &net;
    let leaders = |k: u64| -> Vec<Option<u64>> { (1..=n).map(|g| net.node(k).leader(g)).collect() };
    let victim = leaders(1).into_iter().flatten().next().expect("a leader");
    let survivors: Vec<u64> = (1..=3).filter(|k| *k != victim).collect();

    net.silenced.lock().expect("lock").insert(victim);
    net.node(victim).stop();
    let t0 = std::time::Instant::now();
    // Detected after an election timeout (0.5 s) of silence; the bench measures how soon.
    until(
        "a new leader for every group",
        Duration::from_secs(10),
        || async {
            survivors
                .iter()
                .all(|k| leaders(*k).iter().all(|l| l.is_some_and(|l| l != victim)))
                .then_some(())
        },
    )
    .await
    .expect("new leaders");
    let took = t0.elapsed();
    for g in 1..=n {
        assert_eq!(
            net.publish(g, "second").await,
            2,
            "group {g} after failover"
        );
    }
    eprintln!("every sleeping group had a new leader {took:?} after its leader's node fell silent");
    for k in survivors {
        net.node(k).stop();
    }
}
