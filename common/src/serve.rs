//! Serving a gRPC router on a bound listener, cleartext or TLS, until told to stop: the one
//! server loop of every listener of both servers.

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

/// Serves `router` on `listener` until the returned sender fires (or is dropped).
pub fn serve(
    router: tonic::transport::server::Router,
    listener: tokio::net::TcpListener,
    how: Listening,
    what: &'static str,
) -> Serving {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stop = async {
            let _ = rx.await;
        };
        let r = match how {
            Listening::Cleartext => {
                router
                    .serve_with_incoming_shutdown(crate::grpc::incoming(listener), stop)
                    .await
            }
            Listening::Tls(cfg) => {
                router
                    .serve_with_incoming_shutdown(crate::tls::incoming(listener, cfg), stop)
                    .await
            }
        };
        if let Err(e) = r {
            tracing::error!(error = %e, "{what} server stopped");
        }
    });
    (tx, task)
}
