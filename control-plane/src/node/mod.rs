//! A control-plane member: the handle services use (writes, current reads, membership) in
//! front of the one thread that drives raft-rs (`ready_loop`).

mod ready_loop;

use crate::catalog::Catalogue;
use crate::error::CatalogError;
use crate::liveness::Liveness;
use crate::network::{Faults, Peers, SendReport};
use crate::raft_store::RaftStore;
use prost::Message as _;
use raft::prelude::{ConfChange, ConfChangeType, Message};
use std::collections::HashMap;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use tonic::Status;
use tributary_common::grpc::not_leader;
use tributary_proto::v1::{raft_client::RaftClient, Command, ForwardRequest, WriteReply};

/// Raft timing and housekeeping.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: u64,
    pub tick: Duration,
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    /// Compact the log (and serve laggards a snapshot) past this many applied entries.
    pub snapshot_entries: u64,
    /// How long a request waits for a leader or for its write to apply.
    pub request_timeout: Duration,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerProgress {
    pub matched: u64,
    pub recent_active: bool,
}

/// What the Raft loop last reported about this member.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeState {
    pub role: String,
    pub term: u64,
    pub leader: u64,
    pub commit: u64,
    pub applied: u64,
    pub voters: Vec<u64>,
    /// The leader's view of each voter; empty on followers.
    pub progress: HashMap<u64, PeerProgress>,
}

pub enum Input {
    Raft(Box<Message>),
    Propose {
        cmd: Box<Command>,
        reply: oneshot::Sender<Result<WriteReply, CatalogError>>,
    },
    ConfChange {
        cc: ConfChange,
        reply: oneshot::Sender<Result<(), CatalogError>>,
    },
    ReadIndex {
        reply: oneshot::Sender<Result<(), CatalogError>>,
    },
    Report(SendReport),
    Stop,
}

use tributary_common::grpc::UNCERTAIN_HEADER as UNCERTAIN;

