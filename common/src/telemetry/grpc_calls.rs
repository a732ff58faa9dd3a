//! The one tower layer that counts and times every gRPC call of every listener of both servers
//! (`ListenerLimits::server` puts it outermost): `tributary_grpc_requests_total{service,
//! method,code}` and `tributary_grpc_request_duration_seconds{service,method}`.
//!
//! The code is read where gRPC puts it: from the response headers of a trailers-only answer
//! (an error before any message), else from the trailers at the end of the response body. So
//! a streaming call is counted and timed **when its stream ends** (its duration is the whole
//! stream); a stream the client drops before the trailers is counted as `Canceled`.
//! A path no service serves (the router answers `Unimplemented`) is counted under
//! `service="unknown",method="unknown"`, so scanners cannot grow the label sets.

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tower::{Layer, Service};

/// The codes' names as grpc-go spells them (what gRPC dashboards expect), by number.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];
const UNIMPLEMENTED: usize = 12;
const UNKNOWN: usize = 2;
const CANCELED: usize = 1;

/// Counts and times every call of the service it wraps.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcMetricsLayer;

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> GrpcMetrics<S> {
        GrpcMetrics { inner }
    }
}

#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> Service<http::Request<B>> for GrpcMetrics<S>
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
        let call = Call {
            path: req.uri().path().to_string(),
            started: Instant::now(),
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = match fut.await {
                Ok(r) => r,
                Err(e) => {
                    // The connection's service failed: no gRPC answer at all.
                    call.record(UNKNOWN);
                    return Err(e);
                }
            };
            let (parts, body) = resp.into_parts();
            let header_code = code_of(&parts.headers);
            if let (Some(code), true) = (header_code, body.is_end_stream()) {
                call.record(code);
                return Ok(http::Response::from_parts(parts, body));
            }
            let body = tonic::body::Body::new(Timed {
                inner: body,
                call: Some(call),
                header_code,
            });
            Ok(http::Response::from_parts(parts, body))
        })
    }
}

/// The `grpc-status` of a header map, as an index into [`CODE_NAMES`].
fn code_of(headers: &http::HeaderMap) -> Option<usize> {
    let n: usize = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(if n < CODE_NAMES.len() { n } else { UNKNOWN })
}

/// `/tributary.v1.Streams/Publish` → (`tributary.v1.Streams`, `Publish`).
fn service_and_method(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

struct Call {
    path: String,
    started: Instant,
}

impl Call {
    fn record(&self, code: usize) {
        let (service, method) = match service_and_method(&self.path) {
            Some(sm) if code != UNIMPLEMENTED => sm,
            _ => ("unknown", "unknown"),
        };
        let (service, method) = (service.to_string(), method.to_string());
        metrics::counter!(
            "tributary_grpc_requests_total",
            "service" => service.clone(),
            "method" => method.clone(),
            "code" => CODE_NAMES[code]
        )
        .increment(1);
        metrics::histogram!(
            "tributary_grpc_request_duration_seconds",
            "service" => service,
            "method" => method
        )
        .record(self.started.elapsed().as_secs_f64());
    }
}

/// A response body that records its call once the trailers pass (or it ends or is dropped).
struct Timed {
    inner: tonic::body::Body,
    call: Option<Call>,
    header_code: Option<usize>,
}

impl Timed {
    fn finish(&mut self, code: usize) {
        if let Some(call) = self.call.take() {
            call.record(code);
        }
    }
}

impl HttpBody for Timed {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(code_of) {
                    self.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.finish(UNKNOWN),
            Poll::Ready(None) => {
                let code = self.header_code.unwrap_or(UNKNOWN);
                self.finish(code);
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        // Dropped before the trailers: the client went away (or the connection did).
        let code = self.header_code.unwrap_or(CANCELED);
        self.finish(code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method_and_codes_are_named() {
        assert_eq!(
            service_and_method("/tributary.v1.Streams/Publish"),
            Some(("tributary.v1.Streams", "Publish"))
        );
        assert_eq!(service_and_method("/nothing"), None);
        assert_eq!(service_and_method("/a/b/c"), None);
        let mut h = http::HeaderMap::new();
        assert_eq!(code_of(&h), None);
        h.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(code_of(&h).map(|c| CODE_NAMES[c]), Some("NotFound"));
        h.insert("grpc-status", http::HeaderValue::from_static("99"));
        assert_eq!(code_of(&h).map(|c| CODE_NAMES[c]), Some("Unknown"));
    }
}
