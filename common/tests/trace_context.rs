//! The trace context with tracing on (an exporter installed, its collector absent): what the
//! client interceptor puts on a call, the server layer continues; a message's own
//! traceparent is continued too; internal transports start no trace. A process of its own,
//! since tracing is process-wide.

use opentelemetry::trace::{TraceContextExt, TraceId};
use std::convert::Infallible;
use tonic::service::Interceptor;
use tower::{Layer, Service, ServiceExt};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tributary_common::logging::{init_with_tracing, LoggingConfig, TracingConfig};
use tributary_common::trace_context::{
    continued, enabled, traceparent_of, InjectTraceContext, ServerTraceLayer, TRACEPARENT,
};

fn trace_of(span: &tracing::Span) -> TraceId {
    span.context().span().span_context().trace_id()
}

/// The trace id of the span a call's handler runs in.
async fn handled_in(req: http::Request<()>) -> TraceId {
    let handler = tower::service_fn(|_: http::Request<()>| async {
        Ok::<_, Infallible>(trace_of(&tracing::Span::current()))
    });
    let mut svc = ServerTraceLayer.layer(handler);
    let ready = svc.ready().await.expect("infallible");
    ready.call(req).await.expect("infallible")
}

fn request(path: &str, traceparent: Option<&str>) -> http::Request<()> {
    let mut b = http::Request::builder().uri(path);
    if let Some(tp) = traceparent {
        b = b.header(TRACEPARENT, tp);
    }
    b.body(()).expect("request")
}

#[tokio::test]
async fn a_call_continues_its_callers_trace() {
    let logging = LoggingConfig {
        disable_sysout_log: true,
        ..Default::default()
    };
    let tracing_on = TracingConfig {
        enabled: true,
        sampler: "always".into(),
        // Nobody listens: spans are dropped when the export fails, nothing else.
        otlp_endpoint: "http://127.0.0.1:9".into(),
        ..Default::default()
    };
    let _guard = init_with_tracing(&logging, &tracing_on, "test", "test-1").expect("installed");
    assert!(enabled());

    // The client side: the span a call is made in goes on the call.
    let caller = tracing::info_span!("caller");
    let req = caller.in_scope(|| {
        InjectTraceContext
            .call(tonic::Request::new(()))
            .expect("intercepted")
    });
    let sent = req
        .metadata()
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .expect("a traceparent on the call")
        .to_string();
    assert_ne!(trace_of(&caller), TraceId::INVALID);
    assert!(sent.contains(&trace_of(&caller).to_string()), "{sent}");

    // The server side continues it.
    let got = handled_in(request("/tributary.v1.Catalog/Create", Some(&sent))).await;
    assert_eq!(got, trace_of(&caller));
    // Without one, a call starts a trace of its own; an internal transport starts none.
    let own = handled_in(request("/tributary.v1.Catalog/Get", None)).await;
    assert!(own != TraceId::INVALID && own != trace_of(&caller));
    let none = handled_in(request("/tributary.v1.Raft/Send", None)).await;
    assert_eq!(none, TraceId::INVALID);
    // ...unless its caller sent one.
    let followed = handled_in(request("/tributary.v1.Raft/Send", Some(&sent))).await;
    assert_eq!(followed, trace_of(&caller));

    // A message's own traceparent (a ditto batch's) is continued the same way.
    let batch = tracing::info_span!(parent: None, "ditto.batch");
    let carried = traceparent_of(&batch);
    let written = continued(tracing::info_span!(parent: None, "ingest.batch"), &carried);
    assert_eq!(trace_of(&written), trace_of(&batch));
}
