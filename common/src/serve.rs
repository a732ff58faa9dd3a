//! Serving a gRPC router on a bound listener, cleartext or TLS, until told to stop: the one
//! server loop of every listener of both servers, each admitting connections by its limits.

use crate::limits::{LimitedRouter, ListenerLimits};

/// How a listener speaks: cleartext (`insecure`) or TLS with a (reloading) rustls config.
#[derive(Clone)]
pub enum Listening {
    Cleartext,
    Tls(std::sync::Arc<rustls::ServerConfig>),
}

/// A served listener: dropping or firing the sender stops it; the task ends once it has.
pub type Serving = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

/// Serves `router` (built by `limits.server()`) on `listener` until the returned sender fires
/// (or is dropped), admitting connections by `limits`; `what` names it in logs and metrics.
pub fn serve(
    router: LimitedRouter,
    listener: tokio::net::TcpListener,
    how: Listening,
    limits: &ListenerLimits,
    what: &'static str,
) -> Serving {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let admission = limits.admission(what);
    let task = tokio::spawn(async move {
        let stop = async {
            let _ = rx.await;
        };
        let r = match how {
            Listening::Cleartext => {
                router
                    .serve_with_incoming_shutdown(crate::conn::incoming(listener, admission), stop)
                    .await
            }
            Listening::Tls(cfg) => {
                router
                    .serve_with_incoming_shutdown(
                        crate::tls::incoming(listener, cfg, admission),
                        stop,
                    )
                    .await
            }
        };
        if let Err(e) = r {
            tracing::error!(error = %e, "{what} server stopped");
        }
    });
    (tx, task)
}
