//! Tributary's control plane: a Raft-replicated (raft-rs) catalogue of wells, tags, targets,
//! streams, policies, namespaces and data nodes, on RocksDB.
//!
//! Flow of a write: gRPC handler (`service`) → `Node::write` (forwards to the leader if need
//! be) → Raft proposal (`node::ready_loop`) → applied by `catalog::apply_command` in one
//! RocksDB batch with the applied index → reply with the new revision.

pub mod bootstrap;
pub mod catalog;
pub mod cleanup;
pub mod config;
pub mod devops;
pub mod encryption;
pub mod erasure;
pub mod error;
pub mod guard;
pub mod liveness;
pub mod metric_names;
pub mod network;
pub mod node;
pub mod raft_store;
pub mod replacement;
pub mod service;
pub mod status;

pub use config::ControlPlaneConfig;

use catalog::{Catalogue, CF_CATALOG, CF_CATALOG_META, CF_EVENTS};
use node::Node;
use raft_store::{RaftStore, CF_LOG, CF_META};
use rocksdb::{ColumnFamilyDescriptor, Options, DB};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tributary_common::devops::{grpc::AdminService, Devops, Operators};
use tributary_common::health::Health;
use tributary_common::telemetry::{self, Readiness};
use tributary_common::{serve, tls};
use tributary_proto::v1::{
    admin_server::AdminServer, catalog_server::CatalogServer, cluster_server::ClusterServer,
    raft_server::RaftServer,
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
    /// The bound peer listener (Raft and member-to-member calls).
    pub peer_addr: SocketAddr,
    /// One stop signal and task per gRPC listener.
    servers: Vec<serve::Serving>,
    /// Tasks that end with the member (storing the first policy).
    _background: Vec<tributary_common::task::AbortOnDrop>,
    admin: Option<telemetry::AdminListener>,
}

