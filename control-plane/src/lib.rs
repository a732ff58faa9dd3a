//! Tributary's control plane: a Raft-replicated (raft-rs) catalogue of wells, tags, targets,
//! streams, policies, namespaces and data nodes, on RocksDB.
//!
//! Flow of a write: gRPC handler (`service`) → `Node::write` (forwards to the leader if need
//! be) → Raft proposal (`node::ready_loop`) → applied by `catalog::apply_command` in one
//! RocksDB batch with the applied index → reply with the new revision.

pub mod catalog;
pub mod config;
pub mod encryption;
pub mod error;
pub mod liveness;
pub mod network;
pub mod node;
pub mod raft_store;
pub mod service;

pub use config::ControlPlaneConfig;

use catalog::{Catalogue, CF_CATALOG, CF_CATALOG_META, CF_EVENTS};
use node::Node;
use raft_store::{RaftStore, CF_LOG, CF_META};
use rocksdb::{ColumnFamilyDescriptor, Options, DB};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tributary_common::telemetry::{self, Readiness};
use tributary_proto::v1::{
    catalog_server::CatalogServer, cluster_server::ClusterServer, raft_server::RaftServer,
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot open {path}: {source}")]
    Storage {
        path: String,
        source: rocksdb::Error,
    },
    #[error("{0}")]
    Catalog(#[from] error::CatalogError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// A running member: its Raft node, its gRPC address, and how to stop it.
pub struct RunningControlPlane {
    pub node: Node,
    pub addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    /// The bound TLS listener for external clients (`tls_listen`), if configured.
    pub tls_addr: Option<SocketAddr>,
    /// One stop signal and task per gRPC listener.
    servers: Vec<Serving>,
}

impl RunningControlPlane {
    /// Stops serving and stops Raft; the data dir can be opened again afterwards.
    pub async fn shutdown(self) {
        let mut tasks = Vec::new();
        for (tx, task) in self.servers {
            let _ = tx.send(());
            tasks.push(task);
        }
        let node = self.node.clone();
        let _ = tokio::task::spawn_blocking(move || node.stop()).await;
        for mut task in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), &mut task).await;
            task.abort();
        }
    }
}

/// Opens the RocksDB with the control plane's column families.
pub fn open_db(dir: &std::path::Path) -> Result<Arc<DB>, StartError> {
    let path = dir.join("db");
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    let cfs = [CF_LOG, CF_META, CF_CATALOG, CF_CATALOG_META, CF_EVENTS]
        .into_iter()
        .map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
    // A member stopped a moment ago may still be releasing the lock: retry briefly.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match DB::open_cf_descriptors(&opts, &path, cfs.clone()) {
            Ok(db) => return Ok(Arc::new(db)),
            Err(e) if e.to_string().contains("lock") && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(StartError::Storage {
                    path: path.display().to_string(),
                    source,
                })
            }
        }
    }
}

/// Starts a member, binding `config.listen`.
pub async fn start(config: ControlPlaneConfig) -> Result<RunningControlPlane, StartError> {
    let listener =
        TcpListener::bind(&config.listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: config.listen.clone(),
                source,
            })?;
    start_on(config, listener).await
}

