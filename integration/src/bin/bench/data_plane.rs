//! `bench -- ingest` and `bench -- publish`: one data node, one client over loopback, 128-byte
//! payloads in batches; beside each, the raw ceiling (the same writes through the storage
//! layer, no gRPC) so the ratio shows.

use crate::security::{writer_policy, Bearer, Secure, POLICY};
use anyhow::Result;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tributary_common::time::now_ns;
use tributary_data_node::storage::codec::EntryValue;
use tributary_data_node::storage::NewMessage;
use tributary_data_node::CatalogView;
use tributary_integration::{Cluster, INGEST_SECRET};
use tributary_proto::v1::{
    entity::Kind, ingest_client::IngestClient, streams_client::StreamsClient, Entity, IngestBatch,
    PublishRequest, StorageType, Stream, Well, WellEntry,
};

/// A standalone data node (no control plane, direct links) serving the `bench` well and the
/// `BENCH` stream from a catalogue set in-process: cleartext and open to anyone (`None`), or
/// speaking TLS and taking the `secure` callers' tokens, judged by the entities' policy.
pub async fn start_node(secure: Option<&Secure>) -> Result<Cluster> {
    let builder = Cluster::builder("bench").members(0).direct();
    let c = match secure {
        None => builder.insecure(),
        Some(s) => builder.tune_data_nodes(s.tune_data_node()),
    }
    .start()
    .await?;
    let mut entities = vec![
        Entity {
            kind: Some(Kind::Well(Well {
                name: "bench".into(),
                tags: vec!["bench".into()],
                owner_node: 1,
                policy: POLICY.into(),
                ..Default::default()
            })),
        },
        Entity {
            kind: Some(Kind::Stream(Stream {
                name: "BENCH".into(),
                subjects: vec!["bench.>".into()],
                storage: StorageType::File as i32,
                owner_node: 1,
                policy: POLICY.into(),
                ..Default::default()
            })),
        },
    ];
    entities.push(Entity {
        kind: Some(Kind::Policy(writer_policy()?)),
    });
    c.data_node(1)?
        .node
        .set_catalog(CatalogView::from_entities(1, entities))?;
    Ok(c)
}

fn report(what: &str, n: u64, bytes: u64, secs: f64) -> f64 {
    let rate = n as f64 / secs;
    println!(
        "{what:<34} {:>12.0} /s  {:>8.1} MB/s  ({n} in {secs:.2} s)",
        rate,
        bytes as f64 / secs / 1e6
    );
    rate
}

pub async fn ingest(entries: u64, batch: usize, payload: usize) -> Result<()> {
    println!(
        "ingest: {entries} entries of {payload} B in batches of {batch}, one client, loopback"
    );
    let data = bytes::Bytes::from(vec![b'x'; payload]);
    let batches = entries.div_ceil(batch as u64);
    let base = now_ns();

    // Raw ceiling: the node's well storage, same batches, no gRPC.
    let c = start_node(None).await?;
    let node = c.data_node(1)?.node.clone();
    let well = node.owned_well("well", "default:bench")?;
    let tag = node.resolve_tag("bench").await?;
    let raw_secs = tokio::task::spawn_blocking({
        let (well, data) = (well.clone(), data.clone());
        move || -> Result<f64> {
            let t = Instant::now();
            for b in 0..batches {
                let rows: Vec<(Arc<_>, u64, EntryValue)> = (0..batch as u64)
                    .map(|i| {
                        let ts = (base + (b * batch as u64 + i) as i64) as u64;
                        (
                            well.clone(),
                            ts,
                            EntryValue {
                                tag,
                                source: None,
                                data: data.clone(),
                                values: Default::default(),
                            },
                        )
                    })
                    .collect();
                node.write_entries(rows, None, now_ns())?;
            }
            Ok(t.elapsed().as_secs_f64())
        }
    })
    .await??;
    let raw = report(
        "raw ceiling (storage, no gRPC)",
        batches * batch as u64,
        batches * batch as u64 * payload as u64,
        raw_secs,
    );
    c.shutdown().await;

    // Through gRPC: a fresh node, batches streamed with acks collected as they come.
    let grpc = ingest_over_grpc(None, entries, batch, payload).await?;
    println!("ratio gRPC / raw ceiling: {:.0}%", grpc / raw * 100.0);
    Ok(())
}