impl RunningControlPlane {
    /// Stops serving and stops Raft; the data dir can be opened again afterwards.
    pub async fn shutdown(mut self) {
        if let Some(admin) = self.admin.take() {
            admin.stop().await;
        }
        let mut tasks = Vec::new();
        for (tx, task) in std::mem::take(&mut self.servers) {
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

/// Every column family of a member's database.
pub const COLUMN_FAMILIES: [&str; 5] = [CF_LOG, CF_META, CF_CATALOG, CF_CATALOG_META, CF_EVENTS];

/// Opens the RocksDB with the control plane's column families.
pub fn open_db(dir: &std::path::Path) -> Result<Arc<DB>, StartError> {
    let path = dir.join("db");
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    let cfs = COLUMN_FAMILIES
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

/// Starts a member on an already bound client listener (tests bind `127.0.0.1:0`); the peer
/// listener binds `peer_listen` (by default any free port on the same host).
pub async fn start_on(
    config: ControlPlaneConfig,
    listener: TcpListener,
) -> Result<RunningControlPlane, StartError> {
    let config = config.with_secret_files().map_err(StartError::Config)?;
    let peer_map = config.peer_map().map_err(StartError::Config)?;
    config.check_tls().map_err(StartError::Config)?;
    config.grpc.validate("grpc").map_err(StartError::Config)?;
    config
        .cleanup
        .validate("cleanup")
        .map_err(StartError::Config)?;
    let (client_tls, peer_tls, link_tls) = tls_setup(&config)?;
    let peer_listen = config.peer_listen_addr();
    let peer_listener =
        TcpListener::bind(&peer_listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: peer_listen.clone(),
                source,
            })?;
    let secrets =
        Arc::new(encryption::Secrets::at_start(&config.encryption).map_err(StartError::Config)?);
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen.clone(),
        source,
    })?;
    let peer_addr = peer_listener
        .local_addr()
        .map_err(|source| StartError::Listen {
            addr: peer_listen,
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
    metric_names::describe();
    let sampling = metric_names::spawn_sampling(&db);
    let catalogue = Catalogue::open(db.clone(), config.raft.max_watch_events)?;
    let store = RaftStore::open(db, catalogue.clone(), &initial_voters)
        .map_err(|e| StartError::Config(format!("raft storage: {e}")))?;
    // Addresses learned from membership changes win over the flags (they are newer).
    let mut addrs = peer_map;
    for (id, a) in catalogue.peers()? {
        addrs.insert(id, network::MemberAddrs::parse(&a));
    }
    addrs.insert(
        config.id,
        network::MemberAddrs {
            client: addr.to_string(),
            peer: Some(peer_addr.to_string()),
        },
    );
    let peers = network::Peers::new(addrs, link_tls);
    let liveness = liveness::Liveness::new(Duration::from_millis(config.heartbeat_timeout_ms));
    let node = Node::start(config.node_config(), store, catalogue, peers, liveness)?;

    let ready = Readiness::default();
    watch_raft(&node, ready.clone());
    let request_timeout = Duration::from_millis(config.request_timeout_ms);
    let migration = Arc::new(encryption::Migration::new(
        node.clone(),
        secrets.clone(),
        config.encryption.migration_entities_per_second,
        config.cluster_secret.clone(),
    ));
    let guard = Arc::new(guard(&config, &node)?);
    let fanout = devops::fanout(&node, &config);
    fanout.local.register(
        tributary_common::devops::Target::Namespaces,
        Arc::new(erasure::Namespaces::new(node.clone())),
    );
    let (coordinator, cleanup_task) = tributary_common::cleanup::Coordinator::start(
        config.cleanup.clone(),
        Arc::new(cleanup::MemberCleaner { node: node.clone() }),
    );
    fanout.local.register(
        tributary_common::devops::Target::PersistenceCleanup,
        coordinator,
    );
    let devops: Arc<dyn Devops> = Arc::new(fanout);
    let operators: Arc<dyn Operators> = guard.clone();
    let admin = |peer: bool| {
        AdminServer::new(AdminService {
            devops: devops.clone(),
            operators: operators.clone(),
            peer,
        })
    };
    let (member_tls, cluster_token) = devops::identity(&config);
    let status: Arc<dyn tributary_common::status_page::StatusSource> =
        Arc::new(status::MemberView {
            node: node.clone(),
            tls: member_tls,
            cluster_token,
            timeout: request_timeout,
        });
    let routes = tributary_common::devops::http::routes(devops.clone(), operators.clone()).merge(
        tributary_common::status_page::routes(status, operators.clone()),
    );
    let admin_tls = (!config.insecure).then_some(&config.tls);
    let admin_listener =
        telemetry::start_admin(&config.admin_listen, ready.clone(), routes, admin_tls)
            .await
            .map_err(StartError::Config)?;
    let admin_addr = admin_listener.as_ref().map(|a| a.addr);
    let health = Health::default();
    let cluster = |peer: bool| {
        ClusterServer::new(service::ClusterService {
            node: node.clone(),
            peer_addr: peer_addr.to_string(),
            migration: migration.clone(),
            guard: guard.clone(),
            peer,
        })
    };
    let limits = &config.grpc;
    let raft = |peer: bool| {
        RaftServer::new(service::RaftService {
            node: node.clone(),
            request_timeout,
            peer,
        })
        .max_decoding_message_size(64 << 20)
    };
    let client_router = limits
        .server()
        .add_service(raft(false))
        .add_service(CatalogServer::new(service::CatalogService {
            node: node.clone(),
            guard: guard.clone(),
            secrets: secrets.clone(),
        }))
        .add_service(cluster(false))
        .add_service(admin(false));
    let client_router = health.serve_on(client_router, &devops::all_services(false));
    // Raft, and the calls a follower sends on to the leader, are served to members only.
    let peer_check = PeerNames(Arc::new(config.peer_allowed_names.clone()));
    let peer_router = limits
        .server()
        .add_service(InterceptedService::new(raft(true), peer_check.clone()))
        .add_service(InterceptedService::new(cluster(true), peer_check.clone()))
        .add_service(InterceptedService::new(admin(true), peer_check));
    let peer_router = health.serve_on(peer_router, &devops::all_services(true));
    let servers = vec![
        serve::serve(
            client_router,
            listener,
            client_tls,
            limits,
            "control-plane gRPC",
        ),
        serve::serve(
            peer_router,
            peer_listener,
            peer_tls,
            limits,
            "control-plane peer gRPC",
        ),
    ];
    let background = vec![
        tributary_common::task::AbortOnDrop::spawn(bootstrap::store_admin_policy(
            node.clone(),
            config.admin_subjects.clone(),
        )),
        tributary_common::task::AbortOnDrop::spawn(devops::report_health(node.clone(), health)),
        tributary_common::task::AbortOnDrop::spawn(replacement::replace_gone_nodes(
            node.clone(),
            config.replicas.replace_after,
        )),
        cleanup_task,
        sampling,
    ];
    ready.set(true);
    tracing::info!(id = config.id, %addr, %peer_addr, insecure = config.insecure, "control-plane member started");
    Ok(RunningControlPlane {
        node,
        addr,
        peer_addr,
        admin_addr,
        servers,
        _background: background,
        admin: admin_listener,
    })
}

/// A Raft thread that stops on its own takes readiness and health down; one stopped as asked
/// (shutdown) takes readiness down.
fn watch_raft(node: &Node, ready: Readiness) {
    let mut halts = node.halts();
    tokio::spawn(async move {
        let end = halts
            .wait_for(|h| *h != node::Halt::Running)
            .await
            .map(|h| h.clone());
        match end {
            Ok(node::Halt::Failed(why)) => ready.fail(format!("the Raft loop stopped: {why}")),
            _ => ready.set(false),
        }
    });
}

/// Who may call what: the authenticator of the config's `auth` keys, `admin_subjects`, the
/// entity-creation rules, and the catalogue's policies.
fn guard(config: &ControlPlaneConfig, node: &Node) -> Result<guard::Guard, StartError> {
    let access = tributary_common::access::Access::from_config(
        &config.auth,
        &config.admin_subjects,
        &config.cluster_secret,
        &config.anonymous_subjects,
    )
    .map_err(StartError::Config)?
    .with_stream_secrets(&config.stream_secrets);
    Ok(guard::Guard::new(
        access,
        config.entity_creation.clone(),
        node.catalogue.clone(),
    ))
}

/// How the two listeners and the links to peers speak: TLS (client certificates optional on
/// the client listener, required on the peer listener; both reloaded when their files
/// change) unless `insecure`.
fn tls_setup(
    config: &ControlPlaneConfig,
) -> Result<(serve::Listening, serve::Listening, network::PeerTls), StartError> {
    if config.insecure {
        tracing::warn!(
            "insecure = true: cleartext on every listener and link, peers unauthenticated"
        );
        return Ok((
            serve::Listening::Cleartext,
            serve::Listening::Cleartext,
            network::PeerTls::Cleartext,
        ));
    }
    let tls_err = |e: tls::TlsError| StartError::Config(e.to_string());
    let client = tls::ReloadingServer::new(config.tls.clone(), tls::ClientAuth::Optional)
        .map_err(tls_err)?
        .server_config()
        .map_err(tls_err)?;
    let peer = tls::ReloadingServer::new(config.tls.clone(), tls::ClientAuth::Required)
        .map_err(tls_err)?
        .server_config()
        .map_err(tls_err)?;
    Ok((
        serve::Listening::Tls(client),
        serve::Listening::Tls(peer),
        network::PeerTls::Mutual(config.tls.clone()),
    ))
}

/// Lets a call through the peer listener only from a member: its certificate (already
/// checked against the CA) must carry one of the allowed names.
#[derive(Clone)]
struct PeerNames(Arc<Vec<String>>);

impl tonic::service::Interceptor for PeerNames {
    fn call(&mut self, req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        // Cleartext (insecure): nothing to check.
        let Some(certs) = req.peer_certs() else {
            return Ok(req);
        };
        let names = certs
            .first()
            .map(|c| tls::cert_names(c))
            .unwrap_or_default();
        let allowed = names
            .iter()
            .any(|n| self.0.iter().any(|p| tls::wildcard_match(p, n)));
        if allowed {
            Ok(req)
        } else {
            metrics::counter!("tributary_peer_calls_refused_total").increment(1);
            tracing::warn!(
                ?names,
                "peer call refused: certificate names no allowed peer"
            );
            Err(error::CatalogError::PeerRefused(format!(
                "certificate {names:?} names no allowed peer ({:?})",
                self.0
            ))
            .into())
        }
    }
}
