//! A cluster for stream tests and benchmarks: a 1-member control plane and `n` data nodes in
//! this process on 127.0.0.1, with data nodes that can be stopped and started again on the
//! same storage.

use crate::wait;
use anyhow::{anyhow, Context, Result};
use std::collections::BTreeMap;
use std::time::Duration;
use tempfile::TempDir;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tributary_control_plane::{ControlPlaneConfig, RunningControlPlane};
use tributary_data_node::{DataNodeConfig, RunningDataNode};
use tributary_proto::v1::{
    catalog_client::CatalogClient, entity::Kind, streams_client::StreamsClient, Entity, EntityKind,
    EntityRef, PublishRequest, Stream, StreamInfoReply, StreamInfoRequest, StreamMessage,
    SubscribeRequest,
};

/// A file-stored stream taking `subjects` (none: only copies, for a mirror or sources).
pub fn file_stream(name: &str, subjects: &[&str]) -> Stream {
    Stream {
        name: name.into(),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        storage: tributary_proto::v1::StorageType::File as i32,
        ..Default::default()
    }
}

/// Messages a stream holds.
pub fn count(i: &StreamInfoReply) -> u64 {
    i.state.as_ref().map_or(0, |s| s.messages)
}

/// Every mirror or source of the stream is active, error-free and at lag 0.
pub fn caught_up(i: &StreamInfoReply) -> bool {
    !i.replication.is_empty()
        && i.replication
            .iter()
            .all(|r| r.lag == 0 && r.error.is_empty() && r.active_ms != u64::MAX)
}

/// Changes a data node's config before it starts (every start, restarts included).
pub type Tune = Box<dyn Fn(&mut DataNodeConfig) + Send + Sync>;

pub struct StreamCluster {
    pub cp: RunningControlPlane,
    pub cp_addr: String,
    pub nodes: BTreeMap<u64, RunningDataNode>,
    dirs: BTreeMap<u64, TempDir>,
    tune: Tune,
    _cp_dir: TempDir,
}

pub fn node_config(id: u64, dir: &std::path::Path, cp: &str) -> DataNodeConfig {
    DataNodeConfig {
        id,
        listen: "127.0.0.1:0".into(),
        data_dir: dir.to_path_buf(),
        admin_listen: String::new(),
        control_plane: cp.into(),
        heartbeat_interval_ms: 200,
        ..Default::default()
    }
}

impl StreamCluster {
    pub async fn start(nodes: u64) -> Result<Self> {
        Self::start_with(nodes, Box::new(|_| {})).await
    }

    /// As [`StreamCluster::start`], with every data node's config changed by `tune` (stream
    /// secrets, say). `create` waits through `Info`, which sends no secret: a cluster whose
    /// nodes require one creates its streams through [`StreamCluster::catalog`].
    pub async fn start_with(nodes: u64, tune: Tune) -> Result<Self> {
        let cp_dir = tempfile::tempdir()?;
        let cp = tributary_control_plane::start(ControlPlaneConfig {
            listen: "127.0.0.1:0".into(),
            data_dir: cp_dir.path().to_path_buf(),
            admin_listen: String::new(),
            ..Default::default()
        })
        .await?;
        let cp_addr = cp.addr.to_string();
        let mut c = StreamCluster {
            cp,
            cp_addr,
            nodes: BTreeMap::new(),
            dirs: BTreeMap::new(),
            tune,
            _cp_dir: cp_dir,
        };
        for id in 1..=nodes {
            c.dirs.insert(id, tempfile::tempdir()?);
            c.start_node(id).await?;
        }
        Ok(c)
    }

    /// Starts data node `id` (again) on its storage, on a fresh port, and waits until the
    /// control plane knows its address.
    pub async fn start_node(&mut self, id: u64) -> Result<()> {
        let dir = self.dirs.get(&id).ok_or_else(|| anyhow!("no node {id}"))?;
        let mut config = node_config(id, dir.path(), &self.cp_addr);
        (self.tune)(&mut config);
        let dn = tributary_data_node::start(config).await?;
        let addr = dn.addr.to_string();
        self.nodes.insert(id, dn);
        let cat = self.catalog()?;
        wait::until("data node registration", Duration::from_secs(10), || {
            let r = EntityRef {
                kind: EntityKind::DataNode as i32,
                name: id.to_string(),
            };
            let mut cat = cat.clone();
            let addr = addr.clone();
            async move {
                match cat.get(r).await.ok()?.into_inner().entity?.kind? {
                    Kind::DataNode(n) if n.addr == addr => Some(()),
                    _ => None,
                }
            }
        })
        .await?;
        Ok(())
    }

    pub async fn stop_node(&mut self, id: u64) {
        if let Some(dn) = self.nodes.remove(&id) {
            dn.shutdown().await;
        }
    }

    pub fn catalog(&self) -> Result<CatalogClient<Channel>> {
        Ok(CatalogClient::new(tributary_common::grpc::channel(
            &self.cp_addr,
        )?))
    }

    pub fn streams(&self, node: u64) -> Result<StreamsClient<Channel>> {
        let dn = self
            .nodes
            .get(&node)
            .ok_or_else(|| anyhow!("data node {node} is not running"))?;
        Ok(StreamsClient::new(tributary_common::grpc::channel(
            &dn.addr.to_string(),
        )?))
    }

