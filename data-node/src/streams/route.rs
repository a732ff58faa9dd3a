//! Where a stream's call is served. A stream of one replica: here, if this node owns it (as
//! before). A replicated stream: on its group's leader — this node when it leads, else the
//! call is forwarded (after this node authorized it) to the leader, or from a node holding no
//! replica to one that does. Writes on the leader go through the group's log.

use super::service::StreamsService;
use crate::error::{Error, Result};
use crate::group::op::{Op, Outcome};
use crate::peers::MAX_FORWARDS;
use crate::storage::streams::{PubResult, StreamResult, StreamStore};
use std::sync::Arc;
use std::time::Duration;
use tributary_common::trace_context::TracedChannel;
use tributary_proto::v1::{
    streams_client::StreamsClient, ClusterInfo, ClusterReplica, PubAck, PublishBatch,
    PublishRequest, SubscribeEvent,
};

/// How long a call waits for a replicated stream to have a leader (an election takes 0.5–1 s
/// with the default timing).
const LEADER_WAIT: Duration = Duration::from_secs(3);

pub enum Route {
    /// A stream of one replica, owned here.
    Local(Arc<StreamStore>),
    /// A replicated stream led here: its group id.
    Leader(Arc<StreamStore>, u64),
    /// Served by another data node.
    Forward(u64),
}

/// "node-ID", as reports name data nodes.
pub fn node_name(id: u64) -> String {
    format!("node-{id}")
}

impl StreamsService {
    /// Where calls to stream `name` (canonical) go; `forwards`: how often this call was
    /// forwarded already.
    pub(super) async fn route(&self, name: &str, forwards: u32) -> Result<Route> {
        let Some((group, replicas)) = self.node.replicated(name) else {
            return Ok(Route::Local(self.node.owned_stream("stream", name)?));
        };
        let me = self.node.id;
        let forward = |to: u64| {
            if forwards >= MAX_FORWARDS {
                return Err(Error::Unavailable(format!(
                    "stream {name}: forwarded {forwards} times already and data node {to} \
                     still not reached; retry once its leader is settled"
                )));
            }
            Ok(Route::Forward(to))
        };
        if !replicas.contains(&me) {
            // Any replica forwards to the leader; one at random gets a retry past one down.
            let to = replicas
                .get(rand::random::<u64>() as usize % replicas.len().max(1))
                .copied()
                .unwrap_or_default();
            return forward(to);
        }
        let store = self.node.owned_stream("stream", name)?;
        let groups = self.node.groups().ok_or_else(|| {
            Error::Unavailable("the replication of this data node is not started".into())
        })?;
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            match groups.leader(group) {
                Some(l) if l == me => return Ok(Route::Leader(store, group)),
                Some(l) => return forward(l),
                None if tokio::time::Instant::now() >= deadline => {
                    return Err(Error::Unavailable(format!(
                        "stream {name} has no leader (no quorum of its replicas {replicas:?} \
                         reachable within {LEADER_WAIT:?}); retry"
                    )))
                }
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// A subscription served by this node as the group's leader, for as long as it leads: a
    /// replica that no longer leads receives no more, so its subscriber is told to subscribe
    /// again (through whichever node leads now) rather than wait on a copy that stopped.
    /// `stored_form`: the messages go out as stored (see `subscribe::stored_form`).
    pub(super) fn while_leading(
        &self,
        name: &str,
        group: u64,
        tail: crate::storage::streams::tail::Tail,
        stored_form: bool,
    ) -> futures::stream::BoxStream<'static, Result<SubscribeEvent, tonic::Status>> {
        use futures::StreamExt;
        let groups = self.node.groups().cloned();
        let (me, name) = (self.node.id, name.to_string());
        Box::pin(
            tail.map(move |r| {
                if groups.as_ref().and_then(|g| g.leader(group)) != Some(me) {
                    return Err(tonic::Status::unavailable(format!(
                        "data node {me} no longer leads stream {name}: subscribe again"
                    )));
                }
                r.map_err(|e| tonic::Status::from(Error::from(e)))
                    .and_then(|ev| super::subscribe::event_to_proto(ev, stored_form))
            })
            .scan(false, |ended, ev| {
                let out = (!*ended).then_some(ev);
                *ended = out.as_ref().is_some_and(Result::is_err);
                futures::future::ready(out)
            }),
        )
    }

    /// A subscription opened on data node `to` (the leader, or a replica that forwards).
    pub(super) async fn forwarded_subscribe(
        &self,
        to: u64,
        req: tributary_proto::v1::SubscribeRequest,
        forwards: u32,
    ) -> Result<
        futures::stream::BoxStream<'static, Result<SubscribeEvent, tonic::Status>>,
        tonic::Status,
    > {
        use futures::StreamExt;
        let events = self
            .peer(to)?
            .subscribe(self.peers.request(req, forwards + 1))
            .await?
            .into_inner();
        Ok(events.boxed())
    }

    /// A Streams client of data node `to`.
    pub(super) fn peer(&self, to: u64) -> Result<StreamsClient<TracedChannel>> {
        Ok(StreamsClient::new(self.peers.channel(to)?)
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20))
    }

