//! The `Streams` service: publish (single and pipelined), get, subscribe, info, purge,
//! delete. Each handler finds the owned stream, checks its caller may (a stream secret, a node
//! of the cluster, or WRITE to publish, purge and delete, READ to get, subscribe and see
//! info), calls its store, maps the result.

pub mod limits;
pub mod subscribe;

use crate::error::{Error, Result};
use crate::gate::{Gate, Pass};
use crate::node::replication::ReplicationBoard;
use crate::node::Node;
use crate::storage::streams::StreamStore;
use crate::storage::NewMessage;
use futures::StreamExt;
use limits::PublishLimits;
use prost::Message as _;
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tributary_common::access::entity_resource;
use tributary_common::policy::Permission;
use tributary_common::throttle::Throttle;
use tributary_common::time::now_ns;
use tributary_proto::v1::{
    streams_server::Streams, DeleteMessageReply, DeleteMessageRequest, GetMessageRequest, PubAck,
    PubAckBatch, PublishBatch, PublishRequest, PurgeReply, PurgeRequest, StreamInfoReply,
    StreamInfoRequest, StreamMessage, StreamState, SubscribeEvent, SubscribeRequest,
};

/// Most publishes committed in one write by `PublishStream`.
const PUBLISH_GROUP: usize = 512;

fn new_message(
    subject: String,
    headers: std::collections::HashMap<String, String>,
    data: bytes::Bytes,
) -> NewMessage {
    NewMessage {
        subject,
        headers: headers.into_iter().collect(),
        data,
        timestamp_ns: now_ns(),
    }
}

fn error_ack(id: u64, e: &impl std::fmt::Display) -> PubAck {
    PubAck {
        id,
        error: e.to_string(),
        ..Default::default()
    }
}

/// Commits the pending run of publishes to one stream and appends their acks.
fn flush(
    acks: &mut Vec<PubAck>,
    run: &mut Vec<(u64, NewMessage, Option<u64>)>,
    store: Option<Arc<StreamStore>>,
) {
    let Some(store) = store else { return };
    let (ids, msgs): (Vec<u64>, Vec<(NewMessage, Option<u64>)>) =
        run.drain(..).map(|(id, m, e)| (id, (m, e))).unzip();
    let results = store.publish_batch(msgs);
    metrics::counter!("tributary_stream_published_total")
        .increment(results.iter().filter(|r| r.is_ok()).count() as u64);
    for (id, r) in ids.into_iter().zip(results) {
        acks.push(match r {
            Ok(r) => PubAck {
                stream: store.name.clone(),
                seq: r.seq,
                duplicate: r.duplicate,
                id,
                error: String::new(),
            },
            Err(e) => error_ack(id, &e),
        });
    }
}

#[derive(Clone)]
pub struct StreamsService {
    pub node: Arc<Node>,
    /// What this node's mirror and source workers report, for `Info`.
    pub replication: Arc<ReplicationBoard>,
    pub gate: Arc<Gate>,
    /// What a subject and a message's headers may be (`[limits]`).
    pub limits: PublishLimits,
    /// Per-connection rate limits (`[throttling]`) on publishing and delivery; `None`: off.
    pub throttle: Option<Arc<Throttle>>,
}

impl StreamsService {
    /// Whether `pass` holds `permission` on stream `name`.
    fn allowed(&self, pass: &Pass, permission: Permission, name: &str) -> Result<()> {
        let policy = self
            .node
            .with_catalog(|c| c.streams.get(name).map(|s| s.policy.clone()))
            .unwrap_or_default();
        let resource = entity_resource("stream", name);
        Ok(self.gate.require(pass, permission, &resource, &policy)?)
    }

    /// The owned stream `name` (field `stream`), if the caller holds `permission` on it.
    async fn owned<T>(
        &self,
        req: &Request<T>,
        permission: Permission,
        name: &str,
    ) -> Result<Arc<StreamStore>> {
        Ok(self.owned_with_pass(req, permission, name).await?.0)
    }

    /// As [`Self::owned`], with how the caller got in.
    async fn owned_with_pass<T>(
        &self,
        req: &Request<T>,
        permission: Permission,
        name: &str,
    ) -> Result<(Arc<StreamStore>, Pass)> {
        let pass = self.gate.streams(req).await?;
        let store = self.node.owned_stream("stream", name)?;
        self.allowed(&pass, permission, &store.name)?;
        Ok((store, pass))
    }

