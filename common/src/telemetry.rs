//! Prometheus metrics, and the admin HTTP listener serving `/metrics`, `/health`, `/ready`
//! and the devops routes (`crate::devops::http`). Logging is `crate::logging`.

use axum::{extract::State, http::StatusCode, routing::get, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// The process-wide Prometheus recorder (installed on first use).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (several servers in one test process).
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Readiness a server flips once it can serve.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
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

/// Serves `/metrics`, `/health`, `/ready` and `routes` (the devops API) on `addr`; returns
/// the bound address.
pub async fn serve_admin(
    addr: SocketAddr,
    ready: Readiness,
    routes: Router,
) -> std::io::Result<SocketAddr> {
    let handle = prometheus();
    let app = Router::new()
        .route("/metrics", get(move || async move { handle.render() }))
        .route("/health", get(|| async { "ok" }))
        .route(
            "/ready",
            get(|State(r): State<Readiness>| async move {
                if r.get() {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                }
            }),
        )
        .with_state(ready)
        .merge(routes);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "admin listener stopped");
        }
    });
    Ok(bound)
}

/// Starts the admin listener unless `configured` is empty; the error names the key.
pub async fn start_admin(
    configured: &str,
    ready: Readiness,
    routes: Router,
) -> Result<Option<SocketAddr>, String> {
    if configured.is_empty() {
        return Ok(None);
    }
    let addr = admin_addr(configured)?;
    serve_admin(addr, ready, routes)
        .await
        .map(Some)
        .map_err(|e| format!("key `admin_listen`: cannot listen on {addr}: {e}"))
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
