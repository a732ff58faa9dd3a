//! Raft traffic between members: per-peer senders and peer addresses. (Tests inject faults
//! on the links themselves, with the harness's proxies.)

use raft::prelude::Message;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// A peer that took a message this recently counts as reachable (the leader sends heartbeats
/// far more often).
const REACHABLE_WINDOW: Duration = Duration::from_secs(1);
use tokio::sync::mpsc;
use tonic::transport::Channel;
use tributary_proto::v1::{raft_client::RaftClient, RaftBatch};

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
    queues: HashMap<u64, mpsc::Sender<Message>>,
    reports: Reporter,
    runtime: tokio::runtime::Handle,
}

const QUEUE: usize = 8192;
const MAX_BATCH: usize = 256;

impl Transport {
    pub fn new(me: u64, peers: Peers, reports: Reporter, runtime: tokio::runtime::Handle) -> Self {
        Self {
            me,
            peers,
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
            let encoded: Vec<_> = msgs
                .iter()
                .filter_map(|m| m.write_to_bytes().ok().map(Into::into))
                .collect();
            let ok = match self.peers.channel(self.to) {
                Some(ch) => RaftClient::new(ch)
                    .send(RaftBatch {
                        from: self.me,
                        messages: encoded,
                    })
                    .await
                    .is_ok(),
                None => false,
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
