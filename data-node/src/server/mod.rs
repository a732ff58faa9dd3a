//! The composition root: starting and stopping a data node in-process. It builds the node,
//! the gRPC services, the workers (with their hosts) and the control-plane client, and wires
//! them together; nothing imports it.

mod erasure;
mod hosts;
mod parts;
mod probes;

use crate::config::DataNodeConfig;
use crate::control_client::{ControlClient, Endpoints, TagClient};
use crate::ditto_stats::DittoStatsService;
use crate::gate::Gate;
use crate::ingest::IngestService;
use crate::node::ditto_status::{CopySlots, DittoBoard};
use crate::node::replication::ReplicationBoard;
use crate::node::{Node, TagCreator};
use crate::peers::Peers;
use crate::raft_link::StreamGroupsService;
use crate::storage::StorageError;
use crate::streams::limits::PublishLimits;
use crate::streams::StreamsService;
use crate::wells::WellsService;
use hosts::NodeHost;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tributary_common::access::Access;
use tributary_common::serve;
use tributary_common::task::AbortOnDrop;
use tributary_common::telemetry::{self, Readiness};
use tributary_common::time::now_ns;
use tributary_common::tls;
use tributary_proto::v1::{
    ditto_server::DittoServer, ingest_server::IngestServer,
    stream_groups_server::StreamGroupsServer, streams_server::StreamsServer,
    wells_server::WellsServer,
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot open storage in {path}: {source}")]
    Storage { path: String, source: crate::Error },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// A running data node: its state, its addresses, and how to stop it.
pub struct RunningDataNode {
    pub node: Arc<Node>,
    /// The bound gRPC address.
    pub addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: JoinHandle<()>,
    background: Vec<AbortOnDrop>,
    admin: Option<telemetry::AdminListener>,
}

impl RunningDataNode {
    /// Stops serving and the background tasks. Storage closes when the last reference to the
    /// node goes (open subscriptions end as their clients notice the server is gone).
    pub async fn shutdown(mut self) {
        // Its stream groups go silent first, as a node that is gone does.
        if let Some(groups) = self.node.groups() {
            groups.stop();
        }
        if let Some(admin) = self.admin.take() {
            admin.stop().await;
        }
        for t in &self.background {
            t.0.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.server).await;
        self.server.abort();
        for mut t in self.background.drain(..) {
            let _ = (&mut t.0).await;
        }
    }
}

/// Starts a data node, binding `config.listen`.
pub async fn start(config: DataNodeConfig) -> Result<RunningDataNode, StartError> {
    let listener =
        TcpListener::bind(&config.listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: config.listen.clone(),
                source,
            })?;
    start_on(config, listener).await
}

/// Opens the node's storage, retrying briefly: a node stopped a moment ago in this process may
/// still hold the RocksDB lock until its last task lets go.
async fn open_node(
    config: &DataNodeConfig,
    tags: Option<Arc<dyn TagCreator>>,
) -> Result<Arc<Node>, StartError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match Node::open(
            config.id,
            &config.data_dir,
            config.sync_writes,
            tags.clone(),
        ) {
            Ok(n) => return Ok(n),
            Err(crate::Error::Storage(StorageError::Locked { .. }))
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(source) => {
                return Err(StartError::Storage {
                    path: config.data_dir.display().to_string(),
                    source,
                })
            }
        }
    }
}

