//! The `Streams` service: publish (single and pipelined), get, subscribe, info, purge,
//! delete, step-down. Each handler checks its caller may (a stream secret, a node of the
//! cluster, or WRITE to publish, purge, delete and step down, READ to get, subscribe and see
//! info), finds where the stream is served (`route`: here, through its group's log when
//! replicated, or forwarded to its leader), calls its store, maps the result.

pub mod limits;
mod publish;
mod resume;
mod route;
mod service;
pub mod subscribe;

pub use service::StreamsService;

use crate::error::{Error, Result};
use crate::gate::Pass;
use crate::group::op::{Op, Outcome};
use crate::node::catalog::canonical;
use crate::peers;
use futures::StreamExt;
use prost::Message as _;
use route::Route;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tributary_common::access::entity_resource;
use tributary_common::policy::Permission;
use tributary_proto::v1::{
    streams_server::Streams, DeleteMessageReply, DeleteMessageRequest, GetMessageRequest, PubAck,
    PubAckBatch, PublishBatch, PublishRequest, PurgeReply, PurgeRequest, StepDownReply,
    StepDownRequest, StreamInfoReply, StreamInfoRequest, StreamMessage, StreamState,
    SubscribeEvent, SubscribeRequest,
};

/// Most publishes committed in one write by `PublishStream`.
const PUBLISH_GROUP: usize = 512;
/// Frames of one `PublishStream` submitted to a replicated stream's group and awaiting their
/// acks at once: the group commits them in one round trip rather than one each.
const PIPELINE: usize = 8;

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
        // Frames are committed (or submitted to their stream's group) in order as they come,
        // up to PIPELINE of them awaiting their acks; the acks go back in order.
        let (submitted_tx, mut submitted) =
            tokio::sync::mpsc::channel::<publish::Submitted>(PIPELINE);
        tokio::spawn(tracing::Instrument::in_current_span(async move {
            while let Some(s) = submitted.recv().await {
                let acks = s.acks().await;
                if tx.send(Ok(PubAckBatch { acks })).await.is_err() {
                    return;
                }
            }
        }));
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
                let s = svc.submit_group(reqs, &pass, forwards).await;
                if submitted_tx.send(s).await.is_err() || ended {
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
        let mut req = req.into_inner();
        self.limits.subject("filter_subject", &req.filter_subject)?;
        // Settled here, so a request forwarded to the leader asks for what this caller may have.
        req.stored_form = subscribe::stored_form(&req, &pass);
        let stored = req.stored_form;
        let events: Self::SubscribeStream = match self.route(&name, forwards).await? {
            Route::Local(store) => {
                let spec = subscribe::tail_spec(&req, self.node.incarnation_of(&store))?;
                let tail = store.tail(spec).map_err(Error::from)?;
                Box::pin(tail.map(move |r| {
                    r.map_err(|e| Status::from(Error::from(e)))
                        .and_then(|ev| subscribe::event_to_proto(ev, stored))
                }))
            }
            Route::Leader(store, group) => {
                let spec = subscribe::tail_spec(&req, self.node.incarnation_of(&store))?;
                let tail = store.tail(spec).map_err(Error::from)?;
                self.while_leading(&name, group, tail, stored)
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
                    let n = e.messages.len() + e.stored.len();
                    if n > 0 {
                        budget.spend(n, e.encoded_len()).await;
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
