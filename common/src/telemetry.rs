//! Prometheus metrics, and the admin HTTP listener serving `/metrics`, `/health`, `/ready`
//! and the devops routes, over TLS unless the server is `insecure`.
//! Logging is `crate::logging`. What is measured: [`grpc_calls`] (every gRPC call),
//! [`raft_group`], [`rocks`], [`process`], sampled by [`spawn_sampling`]; every name with its
//! HELP text is listed in [`names`] (and in each server crate's own list).

pub mod grpc_calls;
pub mod names;
pub mod process;
pub mod raft_group;
pub mod rocks;

use crate::tls::{ClientAuth, ReloadingServer, TlsFiles};
use axum::{extract::State, http::StatusCode, routing::get, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Histogram buckets (seconds) for everything timed here: 100 µs to 10 s, about three per
/// decade, fine enough for a local RocksDB write and coarse enough for a cross-cluster call.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// How often the sampled gauges (process, RocksDB, copy links) are read.
pub const SAMPLING_INTERVAL: Duration = Duration::from_secs(5);

/// The process-wide Prometheus recorder (installed on first use), with the common metrics
/// described.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            // Histograms with buckets (Prometheus `histogram_quantile` across instances)
            // rather than the exporter's default summaries.
            let builder = match builder.set_buckets(&DURATION_BUCKETS) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "histogram buckets refused");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (several servers in one test process).
            if metrics::set_global_recorder(recorder).is_ok() {
                names::describe_now(names::COMMON);
            }
            handle
        })
        .clone()
}

/// Every [`SAMPLING_INTERVAL`]: the process gauges, then `sample` (the server's RocksDB and
/// whatever else it reads rather than counts). Stops when the returned task is dropped.
pub fn spawn_sampling(mut sample: impl FnMut() + Send + 'static) -> crate::task::AbortOnDrop {
    crate::task::AbortOnDrop::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLING_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            process::sample();
            sample();
        }
    })
}

/// What the admin listener reports: readiness a server flips once it can serve, a failure
/// that leaves the process unable to do its work (its Raft thread stopped, say: not ready,
/// and `/health` fails, so an orchestrator restarts it), and problems that leave the rest
/// working (an entity that cannot be opened: `/health` lists them and stays up).
#[derive(Clone, Default)]
pub struct Readiness(Arc<Report>);

#[derive(Default)]
struct Report {
    ready: AtomicBool,
    failed: Mutex<Option<String>>,
    problems: Mutex<BTreeMap<String, String>>,
}

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.ready.store(ready, Ordering::Relaxed);
    }

    /// Ready, and not failed.
    pub fn get(&self) -> bool {
        self.0.ready.load(Ordering::Relaxed) && self.failure().is_none()
    }

    /// The process can no longer do its work: `why` is what `/health` and `/ready` say.
    pub fn fail(&self, why: impl Into<String>) {
        let why = why.into();
        tracing::error!(reason = %why, "not ready, unhealthy");
        *crate::sync::lock(&self.0.failed) = Some(why);
    }

    pub fn failure(&self) -> Option<String> {
        crate::sync::lock(&self.0.failed).clone()
    }

    /// Replaces the problems `/health` lists (what does not work while the rest does), by
    /// what they concern (`well acme:w`).
    pub fn set_problems(&self, problems: BTreeMap<String, String>) {
        *crate::sync::lock(&self.0.problems) = problems;
    }

    pub fn problems(&self) -> BTreeMap<String, String> {
        crate::sync::lock(&self.0.problems).clone()
    }

    /// `/health`: 503 and why when failed; else 200, `ok` or `degraded` with one line per
    /// problem.
    fn health(&self) -> (StatusCode, String) {
        if let Some(why) = self.failure() {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("failed: {why}\n"));
        }
        let problems = self.problems();
        if problems.is_empty() {
            return (StatusCode::OK, "ok".into());
        }
        let mut body = String::from("degraded\n");
        for (what, problem) in problems {
            body.push_str(&format!("{what}: {problem}\n"));
        }
        (StatusCode::OK, body)
    }

    /// `/ready`: 200 once ready, else 503 (saying why when failed).
    fn readiness(&self) -> (StatusCode, String) {
        match self.failure() {
            Some(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: failed: {why}\n"),
            ),
            None if self.get() => (StatusCode::OK, "ready".into()),
            None => (StatusCode::SERVICE_UNAVAILABLE, "not ready".into()),
        }
    }
}

/// The admin address: `PROMETHEUS_PORT` (as Eclipse Ditto) overrides the configured port.
pub fn admin_addr(configured: &str) -> Result<SocketAddr, String> {
    let mut addr: SocketAddr = configured
        .parse()
        .map_err(|e| format!("key `admin_listen`: {configured:?} is not HOST:PORT: {e}"))?;
    if let Ok(port) = std::env::var("PROMETHEUS_PORT") {
        let port = port
            .parse()
            .map_err(|_| format!("PROMETHEUS_PORT={port:?} is not a port number"))?;
        addr.set_port(port);
    }
    Ok(addr)
}

