//! Clients of a cluster's servers, and the catalogue and data calls tests make through them.

use super::{Cluster, INGEST_SECRET};
use crate::{streams, wait, wells};
use anyhow::{anyhow, Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tonic::transport::Channel;
use tonic::Code;
use tributary_proto::v1::{
    catalog_client::CatalogClient, cluster_client::ClusterClient, entity::Kind,
    streams_client::StreamsClient, DittoStatsReply, Entity, EntityKind, EntityRef, ListRequest,
    ShardInfo, Stream, StreamInfoReply, StreamMessage, WellEntry,
};

/// How long a catalogue write may keep meeting "no leader yet".
const CREATE: Duration = Duration::from_secs(30);

impl Cluster {
    fn channel(addr: &str) -> Result<Channel> {
        crate::tls::channel(addr)
    }

    pub fn catalog(&self, member: u64) -> Result<CatalogClient<Channel>> {
        Ok(CatalogClient::new(Self::channel(&self.cp_addr(member)?)?))
    }

    /// The catalogue of the first running member (a follower forwards writes).
    pub fn catalog_any(&self) -> Result<CatalogClient<Channel>> {
        let id = self
            .running_members()
            .first()
            .copied()
            .ok_or_else(|| anyhow!("cluster {}: no member is running", self.name))?;
        self.catalog(id)
    }

    /// The names of every entity of `kind`, as member `member` lists them.
    pub async fn names(&self, member: u64, kind: EntityKind) -> Result<Vec<String>> {
        let r = self
            .catalog(member)?
            .list(ListRequest {
                kind: kind as i32,
                namespace: String::new(),
            })
            .await?
            .into_inner();
        Ok(r.entities
            .iter()
            .map(tributary_control_plane::catalog::entity::name_of)
            .collect())
    }

    pub fn cluster(&self, member: u64) -> Result<ClusterClient<Channel>> {
        Ok(ClusterClient::new(Self::channel(&self.cp_addr(member)?)?))
    }

    pub fn streams(&self, node: u64) -> Result<StreamsClient<Channel>> {
        streams::client(&self.data_addr(node)?)
    }

    /// Creates an entity, retrying while the control plane has no leader.
    pub async fn create(&self, e: Entity) -> Result<()> {
        let c = self.catalog_any()?;
        let what = format!(
            "cluster {} to accept {:?}",
            self.name,
            e.kind.as_ref().map(kind_name)
        );
        // A retry after "unavailable" that finds the entity means the first attempt landed.
        let retried = AtomicBool::new(false);
        wait::until(&what, CREATE, || {
            let (mut c, e, retried) = (c.clone(), e.clone(), &retried);
            async move {
                match c.create(e).await {
                    Ok(_) => Some(Ok(())),
                    Err(s)
                        if s.code() == Code::AlreadyExists && retried.load(Ordering::Relaxed) =>
                    {
                        Some(Ok(()))
                    }
                    Err(s) if s.code() == Code::Unavailable => {
                        retried.store(true, Ordering::Relaxed);
                        None
                    }
                    Err(s) => Some(Err(anyhow::Error::from(s))),
                }
            }
        })
        .await?
    }

    pub async fn update(&self, e: Entity) -> Result<()> {
        self.catalog_any()?.update(e).await?;
        Ok(())
    }

    pub async fn delete(&self, kind: EntityKind, name: &str) -> Result<()> {
        self.catalog_any()?
            .delete(EntityRef {
                kind: kind as i32,
                name: name.to_string(),
            })
            .await?;
        Ok(())
    }

    /// Creates `s` on data node `owner` and waits until that node serves it.
    pub async fn create_stream(&self, mut s: Stream, owner: u64) -> Result<()> {
        s.owner_node = owner;
        let name = s.name.clone();
        self.create(Entity {
            kind: Some(Kind::Stream(s)),
        })
        .await
        .with_context(|| format!("creating stream {name}"))?;
        self.wait_stream_served(&name, owner).await
    }

    /// Replaces a stream's config (its sources, say).
    pub async fn update_stream(&self, s: Stream) -> Result<()> {
        self.update(Entity {
            kind: Some(Kind::Stream(s)),
        })
        .await
    }

    pub async fn delete_stream(&self, name: &str) -> Result<()> {
        self.delete(EntityKind::Stream, name).await
    }

    /// Publishes `n` messages `subject` / `prefix i` (i from 1) through data node `node`.
    pub async fn publish_n(&self, node: u64, subject: &str, prefix: &str, n: u64) -> Result<()> {
        streams::publish_n(&self.data_addr(node)?, subject, prefix, n).await
    }

    pub async fn info(&self, node: u64, stream: &str) -> Result<StreamInfoReply> {
        streams::info(&self.data_addr(node)?, stream).await
    }

    /// Waits until `check` holds for the stream's info on `node`; returns that info.
    pub async fn wait_info(
        &self,
        node: u64,
        stream: &str,
        what: &str,
        check: impl Fn(&StreamInfoReply) -> bool,
    ) -> Result<StreamInfoReply> {
        streams::wait_info(&self.data_addr(node)?, stream, what, check).await
    }

    /// Waits until the stream on `node` holds `n` messages and every mirror or source of it
    /// is caught up.
    pub async fn wait_caught_up(&self, node: u64, stream: &str, n: u64) -> Result<StreamInfoReply> {
        let what = format!("{n} messages, caught up");
        self.wait_info(node, stream, &what, |i| {
            streams::caught_up(i) && streams::count(i) == n
        })
        .await
    }

    pub async fn messages(&self, node: u64, stream: &str) -> Result<Vec<StreamMessage>> {
        streams::messages(&self.data_addr(node)?, stream).await
    }

    /// Ingests into data node `node` with the cluster's ingest secret.
    pub async fn ingest(&self, node: u64, entries: Vec<WellEntry>, per_batch: usize) -> Result<()> {
        wells::ingest(&self.data_addr(node)?, INGEST_SECRET, entries, per_batch).await
    }

    pub async fn query(&self, node: u64, well: &str) -> Result<Vec<WellEntry>> {
        wells::query(&self.data_addr(node)?, well).await
    }

    pub async fn shards(&self, node: u64, well: &str) -> Result<Vec<ShardInfo>> {
        wells::shards(&self.data_addr(node)?, well).await
    }

    pub async fn ditto_stats(&self, node: u64) -> Result<DittoStatsReply> {
        wells::ditto_stats(&self.data_addr(node)?).await
    }
}

fn kind_name(k: &Kind) -> String {
    match k {
        Kind::Well(w) => format!("well {}", w.name),
        Kind::Tag(t) => format!("tag {}", t.name),
        Kind::Target(t) => format!("target {}", t.name),
        Kind::Stream(s) => format!("stream {}", s.name),
        Kind::Policy(p) => format!("policy {}", p.name),
        Kind::Namespace(n) => format!("namespace {}", n.name),
        Kind::DataNode(n) => format!("data node {}", n.id),
    }
}
