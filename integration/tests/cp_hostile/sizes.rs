//! `probe_watch.py`'s first half and `probe_inputs.py`'s big entities: 150 updates of a 1 MB
//! policy grew the data dir by 385 MB (the Raft log compacted only every 10,000 entries, the
//! event log kept 100,000 events whatever their size), and a 3.9 MB entity was accepted.

use crate::member::{within, Member};
use crate::watch::fat_target;
use anyhow::{ensure, Result};
use tonic::Code;
use tributary_proto::v1::{entity::Kind, Entity, Target, Well};

/// A target whose CA certificate is `bytes` long (bounded by the entity size only).
fn big_target(name: &str, bytes: usize) -> Entity {
    Entity {
        kind: Some(Kind::Target(Target {
            name: name.into(),
            cleartext_endpoints: vec!["127.0.0.1:1".into()],
            ingest_secret: "s".into(),
            ca_pem: "A".repeat(bytes),
            ..Default::default()
        })),
    }
}

/// A target with one endpoint `bytes` long (a text field).
fn long_endpoint(name: &str, bytes: usize) -> Entity {
    Entity {
        kind: Some(Kind::Target(Target {
            name: name.into(),
            cleartext_endpoints: vec!["h".repeat(bytes)],
            ingest_secret: "s".into(),
            ..Default::default()
        })),
    }
}

const UPDATES: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_entities_are_refused_and_updates_keep_the_data_dir_bounded() -> Result<()> {
    let _one = crate::serial().await;
    let mut m = Member::start(&[]).await?;
    let mut cat = m.catalog()?;

    // The probes' entities, refused with the limit named; nothing is stored.
    for (entity, bytes, limit) in [
        (
            big_target("default:big", 1 << 20),
            1 << 20,
            "limits.max_entity_bytes",
        ),
        (
            big_target("default:big", 3900 << 10),
            3900 << 10,
            "limits.max_entity_bytes",
        ),
        (
            long_endpoint("default:big", 5000),
            5000,
            "limits.max_field_bytes",
        ),
    ] {
        let err = cat.create(entity).await.expect_err("too big");
        ensure!(
            err.code() == Code::InvalidArgument && err.message().contains(limit),
            "{bytes} bytes: {err:?}"
        );
    }
    // 100 MB is over gRPC's own message limit: refused before any of it is decoded further.
    let err = cat
        .create(big_target("default:huge", 100 << 20))
        .await
        .expect_err("100 MB");
    ensure!(err.code() != Code::Ok, "{err:?}");

    // A client-chosen path for the data node to open: refused, naming the field.
    let err = cat
        .create(Entity {
            kind: Some(Kind::Well(Well {
                name: "default:coldpath".into(),
                cold_location: "/tmp/pwned-by-catalog".into(),
                hot_duration_secs: 60,
                ..Default::default()
            })),
        })
        .await
        .expect_err("absolute path");
    ensure!(
        err.code() == Code::InvalidArgument && err.message().contains("cold_location"),
        "{err:?}"
    );

    // Updates of a 200 KiB target, 200 MB in all. The Raft log compacts every
    // `raft.snapshot_bytes` (64 MiB) and RocksDB then flushes, dropping its write-ahead log;
    // the event log keeps `raft.max_watch_event_bytes` (64 MiB). So the data dir saws between
    // ~10-20 MiB and ~3 × 64 MiB (the write-ahead log of the Raft log, catalogue and event
    // writes since the last compaction); before, it grew by all of them (385 MB for 150 MB).
    cat.create(fat_target("default:fat", 0)).await?;
    let start = m.data_mib()?;
    let (mut peak, mut samples) = (start, Vec::new());
    for v in 1..=UPDATES {
        cat.update(fat_target("default:fat", v)).await?;
        if v % 50 == 0 {
            let now = m.data_mib()?;
            peak = peak.max(now);
            samples.push(now);
        }
    }
    println!(
        "data dir every 50 updates, MiB: {samples:?}; rss {} MiB",
        m.rss_mib()?
    );
    within(
        &format!("data dir at most, MiB, over {UPDATES} updates of 200 KiB (started at {start})"),
        peak,
        3 * 64 + 64,
    )?;
    ensure!(m.alive(), "the member died; log in {}", m.log().display());
    Ok(())
}
