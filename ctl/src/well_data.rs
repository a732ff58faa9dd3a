//! `tribctl well ingest|query|shards`: the data plane of wells.

use crate::client::ControlPlane;
use crate::{locate, output};
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::BufRead;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tributary_common::duration::parse_time_ns;
use tributary_common::time::now_ns;
use tributary_proto::v1::ingest_client::IngestClient;
use tributary_proto::v1::wells_client::WellsClient;
use tributary_proto::v1::{IngestBatch, QueryRequest, ShardsRequest, WellEntry};

const BATCH: usize = 1000;

#[derive(Args)]
pub struct IngestArgs {
    pub name: String,
    /// Read entries from this file instead of stdin.
    #[arg(long)]
    file: Option<std::path::PathBuf>,
    /// Tag for plain lines (default: the well's first tag).
    #[arg(long)]
    tag: Option<String>,
    /// The cluster's ingest secret.
    #[arg(long, env = "TRIBUTARY_INGEST_SECRET", default_value = "")]
    secret: String,
}

#[derive(Args)]
pub struct QueryArgs {
    pub name: String,
    /// RFC 3339 or unix ns.
    #[arg(long)]
    from: Option<String>,
    #[arg(long)]
    to: Option<String>,
    /// Only these tags (repeat or comma-separate).
    #[arg(long = "tag")]
    tags: Vec<String>,
    #[arg(long, default_value_t = 0)]
    limit: u64,
}

#[derive(serde::Deserialize)]
struct JsonLine {
    timestamp: Option<serde_json::Value>,
    tag: Option<String>,
    #[serde(default)]
    source: String,
    #[serde(default)]
    data: String,
}

/// One input line as an entry: a JSON object, or plain text stamped now under `tag`.
fn parse_line(line: &str, tag: &str, lineno: usize) -> Result<WellEntry> {
    if !line.trim_start().starts_with('{') {
        return Ok(WellEntry {
            timestamp_ns: now_ns(),
            tag: tag.into(),
            data: line.as_bytes().to_vec().into(),
            ..Default::default()
        });
    }
    let j: JsonLine = serde_json::from_str(line)
        .with_context(|| format!("line {lineno}: malformed JSON entry"))?;
    let timestamp_ns = match j.timestamp {
        None => now_ns(),
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| anyhow!("line {lineno}: timestamp out of range"))?,
        Some(serde_json::Value::String(s)) => {
            parse_time_ns(&s).map_err(|e| anyhow!("line {lineno}: {e}"))?
        }
        Some(other) => bail!("line {lineno}: timestamp {other} is neither RFC 3339 nor unix ns"),
    };
    Ok(WellEntry {
        timestamp_ns,
        tag: j.tag.unwrap_or_else(|| tag.to_string()),
        source: j.source,
        data: j.data.into_bytes().into(),
        values: Default::default(),
    })
}

pub async fn ingest(args: IngestArgs, cp: &ControlPlane, json: bool) -> Result<()> {
    let (well, ch) = locate::well_node(cp, &args.name).await?;
    let tag = match args.tag.or_else(|| well.tags.first().cloned()) {
        Some(t) => t,
        None => bail!("well {} routes no tags: give --tag", well.name),
    };
    let input: Box<dyn BufRead + Send> = match &args.file {
        Some(f) => Box::new(std::io::BufReader::new(
            std::fs::File::open(f).with_context(|| format!("--file {}", f.display()))?,
        )),
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    let total = args
        .file
        .as_ref()
        .and_then(|f| std::fs::metadata(f).ok())
        .map(|m| m.len());
    let bar = match total {
        Some(n) => ProgressBar::new(n).with_style(ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {msg}",
        )?),
        None => ProgressBar::new_spinner()
            .with_style(ProgressStyle::with_template("{spinner} {bytes} {msg}")?),
    };
    let (tx, rx) = mpsc::channel::<IngestBatch>(8);
    let mut req = tonic::Request::new(ReceiverStream::new(rx));
    req.metadata_mut().insert(
        tributary_common::grpc::INGEST_SECRET_HEADER,
        MetadataValue::try_from(args.secret.as_str())?,
    );
    let reader_bar = bar.clone();
    let reader = tokio::task::spawn_blocking(move || -> Result<u64> {
        let (mut batch, mut seq, mut n) = (Vec::with_capacity(BATCH), 0u64, 0u64);
        for (i, line) in input.lines().enumerate() {
            let line = line.with_context(|| format!("reading line {}", i + 1))?;
            reader_bar.inc(line.len() as u64 + 1);
            if line.trim().is_empty() {
                continue;
            }
            batch.push(parse_line(&line, &tag, i + 1)?);
            n += 1;
            if batch.len() == BATCH {
                seq += 1;
                let b = IngestBatch {
                    seq,
                    entries: std::mem::take(&mut batch),
                    batch_id: String::new(),
                };
                tx.blocking_send(b)
                    .map_err(|_| anyhow!("the data node closed the ingest stream"))?;
            }
        }
        if !batch.is_empty() {
            tx.blocking_send(IngestBatch {
                seq: seq + 1,
                entries: batch,
                batch_id: String::new(),
            })
            .map_err(|_| anyhow!("the data node closed the ingest stream"))?;
        }
        Ok(n)
    });
    let mut acks = IngestClient::new(ch).write(req).await?.into_inner();
    let mut stored = 0u64;
    while let Some(ack) = acks.message().await? {
        stored += ack.stored;
        bar.set_message(format!("{stored} entries stored"));
    }
    let read = reader.await??;
    bar.finish_and_clear();
    if json {
        return output::json(
            &serde_json::json!({ "well": well.name, "read": read, "stored": stored }),
        );
    }
    println!(
        "{stored} of {read} entries stored (acknowledged, on disk) via well {}",
        well.name
    );
    Ok(())
}