    /// The owned stream taking `subject`, if `pass` may publish to it.
    fn stream_for(&self, subject: &str, pass: &Pass) -> Result<Arc<StreamStore>> {
        tributary_common::subject::validate_literal(subject)
            .map_err(|e| Error::invalid("subject", e.to_string()))?;
        let (name, mirror) = self
            .node
            .with_catalog(|c| {
                c.stream_for_subject(subject)
                    .map(|s| (s.name.clone(), s.mirror.is_some()))
            })
            .ok_or_else(|| Error::not_found("stream for subject", subject))?;
        self.allowed(pass, Permission::Write, &name)?;
        if mirror {
            return Err(Error::FailedPrecondition(format!(
                "stream {name} is a mirror and takes no publishes"
            )));
        }
        self.node.owned_stream("subject", &name)
    }

    /// Publishes in order; runs of requests for the same stream are committed together.
    pub fn publish_group(&self, reqs: Vec<PublishRequest>, pass: &Pass) -> Vec<PubAck> {
        let mut acks = Vec::with_capacity(reqs.len());
        let mut run: Vec<(u64, NewMessage, Option<u64>)> = Vec::new();
        let mut run_store: Option<Arc<StreamStore>> = None;
        // The subject `run_store` was found for: a pipelined publisher mostly repeats it.
        let mut run_subject = String::new();
        for req in reqs {
            if let Err(e) = self.limits.message(&req.subject, &req.headers) {
                flush(&mut acks, &mut run, run_store.take());
                acks.push(error_ack(req.id, &e));
                continue;
            }
            if run_store.is_none() || req.subject != run_subject {
                match self.stream_for(&req.subject, pass) {
                    Ok(store) => {
                        if run_store.as_ref().is_some_and(|s| !Arc::ptr_eq(s, &store)) {
                            flush(&mut acks, &mut run, run_store.take());
                        }
                        run_store = Some(store);
                        run_subject.clone_from(&req.subject);
                    }
                    Err(e) => {
                        flush(&mut acks, &mut run, run_store.take());
                        acks.push(error_ack(req.id, &e));
                        continue;
                    }
                }
            }
            run.push((
                req.id,
                new_message(req.subject, req.headers, req.data),
                (req.expected_last_seq > 0).then_some(req.expected_last_seq),
            ));
        }
        flush(&mut acks, &mut run, run_store);
        acks
    }

    pub fn publish_one(&self, req: PublishRequest, pass: &Pass) -> Result<PubAck> {
        self.limits.message(&req.subject, &req.headers)?;
        let store = self.stream_for(&req.subject, pass)?;
        let r = store.publish(
            new_message(req.subject, req.headers, req.data),
            (req.expected_last_seq > 0).then_some(req.expected_last_seq),
        )?;
        metrics::counter!("tributary_stream_published_total").increment(1);
        Ok(PubAck {
            stream: store.name.clone(),
            seq: r.seq,
            duplicate: r.duplicate,
            id: req.id,
            error: String::new(),
        })
    }
}

#[tonic::async_trait]
impl Streams for StreamsService {
    #[tracing::instrument(name = "Streams.Publish", skip_all, fields(subject = %req.get_ref().subject))]
    async fn publish(&self, req: Request<PublishRequest>) -> Result<Response<PubAck>, Status> {
        let pass = self.gate.streams(&req).await?;
        let budget =
            crate::throttling::budget(self.throttle.as_ref(), &req, &pass, "Streams.Publish");
        let req = req.into_inner();
        budget.spend(1, req.encoded_len()).await;
        Ok(Response::new(self.publish_one(req, &pass)?))
    }

    type PublishStreamStream = ReceiverStream<Result<PubAckBatch, Status>>;

