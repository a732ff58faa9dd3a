//! Traces across clusters, by OTLP: two clusters of real server processes export their spans
//! to a receiver in this test (OpenTelemetry's collector `TraceService`, served by tonic on
//! 127.0.0.1). The test's client sets up a ditto transfer and an external mirror from cluster
//! A to cluster B under one traceparent of its own; then it finds in the receiver
//!
//! * that trace id in spans of both clusters' processes, and along A's write path (tribctl
//!   `--traceparent` and the test's own calls) a follower's call, the leader's `Raft.Forward`
//!   and its `raft.apply` (W3C context on every hop);
//! * a ditto batch's trace: A's `ditto.batch` span (read to ack) with B's `ingest.batch`
//!   (the target's write) under it;
//! * a mirror subscription's trace: A's `mirror.subscribe` and, under it, B's control plane
//!   locating the origin and B's data node serving `Streams.Subscribe`.

use anyhow::{anyhow, Result};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use tributary_common::logging::TracingConfig;
use tributary_common::trace_context::TRACEPARENT;
use tributary_integration::cluster::binary;
use tributary_integration::streams::file_stream;
use tributary_integration::{wait, Cluster, INGEST_SECRET};
use tributary_proto::v1::{
    catalog_client::CatalogClient, entity::Kind, ingest_client::IngestClient,
    streams_client::StreamsClient, Entity, IngestBatch, PublishRequest, StreamSource, Target, Well,
    WellEntry,
};

/// The test client's trace: every call it makes to set things up carries it.
const TRACE_ID: &str = "5e1f0c2a9b8d47e6a3c2b1d0e9f8a7b6";
const TRACEPARENT_SENT: &str = "00-5e1f0c2a9b8d47e6a3c2b1d0e9f8a7b6-1a2b3c4d5e6f7081-01";
/// Spans exported by these processes arrive within seconds (batches go every 500 ms).
const ARRIVE: Duration = Duration::from_secs(60);

/// One span as the receiver got it, with the process that sent it.
#[derive(Debug, Clone)]
struct Got {
    /// `service.name/service.instance.id`, e.g. `data-node/a/data-node-1`.
    process: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
}

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Got>>>);

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        req: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut got = Vec::new();
        for rs in req.into_inner().resource_spans {
            let attr = |key: &str| {
                rs.resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|kv| kv.key == key)
                    .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                    .map(|v| match v {
                        Value::StringValue(s) => s.clone(),
                        other => format!("{other:?}"),
                    })
                    .unwrap_or_default()
            };
            let process = format!("{}/{}", attr("service.name"), attr("service.instance.id"));
            for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
                got.push(Got {
                    process: process.clone(),
                    name: span.name.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                });
            }
        }
        self.0
            .lock()
            .map_err(|_| Status::internal("poisoned"))?
            .extend(got);
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    /// Serves OTLP/gRPC on a free port of 127.0.0.1; returns its endpoint.
    async fn start(&self) -> Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        Ok(format!("http://{addr}"))
    }

    fn spans(&self) -> Vec<Got> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Waits until some span satisfies `found` (given every span so far); returns its answer.
    async fn wait_for<T>(&self, what: &str, found: impl Fn(&[Got]) -> Option<T>) -> Result<T> {
        wait::until(what, ARRIVE, || {
            let spans = self.spans();
            let r = found(&spans);
            async move { r }
        })
        .await
        .map_err(|e| {
            let mut names: Vec<String> = self
                .spans()
                .iter()
                .map(|g| format!("{} {}", g.process, g.name))
                .collect();
            names.sort();
            names.dedup();
            anyhow!("{e}; spans received: {names:?}")
        })
    }
}

/// Tracing on, every trace kept, spans to `endpoint`, named `cluster/…`.
fn tracing_to(endpoint: &str, instance: String) -> TracingConfig {
    TracingConfig {
        enabled: true,
        sampler: "always".into(),
        otlp_endpoint: endpoint.to_string(),
        service_instance: instance,
        ..Default::default()
    }
}

/// Cluster `name` of real processes exporting to `endpoint`.
async fn cluster(
    name: &'static str,
    members: u64,
    insecure: bool,
    endpoint: &str,
) -> Result<Cluster> {
    let (cp, dn) = (endpoint.to_string(), endpoint.to_string());
    let mut b = Cluster::builder(name)
        .members(members)
        .member_processes()
        .data_node_processes()
        .tune_members(move |m| m.tracing = tracing_to(&cp, format!("{name}/member-{}", m.id)))
        .tune_data_nodes(move |d| {
            d.tracing = tracing_to(&dn, format!("{name}/data-node-{}", d.id))
        });
    if insecure {
        b = b.insecure();
    }
    b.start().await
}

