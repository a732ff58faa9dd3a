//! Small clusters for ditto tests and the ditto benchmark: one control-plane member and one
//! data node each, on 127.0.0.1. The data node runs in-process, or as the real
//! `tributary-data-node` binary when a test must `kill -9` it (same port on restart, so the
//! other cluster's target endpoint stays valid).

use anyhow::{anyhow, Context, Result};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::metadata::MetadataValue;
use tributary_control_plane::{ControlPlaneConfig, RunningControlPlane};
use tributary_data_node::{DataNodeConfig, RunningDataNode};
use tributary_proto::v1::{
    catalog_client::CatalogClient, ditto_client::DittoClient, ingest_client::IngestClient,
    wells_client::WellsClient, DittoStatsRequest, DittoWorkerStats, Entity, IngestBatch,
    QueryRequest, ShardInfo, ShardsRequest, WellEntry,
};

pub const CLUSTER_SECRET: &str = "cluster-secret";
pub const INGEST_SECRET: &str = "ingest-secret";

enum Dn {
    InProcess(RunningDataNode),
    Process(KilledOnDrop),
    Stopped,
}

/// A data-node process that a panicking test must not leave running.
struct KilledOnDrop(Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct MiniCluster {
    pub cp: RunningControlPlane,
    pub cp_addr: String,
    /// The data node's gRPC address (stable across restarts).
    pub dn_addr: String,
    dn: Dn,
    config: DataNodeConfig,
    pub dir: tempfile::TempDir,
}

/// A free port on 127.0.0.1 (the binary must come back on the same one after `kill -9`).
fn free_port() -> Result<String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.to_string())
}

/// `target/debug/<name>` next to the running test executable.
pub fn binary(name: &str) -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .ok_or_else(|| anyhow!("no target dir above {}", exe.display()))?;
    let p = dir.join(name);
    if !p.exists() {
        anyhow::bail!("{} not built (cargo build --workspace)", p.display());
    }
    Ok(p)
}

impl MiniCluster {
    /// Starts a cluster; `process` runs the data node as the real binary.
    pub async fn start(process: bool, tune: impl Fn(&mut DataNodeConfig)) -> Result<Self> {
        Self::start_with(process, |_| {}, tune).await
    }

