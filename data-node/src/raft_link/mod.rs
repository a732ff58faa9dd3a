//! The Raft messages of replicated streams between data nodes. Outbound: one task per peer
//! node sends whatever messages of all groups are waiting as one `StreamGroups.Send` batch
//! (one transport per node pair, as TiKV); a peer that is down loses its messages, which Raft
//! sends again. Inbound: only a data node of this cluster may call, as the node its
//! certificate names (`data-node-ID`; on an `insecure` cluster the cluster token, and the
//! batch's own word); every message is checked before Raft sees it. A snapshot message names
//! the state its leader built; it reaches Raft once that state is pulled ([`snapshots`]).

mod snapshots;

use crate::gate::Gate;
use crate::group::snapshot::Descriptor;
use crate::group::{Groups, Outbound};
use crate::peers::Peers;
use futures::stream::BoxStream;
use protobuf::Message as _;
use raft::prelude::{Message, MessageType};
pub use snapshots::Pulls;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};
use tributary_common::access::Caller;
use tributary_common::raft_inputs::{envelope_with_transfer, Refused};
use tributary_common::task::AbortOnDrop;
use tributary_proto::v1::{
    stream_groups_client::StreamGroupsClient, stream_groups_server::StreamGroups, GroupBatch,
    GroupBatchReply, GroupMessage, SnapshotChunk, SnapshotRequest,
};

/// Messages queued for one peer before new ones are dropped (Raft sends them again).
const PEER_QUEUE: usize = 65_536;
/// Most messages in one batch.
const BATCH: usize = 4096;
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Routes the ready loop's messages to one sending task per peer node.
pub fn spawn_outbound(
    me: u64,
    peers: Arc<Peers>,
    mut outbox: mpsc::UnboundedReceiver<Outbound>,
) -> AbortOnDrop {
    AbortOnDrop::spawn(async move {
        let mut links: HashMap<u64, (mpsc::Sender<Option<GroupMessage>>, AbortOnDrop)> =
            HashMap::new();
        while let Some(out) = outbox.recv().await {
            let (to, message) = match out {
                Outbound::Raft { to, group, msg } => match msg.write_to_bytes() {
                    Ok(b) => (
                        to,
                        Some(GroupMessage {
                            group,
                            message: b.into(),
                        }),
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "raft message not encoded");
                        continue;
                    }
                },
                Outbound::Alive { to } => (to, None),
            };
            let link = links.entry(to).or_insert_with(|| {
                let (tx, rx) = mpsc::channel(PEER_QUEUE);
                (tx, AbortOnDrop::spawn(send_to(me, to, peers.clone(), rx)))
            });
            if link.0.try_send(message).is_err() {
                metrics::counter!("tributary_dn_raft_messages_dropped_total").increment(1);
            }
        }
    })
}

/// Sends what waits for `to` as one batch at a time; `None` asks only that a batch go (an
/// empty one says this node is up).
async fn send_to(
    me: u64,
    to: u64,
    peers: Arc<Peers>,
    mut rx: mpsc::Receiver<Option<GroupMessage>>,
) {
    let mut failing = false;
    while let Some(first) = rx.recv().await {
        let mut messages: Vec<GroupMessage> = first.into_iter().collect();
        while messages.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => messages.extend(m),
                Err(_) => break,
            }
        }
        let n = messages.len();
        let sent = async {
            let mut client = StreamGroupsClient::new(peers.channel(to).map_err(Status::from)?)
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(256 << 20);
            let mut req = peers.request(
                GroupBatch {
                    from_node: me,
                    messages,
                },
                0,
            );
            req.set_timeout(CALL_TIMEOUT);
            client.send(req).await
        }
        .await;
        match sent {
            Ok(_) => {
                metrics::counter!("tributary_dn_raft_messages_sent_total").increment(n as u64);
                if failing {
                    tracing::info!(peer = to, "raft link to data node up again");
                }
                failing = false;
            }
            Err(status) => {
                metrics::counter!("tributary_dn_raft_messages_dropped_total").increment(n as u64);
                if !failing {
                    tracing::warn!(peer = to, %status, "raft link to data node down; its messages are dropped until it answers");
                }
                failing = true;
            }
        }
    }
}

/// `StreamGroups`: the inbound side.
pub struct StreamGroupsService {
    pub groups: Groups,
    pub gate: Arc<Gate>,
    /// Snapshots being pulled from leaders for this node's replicas.
    pub pulls: Arc<Pulls>,
}

impl StreamGroupsService {
    pub fn new(groups: Groups, gate: Arc<Gate>, peers: Arc<Peers>) -> Self {
        let pulls = Pulls::new(groups.clone(), peers);
        StreamGroupsService {
            groups,
            gate,
            pulls,
        }
    }

    /// Only a data node of this cluster may call, as itself (`from` is the node it says).
    async fn node_only<T>(&self, req: &Request<T>, rpc: &str, from: u64) -> Result<(), Status> {
        match self.gate.caller(req).await? {
            Caller::DataNode(Some(id)) if id == from => Ok(()),
            // The cluster token says "a node of this cluster", not which one.
            Caller::DataNode(None) => Ok(()),
            Caller::Anonymous => Err(Status::unauthenticated(format!(
                "{rpc} takes a data node's certificate of this cluster"
            ))),
            other => Err(Status::permission_denied(format!(
                "{rpc} is for the data nodes of this cluster, each as itself: \
                 {} called as data node {from}",
                other.describe()
            ))),
        }
    }
}

#[tonic::async_trait]
impl StreamGroups for StreamGroupsService {
    async fn send(&self, req: Request<GroupBatch>) -> Result<Response<GroupBatchReply>, Status> {
        let from = req.get_ref().from_node;
        self.node_only(&req, "StreamGroups.Send", from).await?;
        // Any batch, an empty one too, says its node is up (hibernating groups rely on it).
        self.groups.peer_heard(from);
        let me = self.groups.node_id();
        for gm in req.into_inner().messages {
            let m = match Message::parse_from_bytes(&gm.message) {
                Ok(m) => m,
                Err(e) => {
                    Refused::new("decode", format!("not a raft message: {e}")).record(from);
                    continue;
                }
            };
            let descriptor = |d: &[u8]| Descriptor::decode(d).map(|_| ());
            if let Err(r) = envelope_with_transfer(me, from, &m, descriptor) {
                r.record(from);
                continue;
            }
            if m.get_msg_type() == MessageType::MsgSnapshot {
                // Raft sees it once the state it names is here.
                self.pulls.pull(gm.group, m);
                continue;
            }
            self.groups.step(gm.group, m);
        }
        Ok(Response::new(GroupBatchReply {}))
    }

    type FetchSnapshotStream = BoxStream<'static, Result<SnapshotChunk, Status>>;

    async fn fetch_snapshot(
        &self,
        req: Request<SnapshotRequest>,
    ) -> Result<Response<Self::FetchSnapshotStream>, Status> {
        let from = req.get_ref().from_node;
        self.node_only(&req, "StreamGroups.FetchSnapshot", from)
            .await?;
        let SnapshotRequest { group, id, .. } = req.into_inner();
        let payload = self.groups.shelf().fetch(group, id).ok_or_else(|| {
            Status::not_found(format!(
                "snapshot {id} of group {group} is not held here (replaced by a newer one or \
                 dropped after {:?}); the leader sends another",
                crate::group::snapshot::KEEP
            ))
        })?;
        Ok(Response::new(snapshots::chunks(payload)))
    }
}