/// Starts a data node on an already bound listener (tests bind `127.0.0.1:0`).
pub async fn start_on(
    config: DataNodeConfig,
    listener: TcpListener,
) -> Result<RunningDataNode, StartError> {
    let config = config.with_secret_files().map_err(StartError::Config)?;
    config.validate().map_err(StartError::Config)?;
    let secrets = hosts::SealedSecrets::at_start(&config.encryption).map_err(StartError::Config)?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen.clone(),
        source,
    })?;
    let cp_addrs = config.control_plane_addrs().map_err(StartError::Config)?;
    // This node's certificate is its identity on every link of its cluster.
    let links = (!config.insecure).then(|| config.tls.clone());
    let listening = listening(&config)?;
    let endpoints = (!cp_addrs.is_empty()).then(|| {
        Arc::new(Endpoints::new(
            cp_addrs.clone(),
            links.clone(),
            config.cluster_secret.clone(),
        ))
    });
    let tags = endpoints
        .as_ref()
        .map(|e| TagClient::new(e.clone()) as Arc<dyn TagCreator>);
    let node = open_node(&config, tags).await?;
    let outbox = node
        .start_groups(crate::group::Settings {
            tick: Duration::from_millis(config.replication.tick_ms),
            election_ticks: config.replication.election_ticks,
            heartbeat_ticks: config.replication.heartbeat_ticks,
            log_tail: config.replication.log_tail,
            hibernate: config.replication.hibernate,
        })
        .map_err(|source| StartError::Storage {
            path: config.data_dir.display().to_string(),
            source,
        })?;
    let peers = Peers::new(node.clone(), links.clone(), config.cluster_secret.clone());
    let access = Access::from_config(
        &config.auth,
        &config.admin_subjects,
        &config.cluster_secret,
        &config.anonymous_subjects,
    )
    .map_err(StartError::Config)?;
    let gate = Arc::new(Gate::new(
        access,
        node.clone(),
        config.ingest_secrets.clone(),
        config.stream_secrets.clone(),
    ));

    crate::metric_names::describe();
    let ready = Readiness::default();
    let probes = probes::Probes::new(&config, gate.clone());
    let admin_tls = (!config.insecure).then_some(&config.tls);
    let admin = telemetry::start_admin(
        &config.admin_listen,
        ready.clone(),
        probes.routes(),
        admin_tls,
    )
    .await
    .map_err(StartError::Config)?;
    let admin_addr = admin.as_ref().map(|a| a.addr);

    let throttle = config
        .throttling
        .build("throttling")
        .map_err(StartError::Config)?;
    let max = usize::try_from(config.max_message_bytes).unwrap_or(usize::MAX);
    let ingest = IngestService {
        node: node.clone(),
        gate: gate.clone(),
        max_entry_bytes: usize::try_from(config.max_entry_bytes).unwrap_or(usize::MAX),
        throttle: throttle.clone(),
    };
    let replication = Arc::new(ReplicationBoard::default());
    let ditto_board = Arc::new(DittoBoard::default());
    let ditto_slots = CopySlots::new(usize::try_from(config.ditto_max_workers).unwrap_or(1));
    let streams = StreamsService {
        node: node.clone(),
        replication: replication.clone(),
        gate: gate.clone(),
        limits: PublishLimits {
            max_subject_bytes: config.limits.max_subject_bytes,
            max_headers: config.limits.max_headers,
            max_header_bytes: config.limits.max_header_bytes,
        },
        throttle: throttle.clone(),
        peers: peers.clone(),
    };
    let groups = node
        .groups()
        .cloned()
        .ok_or_else(|| StartError::Config("the stream groups did not start".into()))?;
    let groups_failure = groups.failure();
    let router = config
        .grpc
        .server()
        .initial_stream_window_size(tributary_common::grpc::STREAM_WINDOW)
        .initial_connection_window_size(tributary_common::grpc::CONNECTION_WINDOW)
        .add_service(
            IngestServer::new(ingest.clone())
                .max_decoding_message_size(max)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
        )
        .add_service(DittoServer::new(DittoStatsService {
            gate: gate.clone(),
            node_id: config.id,
            board: ditto_board.clone(),
            slots: ditto_slots.clone(),
        }))
        .add_service(
            WellsServer::new(WellsService {
                node: node.clone(),
                gate: gate.clone(),
                throttle,
            })
            .max_encoding_message_size(max),
        )
        .add_service(
            StreamsServer::new(streams)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            StreamGroupsServer::new(StreamGroupsService::new(
                groups,
                gate.clone(),
                peers.clone(),
            ))
            .max_decoding_message_size(256 << 20),
        )
        .add_service(probes.admin());
    let router = probes.health.serve_on(router, &probes::all_services());
    let (tx, server) = serve::serve(router, listener, listening, &config.grpc, "data-node gRPC");

    let host = Arc::new(NodeHost {
        node: node.clone(),
        // In-process: the stats entries are stored as the node's own (`IngestService::store`).
        ingest,
        secrets,
    });
    if cp_addrs.is_empty() {
        // Standalone: there is no catalogue to wait for.
        node.mark_catalog_listed();
        node.mark_registered();
    }
    let mut background = vec![
        AbortOnDrop::spawn(probes::report_health(node.clone(), probes.health.clone())),
        AbortOnDrop::spawn(maintenance(
            node.clone(),
            Duration::from_millis(config.maintenance_interval_ms),
            i64::try_from(config.batch_id_window_ms.saturating_mul(1_000_000)).unwrap_or(i64::MAX),
        )),
        AbortOnDrop::spawn(report_unopened(node.clone(), ready.clone())),
        AbortOnDrop::spawn(report_replication_failure(
            groups_failure,
            ready.clone(),
            probes.health.clone(),
        )),
        crate::raft_link::spawn_outbound(config.id, peers, outbox),
        crate::metric_names::spawn_sampling(&node, replication.clone()),
    ];
    let source_id =
        crate::ditto::source_id(host.as_ref(), &config.cluster_name).map_err(|source| {
            StartError::Storage {
                path: config.data_dir.display().to_string(),
                source: source.into(),
            }
        })?;
    background.push(cleanup(&probes.local, &config, node.clone()));
    probes.local.register(
        tributary_common::devops::Target::Namespaces,
        Arc::new(erasure::Namespaces {
            node: node.clone(),
            ditto: ditto_board.clone(),
            mirror: replication.clone(),
        }),
    );
    background.push(parts::ditto_supervisor(
        &probes.local,
        &config,
        host.clone(),
        source_id,
        ditto_slots,
        ditto_board,
    ));
    background.push(parts::mirror_supervisor(
        &probes.local,
        &config,
        host,
        replication,
        cp_addrs,
        links,
    ));
    if let Some(endpoints) = endpoints {
        let advertise = if config.advertise.is_empty() {
            addr.to_string()
        } else {
            config.advertise.clone()
        };
        let client = ControlClient::new(
            node.clone(),
            endpoints,
            advertise,
            config.capacity,
            config.tags.clone(),
            Duration::from_millis(config.heartbeat_interval_ms),
        );
        background.extend(client.spawn());
    }
    ready.set(true);
    tracing::info!(id = config.id, %addr, "data node started");
    Ok(RunningDataNode {
        node,
        addr,
        admin_addr,
        shutdown: Some(tx),
        server,
        background,
        admin,
    })
}

