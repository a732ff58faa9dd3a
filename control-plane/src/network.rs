//! Raft traffic between members: per-peer senders, peer addresses, and fault injection
//! (drop, delay, partition) that the test harness turns on.

use raft::prelude::Message;
use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// A peer that took a message this recently counts as reachable (the leader sends heartbeats
/// far more often).
const REACHABLE_WINDOW: Duration = Duration::from_secs(1);
use tokio::sync::mpsc;
use tonic::transport::Channel;
use tributary_proto::v1::{raft_client::RaftClient, RaftBatch};

/// Rules applied to every message and forwarded request between members.
#[derive(Debug, Default, Clone)]
struct Rules {
    blocked: HashSet<(u64, u64)>,
    delay: Duration,
    drop_ratio: f64,
}

/// Fault injection shared by the members of an in-process cluster; a no-op by default.
#[derive(Clone, Default)]
pub struct Faults {
    rules: Arc<RwLock<Rules>>,
}

impl Faults {
    fn rules(&self) -> Rules {
        self.rules.read().map(|r| r.clone()).unwrap_or_default()
    }

    fn edit(&self, f: impl FnOnce(&mut Rules)) {
        if let Ok(mut r) = self.rules.write() {
            f(&mut r);
        }
    }

    /// Cuts every link between a member of `a` and a member of `b`, both ways.
    pub fn partition(&self, a: &[u64], b: &[u64]) {
        self.edit(|r| {
            for x in a {
                for y in b {
                    r.blocked.insert((*x, *y));
                    r.blocked.insert((*y, *x));
                }
            }
        });
    }

    /// Cuts `node` off from every other member in `all`.
    pub fn isolate(&self, node: u64, all: &[u64]) {
        let others: Vec<u64> = all.iter().copied().filter(|x| *x != node).collect();
        self.partition(&[node], &others);
    }

    pub fn heal(&self) {
        self.edit(|r| *r = Rules::default());
    }

    pub fn set_delay(&self, d: Duration) {
        self.edit(|r| r.delay = d);
    }

    /// Drops this share of messages (0.0 – 1.0) at random.
    pub fn set_drop_ratio(&self, ratio: f64) {
        self.edit(|r| r.drop_ratio = ratio.clamp(0.0, 1.0));
    }

    /// Whether a message from `from` to `to` gets through, and after what delay.
    pub fn pass(&self, from: u64, to: u64) -> Option<Duration> {
        let r = self.rules();
        if r.blocked.contains(&(from, to)) {
            return None;
        }
        if r.drop_ratio > 0.0 && rand::rng().random_bool(r.drop_ratio) {
            return None;
        }
        Some(r.delay)
    }
}

/// Addresses and lazily connected channels of the other members.
#[derive(Clone, Default)]
pub struct Peers {
    addrs: Arc<RwLock<HashMap<u64, String>>>,
    channels: Arc<RwLock<HashMap<u64, Channel>>>,
    /// Outcome and time of the last send to each peer.
    health: Arc<RwLock<HashMap<u64, (Instant, bool)>>>,
}

impl Peers {
    pub fn new(addrs: HashMap<u64, String>) -> Self {
        Self {
            addrs: Arc::new(RwLock::new(addrs)),
            channels: Arc::default(),
            health: Arc::default(),
        }
    }

    fn record(&self, id: u64, ok: bool) {
        if let Ok(mut h) = self.health.write() {
            h.insert(id, (Instant::now(), ok));
        }
    }

    /// Whether the last message to `id` got through within the last `REACHABLE_WINDOW`.
    pub fn is_reachable(&self, id: u64) -> bool {
        self.health
            .read()
            .ok()
            .and_then(|h| h.get(&id).copied())
            .is_some_and(|(at, ok)| ok && at.elapsed() < REACHABLE_WINDOW)
    }

    pub fn addr(&self, id: u64) -> Option<String> {
        self.addrs.read().ok()?.get(&id).cloned()
    }

    pub fn all(&self) -> HashMap<u64, String> {
        self.addrs.read().map(|a| a.clone()).unwrap_or_default()
    }

