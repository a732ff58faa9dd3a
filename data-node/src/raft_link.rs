//! The Raft messages of replicated streams between data nodes. Outbound: one task per peer
//! node sends whatever messages of all groups are waiting as one `StreamGroups.Send` batch
//! (one transport per node pair, as TiKV); a peer that is down loses its messages, which Raft
//! sends again. Inbound: only a data node of this cluster may call, as the node its
//! certificate names (`data-node-ID`; on an `insecure` cluster the cluster token, and the
//! batch's own word); every message is checked before Raft sees it.

use crate::gate::Gate;
use crate::group::{Groups, Outbound};
use crate::peers::Peers;
use protobuf::Message as _;
use raft::prelude::Message;
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
    GroupBatchReply, GroupMessage,
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
        let mut links: HashMap<u64, (mpsc::Sender<GroupMessage>, AbortOnDrop)> = HashMap::new();
        while let Some((to, group, msg)) = outbox.recv().await {
            let bytes = match msg.write_to_bytes() {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "raft message not encoded");
                    continue;
                }
            };
            let link = links.entry(to).or_insert_with(|| {
                let (tx, rx) = mpsc::channel(PEER_QUEUE);
                (tx, AbortOnDrop::spawn(send_to(me, to, peers.clone(), rx)))
            });
            if link
                .0
                .try_send(GroupMessage {
                    group,
                    message: bytes.into(),
                })
                .is_err()
            {
                metrics::counter!("tributary_dn_raft_messages_dropped_total").increment(1);
            }
        }
    })
}

async fn send_to(me: u64, to: u64, peers: Arc<Peers>, mut rx: mpsc::Receiver<GroupMessage>) {
    let mut failing = false;
    while let Some(first) = rx.recv().await {
        let mut messages = vec![first];
        while messages.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => messages.push(m),
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
}

#[tonic::async_trait]
impl StreamGroups for StreamGroupsService {
    async fn send(&self, req: Request<GroupBatch>) -> Result<Response<GroupBatchReply>, Status> {
        let caller = self.gate.caller(&req).await?;
        let from = req.get_ref().from_node;
        match caller {
            Caller::DataNode(Some(id)) if id == from => {}
            // The cluster token says "a node of this cluster", not which one.
            Caller::DataNode(None) => {}
            Caller::Anonymous => {
                return Err(Status::unauthenticated(
                    "StreamGroups.Send takes a data node's certificate of this cluster",
                ))
            }
            other => {
                return Err(Status::permission_denied(format!(
                    "StreamGroups.Send is for the data nodes of this cluster, each as itself: \
                     {} sent a batch as data node {from}",
                    other.describe()
                )))
            }
        }
        let me = self.groups.node_id();
        for gm in req.into_inner().messages {
            let m = match Message::parse_from_bytes(&gm.message) {
                Ok(m) => m,
                Err(e) => {
                    Refused::new("decode", format!("not a raft message: {e}")).record(from);
                    continue;
                }
            };
            let no_snapshots = |_: &[u8]| Err("stream groups take no snapshots yet".to_string());
            if let Err(r) = envelope_with_transfer(me, from, &m, no_snapshots) {
                r.record(from);
                continue;
            }
            self.groups.step(gm.group, m);
        }
        Ok(Response::new(GroupBatchReply {}))
    }
}
