//! `tribctl stream publish|get|sub|info|purge|rm-msg`: the data plane of streams.

use crate::client::ControlPlane;
use crate::{locate, output};
use anyhow::{anyhow, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tributary_common::duration::parse_time_ns;
use tributary_proto::v1::streams_client::StreamsClient;
use tributary_proto::v1::{
    DeleteMessageRequest, GetMessageRequest, PublishRequest, PurgeRequest, StreamInfoRequest,
    StreamMessage, SubscribeRequest,
};

#[derive(Args)]
pub struct PublishArgs {
    subject: String,
    /// Message body; `{{Count}}` is replaced by the message number (1, 2, …).
    body: String,
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Header KEY=VALUE (repeatable), e.g. Msg-Id=abc for deduplication.
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
}

#[derive(Args)]
pub struct SubArgs {
    name: String,
    #[arg(long)]
    start_seq: Option<u64>,
    /// RFC 3339 or unix ns.
    #[arg(long)]
    start_time: Option<String>,
    #[arg(long)]
    filter: Option<String>,
    /// Stop after this many messages (default: follow until interrupted).
    #[arg(long)]
    count: Option<u64>,
}

pub async fn publish(a: PublishArgs, cp: &ControlPlane, json: bool) -> Result<()> {
    let (stream, ch) = locate::stream_for_subject(cp, &a.subject).await?;
    let headers = a
        .headers
        .iter()
        .map(|h| {
            h.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("--header {h:?}: want KEY=VALUE"))
        })
        .collect::<Result<std::collections::HashMap<_, _>>>()?;
    let bar = if a.count > 1 {
        ProgressBar::new(a.count).with_style(ProgressStyle::with_template(
            "{bar:40} {pos}/{len} {per_sec}",
        )?)
    } else {
        ProgressBar::hidden()
    };
    let (tx, rx) = mpsc::channel(1024);
    let (subject, body, count) = (a.subject.clone(), a.body.clone(), a.count);
    let sender = tokio::spawn(async move {
        for i in 1..=count {
            let req = PublishRequest {
                subject: subject.clone(),
                headers: headers.clone(),
                data: body
                    .replace("{{Count}}", &i.to_string())
                    .into_bytes()
                    .into(),
                expected_last_seq: 0,
                id: i,
            };
            if tx.send(req).await.is_err() {
                break;
            }
        }
    });
    let mut client = StreamsClient::new(ch);
    let mut acks =
        tributary_common::publish::pipelined(&mut client, ReceiverStream::new(rx)).await?;
    let (mut ok, mut last_seq, mut first_err) = (0u64, 0u64, None);
    while let Some(ack) = tokio_stream::StreamExt::next(&mut acks).await.transpose()? {
        bar.inc(1);
        if ack.error.is_empty() {
            ok += 1;
            last_seq = last_seq.max(ack.seq);
        } else if first_err.is_none() {
            first_err = Some(ack.error);
        }
    }
    let _ = sender.await;
    bar.finish_and_clear();
    if json {
        output::json(
            &serde_json::json!({ "stream": stream.name, "published": ok, "last_seq": last_seq, "error": first_err }),
        )?;
    } else {
        println!(
            "published {ok} of {} message(s) to stream {} (last seq {last_seq})",
            a.count, stream.name
        );
    }
    match first_err {
        Some(e) => Err(anyhow!("{e}")),
        None => Ok(()),
    }
}

fn print_msg(m: &StreamMessage, json: bool) {
    let data = String::from_utf8_lossy(&m.data);
    if json {
        println!(
            "{}",
            serde_json::json!({ "seq": m.seq, "subject": m.subject, "headers": m.headers, "data": data, "timestamp_ns": m.timestamp_ns })
        );
    } else {
        println!("[#{}] {} {}", m.seq, m.subject, data);
    }
}

pub async fn get(name: String, seq: u64, cp: &ControlPlane, json: bool) -> Result<()> {
    let (s, ch) = locate::stream_node(cp, &name).await?;
    let m = StreamsClient::new(ch)
        .get(GetMessageRequest {
            stream: s.name,
            seq,
        })
        .await?
        .into_inner();
    print_msg(&m, json);
    Ok(())
}

