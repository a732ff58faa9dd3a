//! `kill -9` either side's data node (the real binary) mid-transfer: after a restart every
//! entry arrives exactly once (progress is resumed; a resent batch keeps its id and the
//! target stores it once).

use std::time::Duration;
use tributary_integration::ditto_pair::{MiniCluster, INGEST_SECRET};
use tributary_integration::wait;
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

async fn count(c: &MiniCluster) -> usize {
    c.query("all").await.map(|v| v.len()).unwrap_or(0)
}

/// Sets up src → dst with a bandwidth limit so the transfer takes a few seconds, waits until
/// part of it has arrived, and calls `crash`.
async fn crash_mid_transfer(kill_target: bool) {
    let mut dst = MiniCluster::start(kill_target, |_| {}).await.unwrap();
    dst.create(entity_well("all", true, &[])).await.unwrap();
    dst.wait_well("all").await.unwrap();
    let mut src = MiniCluster::start(!kill_target, |_| {}).await.unwrap();
    src.create(entity_well("src", false, &[])).await.unwrap();
    src.wait_well("src").await.unwrap();
    src.ingest(entries(), 500).await.unwrap();
    src.create(Entity {
        kind: Some(Kind::Target(Target {
            name: "dr".into(),
            cleartext_endpoints: vec![dst.dn_addr.clone()],
            ingest_secret: INGEST_SECRET.into(),
            // ~110 B per entry: about 3 s for the lot.
            bandwidth_limit: 200_000,
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    src.catalog()
        .await
        .unwrap()
        .update(entity_well("src", false, &["dr"]))
        .await
        .unwrap();
    wait::until("part of the transfer", Duration::from_secs(30), || {
        let dst = &dst;
        async move {
            let n = count(dst).await;
            (n > 0 && n < N).then_some(())
        }
    })
    .await
    .unwrap();
    if kill_target {
        dst.restart_dn().await.unwrap();
    } else {
        src.restart_dn().await.unwrap();
    }
    let got = wait::until("every entry", Duration::from_secs(60), || {
        let dst = &dst;
        async move {
            let v = dst.query("all").await.ok()?;
            (v.len() >= N).then_some(v)
        }
    })
    .await
    .unwrap();
    let mut data: Vec<_> = got.iter().map(|e| e.data.clone()).collect();
    data.sort();
    data.dedup();
    assert_eq!(data.len(), N, "an entry is missing");
    assert_eq!(got.len(), N, "an entry arrived twice");
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test]
async fn kill_9_target_data_node_mid_transfer() {
    crash_mid_transfer(true).await;
}

#[tokio::test]
async fn kill_9_source_data_node_mid_transfer() {
    crash_mid_transfer(false).await;
}