    /// Pipelined: the client sends frames of publishes without waiting; each frame (with
    /// whatever else has already arrived) is committed together and answered by one frame
    /// of acks, in order, each carrying the request's id. A failed publish answers with
    /// `error` instead of ending the stream.
    #[tracing::instrument(name = "Streams.PublishStream", skip_all)]
    async fn publish_stream(
        &self,
        req: Request<Streaming<PublishBatch>>,
    ) -> Result<Response<Self::PublishStreamStream>, Status> {
        let pass = self.gate.streams(&req).await?;
        let budget =
            crate::throttling::budget(self.throttle.as_ref(), &req, &pass, "Streams.PublishStream");
        let mut inbound = req.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let svc = self.clone();
        tokio::spawn(tracing::Instrument::in_current_span(async move {
            while let Ok(Some(first)) = inbound.message().await {
                let mut reqs = first.messages;
                let mut ended = false;
                while reqs.len() < PUBLISH_GROUP {
                    match futures::FutureExt::now_or_never(inbound.message()) {
                        Some(Ok(Some(f))) => reqs.extend(f.messages),
                        Some(Ok(None)) | Some(Err(_)) => {
                            ended = true;
                            break;
                        }
                        None => break,
                    }
                }
                let bytes = reqs.iter().map(PublishRequest::encoded_len).sum();
                budget.spend(reqs.len(), bytes).await;
                let acks = svc.publish_group(reqs, &pass);
                if tx.send(Ok(PubAckBatch { acks })).await.is_err() || ended {
                    return;
                }
            }
        }));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    #[tracing::instrument(name = "Streams.Get", skip_all, fields(stream = %req.get_ref().stream, seq = req.get_ref().seq))]
    async fn get(
        &self,
        req: Request<GetMessageRequest>,
    ) -> Result<Response<StreamMessage>, Status> {
        let store = self
            .owned(&req, Permission::Read, &req.get_ref().stream)
            .await?;
        let req = req.into_inner();
        let m = store.get(req.seq)?;
        Ok(Response::new(subscribe::to_proto(req.seq, m)))
    }

    type SubscribeStream = futures::stream::BoxStream<'static, Result<SubscribeEvent, Status>>;

    #[tracing::instrument(name = "Streams.Subscribe", skip_all, fields(stream = %req.get_ref().stream))]
    async fn subscribe(
        &self,
        req: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let (store, pass) = self
            .owned_with_pass(&req, Permission::Read, &req.get_ref().stream)
            .await?;
        let budget =
            crate::throttling::budget(self.throttle.as_ref(), &req, &pass, "Streams.Subscribe");
        let req = req.into_inner();
        self.limits.subject("filter_subject", &req.filter_subject)?;
        let spec = subscribe::tail_spec(&req, self.node.incarnation_of(&store))?;
        let tail = store.tail(spec).map_err(Error::from)?;
        let events = tail.map(|r| {
            r.map_err(|e| Status::from(Error::from(e)))
                .and_then(subscribe::event_to_proto)
        });
        // Delivery spends the budget: an event goes out once its connection can afford it
        // (heartbeats are free), and the tail reads no further meanwhile.
        Ok(Response::new(Box::pin(events.then(move |ev| {
            let budget = budget.clone();
            async move {
                if let Ok(e) = &ev {
                    if !e.messages.is_empty() {
                        budget.spend(e.messages.len(), e.encoded_len()).await;
                    }
                }
                ev
            }
        }))))
    }

    #[tracing::instrument(name = "Streams.Info", skip_all, fields(stream = %req.get_ref().stream))]
    async fn info(
        &self,
        req: Request<StreamInfoRequest>,
    ) -> Result<Response<StreamInfoReply>, Status> {
        let store = self
            .owned(&req, Permission::Read, &req.get_ref().stream)
            .await?;
        let s = store.state();
        Ok(Response::new(StreamInfoReply {
            config: self.node.stream_config(&store.name),
            state: Some(StreamState {
                messages: s.messages,
                bytes: s.bytes,
                first_seq: s.first_seq,
                last_seq: s.last_seq,
                first_ts_ns: s.first_ts_ns,
                last_ts_ns: s.last_ts_ns,
                deleted: s.deleted,
                subscribers: s.subscribers,
            }),
            replication: self.replication.report(&store.name),
        }))
    }

    #[tracing::instrument(name = "Streams.Purge", skip_all, fields(stream = %req.get_ref().stream))]
    async fn purge(&self, req: Request<PurgeRequest>) -> Result<Response<PurgeReply>, Status> {
        let store = self
            .owned(&req, Permission::Write, &req.get_ref().stream)
            .await?;
        let req = req.into_inner();
        let subject = if req.subject.is_empty() {
            None
        } else {
            self.limits.subject("subject", &req.subject)?;
            tributary_common::subject::validate_filter(&req.subject)
                .map_err(|e| Error::invalid("subject", e.to_string()))?;
            Some(req.subject.as_str())
        };
        let purged = store.purge(subject)?;
        Ok(Response::new(PurgeReply { purged }))
    }

    #[tracing::instrument(name = "Streams.DeleteMessage", skip_all, fields(stream = %req.get_ref().stream, seq = req.get_ref().seq))]
    async fn delete_message(
        &self,
        req: Request<DeleteMessageRequest>,
    ) -> Result<Response<DeleteMessageReply>, Status> {
        let store = self
            .owned(&req, Permission::Write, &req.get_ref().stream)
            .await?;
        let req = req.into_inner();
        store.delete_message(req.seq)?;
        Ok(Response::new(DeleteMessageReply {}))
    }
}