type Traced = InterceptedService<Channel, fn(Request<()>) -> Result<Request<()>, Status>>;

/// A channel of the test client whose every call carries [`TRACEPARENT_SENT`].
fn traced(addr: &str) -> Result<Traced> {
    fn put(mut r: Request<()>) -> Result<Request<()>, Status> {
        r.metadata_mut().insert(
            TRACEPARENT,
            TRACEPARENT_SENT
                .parse()
                .map_err(|_| Status::internal("tp"))?,
        );
        Ok(r)
    }
    Ok(InterceptedService::new(
        tributary_integration::tls::channel(addr)?,
        put as fn(Request<()>) -> Result<Request<()>, Status>,
    ))
}

async fn create(addr: &str, kind: Kind) -> Result<()> {
    CatalogClient::new(traced(addr)?)
        .create(Entity { kind: Some(kind) })
        .await?;
    Ok(())
}

/// The processes (`service/instance`) that sent spans of `trace`.
/// The spans of `trace` as a tree under their parents, one line each: what an operator
/// finds in the tracing backend (printed with `--nocapture`).
fn print_trace(spans: &[Got], trace: &str) {
    fn children(spans: &[Got], trace: &str, parent: &str, depth: usize) {
        for g in spans
            .iter()
            .filter(|g| g.trace_id == trace && g.parent_span_id == parent)
        {
            println!("{:width$}{} [{}]", "", g.name, g.process, width = depth * 2);
            children(spans, trace, &g.span_id, depth + 1);
        }
    }
    println!("trace {trace}:");
    let ids: Vec<&str> = spans
        .iter()
        .filter(|g| g.trace_id == trace)
        .map(|g| g.span_id.as_str())
        .collect();
    let mut roots: Vec<&str> = spans
        .iter()
        .filter(|g| g.trace_id == trace && !ids.contains(&g.parent_span_id.as_str()))
        .map(|g| g.parent_span_id.as_str())
        .collect();
    roots.sort();
    roots.dedup();
    for r in roots {
        children(spans, trace, r, 1);
    }
}