/// Starts a member on an already bound listener (tests bind `127.0.0.1:0`).
pub async fn start_on(
    config: ControlPlaneConfig,
    listener: TcpListener,
) -> Result<RunningControlPlane, StartError> {
    let peer_map = config.peer_map().map_err(StartError::Config)?;
    config.check_tls().map_err(StartError::Config)?;
    let secrets =
        Arc::new(encryption::Secrets::at_start(&config.encryption).map_err(StartError::Config)?);
    let tls = tls_listener(&config).await?;
    let tls_addr = tls.as_ref().and_then(|(_, l)| l.local_addr().ok());
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen.clone(),
        source,
    })?;
    let initial_voters: Vec<u64> = if peer_map.contains_key(&config.id) {
        let mut v: Vec<u64> = peer_map.keys().copied().collect();
        v.sort_unstable();
        v
    } else {
        Vec::new()
    };
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        StartError::Config(format!(
            "key `data_dir`: {}: {e}",
            config.data_dir.display()
        ))
    })?;
    let db = open_db(&config.data_dir)?;
    let catalogue = Catalogue::open(db.clone(), config.raft.max_watch_events)?;
    let store = RaftStore::open(db, catalogue.clone(), &initial_voters)
        .map_err(|e| StartError::Config(format!("raft storage: {e}")))?;
    // Addresses learned from membership changes win over the flags (they are newer).
    let mut addrs = peer_map;
    addrs.extend(catalogue.peers()?);
    addrs.insert(config.id, addr.to_string());
    let peers = network::Peers::new(addrs);
    let liveness = liveness::Liveness::new(Duration::from_millis(config.heartbeat_timeout_ms));
    let node = Node::start(config.node_config(), store, catalogue, peers, liveness)?;

    let ready = Readiness::default();
    let admin_addr = telemetry::start_admin(&config.admin_listen, ready.clone())
        .await
        .map_err(StartError::Config)?;
    let request_timeout = Duration::from_millis(config.request_timeout_ms);
    let migration = Arc::new(encryption::Migration::new(
        node.clone(),
        secrets.clone(),
        config.encryption.migration_entities_per_second,
        config.cluster_secret.clone(),
    ));
    let catalog = || {
        CatalogServer::new(service::CatalogService {
            node: node.clone(),
            cluster_secret: config.cluster_secret.clone(),
            secrets: secrets.clone(),
        })
    };
    let cluster = || {
        ClusterServer::new(service::ClusterService {
            node: node.clone(),
            migration: migration.clone(),
        })
    };
    let router = tonic::transport::Server::builder()
        .add_service(catalog())
        .add_service(cluster())
        .add_service(
            RaftServer::new(service::RaftService {
                node: node.clone(),
                request_timeout,
            })
            .max_decoding_message_size(64 << 20),
        );
    let mut servers = vec![serve(router, listener, "gRPC")];
    if let Some((mut server, tls_listener)) = tls {
        // Clients outside the cluster read the catalogue over TLS; Raft stays on `listen`.
        let router = server.add_service(catalog()).add_service(cluster());
        servers.push(serve(router, tls_listener, "TLS gRPC"));
    }
    ready.set(true);
    tracing::info!(id = config.id, %addr, ?tls_addr, "control-plane member started");
    Ok(RunningControlPlane {
        node,
        addr,
        admin_addr,
        tls_addr,
        servers,
    })
}

/// The TLS server (identity loaded) and its socket, when `tls_listen` is set; set up before
/// anything starts so a bad key or address stops nothing half-started.
async fn tls_listener(
    config: &ControlPlaneConfig,
) -> Result<Option<(tonic::transport::Server, TcpListener)>, StartError> {
    if config.tls_listen.is_empty() {
        return Ok(None);
    }
    let tls = tributary_common::grpc::server_tls(&config.tls_cert, &config.tls_key)
        .map_err(StartError::Config)?;
    let server = tonic::transport::Server::builder()
        .tls_config(tls)
        .map_err(|e| StartError::Config(format!("key `tls_cert`/`tls_key`: {e}")))?;
    let listener = TcpListener::bind(&config.tls_listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.tls_listen.clone(),
            source,
        })?;
    Ok(Some((server, listener)))
}

type Serving = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

/// Serves `router` on `listener` until the returned sender fires (or is dropped).
fn serve(
    router: tonic::transport::server::Router,
    listener: TcpListener,
    what: &'static str,
) -> Serving {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let incoming = tributary_common::grpc::incoming(listener);
    let task = tokio::spawn(async move {
        let stop = async {
            let _ = rx.await;
        };
        if let Err(e) = router.serve_with_incoming_shutdown(incoming, stop).await {
            tracing::error!(error = %e, "control-plane {what} server stopped");
        }
    });
    (tx, task)
}