pub async fn sub(a: SubArgs, cp: &ControlPlane, json: bool) -> Result<()> {
    let (s, ch) = locate::stream_node(cp, &a.name).await?;
    let req = SubscribeRequest {
        stream: s.name.clone(),
        start_seq: a.start_seq.unwrap_or(0),
        start_time_ns: a
            .start_time
            .as_deref()
            .map(parse_time_ns)
            .transpose()
            .map_err(|e| anyhow!("--start-time: {e}"))?
            .unwrap_or(0),
        filter_subject: a.filter.unwrap_or_default(),
        batch: 0,
        // Decoded messages: the stored form is for data nodes.
        stored_form: false,
    };
    let replicated = !s.replica_nodes.is_empty();
    let (mut ch, mut req) = (ch, req);
    let mut seen = 0u64;
    // A replicated stream's subscription that ends unavailable (its leader went) is opened
    // again through a replica that answers, after the last message shown.
    let mut next = 0u64;
    let mut gone_since: Option<std::time::Instant> = None;
    loop {
        let r = async {
            let mut events = StreamsClient::new(ch.clone())
                .subscribe(req.clone())
                .await?
                .into_inner();
            while let Some(ev) = events.message().await? {
                gone_since = None;
                next = next.max(ev.next_seq);
                for m in &ev.messages {
                    next = next.max(m.seq + 1);
                    print_msg(m, json);
                    seen += 1;
                    if a.count.is_some_and(|c| seen >= c) {
                        return Ok(true);
                    }
                }
            }
            Ok::<_, tonic::Status>(false)
        }
        .await;
        match r {
            Ok(true) => return Ok(()),
            Ok(false) if !replicated => return Ok(()),
            Err(e) if !replicated || e.code() != tonic::Code::Unavailable => return Err(e.into()),
            Ok(false) | Err(_) => {
                let since = *gone_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() > std::time::Duration::from_secs(15) {
                    return Err(anyhow!(
                        "stream {}: no leader to follow for 15s",
                        req.stream
                    ));
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                if let Ok((_, c)) = locate::stream_node(cp, &req.stream).await {
                    ch = c;
                }
                if next > 0 {
                    req.start_seq = next;
                    req.start_time_ns = 0;
                }
            }
        }
    }
}

pub async fn info(name: String, cp: &ControlPlane, json: bool) -> Result<()> {
    let (s, ch) = locate::stream_node(cp, &name).await?;
    let r = StreamsClient::new(ch)
        .info(StreamInfoRequest { stream: s.name })
        .await?
        .into_inner();
    if json {
        // The cluster block in JetStream's ClusterInfo shape.
        let mut v = serde_json::to_value(&r)?;
        if let (Some(obj), Some(c)) = (v.as_object_mut(), &r.cluster) {
            obj.insert(
                "cluster".into(),
                serde_json::to_value(crate::stream_cluster::to_jetstream(c))?,
            );
        }
        return output::json(&v);
    }
    if let Some(c) = &r.config {
        println!("Configuration:\n{}", output::fields(c)?);
    }
    if let Some(c) = &r.cluster {
        crate::stream_cluster::print_block(c);
    }
    if let Some(st) = &r.state {
        println!("State:\n{}", output::fields(st)?);
    }
    crate::stream_report::print_info_blocks(&r.replication);
    Ok(())
}

pub async fn purge(
    name: String,
    subject: Option<String>,
    cp: &ControlPlane,
    json: bool,
) -> Result<()> {
    let (s, ch) = locate::stream_node(cp, &name).await?;
    let r = StreamsClient::new(ch)
        .purge(PurgeRequest {
            stream: s.name.clone(),
            subject: subject.unwrap_or_default(),
        })
        .await?
        .into_inner();
    if json {
        return output::json(&r);
    }
    println!("purged {} message(s) from {}", r.purged, s.name);
    Ok(())
}

pub async fn rm_msg(name: String, seq: u64, cp: &ControlPlane, json: bool) -> Result<()> {
    let (s, ch) = locate::stream_node(cp, &name).await?;
    StreamsClient::new(ch)
        .delete_message(DeleteMessageRequest {
            stream: s.name.clone(),
            seq,
        })
        .await?;
    if json {
        return output::json(&serde_json::json!({ "stream": s.name, "deleted": seq }));
    }
    println!("deleted message {seq} from {}", s.name);
    Ok(())
}