    /// Creates `s` on node `owner` and waits until that node serves it.
    pub async fn create(&self, mut s: Stream, owner: u64) -> Result<()> {
        s.owner_node = owner;
        let name = s.name.clone();
        self.catalog()?
            .create(Entity {
                kind: Some(Kind::Stream(s)),
            })
            .await
            .with_context(|| format!("creating stream {name}"))?;
        self.wait_served(&name, owner).await
    }

    /// Replaces the stream's config (e.g. its sources).
    pub async fn update(&self, s: Stream) -> Result<()> {
        self.catalog()?
            .update(Entity {
                kind: Some(Kind::Stream(s)),
            })
            .await?;
        Ok(())
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        self.catalog()?
            .delete(EntityRef {
                kind: EntityKind::Stream as i32,
                name: name.to_string(),
            })
            .await?;
        Ok(())
    }

    pub async fn wait_served(&self, name: &str, node: u64) -> Result<()> {
        let c = self.streams(node)?;
        wait::until(
            &format!("node {node} serving {name}"),
            Duration::from_secs(10),
            || {
                let mut c = c.clone();
                let r = StreamInfoRequest {
                    stream: name.to_string(),
                };
                async move { c.info(r).await.ok().map(|_| ()) }
            },
        )
        .await?;
        Ok(())
    }

    pub fn addr(&self, node: u64) -> Result<String> {
        Ok(self
            .nodes
            .get(&node)
            .ok_or_else(|| anyhow!("data node {node} is not running"))?
            .addr
            .to_string())
    }

    /// Publishes `n` messages `subject` / `prefix i` (i from 1) through node `node`.
    pub async fn publish_n(&self, node: u64, subject: &str, prefix: &str, n: u64) -> Result<()> {
        publish_n(&self.addr(node)?, subject, prefix, n).await
    }

    pub async fn info(&self, node: u64, stream: &str) -> Result<StreamInfoReply> {
        info(&self.addr(node)?, stream).await
    }

    pub async fn wait_info(
        &self,
        node: u64,
        stream: &str,
        what: &str,
        check: impl Fn(&StreamInfoReply) -> bool,
    ) -> Result<StreamInfoReply> {
        wait_info(&self.addr(node)?, stream, what, check).await
    }

    pub async fn messages(&self, node: u64, stream: &str) -> Result<Vec<StreamMessage>> {
        messages(&self.addr(node)?, stream).await
    }
}

fn client(addr: &str) -> Result<StreamsClient<Channel>> {
    Ok(StreamsClient::new(tributary_common::grpc::channel(addr)?)
        .max_decoding_message_size(256 << 20))
}

/// Publishes `n` messages `subject` / `prefix i` (i from 1), pipelined, to the node at `addr`.
pub async fn publish_n(addr: &str, subject: &str, prefix: &str, n: u64) -> Result<()> {
    let mut c = client(addr)?;
    let reqs: Vec<PublishRequest> = (1..=n)
        .map(|i| PublishRequest {
            subject: subject.to_string(),
            data: format!("{prefix} {i}").into_bytes().into(),
            id: i,
            ..Default::default()
        })
        .collect();
    let mut acks = tributary_common::publish::pipelined(&mut c, tokio_stream::iter(reqs)).await?;
    let mut got = 0;
    while let Some(a) = acks.next().await {
        let a = a?;
        if !a.error.is_empty() {
            return Err(anyhow!("publish {}: {}", a.id, a.error));
        }
        got += 1;
    }
    if got != n {
        return Err(anyhow!("{got} acks for {n} publishes"));
    }
    Ok(())
}

pub async fn info(addr: &str, stream: &str) -> Result<StreamInfoReply> {
    Ok(client(addr)?
        .info(StreamInfoRequest {
            stream: stream.to_string(),
        })
        .await?
        .into_inner())
}

/// Waits until `check` holds for the stream's info; returns that info.
pub async fn wait_info(
    addr: &str,
    stream: &str,
    what: &str,
    check: impl Fn(&StreamInfoReply) -> bool,
) -> Result<StreamInfoReply> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let last = info(addr, stream).await;
        if let Ok(i) = &last {
            if check(i) {
                return Ok(i.clone());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            let shown = last.map(|i| (i.state, i.replication));
            return Err(anyhow!(
                "timed out waiting for {stream} at {addr}: {what}; last: {shown:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every stored message of a stream, in seq order.
pub async fn messages(addr: &str, stream: &str) -> Result<Vec<StreamMessage>> {
    let last = info(addr, stream).await?.state.map_or(0, |s| s.last_seq);
    let mut out = Vec::new();
    if last == 0 {
        return Ok(out);
    }
    let mut sub = client(addr)?
        .subscribe(SubscribeRequest {
            stream: stream.to_string(),
            start_seq: 1,
            batch: 4096,
            ..Default::default()
        })
        .await?
        .into_inner();
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(5), sub.next()).await? {
        let ev = ev?;
        out.extend(ev.messages);
        if ev.next_seq > last {
            break;
        }
    }
    Ok(out)
}
