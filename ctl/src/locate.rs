//! Users give only a control-plane address: the data node that owns a well or stream is
//! looked up in the catalogue.

use crate::client::ControlPlane;
use crate::links::AuthChannel;
use anyhow::{anyhow, bail, Result};
use tributary_proto::v1::{entity::Kind, Entity, EntityKind, EntityRef, ListRequest, Stream, Well};

pub async fn entity(cp: &ControlPlane, kind: EntityKind, name: &str) -> Result<Entity> {
    let r = EntityRef {
        kind: kind as i32,
        name: name.to_string(),
    };
    cp.catalog(|mut c| {
        let r = r.clone();
        async move { c.get(r).await }
    })
    .await?
    .entity
    .ok_or_else(|| anyhow!("server returned no entity"))
}

pub async fn well(cp: &ControlPlane, name: &str) -> Result<Well> {
    match entity(cp, EntityKind::Well, name).await?.kind {
        Some(Kind::Well(w)) => Ok(w),
        _ => bail!("{name} is not a well"),
    }
}

/// The address data node `id` registered.
async fn node_addr(cp: &ControlPlane, id: u64, what: &str) -> Result<String> {
    if id == 0 {
        bail!("{what} is not placed on a data node yet (no data node has registered)");
    }
    let addr = match entity(cp, EntityKind::DataNode, &id.to_string())
        .await?
        .kind
    {
        Some(Kind::DataNode(n)) => n.addr,
        _ => bail!("data node {id} of {what} is not registered"),
    };
    Ok(addr)
}

/// A channel to data node `id`, with tribctl's TLS identity and token.
pub async fn node(cp: &ControlPlane, id: u64, what: &str) -> Result<AuthChannel> {
    Ok(cp.node_channel(&node_addr(cp, id, what).await?)?)
}

pub async fn well_node(cp: &ControlPlane, name: &str) -> Result<(Well, AuthChannel)> {
    let w = well(cp, name).await?;
    let ch = node(cp, w.owner_node, &format!("well {}", w.name)).await?;
    Ok((w, ch))
}

/// A channel to data node `id` for stream calls (they carry the stream secret).
pub async fn streams_at(cp: &ControlPlane, id: u64, what: &str) -> Result<AuthChannel> {
    Ok(cp.streams_channel(&node_addr(cp, id, what).await?)?)
}

/// A channel for calls to stream `s`: its node; for a replicated stream the first of its
/// replicas (from a random one on) that takes a connection — any forwards to the leader, so
/// one replica down does not keep tribctl from the stream.
pub async fn stream_channel(cp: &ControlPlane, s: &Stream) -> Result<AuthChannel> {
    let what = format!("stream {}", s.name);
    if s.replica_nodes.is_empty() {
        return streams_at(cp, s.owner_node, &what).await;
    }
    let n = s.replica_nodes.len();
    let from = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as usize);
    let mut last = anyhow!("{what} has no replica");
    for i in 0..n {
        let id = s.replica_nodes[(from + i) % n];
        let addr = match node_addr(cp, id, &what).await {
            Ok(a) => a,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let hostport = addr
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_string();
        let probe = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            tokio::net::TcpStream::connect(hostport),
        )
        .await;
        match probe {
            Ok(Ok(_)) => return Ok(cp.streams_channel(&addr)?),
            Ok(Err(e)) => last = anyhow!("data node {id} at {addr}: {e}"),
            Err(_) => last = anyhow!("data node {id} at {addr}: no answer within 1s"),
        }
    }
    Err(last.context(format!("no replica of {what} is reachable")))
}

pub async fn stream_node(cp: &ControlPlane, name: &str) -> Result<(Stream, AuthChannel)> {
    let s = match entity(cp, EntityKind::Stream, name).await?.kind {
        Some(Kind::Stream(s)) => s,
        _ => bail!("{name} is not a stream"),
    };
    let ch = stream_channel(cp, &s).await?;
    Ok((s, ch))
}

/// The stream that takes `subject`, and its node.
pub async fn stream_for_subject(cp: &ControlPlane, subject: &str) -> Result<(Stream, AuthChannel)> {
    let req = ListRequest {
        kind: EntityKind::Stream as i32,
        namespace: String::new(),
    };
    let streams = cp
        .catalog(|mut c| {
            let q = req.clone();
            async move { c.list(q).await }
        })
        .await?
        .entities;
    let s = streams
        .into_iter()
        .filter_map(|e| match e.kind {
            Some(Kind::Stream(s)) => Some(s),
            _ => None,
        })
        .find(|s| {
            s.subjects
                .iter()
                .any(|f| tributary_common::subject::matches(f, subject))
        })
        .ok_or_else(|| anyhow!("no stream takes subject {subject:?}"))?;
    let ch = stream_channel(cp, &s).await?;
    Ok((s, ch))
}
