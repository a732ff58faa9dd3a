//! `tribctl well ingest`: plain or JSON lines into a well, in pipelined batches. An entry
//! counts as stored only once its batch is acknowledged; a stream that ends before every batch
//! is acknowledged is an error, whether the data node says why or just stops.

use crate::client::ControlPlane;
use crate::{locate, output};
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tributary_common::duration::parse_time_ns;
use tributary_common::time::now_ns;
use tributary_proto::v1::ingest_client::IngestClient;
use tributary_proto::v1::{IngestBatch, WellEntry};

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
    /// The cluster's ingest secret (Gravwell's shared secret; not needed with a certificate
    /// or token that may WRITE the well). Shown by `ps`: prefer --secret-file or the env.
    #[arg(
        long,
        env = "TRIBUTARY_INGEST_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    secret: String,
    /// A file holding the ingest secret (surrounding whitespace ignored).
    #[arg(long, env = "TRIBUTARY_INGEST_SECRET_FILE")]
    secret_file: Option<std::path::PathBuf>,
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

/// What the reader has handed to the ingest stream. `done` is set before the reader lets go
/// of the stream, so when the acks end it tells a finished upload from a cut one.
#[derive(Default)]
struct Sent {
    batches: AtomicU64,
    done: AtomicBool,
}

/// Reads `input` into batches of `BATCH` entries and sends them; returns the entries read.
fn send_batches(
    input: Box<dyn BufRead + Send>,
    tag: &str,
    tx: &mpsc::Sender<IngestBatch>,
    sent: &Sent,
    bar: &ProgressBar,
) -> Result<u64> {
    let (mut batch, mut n) = (Vec::with_capacity(BATCH), 0u64);
    let send = |entries: Vec<WellEntry>| {
        let seq = sent.batches.load(Ordering::SeqCst) + 1;
        tx.blocking_send(IngestBatch {
            seq,
            entries,
            batch_id: String::new(),
            traceparent: String::new(),
        })
        .map_err(|_| anyhow!("the data node closed the ingest stream"))?;
        sent.batches.store(seq, Ordering::SeqCst);
        Ok::<_, anyhow::Error>(())
    };
    for (i, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", i + 1))?;
        bar.inc(line.len() as u64 + 1);
        if line.trim().is_empty() {
            continue;
        }
        batch.push(parse_line(&line, tag, i + 1)?);
        n += 1;
        if batch.len() == BATCH {
            send(std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        send(batch)?;
    }
    Ok(n)
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
    // Sent only when given: a data node takes an empty one as a wrong secret, and without it
    // the call is judged by tribctl's certificate or token instead.
    if let Some(secret) =
        crate::connect_args::secret("--secret", &args.secret, args.secret_file.as_deref())?
    {
        let mut v = MetadataValue::try_from(secret.as_str())
            .map_err(|_| anyhow!("--secret: not a valid header value"))?;
        v.set_sensitive(true);
        req.metadata_mut()
            .insert(tributary_common::grpc::INGEST_SECRET_HEADER, v);
    }
    let sent = Arc::new(Sent::default());
    let (reader_sent, reader_bar) = (sent.clone(), bar.clone());
    let reader = tokio::task::spawn_blocking(move || {
        let read = send_batches(input, &tag, &tx, &reader_sent, &reader_bar);
        reader_sent.done.store(true, Ordering::SeqCst);
        drop(tx);
        read
    });
    let mut acks = IngestClient::new(ch).write(req).await?.into_inner();
    let (mut acked, mut stored) = (0u64, 0u64);
    let refused = loop {
        match acks.message().await {
            Ok(Some(ack)) => {
                acked += 1;
                stored += ack.stored;
                bar.set_message(format!("{stored} entries stored"));
            }
            Ok(None) => break None,
            Err(status) => break Some(status),
        }
    };
    bar.finish_and_clear();
    let lost = |why: String| {
        anyhow!(
            "{why}; {stored} entries stored (acknowledged), nothing from batch {} on",
            acked + 1
        )
    };
    if let Some(s) = refused {
        return Err(lost(format!(
            "the data node stopped the ingest at batch {}: {} ({:?})",
            acked + 1,
            s.message(),
            s.code()
        )));
    }
    // The acks ended. If the reader is still sending, the data node cut the stream.
    if !sent.done.load(Ordering::SeqCst) {
        return Err(lost(format!(
            "the data node ended the ingest stream after {acked} batches, while more were \
             being sent (a batch over its max_message_bytes or a garbled one ends it so)"
        )));
    }
    let read = reader
        .await?
        .with_context(|| format!("stopped after {stored} entries were stored"))?;
    let batches = sent.batches.load(Ordering::SeqCst);
    if acked < batches {
        return Err(lost(format!(
            "the data node ended the ingest stream after acknowledging {acked} of {batches} \
             batches, without an error (a batch over its max_message_bytes or a garbled one \
             ends it so)"
        )));
    }
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
