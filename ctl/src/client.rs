//! The control-plane connection: any member will do (followers forward writes), so on a
//! member that cannot be reached the next one in `--server` is tried.

use crate::links::{AuthChannel, LinkError, Links};
use anyhow::{anyhow, Result};
use std::future::Future;
use tonic::{Code, Status};
use tributary_proto::v1::{catalog_client::CatalogClient, cluster_client::ClusterClient};

#[derive(Clone)]
pub struct ControlPlane {
    members: Vec<String>,
    links: Links,
}

impl ControlPlane {
    /// `servers`: one or more `HOST:PORT`, comma-separated; cleartext, no credentials (the
    /// local clusters of `tribctl dev` and the demo).
    pub fn new(servers: &str) -> Result<Self> {
        Self::with_links(servers, Links::default())
    }

    /// `servers` reached, as every data node they name, through `links`.
    pub fn with_links(servers: &str, links: Links) -> Result<Self> {
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
        Ok(Self { members, links })
    }

    /// A channel to a data node at `addr` (from the catalogue) with the credentials.
    pub fn node_channel(&self, addr: &str) -> Result<AuthChannel, LinkError> {
        self.links.channel(addr)
    }

    /// A channel to a data node's Streams service: every call carries the stream secret too.
    pub fn streams_channel(&self, addr: &str) -> Result<AuthChannel, LinkError> {
        self.links.streams_channel(addr)
    }

    /// Runs `call` against each member in turn until one answers something other than
    /// "cannot connect".
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, Status>
    where
        F: Fn(AuthChannel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut last = Status::unavailable("no control-plane member reachable");
        for m in &self.members {
            let ch = self
                .links
                .channel(m)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            match call(ch).await {
                Err(s) if s.code() == Code::Unavailable && unreachable(&s) => last = s,
                other => return other,
            }
        }
        Err(last)
    }

    pub async fn catalog<T, F, Fut>(&self, f: F) -> Result<T, Status>
    where
        F: Fn(CatalogClient<AuthChannel>) -> Fut,
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
        F: Fn(ClusterClient<AuthChannel>) -> Fut,
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