/// The admin routes: `/metrics`, `/health`, `/ready`, and `routes` (the devops API).
fn admin_router(ready: Readiness, routes: Router) -> Router {
    let handle = prometheus();
    Router::new()
        .route("/metrics", get(move || async move { handle.render() }))
        .route(
            "/health",
            get(|State(r): State<Readiness>| async move { r.health() }),
        )
        .route(
            "/ready",
            get(|State(r): State<Readiness>| async move { r.readiness() }),
        )
        .with_state(ready)
        .merge(routes)
}

/// Serves `/metrics`, `/health` and `/ready` on `addr`: over TLS with the server's own
/// certificate (reloaded when its files change) when `tls` is given, else cleartext; returns
/// the bound address. Prometheus scrapes it with `scheme: https` and the cluster CA as
/// `tls_config.ca_file`.
pub async fn serve_admin(
    addr: SocketAddr,
    ready: Readiness,
    routes: Router,
    tls: Option<&TlsFiles>,
) -> Result<AdminListener, String> {
    // The TLS material first: a bad file stops the server at start, naming the key.
    let tls_config = tls.map(admin_tls).transpose()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("key `admin_listen`: cannot listen on {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("key `admin_listen`: {e}"))?;
    let app = admin_router(ready, routes).into_make_service_with_connect_info::<PeerAddr>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = async move {
        let _ = stopped.await;
    };
    let task = tokio::spawn(async move {
        let served = match tls_config {
            None => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            }
            Some(cfg) => {
                axum::serve(TlsListener::new(listener, cfg, bound), app)
                    .with_graceful_shutdown(stopped)
                    .await
            }
        };
        if let Err(e) = served {
            tracing::error!(error = %e, "admin listener stopped");
        }
    });
    Ok(AdminListener {
        addr: bound,
        stop: Some(stop),
        task,
    })
}

/// The admin listener while it serves. Its routes hold the server's state (the devops API
/// reads the node), so it stops with the server: [`AdminListener::stop`], or when dropped.
pub struct AdminListener {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl AdminListener {
    /// Stops accepting; requests in flight finish (for at most 5 s), idle connections close.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), &mut self.task).await;
        self.task.abort();
    }
}

impl Drop for AdminListener {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Who is on the other end of an admin connection, cleartext or TLS (what the devops routes
/// check a pre-authentication proxy's address against).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// The admin listener's rustls config: the server's certificate, no client certificates,
/// HTTP/1.1 only (what the admin routes speak).
fn admin_tls(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, String> {
    let cfg = ReloadingServer::new(files.clone(), ClientAuth::Off)
        .and_then(|s| s.server_config())
        .map_err(|e| format!("admin listener TLS: {e}"))?;
    let mut cfg = (*cfg).clone();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Connections the admin listener holds at once, and how long one may stay silent.
const ADMIN_MAX_CONNECTIONS: usize = 1024;
const ADMIN_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// TLS connections for axum: each handshaken off the accept path (`tls::incoming`).
struct TlsListener {
    incoming: tokio_stream::wrappers::ReceiverStream<
        std::io::Result<tokio_rustls::server::TlsStream<crate::conn::Conn>>,
    >,
    addr: SocketAddr,
}

impl TlsListener {
    fn new(
        listener: tokio::net::TcpListener,
        cfg: Arc<rustls::ServerConfig>,
        addr: SocketAddr,
    ) -> Self {
        TlsListener {
            // Scrapers and probes: a few connections, none left open for long.
            incoming: crate::tls::incoming(
                listener,
                cfg,
                crate::conn::Admission::new(ADMIN_MAX_CONNECTIONS, Some(ADMIN_IDLE), "admin"),
            ),
            addr,
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<crate::conn::Conn>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        use tokio_stream::StreamExt;
        loop {
            match self.incoming.next().await {
                Some(Ok(tls)) => {
                    use tonic::transport::server::Connected;
                    let peer = tls
                        .get_ref()
                        .0
                        .connect_info()
                        .remote_addr()
                        .unwrap_or(self.addr);
                    return (tls, peer);
                }
                Some(Err(e)) => tracing::debug!(error = %e, "admin connection failed"),
                // The accept loop ended: nothing more will come.
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// Starts the admin listener unless `configured` is empty (TLS when `tls` is given); the
/// error names the key.
pub async fn start_admin(
    configured: &str,
    ready: Readiness,
    routes: Router,
    tls: Option<&TlsFiles>,
) -> Result<Option<AdminListener>, String> {
    if configured.is_empty() {
        return Ok(None);
    }
    let addr = admin_addr(configured)?;
    serve_admin(addr, ready, routes, tls).await.map(Some)
}

/// Resolves on Ctrl-C or SIGTERM: how a server is asked to stop.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
