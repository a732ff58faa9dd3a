//! Stream calls tests make against a data node's address: publish, info, read back.

use crate::wait;
use anyhow::{anyhow, Result};
use std::sync::Mutex;
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tributary_proto::v1::{
    entity::Kind, streams_client::StreamsClient, Entity, PublishRequest, Stream, StreamInfoReply,
    StreamInfoRequest, StreamMessage, SubscribeRequest,
};

/// A file-stored stream taking `subjects` (none: only copies, for a mirror or sources).
pub fn file_stream(name: &str, subjects: &[&str]) -> Stream {
    Stream {
        name: name.into(),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        storage: tributary_proto::v1::StorageType::File as i32,
        ..Default::default()
    }
}

/// A file stream of `replicas` replicas taking `NAME.>`, as a catalogue entity.
pub fn replicated(name: &str, replicas: u32) -> Entity {
    Entity {
        kind: Some(Kind::Stream(Stream {
            replicas,
            ..file_stream(name, &[&format!("{name}.>")])
        })),
    }
}

/// Messages a stream holds.
pub fn count(i: &StreamInfoReply) -> u64 {
    i.state.as_ref().map_or(0, |s| s.messages)
}

/// Every mirror or source of the stream is active, error-free and at lag 0.
pub fn caught_up(i: &StreamInfoReply) -> bool {
    !i.replication.is_empty()
        && i.replication
            .iter()
            .all(|r| r.lag == 0 && r.error.is_empty() && r.active_ms != u64::MAX)
}

pub fn client(addr: &str) -> Result<StreamsClient<Channel>> {
    Ok(StreamsClient::new(crate::tls::channel(addr)?).max_decoding_message_size(256 << 20))
}

/// Publishes `n` messages `subject` / `prefix i` (i from 1), pipelined, to the node at `addr`.
pub async fn publish_n(addr: &str, subject: &str, prefix: &str, n: u64) -> Result<()> {
    let mut c = client(addr)?;
    let reqs: Vec<PublishRequest> = (1..=n)
        .map(|i| PublishRequest {
            subject: subject.to_string(),
            data: format!("{prefix} {i}").into_bytes().into(),
            id: i,
            ..Default::default()
        })
        .collect();
    let mut acks = tributary_common::publish::pipelined(&mut c, tokio_stream::iter(reqs)).await?;
    let mut got = 0;
    while let Some(a) = acks.next().await {
        let a = a?;
        if !a.error.is_empty() {
            return Err(anyhow!("publish {}: {}", a.id, a.error));
        }
        got += 1;
    }
    if got != n {
        return Err(anyhow!("{got} acks for {n} publishes"));
    }
    Ok(())
}

pub async fn info(addr: &str, stream: &str) -> Result<StreamInfoReply> {
    Ok(client(addr)?
        .info(StreamInfoRequest {
            stream: stream.to_string(),
        })
        .await?
        .into_inner())
}

/// Waits until `check` holds for the stream's info; returns that info. A timeout shows the
/// last state and replication seen.
pub async fn wait_info(
    addr: &str,
    stream: &str,
    what: &str,
    check: impl Fn(&StreamInfoReply) -> bool,
) -> Result<StreamInfoReply> {
    let last = Mutex::new(String::from("no answer"));
    let c = client(addr)?;
    wait::until(&format!("{stream} at {addr}: {what}"), wait::WAIT, || {
        let mut c = c.clone();
        let (last, check) = (&last, &check);
        async move {
            let r = c
                .info(StreamInfoRequest {
                    stream: stream.to_string(),
                })
                .await;
            match r {
                Ok(i) => {
                    let i = i.into_inner();
                    if check(&i) {
                        return Some(i);
                    }
                    *tributary_common::sync::lock(last) = format!("{:?}", (i.state, i.replication));
                }
                Err(s) => *tributary_common::sync::lock(last) = format!("{s:?}"),
            }
            None
        }
    })
    .await
    .map_err(|e| {
        let last = tributary_common::sync::lock(&last).clone();
        anyhow!("{e}; last: {last}")
    })
}

/// Every stored message of a stream, in seq order.
pub async fn messages(addr: &str, stream: &str) -> Result<Vec<StreamMessage>> {
    let last = info(addr, stream).await?.state.map_or(0, |s| s.last_seq);
    let mut out = Vec::new();
    if last == 0 {
        return Ok(out);
    }
    let mut sub = client(addr)?
        .subscribe(SubscribeRequest {
            stream: stream.to_string(),
            start_seq: 1,
            batch: 4096,
            ..Default::default()
        })
        .await?
        .into_inner();
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(5), sub.next()).await? {
        let ev = ev?;
        out.extend(ev.messages);
        if ev.next_seq > last {
            break;
        }
    }
    Ok(out)
}
