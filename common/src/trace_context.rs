//! The W3C trace context (`traceparent`, `tracestate`) on every gRPC hop: read by one tower
//! layer on every server listener ([`ServerTraceLayer`], in `limits::LimitedServer`), which
//! runs each call in a span continuing the caller's trace; written by one interceptor on every
//! channel the servers build ([`traced`]), from the span the call is made in. Streams that
//! carry many units of work on one long call (a ditto target's `Ingest.Write`) put a
//! traceparent in each message instead ([`traceparent_of`], [`continued`]).
//!
//! Tracing is off unless `logging::init_with_tracing` installed an exporter: then every
//! function here is a check of one flag, and a call passes through untouched.

use futures::future::Either;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tower::{Layer, Service};
use tracing::instrument::Instrumented;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C header that carries the trace id, the caller's span id and the sampled flag.
pub const TRACEPARENT: &str = "traceparent";

/// Calls that start no trace of their own (their caller's traceparent, when sent, is still
/// followed): the transports and keep-alives that run many times a second whatever clients
/// do, which would otherwise fill the sampler's budget with traces nobody asked for.
const UNTRACED: [&str; 5] = [
    "/tributary.v1.Raft/Send",
    "/tributary.v1.Raft/NodeState",
    "/tributary.v1.StreamGroups/Send",
    "/tributary.v1.Cluster/Heartbeat",
    "/grpc.health.v1.Health/Check",
];

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans go out (an OTLP exporter is installed in this process).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

pub(crate) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// A traceparent that is not `00-<32 hex>-<16 hex>-<2 hex>` with non-zero ids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "traceparent {0:?} is not a W3C trace context: want 00-<32 hex trace id>-<16 hex span id>-<2 \
     hex flags>, ids not all zeros (e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01)"
)]
pub struct BadTraceparent(pub String);

/// Checks `value` as a W3C `traceparent` (version 00), the form every hop forwards.
pub fn parse_traceparent(value: &str) -> Result<(), BadTraceparent> {
    let bad = || BadTraceparent(value.to_string());
    let parts: Vec<&str> = value.trim().split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let zeros = |s: &str| s.bytes().all(|b| b == b'0');
    match parts.as_slice() {
        [v, trace, span, flags]
            if *v == "00"
                && hex(trace, 32)
                && hex(span, 16)
                && hex(flags, 2)
                && !zeros(trace)
                && !zeros(span)
                && trace
                    .bytes()
                    .chain(span.bytes())
                    .all(|b| !b.is_ascii_uppercase()) =>
        {
            Ok(())
        }
        _ => Err(bad()),
    }
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct Metadata<'a>(&'a mut MetadataMap);

impl Injector for Metadata<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(k, v);
        }
    }
}

struct One<'a>(&'a str);

impl Extractor for One<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == TRACEPARENT).then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}

struct Captured(Option<String>);

impl Injector for Captured {
    fn set(&mut self, key: &str, value: String) {
        if key == TRACEPARENT {
            self.0 = Some(value);
        }
    }
}

/// `span`'s traceparent, for a message that carries its own (empty when tracing is off or
/// the span is not recorded).
pub fn traceparent_of(span: &tracing::Span) -> String {
    if !enabled() {
        return String::new();
    }
    let mut out = Captured(None);
    TraceContextPropagator::new().inject_context(&span.context(), &mut out);
    out.0.unwrap_or_default()
}

/// `span` continuing the trace of `traceparent` (a message's own; empty: none), and `span`.
pub fn continued(span: tracing::Span, traceparent: &str) -> tracing::Span {
    if enabled() && !traceparent.is_empty() {
        let parent = TraceContextPropagator::new().extract(&One(traceparent));
        let _ = span.set_parent(parent);
    }
    span
}

/// Puts the trace context of the span a call is made in on the call, unless the caller set
/// a traceparent itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct InjectTraceContext;

impl tonic::service::Interceptor for InjectTraceContext {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if enabled() && !req.metadata().contains_key(TRACEPARENT) {
            let cx = tracing::Span::current().context();
            TraceContextPropagator::new().inject_context(&cx, &mut Metadata(req.metadata_mut()));
        }
        Ok(req)
    }
}

/// A channel whose calls carry the caller's trace context.
pub type TracedChannel = InterceptedService<Channel, InjectTraceContext>;

/// `channel` with the trace context put on every call: every channel a server opens.
pub fn traced(channel: Channel) -> TracedChannel {
    InterceptedService::new(channel, InjectTraceContext)
}

/// Runs every call of a listener in a server span that continues the caller's trace (its
/// `traceparent`), or starts one (sampled as configured), except [`UNTRACED`] calls that
/// come without one.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerTraceLayer;

impl<S> Layer<S> for ServerTraceLayer {
    type Service = ServerTrace<S>;

    fn layer(&self, inner: S) -> ServerTrace<S> {
        ServerTrace { inner }
    }
}

#[derive(Debug, Clone)]
pub struct ServerTrace<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for ServerTrace<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, Instrumented<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if !enabled() {
            return Either::Left(self.inner.call(req));
        }
        let path = req.uri().path();
        let from_caller = req.headers().contains_key(TRACEPARENT);
        if !from_caller && UNTRACED.contains(&path) {
            return Either::Left(self.inner.call(req));
        }
        let span = tracing::info_span!(
            parent: None,
            "grpc",
            otel.name = path.trim_start_matches('/'),
            otel.kind = "server",
            rpc.system = "grpc",
        );
        if from_caller {
            let parent = TraceContextPropagator::new().extract(&Headers(req.headers()));
            let _ = span.set_parent(parent);
        }
        let fut = span.in_scope(|| self.inner.call(req));
        Either::Right(fut.instrument(span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_are_checked_for_their_w3c_shape() {
        assert!(
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_ok()
        );
        for bad in [
            "",
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            let e = parse_traceparent(bad).expect_err(bad);
            assert!(e.to_string().contains("W3C"), "{e}");
        }
    }

    #[test]
    fn off_nothing_is_carried() {
        // No exporter installed in this test process.
        assert!(traceparent_of(&tracing::Span::none()).is_empty());
        let mut i = InjectTraceContext;
        let req = tonic::service::Interceptor::call(&mut i, tonic::Request::new(())).unwrap();
        assert!(req.metadata().get(TRACEPARENT).is_none());
    }
}
