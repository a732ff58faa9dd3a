//! `Ingest.Write`: batches in, one ack per batch. Each batch is checked whole (who may write
//! each well it routes to, entry shapes and sizes, tags, routing) before one atomic storage
//! write, so a bad entry stores nothing of its batch and loses nothing acknowledged before it.
//! Who: the ingest secret (Gravwell's ingesters, every well), the cluster's own nodes, or a
//! caller with WRITE on each well its entries go to.

use crate::error::{Error, Result};
use crate::gate::{Gate, Pass};
use crate::node::Node;
use crate::storage::codec::EntryValue;
use crate::storage::wells::{Well, WriteOutcome};
use prost::Message as _;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;
use tributary_common::access::entity_resource;
use tributary_common::policy::Permission;
use tributary_common::throttle::Throttle;
use tributary_common::time::now_ns;
use tributary_common::trace_context;
use tributary_proto::v1::{ingest_server::Ingest, IngestAck, IngestBatch};

/// A batch's span, continuing the trace it carries (a ditto worker's batch, from another
/// cluster maybe); none while tracing is off or when it carries none (its call's span then
/// holds it).
fn batch_span(traceparent: &str) -> tracing::Span {
    if traceparent.is_empty() || !trace_context::enabled() {
        return tracing::Span::none();
    }
    trace_context::continued(
        tracing::info_span!(parent: None, "ingest.batch"),
        traceparent,
    )
}

/// Cheap to clone: request tasks take their own copy.
#[derive(Clone)]
pub struct IngestService {
    pub node: Arc<Node>,
    pub gate: Arc<Gate>,
    pub max_entry_bytes: usize,
    /// Per-connection rate limits (`[throttling]`); `None`: off.
    pub throttle: Option<Arc<Throttle>>,
}

/// A batch checked whole, its entries routed to wells, ready for one write.
struct Prepared {
    seq: u64,
    items: Vec<(Arc<Well>, u64, EntryValue)>,
    batch_id: Option<String>,
    now: i64,
    /// The batch's span, continuing the trace it carries (none while tracing is off).
    span: tracing::Span,
}

impl IngestService {
    /// The tag's id (created if new) and the owned well it routes to, which `pass` must be
    /// let write.
    async fn route(&self, tag_name: &str, field: &str, pass: &Pass) -> Result<(u32, Arc<Well>)> {
        let tag = self
            .node
            .resolve_tag(tag_name)
            .await
            .map_err(|err| match err {
                Error::InvalidArgument { reason, .. } => Error::invalid(field, reason),
                other => other,
            })?;
        let (well_name, policy) = self
            .node
            .with_catalog(|c| {
                c.well_for_tag(tag_name)
                    .map(|w| (w.name.clone(), w.policy.clone()))
            })
            .ok_or_else(|| {
                Error::FailedPrecondition(format!(
                    "tag {tag_name:?} is routed to no well and there is no default well"
                ))
            })?;
        let resource = entity_resource("well", &well_name);
        self.gate
            .require(pass, Permission::Write, &resource, &policy)?;
        Ok((tag, self.node.owned_well(field, &well_name)?))
    }

    /// Validates, resolves and stores one batch of this node's own (its ditto stats).
    pub async fn store(&self, batch: IngestBatch) -> Result<IngestAck> {
        let prepared = self.prepare(batch, &Pass::Node).await?;
        self.commit(prepared).await
    }

    /// Checks a batch whole and resolves its tags and wells; stores nothing.
    async fn prepare(&self, batch: IngestBatch, pass: &Pass) -> Result<Prepared> {
        let span = batch_span(&batch.traceparent);
        let mut prepared = self
            .check_and_route(batch, pass)
            .instrument(span.clone())
            .await?;
        prepared.span = span;
        Ok(prepared)
    }

