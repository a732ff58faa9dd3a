//! `probe_watch.py`, `probe_watch2.py`: idle `Watch(from_revision = 0)` calls each used to
//! read the whole event log into memory (eight of them: 1.6 GB, kept after they left).

use crate::member::{within, Member};
use anyhow::{anyhow, ensure, Result};
use std::time::Instant;
use tributary_integration::wait;
use tributary_proto::v1::{
    catalog_client::CatalogClient, entity::Kind, Entity, EntityKind, EntityRef, Target,
    WatchRequest,
};

/// A target of about 200 KiB (within the default limits: its CA certificate is bounded by
/// the entity size only), version `v`.
pub fn fat_target(name: &str, v: usize) -> Entity {
    Entity {
        kind: Some(Kind::Target(Target {
            name: name.into(),
            cleartext_endpoints: vec!["127.0.0.1:1".into()],
            ingest_secret: "s".into(),
            ca_pem: format!(
                "-----BEGIN CERTIFICATE-----\n{v}{}\n-----END CERTIFICATE-----\n",
                "A".repeat(200 << 10)
            ),
            ..Default::default()
        })),
    }
}

const UPDATES: usize = 150;
const WATCHERS: usize = 8;
/// `limits.watch_page_bytes`, the default.
const PAGE: f64 = (1 << 20) as f64;
const EVENT: f64 = (210 << 10) as f64;

fn fat() -> EntityRef {
    EntityRef {
        kind: EntityKind::Target as i32,
        name: "default:fat".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_watchers_from_revision_zero_hold_a_page_each_and_nothing_once_gone() -> Result<()> {
    let _one = crate::serial().await;
    let mut m = Member::start(&[]).await?;
    let mut cat = m.catalog()?;
    cat.create(fat_target("default:fat", 0)).await?;
    for v in 1..=UPDATES {
        cat.update(fat_target("default:fat", v)).await?;
    }
    let last = cat.get(fat()).await?.into_inner().revision;
    let log_mib = (UPDATES * 200) >> 10;
    let start = m.settled_rss_mib().await?;
    println!("event log ≈ {log_mib} MiB; member rss before any watcher: {start} MiB");

    // Three waves of watchers that never read, each on its own connection (as the probe's),
    // each wave gone before the next.
    let mut after_wave = Vec::new();
    for wave in 1..=3 {
        let before = m.settled_rss_mib().await?;
        let mut idle = Vec::new();
        for _ in 0..WATCHERS {
            let mut c = CatalogClient::new(m.channel()?);
            idle.push(
                c.watch(WatchRequest { from_revision: 0 })
                    .await?
                    .into_inner(),
            );
        }
        let during = m.settled_rss_mib().await?;
        ensure!(m.metric("tributary_cp_watchers").await? == WATCHERS as f64);
        let held = m.metric("tributary_cp_watch_held_bytes").await?;
        within(
            &format!("wave {wave}: bytes the {WATCHERS} watchers hold (a page each)"),
            held as u64,
            (WATCHERS as f64 * (PAGE + EVENT)) as u64,
        )?;
        // Loading the log would be `log_mib` each. Beyond the pages: each connection's
        // HTTP/2 and encoding buffers, and in wave 1 the allocator warming up (~25-50 MiB
        // measured; later waves reuse it: 0-4 MiB).
        within(
            &format!(
                "wave {wave}: rss growth, MiB (loading the log: {})",
                WATCHERS * log_mib
            ),
            during.saturating_sub(before),
            64,
        )?;
        let t = Instant::now();
        cat.get(fat()).await?;
        within(
            "  a Get meanwhile, ms",
            t.elapsed().as_millis() as u64,
            1_000,
        )?;
        drop(idle);
        wait::until("the watchers to be gone", wait::WAIT, || async {
            let n = m.metric("tributary_cp_watchers").await.ok()?;
            let held = m.metric("tributary_cp_watch_held_bytes").await.ok()?;
            (n == 0.0 && held == 0.0).then_some(())
        })
        .await?;
        after_wave.push(m.settled_rss_mib().await?);
    }
    println!("rss after each wave: {after_wave:?} MiB");
    within(
        "rss after wave 3 above wave 1, MiB (memory is reused, not kept per watcher)",
        after_wave[2].saturating_sub(after_wave[0]),
        8,
    )?;

    // A watcher that reads gets every revision once, in order, then the next change live.
    let mut reader = m
        .catalog()?
        .watch(WatchRequest { from_revision: 0 })
        .await?
        .into_inner();
    let mut seen = 0;
    while seen < last {
        let e = reader
            .message()
            .await?
            .ok_or_else(|| anyhow!("watch ended"))?;
        if e.revision != seen {
            ensure!(
                e.revision == seen + 1,
                "revision {} after {seen}",
                e.revision
            );
            seen = e.revision;
        }
    }
    cat.update(fat_target("default:fat", UPDATES + 1)).await?;
    let live = reader
        .message()
        .await?
        .ok_or_else(|| anyhow!("watch ended"))?;
    ensure!(live.revision == last + 1, "live event at {}", live.revision);
    ensure!(m.alive(), "the member died; log in {}", m.log().display());
    Ok(())
}
