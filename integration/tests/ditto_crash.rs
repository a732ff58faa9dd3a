//! `kill -9` either side's data node (the real binary) mid-transfer: after a restart (on
//! another port, behind the same link) every entry arrives exactly once (progress is resumed;
//! a resent batch keeps its id and the target stores it once).

use anyhow::Result;
use tributary_integration::{wait, Cluster, Server::DataNode, INGEST_SECRET};
use tributary_proto::v1::{entity::Kind, Entity, Target, Well, WellEntry};

const N: usize = 6_000;

fn entity_well(name: &str, default: bool, targets: &[&str]) -> Entity {
    Entity {
        kind: Some(Kind::Well(Well {
            name: name.into(),
            tags: if default { vec![] } else { vec!["x".into()] },
            default_well: default,
            ditto_targets: targets.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        })),
    }
}

fn entries() -> Vec<WellEntry> {
    (0..N)
        .map(|i| WellEntry {
            timestamp_ns: 1_700_000_000_000_000_000 + i as i64 * 1_000_000,
            tag: "x".into(),
            data: format!("entry-{i:06}-{}", "p".repeat(90))
                .into_bytes()
                .into(),
            ..Default::default()
        })
        .collect()
}

async fn count(c: &Cluster) -> usize {
    c.query(1, "all").await.map(|v| v.len()).unwrap_or(0)
}

/// One member and one data node, the data node a process when `process`.
async fn cluster(name: &str, process: bool) -> Result<Cluster> {
    // The target takes cleartext (Gravwell's Cleartext-Targets); TLS is `ditto_tls.rs`.
    let b = Cluster::builder(name).insecure();
    let b = if process { b.data_node_processes() } else { b };
    b.start().await
}

/// Sets up src → dst with a bandwidth limit so the transfer takes a few seconds, waits until
/// part of it has arrived, and kills one side's data node.
async fn crash_mid_transfer(kill_target: bool) -> Result<()> {
    let mut dst = cluster("dst", kill_target).await?;
    dst.create(entity_well("all", true, &[])).await?;
    dst.wait_well_served("all", 1).await?;
    let mut src = cluster("src", !kill_target).await?;
    src.create(entity_well("src", false, &[])).await?;
    src.wait_well_served("src", 1).await?;
    src.ingest(1, entries(), 500).await?;
    src.create(Entity {
        kind: Some(Kind::Target(Target {
            name: "dr".into(),
            cleartext_endpoints: vec![dst.endpoint(1)?],
            ingest_secret: INGEST_SECRET.into(),
            // ~110 B per entry: about 3 s for the lot.
            bandwidth_limit: 200_000,
            ..Default::default()
        })),
    })
    .await?;
    src.update(entity_well("src", false, &["dr"])).await?;
    wait::until("part of the transfer", wait::WAIT, || async {
        let n = count(&dst).await;
        (n > 0 && n < N).then_some(())
    })
    .await?;
    if kill_target {
        dst.restart(DataNode(1)).await?;
    } else {
        src.restart(DataNode(1)).await?;
    }
    let got = wait::until("every entry", 2 * wait::WAIT, || async {
        let v = dst.query(1, "all").await.ok()?;
        (v.len() >= N).then_some(v)
    })
    .await?;
    let mut data: Vec<_> = got.iter().map(|e| e.data.clone()).collect();
    data.sort();
    data.dedup();
    assert_eq!(data.len(), N, "an entry is missing");
    assert_eq!(got.len(), N, "an entry arrived twice");
    src.shutdown().await;
    dst.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_target_data_node_mid_transfer() -> Result<()> {
    crash_mid_transfer(true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_source_data_node_mid_transfer() -> Result<()> {
    crash_mid_transfer(false).await
}
