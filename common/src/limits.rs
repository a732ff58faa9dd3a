//! The limits every gRPC listener of both servers keeps whatever its clients do: connections
//! at once, calls at once on one connection, keepalive and idle timeouts, a deadline on each
//! call's handler, and the size of a call's metadata. Over a limit a client waits (its extra
//! streams), is closed (a connection beyond `max_connections`, with a log line and a metric)
//! or gets a status naming the key; the server stays up. Keys live in each server's `[grpc]`.

use crate::conn::Admission;
use crate::telemetry::grpc_calls::GrpcMetricsLayer;
use crate::trace_context::ServerTraceLayer;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::Status;
use tower::layer::util::{Identity, Stack};
use tower::{Layer, Service};

/// The `[grpc]` section of both servers: the limits of each of their gRPC listeners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListenerLimits {
    /// Connections served at once on one listener; a connection beyond is closed on accept.
    pub max_connections: usize,
    /// Calls in flight on one connection (HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`): a
    /// client's further calls wait in the client until one ends.
    pub max_concurrent_streams: u32,
    /// HTTP/2 pings to a connection heard nothing from for this long; `0s`: none.
    #[serde(with = "crate::duration::human")]
    pub keepalive_interval: Duration,
    /// A ping unanswered for this long closes the connection (a dead or stuck peer).
    #[serde(with = "crate::duration::human")]
    pub keepalive_timeout: Duration,
    /// A connection nothing arrives on for this long is closed: a peer that connected and
    /// never spoke, or stopped answering. A live client answers the keepalive pings, so this
    /// must exceed `keepalive_interval + keepalive_timeout`; `0s`: never.
    #[serde(with = "crate::duration::human")]
    pub idle_timeout: Duration,
    /// How long a call's handler may take to answer (the whole of a unary call; a streaming
    /// call's setup, not the stream); then `DEADLINE_EXCEEDED` naming this key. `0s`: no limit.
    #[serde(with = "crate::duration::human")]
    pub request_timeout: Duration,
    /// Bytes of one call's metadata (HTTP/2 header list: credentials, secrets, trace context).
    pub max_header_list_bytes: u32,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_concurrent_streams: 256,
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(30),
            max_header_list_bytes: 16 << 10,
        }
    }
}

/// The layers of every listener: the call metrics outermost (they see the deadline's status
/// too), then each call in a span continuing its caller's trace (`trace_context`), then the
/// deadline on handlers.
pub type ListenerLayers =
    Stack<DeadlineLayer, Stack<ServerTraceLayer, Stack<GrpcMetricsLayer, Identity>>>;
/// The server every listener is built from: the limits applied, every call counted and timed,
/// the trace context read, a deadline on handlers.
pub type LimitedServer = tonic::transport::Server<ListenerLayers>;
/// A router built on a [`LimitedServer`].
pub type LimitedRouter = tonic::transport::server::Router<ListenerLayers>;