    /// As [`MiniCluster::start`], with the control plane's config tuned too.
    pub async fn start_with(
        process: bool,
        tune_cp: impl Fn(&mut ControlPlaneConfig),
        tune: impl Fn(&mut DataNodeConfig),
    ) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut cp_config = ControlPlaneConfig {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().join("cp"),
            admin_listen: String::new(),
            cluster_secret: CLUSTER_SECRET.into(),
            ..Default::default()
        };
        tune_cp(&mut cp_config);
        let cp = tributary_control_plane::start(cp_config).await?;
        let cp_addr = cp.addr.to_string();
        let mut config = DataNodeConfig {
            listen: free_port()?,
            data_dir: dir.path().join("dn"),
            admin_listen: String::new(),
            control_plane: cp_addr.clone(),
            ingest_secrets: vec![INGEST_SECRET.into()],
            cluster_secret: CLUSTER_SECRET.into(),
            heartbeat_interval_ms: 200,
            ditto_stats_interval_ms: 1_000,
            ..Default::default()
        };
        tune(&mut config);
        let mut c = MiniCluster {
            cp,
            cp_addr,
            dn_addr: config.listen.clone(),
            dn: Dn::Stopped,
            config,
            dir,
        };
        // A port found free can be taken before the node binds it (tests run in parallel and
        // their connections use ports of the same range): then take another.
        let mut attempt = 1;
        while let Err(e) = c.start_dn(process).await {
            c.kill_dn().await;
            if attempt == 5 {
                return Err(e);
            }
            attempt += 1;
            c.config.listen = free_port()?;
            c.dn_addr = c.config.listen.clone();
        }
        Ok(c)
    }

    pub fn node(&self) -> Option<&RunningDataNode> {
        match &self.dn {
            Dn::InProcess(r) => Some(r),
            _ => None,
        }
    }

    async fn start_dn(&mut self, process: bool) -> Result<()> {
        if process {
            let file = self.dir.path().join("dn.toml");
            std::fs::write(&file, toml_of(&self.config)?)?;
            let child = Command::new(binary("tributary-data-node")?)
                .arg("--config")
                .arg(&file)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("spawning tributary-data-node")?;
            self.dn = Dn::Process(KilledOnDrop(child));
        } else {
            self.dn = Dn::InProcess(tributary_data_node::start(self.config.clone()).await?);
        }
        // Serving means the port answers; a process that exited (its port taken) never will.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Dn::Process(KilledOnDrop(child)) = &mut self.dn {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!("the data node on {} exited: {status}", self.dn_addr);
                }
            }
            if tokio::net::TcpStream::connect(&self.dn_addr).await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "the data node on {} did not listen within 20 s",
                    self.dn_addr
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `kill -9` (binary) or shutdown (in-process).
    pub async fn kill_dn(&mut self) {
        match std::mem::replace(&mut self.dn, Dn::Stopped) {
            // Dropping the guard is the kill -9 (SIGKILL) and the wait.
            Dn::Process(guard) => drop(guard),
            Dn::InProcess(r) => r.shutdown().await,
            Dn::Stopped => {}
        }
    }

    pub async fn restart_dn(&mut self) -> Result<()> {
        let process = matches!(self.dn, Dn::Process(_) | Dn::Stopped);
        self.kill_dn().await;
        self.start_dn(process).await
    }

    pub async fn catalog(&self) -> Result<CatalogClient<tonic::transport::Channel>> {
        Ok(CatalogClient::connect(format!("http://{}", self.cp_addr)).await?)
    }

    /// Creates an entity, retrying while the control plane has no data node to place it on.
    pub async fn create(&self, e: Entity) -> Result<()> {
        let c = self.catalog().await?;
        crate::wait::until(
            "the catalogue to accept the entity",
            Duration::from_secs(20),
            || {
                let (mut c, e) = (c.clone(), e.clone());
                async move { c.create(e).await.ok().map(|_| ()) }
            },
        )
        .await
    }

    /// Waits until the data node serves `well`.
    pub async fn wait_well(&self, well: &str) -> Result<()> {
        crate::wait::until(
            &format!("well {well} to open"),
            Duration::from_secs(20),
            || {
                let (a, w) = (self.dn_addr.clone(), well.to_string());
                async move { self.shards_at(&a, &w).await.ok().map(|_| ()) }
            },
        )
        .await
    }

    async fn shards_at(&self, addr: &str, well: &str) -> Result<Vec<ShardInfo>> {
        let mut c = WellsClient::connect(format!("http://{addr}")).await?;
        Ok(c.shards(ShardsRequest { well: well.into() })
            .await?
            .into_inner()
            .shards)
    }

    pub async fn shards(&self, well: &str) -> Result<Vec<ShardInfo>> {
        self.shards_at(&self.dn_addr, well).await
    }

    /// Ingests `entries` in batches of `per_batch`.
    pub async fn ingest(&self, entries: Vec<WellEntry>, per_batch: usize) -> Result<()> {
        let mut c = IngestClient::connect(format!("http://{}", self.dn_addr))
            .await?
            .max_encoding_message_size(64 << 20);
        let batches: Vec<IngestBatch> = entries
            .chunks(per_batch.max(1))
            .enumerate()
            .map(|(i, ch)| IngestBatch {
                seq: i as u64,
                entries: ch.to_vec(),
                batch_id: String::new(),
            })
            .collect();
        let n = batches.len();
        let mut req = tonic::Request::new(tokio_stream::iter(batches));
        req.metadata_mut().insert(
            tributary_common::grpc::INGEST_SECRET_HEADER,
            MetadataValue::from_static(INGEST_SECRET),
        );
        let mut acks = c.write(req).await?.into_inner();
        for _ in 0..n {
            acks.next().await.ok_or_else(|| anyhow!("missing ack"))??;
        }
        Ok(())
    }

    /// Every entry of `well`.
    pub async fn query(&self, well: &str) -> Result<Vec<WellEntry>> {
        let mut c = WellsClient::connect(format!("http://{}", self.dn_addr))
            .await?
            .max_decoding_message_size(64 << 20);
        let mut s = c
            .query(QueryRequest {
                well: well.into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        let mut out = Vec::new();
        while let Some(r) = s.next().await {
            out.extend(r?.entries);
        }
        Ok(out)
    }

    pub async fn ditto_stats(&self) -> Result<Vec<DittoWorkerStats>> {
        let mut c = DittoClient::connect(format!("http://{}", self.dn_addr)).await?;
        Ok(c.stats(DittoStatsRequest {}).await?.into_inner().workers)
    }

    pub async fn shutdown(mut self) {
        self.kill_dn().await;
        self.cp.shutdown().await;
    }
}

fn toml_of(c: &DataNodeConfig) -> Result<String> {
    // serde_json → TOML by hand for the flat keys the config has.
    let v = serde_json::to_value(c)?;
    let obj = v
        .as_object()
        .ok_or_else(|| anyhow!("config is not an object"))?;
    let mut out = String::new();
    for (k, v) in obj {
        out.push_str(&format!("{k} = {v}\n"));
    }
    Ok(out)
}