/// Handle on a running member; cheap to clone.
#[derive(Clone)]
pub struct Node {
    pub id: u64,
    inputs: std_mpsc::Sender<Input>,
    state: watch::Receiver<NodeState>,
    pub catalogue: Catalogue,
    pub peers: Peers,
    pub faults: Faults,
    pub liveness: Liveness,
    store: RaftStore,
    request_timeout: Duration,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Node {
    pub fn start(
        cfg: NodeConfig,
        store: RaftStore,
        catalogue: Catalogue,
        peers: Peers,
        faults: Faults,
        liveness: Liveness,
    ) -> Result<Self, CatalogError> {
        let (inputs, rx) = std_mpsc::channel();
        let (state_tx, state) = watch::channel(NodeState::default());
        let looper = ready_loop::Loop::new(
            &cfg,
            store.clone(),
            catalogue.clone(),
            peers.clone(),
            faults.clone(),
            inputs.clone(),
            rx,
            state_tx,
        )?;
        let thread = std::thread::Builder::new()
            .name(format!("raft-{}", cfg.id))
            .spawn(move || looper.run())
            .map_err(|e| CatalogError::Storage(format!("cannot start raft thread: {e}")))?;
        Ok(Self {
            id: cfg.id,
            inputs,
            state,
            catalogue,
            peers,
            faults,
            liveness,
            store,
            request_timeout: cfg.request_timeout,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    pub fn state(&self) -> NodeState {
        self.state.borrow().clone()
    }

    /// The first index still in the Raft log (grows as the log is compacted).
    pub fn log_first_index(&self) -> u64 {
        raft::Storage::first_index(&self.store).unwrap_or(0)
    }

    pub fn is_leader(&self) -> bool {
        self.state.borrow().leader == self.id
    }

    pub fn leader_addr(&self) -> Option<String> {
        let leader = self.state.borrow().leader;
        (leader != 0).then(|| self.peers.addr(leader)).flatten()
    }

    /// Hands a Raft message from a peer to the loop.
    pub fn step(&self, m: Message) {
        let _ = self.inputs.send(Input::Raft(Box::new(m)));
    }

    /// Stops the Raft thread and waits for it (the database closes when the last handle goes).
    pub fn stop(&self) {
        let _ = self.inputs.send(Input::Stop);
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }

    /// Waits until some member leads or the deadline passes; returns the leader id.
    pub async fn wait_leader(&self, deadline: Instant) -> Option<u64> {
        let mut rx = self.state.clone();
        loop {
            let leader = rx.borrow().leader;
            if leader != 0 {
                return Some(leader);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if tokio::time::timeout(left, rx.changed()).await.is_err() {
                return None;
            }
        }
    }

    /// Applies a catalogue change through the leader, from any member. Waits a bounded time
    /// for a leader; only retries when the write surely was not proposed.
    pub async fn write(&self, cmd: Command) -> Result<WriteReply, Status> {
        let deadline = Instant::now() + self.request_timeout;
        loop {
            let leader = self.state.borrow().leader;
            let attempt = if leader == self.id {
                self.propose_local(cmd.clone(), deadline).await
            } else if leader != 0 {
                self.forward(leader, &cmd).await
            } else {
                Err(not_leader(None))
            };
            match attempt {
                Err(s) if retryable(&s) && Instant::now() < deadline => {
                    let mut rx = self.state.clone();
                    let _ = tokio::time::timeout(Duration::from_millis(50), rx.changed()).await;
                }
                Err(s) if retryable(&s) => {
                    return Err(Status::unavailable(format!(
                        "no leader could take the write within {:?}: {}",
                        self.request_timeout,
                        s.message()
                    )))
                }
                other => return other,
            }
        }
    }

    /// Proposes on this member, which must lead.
    pub async fn propose_local(
        &self,
        mut cmd: Command,
        deadline: Instant,
    ) -> Result<WriteReply, Status> {
        if !self.is_leader() {
            return Err(not_leader(self.leader_addr().as_deref()));
        }
        cmd.live_nodes = self.liveness.live();
        let (reply, rx) = oneshot::channel();
        self.inputs
            .send(Input::Propose {
                cmd: Box::new(cmd),
                reply,
            })
            .map_err(|_| Status::unavailable("member is shutting down"))?;
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx).await {
            Ok(Ok(Ok(r))) => Ok(r),
            Ok(Ok(Err(CatalogError::Unavailable(_)))) => Err(not_leader(self.leader_addr().as_deref())),
            Ok(Ok(Err(e))) => Err(e.into()),
            Ok(Err(_)) | Err(_) => Err(uncertain("the write was proposed but not seen applied in time (leadership may have changed); check before retrying")),
        }
    }

    async fn forward(&self, leader: u64, cmd: &Command) -> Result<WriteReply, Status> {
        if self.faults.pass(self.id, leader).is_none() {
            return Err(not_leader(None));
        }
        let ch = self.peers.channel(leader).ok_or_else(|| not_leader(None))?;
        let req = ForwardRequest {
            command: cmd.encode_to_vec().into(),
        };
        match RaftClient::new(ch).forward(req).await {
            Ok(r) => Ok(r.into_inner()),
            // The leader never got it (cannot connect): safe to retry elsewhere.
            Err(s)
                if s.code() == tonic::Code::Unavailable
                    && s.metadata().get(UNCERTAIN).is_none() =>
            {
                Err(not_leader(None))
            }
            Err(s) => Err(s),
        }
    }

    /// Waits until this member has applied everything committed before now (ReadIndex), so
    /// a following local read is current.
    pub async fn read_index(&self) -> Result<(), Status> {
        let deadline = Instant::now() + self.request_timeout;
        loop {
            let (reply, rx) = oneshot::channel();
            self.inputs
                .send(Input::ReadIndex { reply })
                .map_err(|_| Status::unavailable("member is shutting down"))?;
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left.min(Duration::from_secs(1)), rx).await {
                Ok(Ok(Ok(()))) => return Ok(()),
                _ if Instant::now() >= deadline => {
                    return Err(Status::unavailable(
                        "no leader confirmed the read in time; retry",
                    ))
                }
                _ => {
                    let mut st = self.state.clone();
                    let _ = tokio::time::timeout(Duration::from_millis(50), st.changed()).await;
                }
            }
        }
    }

    /// Adds (`addr` = Some) or removes a voter; the leader refuses a change that would leave
    /// the new configuration without a reachable quorum.
    pub async fn change_member(&self, id: u64, addr: Option<String>) -> Result<(), Status> {
        if id == 0 {
            return Err(Status::invalid_argument(
                "invalid id: member ids start at 1",
            ));
        }
        let st = self.state();
        if st.leader != self.id {
            return Err(not_leader(self.leader_addr().as_deref()));
        }
        let mut new_voters: Vec<u64> = st.voters.clone();
        let mut cc = ConfChange {
            node_id: id,
            ..Default::default()
        };
        match &addr {
            Some(a) => {
                if st.voters.contains(&id) {
                    return Err(Status::already_exists(format!(
                        "member {id} already exists"
                    )));
                }
                crate::catalog::validate_endpoint("addr", a)?;
                cc.set_change_type(ConfChangeType::AddNode);
                cc.context = a.clone().into_bytes().into();
                new_voters.push(id);
            }
            None => {
                if !st.voters.contains(&id) {
                    return Err(Status::not_found(format!("member {id} not found")));
                }
                cc.set_change_type(ConfChangeType::RemoveNode);
                new_voters.retain(|v| *v != id);
            }
        }
        let reachable = new_voters
            .iter()
            .filter(|v| **v == self.id || self.peers.is_reachable(**v))
            .count();
        let quorum = new_voters.len() / 2 + 1;
        if new_voters.is_empty() || reachable < quorum {
            return Err(Status::failed_precondition(format!(
                "refused: the new configuration {new_voters:?} would have {reachable} reachable voter(s), fewer than its quorum of {quorum}"
            )));
        }
        let (reply, rx) = oneshot::channel();
        self.inputs
            .send(Input::ConfChange { cc, reply })
            .map_err(|_| Status::unavailable("member is shutting down"))?;
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(r)) => r.map_err(Status::from)?,
            _ => {
                return Err(uncertain(
                    "the membership change was proposed but not seen applied in time",
                ))
            }
        }
        // The reply is sent while applying; wait for the published state to show it too.
        let want_member = addr.is_some();
        let mut st = self.state.clone();
        let deadline = Instant::now() + Duration::from_secs(2);
        while st.borrow().voters.contains(&id) != want_member && Instant::now() < deadline {
            let _ = tokio::time::timeout(Duration::from_millis(100), st.changed()).await;
        }
        Ok(())
    }
}

fn uncertain(msg: &str) -> Status {
    let mut s = Status::unavailable(msg.to_string());
    s.metadata_mut()
        .insert(UNCERTAIN, tonic::metadata::MetadataValue::from_static("1"));
    s
}

/// Whether the request surely did not take effect and may go to another member.
fn retryable(s: &Status) -> bool {
    s.code() == tonic::Code::Unavailable && s.metadata().get(UNCERTAIN).is_none()
}
