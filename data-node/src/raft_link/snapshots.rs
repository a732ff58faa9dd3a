//! Snapshots between data nodes, as TiKV moves them: the Raft message names the state its
//! leader built (`group::snapshot::Descriptor`); the replica pulls it from that leader in
//! chunks over `StreamGroups.FetchSnapshot` (mutual TLS, data nodes only), checks it, and only
//! then steps the message, its data now the state itself, into its group. One pull per group
//! at a time: Raft sends the message again while one is under way, and those are dropped.
//! A pull that fails is logged; the leader sends another snapshot after a while.

use super::Peers;
use crate::group::snapshot::{self, Descriptor, CHUNK};
use crate::group::Groups;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use raft::prelude::Message;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::Status;
use tributary_common::sync::lock;
use tributary_proto::v1::{
    stream_groups_client::StreamGroupsClient, SnapshotChunk, SnapshotRequest,
};

/// How long a whole pull may take.
const PULL_TIMEOUT: Duration = Duration::from_secs(60);

/// The leader's answer: the payload in chunks of [`CHUNK`] bytes.
pub fn chunks(payload: Bytes) -> BoxStream<'static, Result<SnapshotChunk, Status>> {
    let n = payload.len().div_ceil(CHUNK);
    futures::stream::iter((0..n).map(move |i| {
        let end = ((i + 1) * CHUNK).min(payload.len());
        Ok(SnapshotChunk {
            data: payload.slice(i * CHUNK..end),
        })
    }))
    .boxed()
}

/// The replica's side: pulls under way, by group.
pub struct Pulls {
    groups: Groups,
    peers: Arc<Peers>,
    under_way: Mutex<HashSet<u64>>,
}

impl Pulls {
    pub fn new(groups: Groups, peers: Arc<Peers>) -> Arc<Pulls> {
        Arc::new(Pulls {
            groups,
            peers,
            under_way: Mutex::new(HashSet::new()),
        })
    }

    /// Pulls the state `m` names, then steps `m` carrying it (already checked by
    /// `raft_inputs::envelope`, its data a descriptor).
    pub fn pull(self: &Arc<Self>, group: u64, m: Message) {
        if !lock(&self.under_way).insert(group) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let from = m.from;
            match tokio::time::timeout(PULL_TIMEOUT, me.fetch(group, &m)).await {
                Ok(Ok(payload)) => {
                    tracing::info!(
                        group,
                        leader = from,
                        bytes = payload.len(),
                        "stream snapshot pulled"
                    );
                    let mut m = m;
                    m.mut_snapshot().set_data(payload);
                    me.groups.step(group, m);
                }
                Ok(Err(why)) => {
                    tracing::warn!(group, leader = from, error = %why, "stream snapshot not pulled")
                }
                Err(_) => tracing::warn!(
                    group,
                    leader = from,
                    "stream snapshot not pulled within {PULL_TIMEOUT:?}"
                ),
            }
            lock(&me.under_way).remove(&group);
        });
    }

    async fn fetch(&self, group: u64, m: &Message) -> Result<Bytes, String> {
        let d = Descriptor::decode(m.get_snapshot().get_data())?;
        if d.leader != m.from {
            return Err(format!(
                "snapshot on data node {} named in a message from {}",
                d.leader, m.from
            ));
        }
        let channel = self.peers.channel(d.leader).map_err(|e| e.to_string())?;
        let mut client = StreamGroupsClient::new(channel);
        let req = self.peers.request(
            SnapshotRequest {
                from_node: self.groups.node_id(),
                group,
                id: d.id,
            },
            0,
        );
        let mut chunks = client
            .fetch_snapshot(req)
            .await
            .map_err(|s| s.message().to_string())?
            .into_inner();
        let len = usize::try_from(d.len).map_err(|e| e.to_string())?;
        // What the leader announced, not more than a chunk's worth ahead of what arrives.
        let mut payload = Vec::with_capacity(len.min(CHUNK));
        while let Some(chunk) = chunks
            .message()
            .await
            .map_err(|s| s.message().to_string())?
        {
            if payload.len() + chunk.data.len() > len {
                return Err(format!("snapshot longer than the {len} bytes announced"));
            }
            payload.extend_from_slice(&chunk.data);
        }
        if payload.len() != len {
            return Err(format!(
                "snapshot of {} bytes, {len} announced",
                payload.len()
            ));
        }
        snapshot::check(&payload)?;
        Ok(payload.into())
    }
}
