//! An in-process control-plane cluster.

use crate::wait;
use anyhow::{anyhow, Result};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tempfile::TempDir;
use tonic::transport::Channel;
use tributary_control_plane::{ControlPlaneConfig, Faults, RunningControlPlane};
use tributary_proto::v1::catalog_client::CatalogClient;
use tributary_proto::v1::cluster_client::ClusterClient;

pub struct CpCluster {
    pub dir: TempDir,
    pub faults: Faults,
    pub addrs: BTreeMap<u64, SocketAddr>,
    pub members: BTreeMap<u64, RunningControlPlane>,
    base: ControlPlaneConfig,
    peers: String,
}

impl CpCluster {
    /// `n` voters; `tune` adjusts the config every member starts with.
    pub async fn start(n: u64, tune: impl Fn(&mut ControlPlaneConfig)) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut listeners = BTreeMap::new();
        for id in 1..=n {
            listeners.insert(id, tokio::net::TcpListener::bind("127.0.0.1:0").await?);
        }
        let addrs: BTreeMap<u64, SocketAddr> = listeners
            .iter()
            .map(|(id, l)| Ok((*id, l.local_addr()?)))
            .collect::<Result<_>>()?;
        let peers = addrs
            .iter()
            .map(|(id, a)| format!("{id}={a}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut base = ControlPlaneConfig {
            admin_listen: String::new(),
            request_timeout_ms: 3_000,
            ..Default::default()
        };
        tune(&mut base);
        let mut c = Self {
            dir,
            faults: Faults::default(),
            addrs,
            members: BTreeMap::new(),
            base,
            peers,
        };
        for (id, l) in listeners {
            let m = tributary_control_plane::start_on(c.config(id), l, c.faults.clone()).await?;
            c.members.insert(id, m);
        }
        Ok(c)
    }

    fn config(&self, id: u64) -> ControlPlaneConfig {
        ControlPlaneConfig {
            id,
            listen: self.addrs[&id].to_string(),
            peers: self.peers.clone(),
            data_dir: self.dir.path().join(format!("cp-{id}")),
            ..self.base.clone()
        }
    }

    pub fn ids(&self) -> Vec<u64> {
        self.addrs.keys().copied().collect()
    }

    /// The leader that every running member agrees on.
    pub async fn leader(&self, timeout: Duration) -> Result<u64> {
        wait::until("an agreed leader", timeout, || async {
            let views: Vec<u64> = self
                .members
                .values()
                .map(|m| m.node.state().leader)
                .collect();
            let l = *views.first()?;
            (l != 0 && views.iter().all(|v| *v == l) && self.members.contains_key(&l)).then_some(l)
        })
        .await
    }

    pub fn catalog(&self, id: u64) -> Result<CatalogClient<Channel>> {
        Ok(CatalogClient::new(self.channel(id)?))
    }

    pub fn cluster(&self, id: u64) -> Result<ClusterClient<Channel>> {
        Ok(ClusterClient::new(self.channel(id)?))
    }

    fn channel(&self, id: u64) -> Result<Channel> {
        let a = self
            .addrs
            .get(&id)
            .ok_or_else(|| anyhow!("no member {id}"))?;
        Ok(tributary_common::grpc::channel(&a.to_string())?)
    }

    /// Stops a member abruptly (its Raft thread and server; the data dir stays).
    pub async fn kill(&mut self, id: u64) {
        if let Some(m) = self.members.remove(&id) {
            m.shutdown().await;
        }
    }

    /// Starts a stopped member again from its data dir, on its old address.
    pub async fn restart(&mut self, id: u64) -> Result<()> {
        let l = tokio::net::TcpListener::bind(self.addrs[&id]).await?;
        let m = tributary_control_plane::start_on(self.config(id), l, self.faults.clone()).await?;
        self.members.insert(id, m);
        Ok(())
    }

    /// Starts a new, empty member `id` that knows the others' addresses but is no voter yet.
    pub async fn start_joiner(&mut self, id: u64) -> Result<SocketAddr> {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        self.addrs.insert(id, addr);
        let mut cfg = self.config(id);
        cfg.peers = self.peers.clone();
        let m = tributary_control_plane::start_on(cfg, l, self.faults.clone()).await?;
        self.members.insert(id, m);
        Ok(addr)
    }

    /// Waits until every running member has applied at least `index`.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<()> {
        wait::until(
            &format!("every member applied {index}"),
            timeout,
            || async {
                self.members
                    .values()
                    .all(|m| m.node.catalogue.applied_index() >= index)
                    .then_some(())
            },
        )
        .await
    }

    /// Every running member's catalogue, exported; equal vectors mean equal catalogues.
    pub fn exports(&self) -> Result<Vec<(u64, Vec<u8>)>> {
        self.members
            .iter()
            .map(|(id, m)| Ok((*id, m.node.catalogue.export()?)))
            .collect()
    }

    pub async fn shutdown(mut self) {
        let ids: Vec<u64> = self.members.keys().copied().collect();
        for id in ids {
            self.kill(id).await;
        }
    }
}