fn processes_of(spans: &[Got], trace: &str) -> Vec<String> {
    let mut p: Vec<String> = spans
        .iter()
        .filter(|g| g.trace_id == trace)
        .map(|g| g.process.clone())
        .collect();
    p.sort();
    p.dedup();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_both_clusters_of_a_ditto_transfer_and_an_external_mirror() -> Result<()> {
    // The servers inherit it: spans leave every 500 ms instead of OpenTelemetry's 5 s.
    std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "500");
    let receiver = Receiver::default();
    let endpoint = receiver.start().await?;
    // B: the ditto target and the mirror's origin, cleartext (as the ditto tests' targets).
    let b = cluster("b", 1, true, &endpoint).await?;
    // A: three members (a write through a follower is forwarded), TLS.
    let a = cluster("a", 3, false, &endpoint).await?;

    let b_cp = b.cp_addr(1)?;
    create(
        &b_cp,
        Kind::Well(Well {
            name: "all".into(),
            default_well: true,
            ..Default::default()
        }),
    )
    .await?;
    b.wait_well_served("all", 1).await?;
    let mut ext = file_stream("EXT", &["ext.>"]);
    ext.owner_node = 1;
    create(&b_cp, Kind::Stream(ext)).await?;
    b.wait_stream_served("EXT", 1).await?;
    let mut publish = StreamsClient::new(traced(&b.data_addr(1)?)?);
    for i in 0..5 {
        publish
            .publish(PublishRequest {
                subject: "ext.in".into(),
                data: format!("m{i}").into_bytes().into(),
                ..Default::default()
            })
            .await?;
    }

    // A's catalogue writes go through a follower.
    let leader = a.wait_leader().await?;
    let follower = a
        .member_ids()
        .into_iter()
        .find(|id| *id != leader)
        .ok_or_else(|| anyhow!("no follower"))?;
    let via = a.cp_addr(follower)?;
    create(
        &via,
        Kind::Target(Target {
            name: "dr".into(),
            cleartext_endpoints: vec![b.endpoint(1)?],
            ingest_secret: INGEST_SECRET.into(),
            ..Default::default()
        }),
    )
    .await?;
    // The well by tribctl, its trace context given as `--traceparent`.
    let files = a
        .tls()
        .ok_or_else(|| anyhow!("cluster a speaks TLS"))?
        .client();
    let out = tokio::process::Command::new(binary("tribctl")?)
        .arg("--server")
        .arg(&via)
        .arg("--ca")
        .arg(&files.ca_file)
        .arg("--cert")
        .arg(&files.cert_file)
        .arg("--key")
        .arg(&files.key_file)
        .args(["--traceparent", TRACEPARENT_SENT])
        .args([
            "well",
            "create",
            "src",
            "--tags",
            "t",
            "--ditto-target",
            "dr",
        ])
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "tribctl well create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    a.wait_well_served("src", 1).await?;
    let mut mx = file_stream("MX", &[]);
    mx.owner_node = 1;
    mx.mirror = Some(StreamSource {
        stream: "EXT".into(),
        external: b_cp.clone(),
        ..Default::default()
    });
    create(&via, Kind::Stream(mx)).await?;
    let entries: Vec<WellEntry> = (0..20)
        .map(|i| WellEntry {
            tag: "t".into(),
            data: format!("e{i}").into_bytes().into(),
            ..Default::default()
        })
        .collect();
    let mut req = Request::new(tokio_stream::iter(vec![IngestBatch {
        seq: 1,
        entries,
        ..Default::default()
    }]));
    req.metadata_mut().insert(
        tributary_common::grpc::INGEST_SECRET_HEADER,
        INGEST_SECRET.parse()?,
    );
    let mut acks = IngestClient::new(traced(&a.data_addr(1)?)?)
        .write(req)
        .await?
        .into_inner();
    acks.message().await?.ok_or_else(|| anyhow!("no ack"))?;

    // The copies happen (what the traces are of).
    b.wait_entries(1, "all", 20).await?;
    a.wait_caught_up(1, "MX", 5).await?;

    // The client's trace, in both clusters, along A's write path through the follower.
    let follower_name = format!("control-plane/a/member-{follower}");
    let leader_name = format!("control-plane/a/member-{leader}");
    receiver
        .wait_for("the client's trace in both clusters", |spans| {
            let mine: Vec<&Got> = spans.iter().filter(|g| g.trace_id == TRACE_ID).collect();
            let has = |process: &str, name: &str| {
                mine.iter()
                    .any(|g| g.process == process && g.name.contains(name))
            };
            // The test's two creates through the follower and tribctl's.
            let creates = mine
                .iter()
                .filter(|g| g.process == follower_name && g.name.contains("Catalog/Create"))
                .count();
            (creates >= 3
                && has(&leader_name, "Raft/Forward")
                && has(&leader_name, "raft.apply")
                && has("data-node/a/data-node-1", "Ingest/Write")
                && has("control-plane/b/member-1", "Catalog/Create")
                && has("data-node/b/data-node-1", "Streams/Publish"))
            .then_some(())
        })
        .await?;
    // The first call's span is the child of the client's span.
    let spans = receiver.spans();
    assert!(
        spans.iter().any(|g| g.trace_id == TRACE_ID
            && g.parent_span_id == "1a2b3c4d5e6f7081"
            && g.process == follower_name),
        "the follower's span continues the client's span"
    );

    // A ditto batch: read on A, written on B, one trace, B's write under A's batch.
    let (trace, processes) = receiver
        .wait_for("a ditto batch's trace from A into B", |spans| {
            spans
                .iter()
                .filter(|g| g.name == "ingest.batch" && g.process == "data-node/b/data-node-1")
                .find_map(|w| {
                    let batch = spans.iter().find(|g| {
                        g.name == "ditto.batch"
                            && g.process == "data-node/a/data-node-1"
                            && g.span_id == w.parent_span_id
                            && g.trace_id == w.trace_id
                    })?;
                    Some((batch.trace_id.clone(), processes_of(spans, &batch.trace_id)))
                })
        })
        .await?;
    assert!(
        processes.contains(&"data-node/a/data-node-1".to_string())
            && processes.contains(&"data-node/b/data-node-1".to_string()),
        "ditto trace {trace}: {processes:?}"
    );
    print_trace(&receiver.spans(), &trace);

    // The mirror's subscription: A's worker, B's control plane locating EXT, B's data node
    // serving the subscription, one trace.
    let processes = receiver
        .wait_for("a mirror subscription's trace from A into B", |spans| {
            spans
                .iter()
                .filter(|g| g.name == "mirror.subscribe" && g.process == "data-node/a/data-node-1")
                .map(|s| processes_of(spans, &s.trace_id))
                .find(|p| {
                    p.contains(&"control-plane/b/member-1".to_string())
                        && p.contains(&"data-node/b/data-node-1".to_string())
                })
        })
        .await?;
    assert!(
        processes.contains(&"data-node/a/data-node-1".to_string()),
        "{processes:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}
