//! What tests of replicated streams ask a cluster: who leads a stream, its catalogue entity,
//! and each in-process data node's replica of it.

use super::Cluster;
use crate::wait;
use anyhow::{anyhow, bail, Result};
use std::sync::Arc;
use tributary_data_node::storage::streams::{RawMessage, StreamStore};
use tributary_proto::v1::{entity::Kind, EntityKind, EntityRef, Stream, StreamInfoReply};

impl Cluster {
    /// The data node leading replicated `stream`, once data node `ask` names one outside
    /// `not` (say, a node just killed).
    pub async fn wait_leader_of(&self, ask: u64, stream: &str, not: &[u64]) -> Result<u64> {
        let named = |i: &StreamInfoReply| {
            let cl = i.cluster.as_ref()?;
            cl.leader.strip_prefix("node-")?.parse::<u64>().ok()
        };
        let what = format!("a leader of {stream} other than {not:?}");
        let i = self
            .wait_info(ask, stream, &what, |i| {
                named(i).is_some_and(|l| !not.contains(&l))
            })
            .await?;
        named(&i).ok_or_else(|| anyhow!("no leader named for {stream}"))
    }

    /// The stream's entity as the catalogue holds it (its placement, group id, replicas).
    pub async fn stream_entity(&self, stream: &str) -> Result<Stream> {
        let e = self
            .catalog_any()?
            .get(EntityRef {
                kind: EntityKind::Stream as i32,
                name: stream.into(),
            })
            .await?
            .into_inner()
            .entity;
        match e.and_then(|e| e.kind) {
            Some(Kind::Stream(s)) => Ok(s),
            other => bail!("{stream} is no stream in the catalogue: {other:?}"),
        }
    }

    /// In-process data node `k`'s replica of `stream`.
    pub fn replica(&self, k: u64, stream: &str) -> Result<Arc<StreamStore>> {
        self.data_node(k)?
            .node
            .stream(stream)
            .ok_or_else(|| anyhow!("data node {k} holds no replica of {stream}"))
    }

    /// Every message of data node `k`'s replica of `stream`, once its last seq is `last`.
    pub async fn replica_at(&self, k: u64, stream: &str, last: u64) -> Result<Vec<RawMessage>> {
        let s = self.replica(k, stream)?;
        wait::until(
            &format!("data node {k}'s {stream} at seq {last}"),
            wait::WAIT,
            || async { (s.state().last_seq == last).then_some(()) },
        )
        .await?;
        Ok(s.read(1, "", usize::MAX)?.0)
    }
}
