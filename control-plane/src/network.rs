//! Raft traffic between members: per-peer senders and peer addresses. (Tests inject faults
//! on the links themselves, with the harness's proxies.)

use raft::prelude::Message;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tributary_common::certs;
use tributary_common::sync::{read, write};
use tributary_common::tls::{self, TlsFiles};

/// A peer that took a message this recently counts as reachable (the leader sends heartbeats
/// far more often).
const REACHABLE_WINDOW: Duration = Duration::from_secs(1);
use tokio::sync::mpsc;
use tributary_common::trace_context::TracedChannel;
use tributary_proto::v1::{
    cluster_client::ClusterClient, raft_client::RaftClient, PeerAddressRequest, RaftBatch,
};

/// Where a member is reached: its client address, and its peer address when configured
/// (else learned by asking the member at its client address). Written `CLIENT[/PEER]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAddrs {
    pub client: String,
    pub peer: Option<String>,
}

impl MemberAddrs {
    pub fn parse(s: &str) -> Self {
        match s.split_once('/') {
            Some((c, p)) if !p.is_empty() => MemberAddrs {
                client: c.to_string(),
                peer: Some(p.to_string()),
            },
            Some((c, _)) => MemberAddrs {
                client: c.to_string(),
                peer: None,
            },
            None => MemberAddrs {
                client: s.to_string(),
                peer: None,
            },
        }
    }
}

impl std::fmt::Display for MemberAddrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.peer {
            Some(p) => write!(f, "{}/{p}", self.client),
            None => f.write_str(&self.client),
        }
    }
}

/// How this member links to its peers: TLS with its own certificate, checking that each
/// peer's certificate names the member it should be (`member-ID`), or cleartext (`insecure`).
#[derive(Clone, Debug, Default)]
pub enum PeerTls {
    #[default]
    Cleartext,
    Mutual(TlsFiles),
}

/// The other members: their client addresses (what clients and leader hints use), their peer
/// addresses (configured, or learned by asking the member at its client address), and lazily
/// connected peer channels.
#[derive(Clone, Default)]
pub struct Peers {
    addrs: Arc<RwLock<HashMap<u64, MemberAddrs>>>,
    learned: Arc<RwLock<HashMap<u64, String>>>,
    channels: Arc<RwLock<HashMap<u64, TracedChannel>>>,
    tls: PeerTls,
    /// Outcome and time of the last send to each peer.
    health: Arc<RwLock<HashMap<u64, (Instant, bool)>>>,
}

impl Peers {
    pub fn new(addrs: HashMap<u64, MemberAddrs>, tls: PeerTls) -> Self {
        Self {
            addrs: Arc::new(RwLock::new(addrs)),
            tls,
            ..Default::default()
        }
    }

    fn record(&self, id: u64, ok: bool) {
        write(&self.health).insert(id, (Instant::now(), ok));
    }

    /// Whether the last message to `id` got through within the last `REACHABLE_WINDOW`.
    pub fn is_reachable(&self, id: u64) -> bool {
        read(&self.health)
            .get(&id)
            .copied()
            .is_some_and(|(at, ok)| ok && at.elapsed() < REACHABLE_WINDOW)
    }

    /// Member `id`'s client address.
    pub fn addr(&self, id: u64) -> Option<String> {
        read(&self.addrs).get(&id).map(|a| a.client.clone())
    }

    /// Whether member `id` has a known address (was among the configured peers or joined).
    pub fn knows(&self, id: u64) -> bool {
        read(&self.addrs).contains_key(&id)
    }

    pub fn all(&self) -> HashMap<u64, MemberAddrs> {
        read(&self.addrs).clone()
    }

    pub fn set(&self, id: u64, addrs: MemberAddrs) {
        let mut a = write(&self.addrs);
        if a.get(&id) != Some(&addrs) {
            a.insert(id, addrs);
            self.forget(id);
        }
    }

    pub fn remove(&self, id: u64) {
        write(&self.addrs).remove(&id);
        self.forget(id);
    }

    /// Drops the channel and the learned peer address of `id` (after a failure: the member
    /// may have restarted on another peer port).
    fn forget(&self, id: u64) {
        write(&self.channels).remove(&id);
        write(&self.learned).remove(&id);
    }

    fn link(&self, id: u64, addr: &str) -> Result<TracedChannel, String> {
        let files = match &self.tls {
            PeerTls::Cleartext => None,
            PeerTls::Mutual(f) => Some(f),
        };
        // The peer must show the certificate of the member we mean, whatever address it
        // answers at.
        tls::channel(addr, files, Some(&certs::member_name(id))).map_err(|e| e.to_string())
    }

    /// Member `id`'s peer address: configured, learned before, or asked of the member at its
    /// client address now.
    async fn peer_addr(&self, id: u64) -> Result<String, String> {
        let addrs = read(&self.addrs)
            .get(&id)
            .cloned()
            .ok_or_else(|| format!("member {id} has no known address"))?;
        if let Some(p) = addrs.peer {
            return Ok(p);
        }
        if let Some(p) = read(&self.learned).get(&id) {
            return Ok(p.clone());
        }
        let ch = self.link(id, &addrs.client)?;
        let mut client = ClusterClient::new(ch);
        let ask = client.peer_address(PeerAddressRequest {});
        let reply = tokio::time::timeout(Duration::from_secs(2), ask)
            .await
            .map_err(|_| format!("member {id} at {}: no answer", addrs.client))?
            .map_err(|s| format!("member {id} at {}: {}", addrs.client, s.message()))?
            .into_inner();
        if reply.id != id {
            return Err(format!(
                "{} answers as member {}, not {id}",
                addrs.client, reply.id
            ));
        }
        // A peer listener on an unspecified host is reached at the client address's host.
        let peer = match reply.peer_addr.rsplit_once(':') {
            Some((h, port)) if h == "0.0.0.0" || h == "[::]" => {
                let host = addrs.client.rsplit_once(':').map_or("", |(h, _)| h);
                format!("{host}:{port}")
            }
            _ => reply.peer_addr,
        };
        write(&self.learned).insert(id, peer.clone());
        Ok(peer)
    }

    /// A channel to member `id`'s peer listener.
    pub async fn channel(&self, id: u64) -> Result<TracedChannel, String> {
        if let Some(c) = read(&self.channels).get(&id) {
            return Ok(c.clone());
        }
        let addr = self.peer_addr(id).await?;
        let ch = self.link(id, &addr)?;
        write(&self.channels).insert(id, ch.clone());
        Ok(ch)
    }

    /// After a failed call to `id`: look its peer address up again next time.
    pub fn failed(&self, id: u64) {
        self.forget(id);
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
            let ok = match self.peers.channel(self.to).await {
                Ok(ch) => RaftClient::new(ch)
                    .send(RaftBatch {
                        from: self.me,
                        messages: encoded,
                    })
                    .await
                    .is_ok(),
                Err(e) => {
                    tracing::debug!(to = self.to, error = %e, "no link to peer");
                    false
                }
            };
            if !ok {
                self.peers.failed(self.to);
            }
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