    pub fn set(&self, id: u64, addr: String) {
        if let Ok(mut a) = self.addrs.write() {
            if a.get(&id) != Some(&addr) {
                a.insert(id, addr);
                if let Ok(mut c) = self.channels.write() {
                    c.remove(&id);
                }
            }
        }
    }

    pub fn remove(&self, id: u64) {
        if let Ok(mut a) = self.addrs.write() {
            a.remove(&id);
        }
        if let Ok(mut c) = self.channels.write() {
            c.remove(&id);
        }
    }

    /// A channel to member `id`, if its address is known.
    pub fn channel(&self, id: u64) -> Option<Channel> {
        if let Some(c) = self.channels.read().ok()?.get(&id) {
            return Some(c.clone());
        }
        let addr = self.addr(id)?;
        let ch = tributary_common::grpc::channel(&addr).ok()?;
        if let Ok(mut c) = self.channels.write() {
            c.insert(id, ch.clone());
        }
        Some(ch)
    }
}

/// What a sender reports back to the Raft loop.
pub enum SendReport {
    Unreachable(u64),
    Snapshot { to: u64, ok: bool },
}

/// Where senders report failures (the Raft loop's input queue).
pub type Reporter = Arc<dyn Fn(SendReport) + Send + Sync>;

/// Per-peer outgoing queues; one task per peer batches and sends, so a slow or dead peer
/// never blocks the Raft loop.
pub struct Transport {
    me: u64,
    peers: Peers,
    faults: Faults,
    queues: HashMap<u64, mpsc::Sender<Message>>,
    reports: Reporter,
    runtime: tokio::runtime::Handle,
}

const QUEUE: usize = 8192;
const MAX_BATCH: usize = 256;

impl Transport {
    pub fn new(
        me: u64,
        peers: Peers,
        faults: Faults,
        reports: Reporter,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            me,
            peers,
            faults,
            queues: HashMap::new(),
            reports,
            runtime,
        }
    }

    pub fn send(&mut self, msgs: Vec<Message>) {
        for m in msgs {
            let to = m.to;
            let q = self.queues.entry(to).or_insert_with(|| {
                let (tx, rx) = mpsc::channel(QUEUE);
                let sender = PeerSender {
                    me: self.me,
                    to,
                    peers: self.peers.clone(),
                    faults: self.faults.clone(),
                    reports: self.reports.clone(),
                };
                self.runtime.spawn(sender.run(rx));
                tx
            });
            // A full queue means the peer is far behind or gone: dropping is safe, Raft resends.
            let _ = q.try_send(m);
        }
    }
}

struct PeerSender {
    me: u64,
    to: u64,
    peers: Peers,
    faults: Faults,
    reports: Reporter,
}

impl PeerSender {
    async fn run(self, mut rx: mpsc::Receiver<Message>) {
        use protobuf::Message as _;
        let mut buf = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut buf, MAX_BATCH).await > 0 {
            let msgs = std::mem::take(&mut buf);
            let snapshots: Vec<bool> = msgs
                .iter()
                .map(|m| m.get_msg_type() == raft::prelude::MessageType::MsgSnapshot)
                .collect();
            let has_snapshot = snapshots.iter().any(|s| *s);
            let ok = match self.faults.pass(self.me, self.to) {
                None => false,
                Some(delay) => {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let encoded: Vec<_> = msgs
                        .iter()
                        .filter_map(|m| m.write_to_bytes().ok().map(Into::into))
                        .collect();
                    match self.peers.channel(self.to) {
                        Some(ch) => RaftClient::new(ch)
                            .send(RaftBatch {
                                from: self.me,
                                messages: encoded,
                            })
                            .await
                            .is_ok(),
                        None => false,
                    }
                }
            };
            self.peers.record(self.to, ok);
            if !ok {
                (self.reports)(SendReport::Unreachable(self.to));
            }
            if has_snapshot {
                (self.reports)(SendReport::Snapshot { to: self.to, ok });
            }
        }
    }
}
