//! The `Streams` service: publish (single and pipelined), get, subscribe, info, purge,
//! delete. Each handler finds the owned stream, calls its store, maps the result.

mod subscribe;

use crate::error::{Error, Result};
use crate::node::{now_ns, Node};
use crate::storage::streams::StreamStore;
use crate::storage::NewMessage;
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tributary_proto::v1::{
    streams_server::Streams, DeleteMessageReply, DeleteMessageRequest, GetMessageRequest, PubAck,
    PublishRequest, PurgeReply, PurgeRequest, StreamInfoReply, StreamInfoRequest, StreamMessage,
    StreamState, SubscribeEvent, SubscribeRequest,
};

#[derive(Clone)]
pub struct StreamsService {
    pub node: Arc<Node>,
}

impl StreamsService {
    /// The owned stream taking `subject`.
    fn stream_for(&self, subject: &str) -> Result<Arc<StreamStore>> {
        crate::subject::validate_literal("subject", subject)?;
        let (name, mirror) = self
            .node
            .with_catalog(|c| {
                c.stream_for_subject(subject)
                    .map(|s| (s.name.clone(), s.mirror.is_some()))
            })
            .ok_or_else(|| Error::not_found("stream for subject", subject))?;
        if mirror {
            return Err(Error::FailedPrecondition(format!(
                "stream {name} is a mirror and takes no publishes"
            )));
        }
        self.node.owned_stream("subject", &name)
    }

    pub fn publish_one(&self, req: PublishRequest) -> Result<PubAck> {
        let store = self.stream_for(&req.subject)?;
        let r = store.publish(
            NewMessage {
                subject: req.subject,
                headers: req.headers.into_iter().collect(),
                data: req.data,
                timestamp_ns: now_ns(),
            },
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
        Ok(Response::new(self.publish_one(req.into_inner())?))
    }

    type PublishStreamStream = ReceiverStream<Result<PubAck, Status>>;

    /// Pipelined: the client sends without waiting; acks come back in order, each carrying
    /// the request's id, and a failed publish answers with `error` instead of ending the stream.
    #[tracing::instrument(name = "Streams.PublishStream", skip_all)]
    async fn publish_stream(
        &self,
        req: Request<Streaming<PublishRequest>>,
    ) -> Result<Response<Self::PublishStreamStream>, Status> {
        let mut inbound = req.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let svc = self.clone();
        tokio::spawn(tracing::Instrument::in_current_span(async move {
            while let Ok(Some(p)) = inbound.message().await {
                let id = p.id;
                let ack = svc.publish_one(p).unwrap_or_else(|e| PubAck {
                    id,
                    error: e.to_string(),
                    ..Default::default()
                });
                if tx.send(Ok(ack)).await.is_err() {
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
        let req = req.into_inner();
        let store = self.node.owned_stream("stream", &req.stream)?;
        let m = store.get(req.seq)?;
        Ok(Response::new(subscribe::to_proto(req.seq, m)))
    }

    type SubscribeStream = ReceiverStream<Result<SubscribeEvent, Status>>;

    #[tracing::instrument(name = "Streams.Subscribe", skip_all, fields(stream = %req.get_ref().stream))]
    async fn subscribe(
        &self,
        req: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let req = req.into_inner();
        let store = self.node.owned_stream("stream", &req.stream)?;
        Ok(Response::new(subscribe::start(store, req)?))
    }

    #[tracing::instrument(name = "Streams.Info", skip_all, fields(stream = %req.get_ref().stream))]
    async fn info(
        &self,
        req: Request<StreamInfoRequest>,
    ) -> Result<Response<StreamInfoReply>, Status> {
        let store = self.node.owned_stream("stream", &req.get_ref().stream)?;
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
            // Mirror and source workers are not built yet: nothing to report.
            replication: Vec::new(),
        }))
    }

    #[tracing::instrument(name = "Streams.Purge", skip_all, fields(stream = %req.get_ref().stream))]
    async fn purge(&self, req: Request<PurgeRequest>) -> Result<Response<PurgeReply>, Status> {
        let req = req.into_inner();
        let store = self.node.owned_stream("stream", &req.stream)?;
        let subject = if req.subject.is_empty() {
            None
        } else {
            crate::subject::validate_filter("subject", &req.subject)?;
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
        let req = req.into_inner();
        let store = self.node.owned_stream("stream", &req.stream)?;
        store.delete_message(req.seq)?;
        Ok(Response::new(DeleteMessageReply {}))
    }
}
