//! `bench -- ditto`: entries of one well mirrored into a second cluster on this machine,
//! end to end (first batch sent → last entry stored on the target), compression off and on,
//! beside the gRPC ingest rate measured on the same source.

use anyhow::Result;
use std::time::{Duration, Instant};
use tributary_integration::{wait, Cluster, INGEST_SECRET};
use tributary_proto::v1::{entity::Kind, Entity, Target, Well, WellEntry};

fn well(name: &str, default: bool, targets: &[&str]) -> Entity {
    Entity {
        kind: Some(Kind::Well(Well {
            name: name.into(),
            tags: if default {
                vec![]
            } else {
                vec!["bench".into()]
            },
            default_well: default,
            ditto_targets: targets.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        })),
    }
}

async fn one(entries: u64, payload: usize, compression: bool) -> Result<()> {
    // Direct links: the figures measure the servers, not the harness's proxies.
    let dst = Cluster::builder("dst").insecure().direct().start().await?;
    dst.create(well("all", true, &[])).await?;
    dst.wait_well_served("all", 1).await?;
    let src = Cluster::builder("src").insecure().direct().start().await?;
    src.create(well("src", false, &[])).await?;
    src.wait_well_served("src", 1).await?;

    // Source well: `entries` of `payload` bytes spread over 10 s of timestamps per million.
    let t0 = 1_700_000_000_000_000_000i64;
    let started = Instant::now();
    let chunk = 100_000u64;
    let mut i = 0u64;
    while i < entries {
        let n = chunk.min(entries - i);
        let batch: Vec<WellEntry> = (i..i + n)
            .map(|k| WellEntry {
                timestamp_ns: t0 + k as i64 * 10_000,
                tag: "bench".into(),
                data: vec![b'x'; payload].into(),
                ..Default::default()
            })
            .collect();
        src.ingest(1, batch, 1000).await?;
        i += n;
    }
    let ingest_s = started.elapsed().as_secs_f64();

    src.create(Entity {
        kind: Some(Kind::Target(Target {
            name: "dr".into(),
            cleartext_endpoints: vec![dst.endpoint(1)?],
            ingest_secret: INGEST_SECRET.into(),
            enable_compression: compression,
            ..Default::default()
        })),
    })
    .await?;
    let started = Instant::now();
    src.update(well("src", false, &["dr"])).await?;
    wait::until(
        "every entry on the target",
        Duration::from_secs(3600),
        || async {
            let n: u64 = dst
                .shards(1, "all")
                .await
                .ok()?
                .iter()
                .map(|s| s.entries)
                .sum();
            (n >= entries).then_some(())
        },
    )
    .await?;
    let ditto_s = started.elapsed().as_secs_f64();
    let mb = (entries as f64 * payload as f64) / 1e6;
    println!(
        "compression {:<3}  ingest {:>9.0} entries/s {:>7.1} MB/s   ditto {:>9.0} entries/s {:>7.1} MB/s   ({:.0}% of ingest)",
        if compression { "on" } else { "off" },
        entries as f64 / ingest_s,
        mb / ingest_s,
        entries as f64 / ditto_s,
        mb / ditto_s,
        100.0 * ingest_s / ditto_s,
    );
    src.shutdown().await;
    dst.shutdown().await;
    Ok(())
}

pub async fn run(entries: u64, payload: usize) -> Result<()> {
    println!(
        "ditto: {entries} entries of {payload} B, one well, into a second cluster on 127.0.0.1"
    );
    one(entries, payload, false).await?;
    one(entries, payload, true).await?;
    Ok(())
}
