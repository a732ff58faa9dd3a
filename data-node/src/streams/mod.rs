//! The `Streams` service: publish (single and pipelined), get, subscribe, info, purge,
//! delete, step-down. Each handler checks its caller may (a stream secret, a node of the
//! cluster, or WRITE to publish, purge, delete and step down, READ to get, subscribe and see
//! info), finds where the stream is served (`route`: here, through its group's log when
//! replicated, or forwarded to its leader), calls its store, maps the result.

pub mod limits;
mod resume;
mod route;
pub mod subscribe;

use crate::error::{Error, Result};
use crate::gate::{Gate, Pass};
use crate::group::op::{Op, Outcome};
use crate::node::catalog::canonical;
use crate::node::replication::ReplicationBoard;
use crate::node::Node;
use crate::peers::{self, Peers};
use crate::storage::streams::StreamStore;
use crate::storage::NewMessage;
use futures::StreamExt;
use limits::PublishLimits;
use prost::Message as _;
use route::Route;
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tributary_common::access::entity_resource;
use tributary_common::policy::Permission;
use tributary_common::throttle::Throttle;
use tributary_common::time::now_ns;
use tributary_proto::v1::{
    streams_server::Streams, DeleteMessageReply, DeleteMessageRequest, GetMessageRequest, PubAck,
    PubAckBatch, PublishBatch, PublishRequest, PurgeReply, PurgeRequest, StepDownReply,
    StepDownRequest, StreamInfoReply, StreamInfoRequest, StreamMessage, StreamState,
    SubscribeEvent, SubscribeRequest,
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

/// Commits a run of publishes to a stream of one replica and appends their acks.
fn flush_local(acks: &mut Vec<PubAck>, run: Vec<PublishRequest>, store: &StreamStore) {
    let (ids, msgs): (Vec<u64>, Vec<(NewMessage, Option<u64>)>) =
        run.into_iter().map(|r| (r.id, to_new(r))).unzip();
    let results = store.publish_batch(msgs);
    push_acks(acks, &store.name, ids, results);
}

fn to_new(r: PublishRequest) -> (NewMessage, Option<u64>) {
    let expected = (r.expected_last_seq > 0).then_some(r.expected_last_seq);
    (new_message(r.subject, r.headers, r.data), expected)
}

fn push_acks(
    acks: &mut Vec<PubAck>,
    stream: &str,
    ids: Vec<u64>,
    results: Vec<crate::storage::streams::StreamResult<crate::storage::streams::PubResult>>,
) {
    metrics::counter!("tributary_stream_published_total")
        .increment(results.iter().filter(|r| r.is_ok()).count() as u64);
    for (id, r) in ids.into_iter().zip(results) {
        acks.push(match r {
            Ok(r) => PubAck {
                stream: stream.to_string(),
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
    /// The other data nodes: a replicated stream's calls are forwarded to its leader.
    pub peers: Arc<Peers>,
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

    /// The caller's pass and the stream's canonical name, if the stream exists and the caller
    /// holds `permission` on it.
    async fn authorize<T>(
        &self,
        req: &Request<T>,
        permission: Permission,
        name: &str,
    ) -> Result<(Pass, String)> {
        let pass = self.gate.streams(req).await?;
        if name.is_empty() {
            return Err(Error::invalid("stream", "is empty"));
        }
        let name = canonical(name);
        let known = self.node.with_catalog(|c| c.streams.contains_key(&name))
            || self.node.stream(&name).is_some();
        if !known {
            // The node's own answer (not placed, cannot be opened, not found).
            self.node.owned_stream("stream", &name)?;
        }
        self.allowed(&pass, permission, &name)?;
        Ok((pass, name))
    }

    /// The stream taking `subject`, if `pass` may publish to it: its canonical name.
    fn stream_for(&self, subject: &str, pass: &Pass) -> Result<String> {
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
        Ok(name)
    }

    /// Commits (or forwards) a run of publishes to stream `name` and appends their acks.
    async fn flush(
        &self,
        acks: &mut Vec<PubAck>,
        run: &mut Vec<PublishRequest>,
        name: &str,
        forwards: u32,
    ) {
        if run.is_empty() {
            return;
        }
        let run = std::mem::take(run);
        match self.route(name, forwards).await {
            Err(e) => acks.extend(run.iter().map(|r| error_ack(r.id, &e))),
            Ok(Route::Local(store)) => flush_local(acks, run, &store),
            Ok(Route::Leader(store, group)) => {
                let (ids, msgs): (Vec<u64>, Vec<_>) =
                    run.into_iter().map(|r| (r.id, to_new(r))).unzip();
                match self.publish_replicated(group, msgs).await {
                    Ok(results) => push_acks(acks, &store.name, ids, results),
                    Err(e) => acks.extend(ids.into_iter().map(|id| error_ack(id, &e))),
                }
            }
            Ok(Route::Forward(to)) => acks.extend(self.forward_publishes(to, run, forwards).await),
        }
    }

    /// Publishes in order; runs of requests for the same stream are committed together.
    pub async fn publish_group(
        &self,
        reqs: Vec<PublishRequest>,
        pass: &Pass,
        forwards: u32,
    ) -> Vec<PubAck> {
        let mut acks = Vec::with_capacity(reqs.len());
        let mut run: Vec<PublishRequest> = Vec::new();
        let mut run_stream = String::new();
        // The subject `run_stream` was found for: a pipelined publisher mostly repeats it.
        let mut run_subject = String::new();
        for req in reqs {
            if let Err(e) = self.limits.message(&req.subject, &req.headers) {
                self.flush(&mut acks, &mut run, &run_stream, forwards).await;
                acks.push(error_ack(req.id, &e));
                continue;
            }
            if run.is_empty() || req.subject != run_subject {
                match self.stream_for(&req.subject, pass) {
                    Ok(name) => {
                        if name != run_stream {
                            self.flush(&mut acks, &mut run, &run_stream, forwards).await;
                        }
                        run_stream = name;
                        run_subject.clone_from(&req.subject);
                    }
                    Err(e) => {
                        self.flush(&mut acks, &mut run, &run_stream, forwards).await;
                        acks.push(error_ack(req.id, &e));
                        continue;
                    }
                }
            }
            run.push(req);
        }
        self.flush(&mut acks, &mut run, &run_stream, forwards).await;
        acks
    }

    pub async fn publish_one(
        &self,
        req: PublishRequest,
        pass: &Pass,
        forwards: u32,
    ) -> Result<PubAck, Status> {
        self.limits.message(&req.subject, &req.headers)?;
        let name = self.stream_for(&req.subject, pass)?;
        let id = req.id;
        let (stream, r) = match self.route(&name, forwards).await? {
            Route::Local(store) => {
                let (m, expected) = to_new(req);
                let r = store.publish(m, expected)?;
                (store.name.clone(), r)
            }
            Route::Leader(store, group) => {
                let results = self.publish_replicated(group, vec![to_new(req)]).await?;
                let r = results
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::Unavailable("no outcome for the publish".into()))??;
                (store.name.clone(), r)
            }
            Route::Forward(to) => {
                let ack = self
                    .peer(to)?
                    .publish(self.peers.request(req, forwards + 1))
                    .await?;
                return Ok(ack.into_inner());
            }
        };
        metrics::counter!("tributary_stream_published_total").increment(1);
        Ok(PubAck {
            stream,
            seq: r.seq,
            duplicate: r.duplicate,
            id,
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
        let forwards = peers::forwards(&req);
        let req = req.into_inner();
        budget.spend(1, req.encoded_len()).await;
        Ok(Response::new(self.publish_one(req, &pass, forwards).await?))
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
        let forwards = peers::forwards(&req);
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
                let acks = svc.publish_group(reqs, &pass, forwards).await;
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
        let (_, name) = self
            .authorize(&req, Permission::Read, &req.get_ref().stream)
            .await?;
        let forwards = peers::forwards(&req);
        let req = req.into_inner();
        match self.route(&name, forwards).await? {
            Route::Local(store) | Route::Leader(store, _) => {
                let m = store.get(req.seq)?;
                Ok(Response::new(subscribe::to_proto(req.seq, m)))
            }
            Route::Forward(to) => {
                self.peer(to)?
                    .get(self.peers.request(req, forwards + 1))
                    .await
            }
        }
    }

    type SubscribeStream = futures::stream::BoxStream<'static, Result<SubscribeEvent, Status>>;

    #[tracing::instrument(name = "Streams.Subscribe", skip_all, fields(stream = %req.get_ref().stream))]
    async fn subscribe(
        &self,
        req: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let (pass, name) = self
            .authorize(&req, Permission::Read, &req.get_ref().stream)
            .await?;
        let budget =
            crate::throttling::budget(self.throttle.as_ref(), &req, &pass, "Streams.Subscribe");
        let forwards = peers::forwards(&req);
        let req = req.into_inner();
        self.limits.subject("filter_subject", &req.filter_subject)?;
        let events: Self::SubscribeStream = match self.route(&name, forwards).await? {
            Route::Local(store) => {
                let spec = subscribe::tail_spec(&req, self.node.incarnation_of(&store))?;
                let tail = store.tail(spec).map_err(Error::from)?;
                Box::pin(tail.map(|r| {
                    r.map_err(|e| Status::from(Error::from(e)))
                        .and_then(subscribe::event_to_proto)
                }))
            }
            Route::Leader(store, group) => {
                let spec = subscribe::tail_spec(&req, self.node.incarnation_of(&store))?;
                let tail = store.tail(spec).map_err(Error::from)?;
                self.while_leading(&name, group, tail)
            }
            Route::Forward(to) => {
                let first = self.forwarded_subscribe(to, req.clone(), forwards).await?;
                resume::Resuming::new(self.clone(), name, req, forwards, first).stream()
            }
        };
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
        let (_, name) = self
            .authorize(&req, Permission::Read, &req.get_ref().stream)
            .await?;
        let forwards = peers::forwards(&req);
        let route = self.route(&name, forwards).await?;
        let store = match &route {
            Route::Local(store) | Route::Leader(store, _) => store.clone(),
            Route::Forward(to) => {
                return self
                    .peer(*to)?
                    .info(self.peers.request(req.into_inner(), forwards + 1))
                    .await
            }
        };
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
            cluster: self.cluster_info(&route).await,
        }))
    }

    #[tracing::instrument(name = "Streams.Purge", skip_all, fields(stream = %req.get_ref().stream))]
    async fn purge(&self, req: Request<PurgeRequest>) -> Result<Response<PurgeReply>, Status> {
        let (_, name) = self
            .authorize(&req, Permission::Write, &req.get_ref().stream)
            .await?;
        let forwards = peers::forwards(&req);
        let req = req.into_inner();
        let subject = if req.subject.is_empty() {
            None
        } else {
            self.limits.subject("subject", &req.subject)?;
            tributary_common::subject::validate_filter(&req.subject)
                .map_err(|e| Error::invalid("subject", e.to_string()))?;
            Some(req.subject.clone())
        };
        let purged = match self.route(&name, forwards).await? {
            Route::Local(store) => store.purge(subject.as_deref())?,
            Route::Leader(_, group) => match self.propose(group, Op::Purge(subject)).await? {
                Outcome::Purged(r) => r?,
                _ => return Err(Status::internal("unexpected outcome of a purge")),
            },
            Route::Forward(to) => {
                return self
                    .peer(to)?
                    .purge(self.peers.request(req, forwards + 1))
                    .await
            }
        };
        Ok(Response::new(PurgeReply { purged }))
    }

    #[tracing::instrument(name = "Streams.DeleteMessage", skip_all, fields(stream = %req.get_ref().stream, seq = req.get_ref().seq))]
    async fn delete_message(
        &self,
        req: Request<DeleteMessageRequest>,
    ) -> Result<Response<DeleteMessageReply>, Status> {
        let (_, name) = self
            .authorize(&req, Permission::Write, &req.get_ref().stream)
            .await?;
        let forwards = peers::forwards(&req);
        let req = req.into_inner();
        match self.route(&name, forwards).await? {
            Route::Local(store) => store.delete_message(req.seq)?,
            Route::Leader(_, group) => match self.propose(group, Op::Delete(req.seq)).await? {
                Outcome::Deleted(r) => r?,
                _ => return Err(Status::internal("unexpected outcome of a delete")),
            },
            Route::Forward(to) => {
                return self
                    .peer(to)?
                    .delete_message(self.peers.request(req, forwards + 1))
                    .await
            }
        }
        Ok(Response::new(DeleteMessageReply {}))
    }

    #[tracing::instrument(name = "Streams.StepDown", skip_all, fields(stream = %req.get_ref().stream))]
    async fn step_down(
        &self,
        req: Request<StepDownRequest>,
    ) -> Result<Response<StepDownReply>, Status> {
        let (_, name) = self
            .authorize(&req, Permission::Write, &req.get_ref().stream)
            .await?;
        let forwards = peers::forwards(&req);
        match self.route(&name, forwards).await? {
            Route::Local(_) => Err(Error::FailedPrecondition(format!(
                "stream {name} has one replica: there is no leadership to hand over"
            ))
            .into()),
            Route::Leader(_, group) => Ok(Response::new(StepDownReply {
                leader: route::node_name(self.step_down_group(&name, group).await?),
            })),
            Route::Forward(to) => {
                self.peer(to)?
                    .step_down(self.peers.request(req.into_inner(), forwards + 1))
                    .await
            }
        }
    }
}
