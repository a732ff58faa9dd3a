//! `tribctl well query|shards`: reading wells.

use crate::client::ControlPlane;
use crate::{locate, output};
use anyhow::{anyhow, Result};
use clap::Args;
use tributary_common::duration::parse_time_ns;
use tributary_proto::v1::wells_client::WellsClient;
use tributary_proto::v1::{QueryRequest, ShardsRequest};

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

/// After `well create`: waits (a bounded time) until the well's data node serves it, so an
/// ingest right after finds its tags routed (the node learns of the well from the catalogue's
/// watch, a moment after the create is committed). Not served in time, or not ours to check
/// (no READ on it): the create stands, and a line on stderr says so.
pub async fn wait_served(name: &str, cp: &ControlPlane) {
    let served = tributary_common::wait::until(
        &format!("well {name} served by its data node"),
        std::time::Duration::from_secs(10),
        || async {
            let (well, ch) = locate::well_node(cp, name).await.ok()?;
            let r = WellsClient::new(ch)
                .shards(ShardsRequest { well: well.name })
                .await;
            match r {
                Ok(_) => Some(true),
                Err(s) if s.code() == tonic::Code::PermissionDenied => Some(false),
                Err(_) => None,
            }
        },
    )
    .await;
    match served {
        Ok(true) => {}
        Ok(false) => eprintln!(
            "well {name} created (not checked whether its data node serves it yet: no READ on it)"
        ),
        Err(e) => eprintln!("well {name} created, but {e}: an ingest may be refused until it does"),
    }
}
