//! The control-plane connection: any member will do (followers forward writes), so on a
//! member that cannot be reached the next one in `--server` is tried.

use anyhow::{anyhow, Result};
use std::future::Future;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tributary_common::grpc::STREAM_SECRET_HEADER;
use tributary_proto::v1::{catalog_client::CatalogClient, cluster_client::ClusterClient};

#[derive(Clone)]
pub struct ControlPlane {
    members: Vec<String>,
    stream_secret: StreamSecret,
}

/// Puts the stream secret (`--stream-secret`) on every call to a data node's Streams service.
#[derive(Clone, Default)]
pub struct StreamSecret(Option<MetadataValue<Ascii>>);

impl Interceptor for StreamSecret {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert(STREAM_SECRET_HEADER, v.clone());
        }
        Ok(req)
    }
}

/// A data node's channel for its Streams service: every call carries the stream secret.
pub type StreamsChannel = InterceptedService<Channel, StreamSecret>;

impl ControlPlane {
    /// `servers`: one or more `HOST:PORT`, comma-separated.
    pub fn new(servers: &str) -> Result<Self> {
        let members: Vec<String> = servers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if members.is_empty() {
            return Err(anyhow!(
                "no control-plane address given (--server or TRIBUTARY_SERVER)"
            ));
        }
        Ok(Self {
            members,
            stream_secret: StreamSecret::default(),
        })
    }

    /// Sends `secret` to data nodes on stream calls (empty: nothing).
    pub fn with_stream_secret(mut self, secret: &str) -> Result<Self> {
        if !secret.is_empty() {
            let v = secret
                .parse()
                .map_err(|_| anyhow!("--stream-secret: not a valid header value"))?;
            self.stream_secret = StreamSecret(Some(v));
        }
        Ok(self)
    }

    /// `ch` (a data node) with the stream secret on every call.
    pub fn streams_channel(&self, ch: Channel) -> StreamsChannel {
        InterceptedService::new(ch, self.stream_secret.clone())
    }

    /// Runs `call` against each member in turn until one answers something other than
    /// "cannot connect".
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, Status>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut last = Status::unavailable("no control-plane member reachable");
        for m in &self.members {
            let ch = tributary_common::grpc::channel(m)
                .map_err(|e| Status::invalid_argument(format!("invalid server {m:?}: {e}")))?;
            match call(ch).await {
                Err(s) if s.code() == Code::Unavailable && unreachable(&s) => last = s,
                other => return other,
            }
        }
        Err(last)
    }

    pub async fn catalog<T, F, Fut>(&self, f: F) -> Result<T, Status>
    where
        F: Fn(CatalogClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.call(|ch| {
            let fut = f(CatalogClient::new(ch));
            async move { fut.await.map(tonic::Response::into_inner) }
        })
        .await
    }

    pub async fn cluster<T, F, Fut>(&self, f: F) -> Result<T, Status>
    where
        F: Fn(ClusterClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.call(|ch| {
            let fut = f(ClusterClient::new(ch));
            async move { fut.await.map(tonic::Response::into_inner) }
        })
        .await
    }
}

/// A transport failure (the member is down), as opposed to a member's own UNAVAILABLE answer.
fn unreachable(s: &Status) -> bool {
    let m = s.message();
    m.contains("connect")
        || m.contains("transport")
        || m.contains("refused")
        || m.contains("broken pipe")
}