    async fn check_and_route(&self, batch: IngestBatch, pass: &Pass) -> Result<Prepared> {
        let now = now_ns();
        let mut items = Vec::with_capacity(batch.entries.len());
        // Batches usually carry few tags: resolve each once per batch.
        let mut routes: HashMap<String, (u32, Arc<Well>)> = HashMap::new();
        for (i, e) in batch.entries.into_iter().enumerate() {
            let field = |f: &str| format!("entries[{i}].{f}");
            if e.timestamp_ns < 0 {
                return Err(Error::invalid(field("timestamp_ns"), "is before 1970"));
            }
            let size = e.data.len()
                + e.values
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>();
            if size > self.max_entry_bytes {
                return Err(Error::invalid(
                    field("data"),
                    format!(
                        "entry of {size} bytes exceeds max_entry_bytes {}",
                        self.max_entry_bytes
                    ),
                ));
            }
            let source = if e.source.is_empty() {
                None
            } else {
                Some(e.source.parse::<IpAddr>().map_err(|_| {
                    Error::invalid(
                        field("source"),
                        format!("{:?} is not an IP address", e.source),
                    )
                })?)
            };
            let tag_name = if e.tag.is_empty() {
                "default"
            } else {
                e.tag.as_str()
            };
            let (tag, well) = match routes.get(tag_name) {
                Some(r) => r.clone(),
                None => {
                    let r = self.route(tag_name, &field("tag"), pass).await?;
                    routes.insert(tag_name.to_string(), r.clone());
                    r
                }
            };
            // Timestamp 0 means "now", for clients with no clock of their own to give.
            let ts = if e.timestamp_ns == 0 {
                now
            } else {
                e.timestamp_ns
            };
            let value = EntryValue {
                tag,
                source,
                data: e.data,
                values: e.values.into_iter().collect(),
            };
            items.push((well, ts as u64, value));
        }
        Ok(Prepared {
            seq: batch.seq,
            items,
            batch_id: (!batch.batch_id.is_empty()).then_some(batch.batch_id),
            now,
            span: tracing::Span::none(),
        })
    }

    /// Stores a prepared batch in one atomic write.
    async fn commit(&self, p: Prepared) -> Result<IngestAck> {
        let Prepared {
            seq,
            items,
            batch_id,
            now,
            span,
        } = p;
        let node = self.node.clone();
        // A big batch or a RocksDB write stall must not hold an async worker.
        let outcome = tokio::task::spawn_blocking(move || {
            span.in_scope(|| node.write_entries(items, batch_id.as_deref(), now))
        })
        .await
        .map_err(|e| {
            Error::Storage(crate::storage::StorageError::Engine(format!(
                "ingest write task: {e}"
            )))
        })??;
        Ok(match outcome {
            WriteOutcome::Stored(n) => {
                metrics::counter!("tributary_ingest_entries_total").increment(n);
                IngestAck {
                    seq,
                    stored: n,
                    duplicate: false,
                }
            }
            WriteOutcome::Duplicate => IngestAck {
                seq,
                stored: 0,
                duplicate: true,
            },
        })
    }
}

#[tonic::async_trait]
impl Ingest for IngestService {
    type WriteStream = ReceiverStream<Result<IngestAck, Status>>;

    #[tracing::instrument(name = "Ingest.Write", skip_all)]
    async fn write(
        &self,
        req: Request<Streaming<IngestBatch>>,
    ) -> Result<Response<Self::WriteStream>, Status> {
        let pass = self.gate.ingest(&req).await?;
        let budget = crate::throttling::budget(self.throttle.as_ref(), &req, &pass, "Ingest.Write");
        let mut inbound = req.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        // Two stages, so batch N+1 is decoded and checked while batch N is written. Acks
        // stay in batch order; a failed batch, or a frame that cannot be read (too big,
        // garbage), is answered after every batch before it and ends the stream with that
        // error: the client learns which batch (the last acked seq + 1) and why.
        let (prepared_tx, mut prepared) = tokio::sync::mpsc::channel::<Result<Prepared, Status>>(2);
        let svc = self.clone();
        tokio::spawn(tracing::Instrument::in_current_span(async move {
            let mut last_seq = 0;
            loop {
                let p = match inbound.message().await {
                    Ok(Some(batch)) => {
                        last_seq = batch.seq;
                        // Over its budget, the connection is read no further until it refills:
                        // HTTP/2 flow control then slows the client.
                        budget.spend(batch.entries.len(), batch.encoded_len()).await;
                        svc.prepare(batch, &pass).await.map_err(Status::from)
                    }
                    Ok(None) => return,
                    Err(status) => {
                        tracing::debug!(%status, "ingest stream ended by a bad frame");
                        // tonic's "too large" names the size, not the setting.
                        let key = if status.code() == tonic::Code::OutOfRange {
                            " (max_message_bytes)"
                        } else {
                            ""
                        };
                        Err(Status::new(
                            status.code(),
                            format!(
                                "the frame after batch seq {last_seq} could not be read: {}{key}",
                                status.message()
                            ),
                        ))
                    }
                };
                let failed = p.is_err();
                if prepared_tx.send(p).await.is_err() || failed {
                    return;
                }
            }
        }));
        let svc = self.clone();
        tokio::spawn(tracing::Instrument::in_current_span(async move {
            while let Some(p) = prepared.recv().await {
                let reply = match p {
                    Ok(p) => svc.commit(p).await.map_err(Status::from),
                    Err(e) => Err(e),
                };
                let failed = reply.is_err();
                if tx.send(reply).await.is_err() || failed {
                    return;
                }
            }
        }));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
