//! Requests only the leader may answer, from any member: a follower sends them on to the
//! leader, and the leader's answer comes back as a typed error (`CatalogError::from_status`).

use super::Node;
use crate::error::CatalogError;
use prost::Message as _;
use std::time::{Duration, Instant};
use tributary_common::trace_context::TracedChannel;
use tributary_proto::v1::cluster_client::ClusterClient;
use tributary_proto::v1::{raft_client::RaftClient, Command, ForwardRequest, WriteReply};

/// How long a request that must reach the leader waits for one to be elected.
const LEADER_WAIT: Duration = Duration::from_secs(5);

/// Who answers a request that only the leader may answer.
pub(crate) enum Leader {
    /// This member leads.
    Me,
    /// Another member leads: its Cluster service.
    Other(ClusterClient<TracedChannel>),
}

impl Node {
    /// The leader, waiting a bounded time for one to be elected.
    pub(crate) async fn leader(&self) -> Result<Leader, CatalogError> {
        let leader =
            self.wait_leader(Instant::now() + LEADER_WAIT)
                .await
                .ok_or(CatalogError::NoLeader {
                    action: "was elected",
                    waited: LEADER_WAIT,
                    cause: "no member won an election".into(),
                })?;
        if leader == self.id {
            return Ok(Leader::Me);
        }
        let ch = self
            .peers
            .channel(leader)
            .await
            .map_err(|e| no_link(leader, e))?;
        Ok(Leader::Other(ClusterClient::new(ch)))
    }

    /// Sends a write to the leader's `Raft.Forward`, within `deadline`: a leader that the
    /// network cut off from here answers nothing, and the caller hears so when the request
    /// timeout is up rather than when the connection gives up.
    pub(super) async fn forward(
        &self,
        leader: u64,
        cmd: &Command,
        deadline: Instant,
    ) -> Result<WriteReply, CatalogError> {
        let left = || deadline.saturating_duration_since(Instant::now());
        let ch = tokio::time::timeout(left(), self.peers.channel(leader))
            .await
            .map_err(|_| no_link(leader, "its address was not found in time".into()))?
            .map_err(|e| no_link(leader, e))?;
        let now_ms = u64::try_from(tributary_common::time::now_ns() / 1_000_000).unwrap_or(0);
        let left_ms = u64::try_from(left().as_millis()).unwrap_or(u64::MAX);
        let req = tonic::Request::new(ForwardRequest {
            command: cmd.encode_to_vec().into(),
            expires_unix_ms: now_ms.saturating_add(left_ms),
        });
        if left().is_zero() {
            return Err(no_link(leader, "no time left to send the write".into()));
        }
        // No `grpc-timeout` on the call: tonic's client would end it with a bare "Timeout
        // expired" (CANCELLED) just before the answer below; the leader has the expiry.
        match tokio::time::timeout(left(), RaftClient::new(ch).forward(req)).await {
            Ok(r) => relayed(r),
            Err(_) => {
                self.peers.failed(leader);
                Err(CatalogError::Uncertain(format!(
                    "the write went to leader {leader}, which did not answer within the request timeout ({:?}); it may still apply: check before retrying",
                    self.request_timeout
                )))
            }
        }
    }
}

/// The reply of a call to another member, its error typed again.
pub(super) fn relayed<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Result<T, CatalogError> {
    r.map(tonic::Response::into_inner)
        .map_err(CatalogError::from_status)
}

fn no_link(leader: u64, why: String) -> CatalogError {
    CatalogError::Unavailable(format!("no link to leader {leader}: {why}"))
}