/// TLS on the listener (client certificates optional: the cluster's other data nodes show
/// theirs, users bring tokens), reloaded when its files change; cleartext when `insecure`.
fn listening(config: &DataNodeConfig) -> Result<serve::Listening, StartError> {
    if config.insecure {
        tracing::warn!("insecure = true: cleartext on the listener and every link");
        return Ok(serve::Listening::Cleartext);
    }
    let cfg = tls::ReloadingServer::new(config.tls.clone(), tls::ClientAuth::Optional)
        .and_then(|s| s.server_config())
        .map_err(|e| StartError::Config(e.to_string()))?;
    Ok(serve::Listening::Tls(cfg))
}

/// Keeps `/health`'s list of what this node owns but cannot open current (checked again on
/// every catalogue change and maintenance round).
async fn report_unopened(node: Arc<Node>, ready: Readiness) {
    let mut changes = node.catalog_changes();
    loop {
        ready.set_problems(node.unopened());
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// A replication loop that stops on its own (its log cannot be written, a panic) fails
/// `/health` and `/ready` and turns gRPC health `NOT_SERVING`, so an orchestrator restarts
/// the node.
async fn report_replication_failure(
    mut failure: tokio::sync::watch::Receiver<Option<String>>,
    ready: Readiness,
    health: tributary_common::health::Health,
) {
    loop {
        let why = failure.borrow_and_update().clone();
        if let Some(why) = why {
            ready.fail(why);
            health.set(&probes::all_services(), false).await;
            return;
        }
        if failure.changed().await.is_err() {
            return;
        }
    }
}

async fn maintenance(node: Arc<Node>, every: Duration, batch_id_window_ns: i64) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let n = node.clone();
        // Ageout copies whole shards: keep it off the async workers.
        let r = tokio::task::spawn_blocking(move || n.maintain(now_ns(), batch_id_window_ns)).await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "maintenance failed; retrying next round"),
            Err(e) => tracing::warn!(error = %e, "maintenance task panicked"),
        }
    }
}

/// The background cleanup coordinator, registered with the node's devops.
fn cleanup(
    local: &tributary_common::devops::LocalAdmin,
    config: &DataNodeConfig,
    node: Arc<Node>,
) -> AbortOnDrop {
    let cleaner = Arc::new(crate::cleanup::NodeCleaner::new(node));
    let (coordinator, task) =
        tributary_common::cleanup::Coordinator::start(config.cleanup.clone(), cleaner);
    local.register(
        tributary_common::devops::Target::PersistenceCleanup,
        coordinator,
    );
    task
}