/// `Ingest.Write` on a fresh node, one client streaming batches and collecting acks as they
/// come: with the ingest secret (`secure: None`), or TLS and the writer's token; entries/s.
pub async fn ingest_over_grpc(
    secure: Option<&Secure>,
    entries: u64,
    batch: usize,
    payload: usize,
) -> Result<f64> {
    let data = bytes::Bytes::from(vec![b'x'; payload]);
    let batches = entries.div_ceil(batch as u64);
    let base = now_ns();
    let c = start_node(secure).await?;
    let mut client = IngestClient::new(channel(&c, secure)?)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let (tx, rx) = mpsc::channel::<IngestBatch>(16);
    let mut req = tonic::Request::new(ReceiverStream::new(rx));
    match secure {
        None => {
            req.metadata_mut().insert(
                tributary_common::grpc::INGEST_SECRET_HEADER,
                MetadataValue::from_static(INGEST_SECRET),
            );
        }
        Some(s) => s.authorize(&mut req)?,
    }
    let t = Instant::now();
    let producer = tokio::spawn(async move {
        for b in 0..batches {
            let entries = (0..batch as u64)
                .map(|i| WellEntry {
                    timestamp_ns: base + (b * batch as u64 + i) as i64,
                    tag: "bench".into(),
                    source: String::new(),
                    data: data.clone(),
                    values: Default::default(),
                })
                .collect();
            if tx
                .send(IngestBatch {
                    seq: b + 1,
                    entries,
                    batch_id: String::new(),
                    traceparent: String::new(),
                })
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let mut acks = client.write(req).await?.into_inner();
    let mut stored = 0u64;
    while let Some(a) = acks.message().await? {
        stored += a.stored;
    }
    producer.await?;
    let rate = report(
        "Ingest.Write over gRPC",
        stored,
        stored * payload as u64,
        t.elapsed().as_secs_f64(),
    );
    c.shutdown().await;
    Ok(rate)
}

/// The node's channel: cleartext, or TLS trusting its CA with no client certificate (the
/// caller is who its token says).
fn channel(c: &Cluster, secure: Option<&Secure>) -> Result<tonic::transport::Channel> {
    let addr = c.data_addr(1)?;
    match secure {
        None => tributary_integration::tls::channel(&addr),
        Some(_) => tributary_integration::tls::anonymous_channel(&addr),
    }
}

pub async fn publish(messages: u64, payload: usize) -> Result<()> {
    println!("publish: {messages} messages of {payload} B to a file stream, pipelined, one client, loopback");
    let data = bytes::Bytes::from(vec![b'x'; payload]);

    let c = start_node(None).await?;
    let store = c
        .data_node(1)?
        .node
        .owned_stream("stream", "default:BENCH")?;
    let raw_secs = tokio::task::spawn_blocking({
        let data = data.clone();
        move || -> Result<f64> {
            let t = Instant::now();
            let mut left = messages;
            while left > 0 {
                let n = left.min(512);
                let msgs = (0..n)
                    .map(|_| {
                        (
                            NewMessage {
                                subject: "bench.x".into(),
                                headers: Default::default(),
                                data: data.clone(),
                                timestamp_ns: 0,
                            },
                            None,
                        )
                    })
                    .collect();
                for r in store.publish_batch(msgs) {
                    r?;
                }
                left -= n;
            }
            Ok(t.elapsed().as_secs_f64())
        }
    })
    .await??;
    let raw = report(
        "raw ceiling (storage, no gRPC)",
        messages,
        messages * payload as u64,
        raw_secs,
    );
    c.shutdown().await;

    let grpc = publish_over_grpc(None, messages, payload).await?;
    println!("ratio gRPC / raw ceiling: {:.0}%", grpc / raw * 100.0);
    Ok(())
}

/// Pipelined `Streams.PublishStream` on a fresh node, one client: open (`secure: None`), or
/// TLS and the writer's token; msgs/s.
pub async fn publish_over_grpc(
    secure: Option<&Secure>,
    messages: u64,
    payload: usize,
) -> Result<f64> {
    let data = bytes::Bytes::from(vec![b'x'; payload]);
    let c = start_node(secure).await?;
    let ch = channel(&c, secure)?;
    let mut client = StreamsClient::with_interceptor(ch, Bearer::of(secure));
    let (tx, rx) = mpsc::channel::<PublishRequest>(8192);
    let t = Instant::now();
    let producer = tokio::spawn(async move {
        for id in 1..=messages {
            let req = PublishRequest {
                subject: "bench.x".into(),
                headers: Default::default(),
                data: data.clone(),
                expected_last_seq: 0,
                id,
            };
            if tx.send(req).await.is_err() {
                break;
            }
        }
    });
    let mut acks =
        tributary_common::publish::pipelined(&mut client, ReceiverStream::new(rx)).await?;
    let (mut ok, mut failed) = (0u64, 0u64);
    while let Some(a) = futures::StreamExt::next(&mut acks).await.transpose()? {
        if a.error.is_empty() {
            ok += 1;
        } else {
            failed += 1;
        }
    }
    producer.await?;
    let rate = report(
        "Streams.PublishStream over gRPC",
        ok,
        ok * payload as u64,
        t.elapsed().as_secs_f64(),
    );
    if failed > 0 {
        println!("{failed} publishes failed");
    }
    c.shutdown().await;
    Ok(rate)
}