    /// Proposes `op` to the group this node leads; resolves once applied here.
    pub(super) async fn propose(&self, group: u64, op: Op) -> Result<Outcome> {
        let groups = self
            .node
            .groups()
            .ok_or_else(|| Error::Unavailable("replication is not started".into()))?;
        Ok(groups.propose(group, op).await?)
    }

    /// Publishes through the leader's group: one log entry for the whole run.
    pub(super) async fn publish_replicated(
        &self,
        group: u64,
        msgs: Vec<(crate::storage::NewMessage, Option<u64>)>,
    ) -> Result<Vec<StreamResult<PubResult>>> {
        match self.propose(group, Op::Publish(msgs)).await? {
            Outcome::Published(results) => Ok(results),
            _ => Err(Error::Unavailable("unexpected outcome of a publish".into())),
        }
    }

    /// Hands the group's leadership to its most current other replica; waits until one
    /// leads and returns which.
    pub(super) async fn step_down_group(&self, name: &str, group: u64) -> Result<u64> {
        let groups = self
            .node
            .groups()
            .ok_or_else(|| Error::Unavailable("replication is not started".into()))?;
        let target = groups.transfer_leader(group).await?;
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        while tokio::time::Instant::now() < deadline {
            match groups.leader(group) {
                Some(l) if l != self.node.id => return Ok(l),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        Err(Error::Unavailable(format!(
            "stream {name}: data node {target} was asked to lead but has not within {LEADER_WAIT:?}"
        )))
    }

    /// Forwards a run of publishes to data node `to` as one `PublishStream` frame; an ack
    /// per request, in order, an error ack for each it could not get.
    pub(super) async fn forward_publishes(
        &self,
        to: u64,
        reqs: Vec<PublishRequest>,
        forwards: u32,
    ) -> Vec<PubAck> {
        let ids: Vec<u64> = reqs.iter().map(|r| r.id).collect();
        let n = reqs.len();
        let got = async {
            let mut client = self.peer(to)?;
            let frames = tokio_stream::iter(vec![PublishBatch { messages: reqs }]);
            let mut acks = client
                .publish_stream(self.peers.request(frames, forwards + 1))
                .await
                .map_err(|s| Error::Unavailable(s.message().to_string()))?
                .into_inner();
            let mut out = Vec::with_capacity(n);
            while out.len() < n {
                match acks.message().await {
                    Ok(Some(b)) => out.extend(b.acks),
                    Ok(None) => break,
                    Err(s) => return Err(Error::Unavailable(s.message().to_string())),
                }
            }
            Ok::<_, Error>(out)
        }
        .await;
        let (mut out, why) = match got {
            Ok(acks) => (
                acks,
                format!("data node {to} answered fewer acks than publishes"),
            ),
            Err(e) => (Vec::new(), format!("forwarding to data node {to}: {e}")),
        };
        out.truncate(n);
        while out.len() < n {
            out.push(PubAck {
                error: why.clone(),
                ..Default::default()
            });
        }
        for (a, id) in out.iter_mut().zip(ids) {
            a.id = id;
        }
        out
    }

    /// The Cluster Information `Info` shows: the group's leader and its view of the others.
    pub(super) async fn cluster_info(&self, route: &Route) -> Option<ClusterInfo> {
        match route {
            Route::Local(_) => Some(ClusterInfo {
                leader: node_name(self.node.id),
                ..Default::default()
            }),
            Route::Leader(_, group) => {
                let st = self.node.groups()?.status(*group).await?;
                Some(ClusterInfo {
                    leader: node_name(st.leader),
                    leader_since_ns: st
                        .leader_since
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .and_then(|d| i64::try_from(d.as_nanos()).ok())
                        .unwrap_or(0),
                    term: st.term,
                    replicas: st
                        .replicas
                        .into_iter()
                        .map(|r| ClusterReplica {
                            name: node_name(r.node),
                            current: r.current,
                            offline: r.offline,
                            active_ms: r.active.map_or(u64::MAX, |a| {
                                u64::try_from(a.as_millis()).unwrap_or(u64::MAX - 1)
                            }),
                            lag: r.lag,
                        })
                        .collect(),
                })
            }
            Route::Forward(_) => None,
        }
    }
}