fn time_arg(flag: &str, v: &Option<String>) -> Result<i64> {
    v.as_deref()
        .map(|s| parse_time_ns(s).map_err(|e| anyhow!("--{flag}: {e}")))
        .transpose()
        .map(|v| v.unwrap_or(0))
}

pub fn rfc3339(ns: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns.max(0) as u64);
    humantime::format_rfc3339_nanos(t).to_string()
}

pub async fn query(args: QueryArgs, cp: &ControlPlane, json: bool) -> Result<()> {
    let (well, ch) = locate::well_node(cp, &args.name).await?;
    let req = QueryRequest {
        well: well.name.clone(),
        from_ns: time_arg("from", &args.from)?,
        to_ns: time_arg("to", &args.to)?,
        tags: args
            .tags
            .iter()
            .flat_map(|t| t.split(','))
            .map(str::to_string)
            .collect(),
        limit: args.limit,
    };
    let mut stream = WellsClient::new(ch).query(req).await?.into_inner();
    let mut rows = Vec::new();
    while let Some(r) = stream.message().await? {
        for e in r.entries {
            let data = String::from_utf8_lossy(&e.data).to_string();
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "timestamp": rfc3339(e.timestamp_ns), "timestamp_ns": e.timestamp_ns, "tag": e.tag, "source": e.source, "data": data })
                );
            } else {
                rows.push(vec![rfc3339(e.timestamp_ns), e.tag, e.source, data]);
            }
        }
    }
    if !json {
        let n = rows.len();
        println!(
            "{}",
            output::table(&["timestamp", "tag", "source", "data"], rows)
        );
        println!("{n} entries");
    }
    Ok(())
}

pub async fn shards(name: String, cp: &ControlPlane, json: bool) -> Result<()> {
    let (well, ch) = locate::well_node(cp, &name).await?;
    let r = WellsClient::new(ch)
        .shards(ShardsRequest {
            well: well.name.clone(),
        })
        .await?
        .into_inner();
    if json {
        let shards: Vec<_> = r
            .shards
            .iter()
            .map(|s| serde_json::json!({ "shard": s.shard, "start": rfc3339(s.start_ns), "end": rfc3339(s.end_ns), "entries": s.entries, "bytes": s.bytes, "tier": s.tier }))
            .collect();
        return output::json(&serde_json::json!({ "well": well.name, "shards": shards }));
    }
    println!("{}", shards_table(&r.shards));
    Ok(())
}

pub fn shards_table(shards: &[tributary_proto::v1::ShardInfo]) -> comfy_table::Table {
    output::table(
        &["shard", "start", "end", "entries", "bytes", "tier"],
        shards
            .iter()
            .map(|s| {
                vec![
                    s.shard.to_string(),
                    rfc3339(s.start_ns),
                    rfc3339(s.end_ns),
                    s.entries.to_string(),
                    s.bytes.to_string(),
                    s.tier.clone(),
                ]
            })
            .collect(),
    )
}
