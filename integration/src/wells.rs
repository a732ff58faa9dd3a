//! Well and ditto calls tests make against a data node's address: ingest, query, shards, stats.

use anyhow::{anyhow, Result};
use tokio_stream::StreamExt;
use tonic::metadata::MetadataValue;
use tributary_proto::v1::{
    ditto_client::DittoClient, ingest_client::IngestClient, wells_client::WellsClient,
    DittoStatsReply, DittoStatsRequest, IngestBatch, QueryRequest, ShardInfo, ShardsRequest,
    WellEntry,
};

fn channel(addr: &str) -> Result<tonic::transport::Channel> {
    crate::tls::channel(addr)
}

/// Ingests `entries` in batches of `per_batch` with `secret`, and checks every batch's ack.
pub async fn ingest(
    addr: &str,
    secret: &'static str,
    entries: Vec<WellEntry>,
    per_batch: usize,
) -> Result<()> {
    let mut c = IngestClient::new(channel(addr)?).max_encoding_message_size(64 << 20);
    let batches: Vec<IngestBatch> = entries
        .chunks(per_batch.max(1))
        .enumerate()
        .map(|(i, ch)| IngestBatch {
            seq: i as u64,
            entries: ch.to_vec(),
            batch_id: String::new(),
            traceparent: String::new(),
        })
        .collect();
    let n = batches.len();
    let mut req = tonic::Request::new(tokio_stream::iter(batches));
    req.metadata_mut().insert(
        tributary_common::grpc::INGEST_SECRET_HEADER,
        MetadataValue::from_static(secret),
    );
    let mut acks = c.write(req).await?.into_inner();
    for i in 0..n {
        acks.next()
            .await
            .ok_or_else(|| anyhow!("the ingest stream ended after {i} of {n} acks"))??;
    }
    Ok(())
}

/// Every entry of `well`.
pub async fn query(addr: &str, well: &str) -> Result<Vec<WellEntry>> {
    let mut c = WellsClient::new(channel(addr)?).max_decoding_message_size(64 << 20);
    let mut s = c
        .query(QueryRequest {
            well: well.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = s.next().await {
        out.extend(r?.entries);
    }
    Ok(out)
}

pub async fn shards(addr: &str, well: &str) -> Result<Vec<ShardInfo>> {
    let mut c = WellsClient::new(channel(addr)?);
    Ok(c.shards(ShardsRequest { well: well.into() })
        .await?
        .into_inner()
        .shards)
}

/// The node's ditto workers and copy slots.
pub async fn ditto_stats(addr: &str) -> Result<DittoStatsReply> {
    let mut c = DittoClient::new(channel(addr)?);
    Ok(c.stats(DittoStatsRequest {}).await?.into_inner())
}
