//! The ditto part of `tribctl demo`: a second in-process cluster as the target, a well with
//! entries over a few shards and a Start-Time, mirrored; then `ditto stats` and both wells'
//! shard tables.

use crate::launcher::in_process::{self, InProcessCluster};
use crate::{ditto_cmds, output, well_data};
use anyhow::{anyhow, Context, Result};
use std::time::{Duration, Instant};
use tonic::metadata::MetadataValue;
use tributary_control_plane::RunningControlPlane;
use tributary_data_node::RunningDataNode;
use tributary_proto::v1::{
    catalog_client::CatalogClient, entity::Kind, ingest_client::IngestClient,
    wells_client::WellsClient, Entity, IngestBatch, ShardInfo, ShardsRequest, Target, Well,
    WellEntry,
};

const SECRET: &str = "demo-ingest";
const SHARD_SECS: i64 = 3600;
const NS: i64 = 1_000_000_000;

struct Mini {
    cluster: InProcessCluster,
    _dir: tempfile::TempDir,
}

/// One member and one data node that takes `SECRET` for ingest, named `label` in batch ids.
async fn mini(label: &str) -> Result<Mini> {
    let dir = tempfile::tempdir()?;
    let cluster = in_process::start(dir.path(), 1, 1, |plan| {
        plan.set_cluster_secret(&format!("{label}-cluster"));
        for d in &mut plan.data_nodes {
            d.config.ingest_secrets = vec![SECRET.into()];
            d.config.cluster_name = label.into();
            d.config.ditto_stats_interval_ms = 1_000;
        }
    })
    .await?;
    if cluster.members.is_empty() || cluster.data_nodes.is_empty() {
        return Err(anyhow!("the {label} cluster did not start"));
    }
    Ok(Mini { cluster, _dir: dir })
}

/// Polls `check` every 50 ms until it yields, or fails naming `what`.
async fn until<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(anyhow!("timed out waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Mini {
    fn cp(&self) -> &RunningControlPlane {
        &self.cluster.members[0]
    }

    fn dn(&self) -> &RunningDataNode {
        &self.cluster.data_nodes[0]
    }

    async fn create(&self, e: Entity) -> Result<()> {
        let c = CatalogClient::connect(format!("http://{}", self.cp().addr)).await?;
        // Placement needs the data node registered: retry briefly.
        until("the catalogue to accept an entity", || {
            let (mut c, e) = (c.clone(), e.clone());
            async move { c.create(e).await.ok() }
        })
        .await
        .map(|_| ())
    }

    async fn shards(&self, well: &str) -> Result<Vec<ShardInfo>> {
        Ok(WellsClient::connect(format!("http://{}", self.dn().addr))
            .await?
            .shards(ShardsRequest { well: well.into() })
            .await?
            .into_inner()
            .shards)
    }
}

fn well(name: &str, tags: &[&str], targets: &[&str]) -> Entity {
    Entity {
        kind: Some(Kind::Well(Well {
            name: name.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            shard_duration_secs: SHARD_SECS as u64,
            ditto_targets: targets.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        })),
    }
}

pub async fn run(json: bool) -> Result<()> {
    output::step(
        "ditto: a second in-process cluster as the target, a well mirrored from a Start-Time",
    );
    let dst = mini("dr-site")
        .await
        .context("starting the target cluster")?;
    let src = mini("primary")
        .await
        .context("starting the source cluster")?;
    dst.create(well("logs", &["web", "db"], &[])).await?;
    src.create(well("logs", &["web", "db"], &[])).await?;
    until("the source well to open", || {
        let ok = src.dn().node.well("default:logs").is_some();
        async move { ok.then_some(()) }
    })
    .await?;
    // 5 shards of an hour, 40 entries each, starting at a recent hour.
    let now_s = tributary_common::time::now_ns() / NS;
    let base = (now_s / SHARD_SECS - 6) * SHARD_SECS;
    let entries: Vec<WellEntry> = (0..5)
        .flat_map(|s| {
            (0..40).map(move |i| WellEntry {
                timestamp_ns: (base + s * SHARD_SECS + i * 60) * NS,
                tag: if i % 2 == 0 { "web" } else { "db" }.into(),
                data: format!("GET /item/{s}/{i} 200").into_bytes().into(),
                ..Default::default()
            })
        })
        .collect();
    let mut ingest = IngestClient::connect(format!("http://{}", src.dn().addr)).await?;
    let mut req = tonic::Request::new(tokio_stream::iter(vec![IngestBatch {
        seq: 1,
        entries,
        batch_id: String::new(),
        traceparent: String::new(),
    }]));
    req.metadata_mut().insert(
        tributary_common::grpc::INGEST_SECRET_HEADER,
        MetadataValue::from_static(SECRET),
    );
    let mut acks = ingest.write(req).await?.into_inner();
    acks.message().await?;
    let start = (base + 2 * SHARD_SECS + SHARD_SECS / 2) * NS;
    println!(
        "source well default:logs: 200 entries over 5 shards; target dr-site Start-Time {} (inside shard 3)",
        well_data::rfc3339(start)
    );
    src.create(Entity {
        kind: Some(Kind::Target(Target {
            name: "dr-site".into(),
            cleartext_endpoints: vec![dst.dn().addr.to_string()],
            ingest_secret: SECRET.into(),
            start_time_ns: start,
            enable_compression: true,
            ..Default::default()
        })),
    })
    .await?;
    let started = Instant::now();
    CatalogClient::connect(format!("http://{}", src.cp().addr))
        .await?
        .update(well("logs", &["web", "db"], &["dr-site"]))
        .await?;
    let stats = until("shards 3-5 (120 entries) to arrive", || {
        let src = &src;
        async move {
            let rows = ditto_stats(src).await?;
            rows.iter()
                .all(|(_, w)| w.entries_sent == 120 && w.entries_behind == 0)
                .then_some(rows)
        }
    })
    .await?;
    println!("mirrored 120 entries in {:?}", started.elapsed());
    if json {
        let v: Vec<_> = stats
            .iter()
            .map(|(n, w)| serde_json::json!({ "node": n, "stats": w }))
            .collect();
        output::json(&v)?;
    } else {
        output::step("tribctl ditto stats");
        println!("{}", ditto_cmds::table(&stats));
        output::step("tribctl well shards logs (source: 5 shards)");
        println!("{}", well_data::shards_table(&src.shards("logs").await?));
        output::step("tribctl well shards logs (target: shards 3-5, whole)");
        println!("{}", well_data::shards_table(&dst.shards("logs").await?));
    }
    for m in [src, dst] {
        m.cluster.shutdown().await;
    }
    Ok(())
}

async fn ditto_stats(m: &Mini) -> Option<Vec<(u64, tributary_proto::v1::DittoWorkerStats)>> {
    let mut c =
        tributary_proto::v1::ditto_client::DittoClient::connect(format!("http://{}", m.dn().addr))
            .await
            .ok()?;
    let w = c
        .stats(tributary_proto::v1::DittoStatsRequest {})
        .await
        .ok()?
        .into_inner()
        .workers;
    (!w.is_empty()).then(|| w.into_iter().map(|w| (m.dn().node.id, w)).collect())
}