fn some_if_set(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

impl ListenerLimits {
    /// Checks the keys (of section `section`); the error names the bad one.
    pub fn validate(&self, section: &str) -> Result<(), String> {
        let key = |k: &str| format!("key `{section}.{k}`");
        if self.max_connections == 0 {
            return Err(format!("{}: must be 1 or more", key("max_connections")));
        }
        if self.max_concurrent_streams == 0 {
            return Err(format!(
                "{}: must be 1 or more",
                key("max_concurrent_streams")
            ));
        }
        if self.max_header_list_bytes < 1024 {
            return Err(format!(
                "{}: must be at least 1024 (credentials travel in it)",
                key("max_header_list_bytes")
            ));
        }
        if !self.keepalive_interval.is_zero() && self.keepalive_timeout.is_zero() {
            return Err(format!(
                "{}: must be more than 0s while keepalive_interval is set",
                key("keepalive_timeout")
            ));
        }
        if !self.idle_timeout.is_zero() {
            let heard_every = self.keepalive_interval + self.keepalive_timeout;
            if self.keepalive_interval.is_zero() || self.idle_timeout <= heard_every {
                return Err(format!(
                    "{}: must exceed keepalive_interval + keepalive_timeout ({}), with \
                     keepalive on, so that a live client is never cut; or 0s (off)",
                    key("idle_timeout"),
                    humantime::format_duration(heard_every)
                ));
            }
        }
        Ok(())
    }

    /// A gRPC server with these limits (HTTP/2 settings and the handler deadline), whose
    /// calls are counted and timed (`telemetry::grpc_calls`).
    pub fn server(&self) -> LimitedServer {
        // Registered at 0, so `rate()` reads it before the first call over the limit.
        metrics::counter!("tributary_request_deadline_exceeded_total").increment(0);
        tonic::transport::Server::builder()
            .max_concurrent_streams(self.max_concurrent_streams)
            .http2_keepalive_interval(some_if_set(self.keepalive_interval))
            .http2_keepalive_timeout(some_if_set(self.keepalive_timeout))
            .http2_max_header_list_size(self.max_header_list_bytes)
            // Added first: outermost (tonic stacks each new layer inside the ones before).
            .layer(GrpcMetricsLayer)
            .layer(ServerTraceLayer)
            .layer(DeadlineLayer {
                timeout: some_if_set(self.request_timeout),
            })
    }

    /// Who a listener lets in: at most `max_connections`, silent ones closed after
    /// `idle_timeout`. `what` names the listener in logs and metrics.
    pub fn admission(&self, what: &'static str) -> Admission {
        Admission::new(self.max_connections, some_if_set(self.idle_timeout), what)
    }
}

/// Ends a call whose handler has not answered within the limit with `DEADLINE_EXCEEDED`
/// naming `grpc.request_timeout` (tonic's own timeout says `CANCELLED`, naming nothing).
#[derive(Debug, Clone)]
pub struct DeadlineLayer {
    timeout: Option<Duration>,
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            timeout: self.timeout,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    timeout: Option<Duration>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> Service<http::Request<B>> for Deadline<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path().to_string();
        let fut = self.inner.call(req);
        let Some(limit) = self.timeout else {
            return Box::pin(fut);
        };
        Box::pin(async move {
            match tokio::time::timeout(limit, fut).await {
                Ok(r) => r,
                Err(_) => {
                    metrics::counter!("tributary_request_deadline_exceeded_total").increment(1);
                    tracing::debug!(%path, "call over grpc.request_timeout");
                    Ok(Status::deadline_exceeded(format!(
                        "{path} took longer than grpc.request_timeout ({})",
                        humantime::format_duration(limit)
                    ))
                    .into_http())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_keys_are_named() {
        assert!(ListenerLimits::default().validate("grpc").is_ok());
        let bad = |f: fn(&mut ListenerLimits), key: &str| {
            let mut l = ListenerLimits::default();
            f(&mut l);
            let e = l.validate("grpc").expect_err(key);
            assert!(e.contains(&format!("`grpc.{key}`")), "{e}");
        };
        bad(|l| l.max_connections = 0, "max_connections");
        bad(|l| l.max_concurrent_streams = 0, "max_concurrent_streams");
        bad(|l| l.max_header_list_bytes = 10, "max_header_list_bytes");
        bad(
            |l| l.keepalive_timeout = Duration::ZERO,
            "keepalive_timeout",
        );
        bad(|l| l.idle_timeout = Duration::from_secs(40), "idle_timeout");
        bad(|l| l.keepalive_interval = Duration::ZERO, "idle_timeout");
        let off = ListenerLimits {
            keepalive_interval: Duration::ZERO,
            idle_timeout: Duration::ZERO,
            request_timeout: Duration::ZERO,
            ..Default::default()
        };
        assert!(off.validate("grpc").is_ok());
    }

    /// A handler that answers after a minute.
    struct Slow;

    impl Service<http::Request<()>> for Slow {
        type Response = http::Response<tonic::body::Body>;
        type Error = std::convert::Infallible;
        type Future = BoxFuture<Self::Response, Self::Error>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(http::Response::new(tonic::body::Body::empty()))
            })
        }
    }

    #[tokio::test]
    async fn a_slow_handler_gets_deadline_exceeded_naming_the_key() {
        let mut svc = DeadlineLayer {
            timeout: Some(Duration::from_millis(50)),
        }
        .layer(Slow);
        let req = http::Request::builder()
            .uri("/tributary.v1.Streams/Purge")
            .body(())
            .expect("request");
        let resp = svc.call(req).await.expect("infallible");
        let status = Status::from_header_map(resp.headers()).expect("a grpc status");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        assert!(
            status.message().contains("grpc.request_timeout")
                && status.message().contains("Streams/Purge"),
            "{}",
            status.message()
        );
    }
}
