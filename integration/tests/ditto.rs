//! Ditto between two (or three) clusters on 127.0.0.1, data nodes in-process: Start-Time,
//! late entries behind the progress key, stats, unresolvable tags, corrupt values, several
//! targets and endpoints, compression, worker slots, ageout while mirroring.

use anyhow::{anyhow, Result};
use std::collections::BTreeMap;
use tributary_data_node::storage::codec::EntryValue;
use tributary_data_node::DataNodeConfig;
use tributary_integration::net::Proxy;
use tributary_integration::{wait, Cluster, INGEST_SECRET};
use tributary_proto::v1::{entity::Kind, Entity, Target, Well, WellEntry};

const SHARD_SECS: u64 = 3600;
/// A shard boundary (a multiple of SHARD_SECS) in the past, in seconds.
const BASE: i64 = 1_699_999_200;
const NS: i64 = 1_000_000_000;

fn well(name: &str, tags: &[&str], targets: &[&str], tune: impl Fn(&mut Well)) -> Entity {
    let mut w = Well {
        name: name.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        shard_duration_secs: SHARD_SECS,
        ditto_targets: targets.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    };
    tune(&mut w);
    Entity {
        kind: Some(Kind::Well(w)),
    }
}

fn target(name: &str, endpoints: Vec<String>, tune: impl Fn(&mut Target)) -> Entity {
    let mut t = Target {
        name: name.into(),
        cleartext_endpoints: endpoints,
        ingest_secret: INGEST_SECRET.into(),
        ..Default::default()
    };
    tune(&mut t);
    Entity {
        kind: Some(Kind::Target(t)),
    }
}

/// `n` entries per shard over shards `0..shards`, alternating tags `a`/`b`, data unique.
fn entries(shards: i64, n: i64, label: &str) -> Vec<WellEntry> {
    let mut v = Vec::new();
    for s in 0..shards {
        for i in 0..n {
            v.push(WellEntry {
                timestamp_ns: (BASE + s * SHARD_SECS as i64 + 60 + i * 10) * NS,
                tag: if i % 2 == 0 { "a" } else { "b" }.into(),
                data: format!("{label}-{s}-{i}").into_bytes().into(),
                ..Default::default()
            });
        }
    }
    v
}

fn by_tag(v: &[WellEntry]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for e in v {
        *m.entry(e.tag.clone()).or_default() += 1;
    }
    m
}

/// A one-member, one-data-node cluster whose data node is tuned by `tune`.
async fn cluster(
    name: &str,
    tune: impl Fn(&mut DataNodeConfig) + Send + Sync + 'static,
) -> Result<Cluster> {
    Cluster::builder(name).tune_data_nodes(tune).start().await
}

/// A cluster with a default well `all` served, to receive ditto entries.
async fn target_cluster(name: &str) -> Result<Cluster> {
    // Cleartext targets (Gravwell's Cleartext-Targets); ditto over TLS is `ditto_tls.rs`.
    let c = Cluster::builder(name).insecure().start().await?;
    c.create(well("all", &[], &[], |w| w.default_well = true))
        .await?;
    c.wait_well_served("all", 1).await?;
    Ok(c)
}

/// Waits until `well` on `c` holds exactly `n` entries, then checks no data repeats.
async fn wait_count(c: &Cluster, well: &str, n: usize) -> Result<Vec<WellEntry>> {
    let got = c.wait_entries(1, well, n).await?;
    let mut data: Vec<_> = got.iter().map(|e| e.data.clone()).collect();
    data.sort();
    data.dedup();
    assert_eq!(got.len(), n, "more entries than expected in {well}");
    assert_eq!(data.len(), n, "an entry arrived twice in {well}");
    Ok(got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_time_late_entries_and_stats() -> Result<()> {
    let dst = Cluster::builder("dst").insecure().start().await?;
    dst.create(well("dst", &["a", "b"], &[], |_| {})).await?;
    dst.wait_well_served("dst", 1).await?;
    let src = cluster("src", |_| {}).await?;
    // The default well takes the `tributary` stats entries.
    src.create(well("sys", &[], &[], |w| w.default_well = true))
        .await?;
    src.create(well("src", &["a", "b"], &[], |_| {})).await?;
    src.wait_well_served("src", 1).await?;
    src.ingest(1, entries(5, 20, "e"), 50).await?;
    assert_eq!(src.shards(1, "src").await?.len(), 5);

    // Start-Time inside the 3rd shard: shards 3-5 go whole, nothing before.
    let start = (BASE + 2 * SHARD_SECS as i64 + 1800) * NS;
    src.create(target("dr", vec![dst.endpoint(1)?], |t| {
        t.start_time_ns = start;
        // Compressing makes the one batch slow to launch, so the reader's end is already
        // queued behind it when the pipeline looks again (as in `tribctl demo`).
        t.enable_compression = true;
    }))
    .await?;
    src.update(well("src", &["a", "b"], &["dr"], |_| {}))
        .await?;
    let got = wait_count(&dst, "dst", 60).await?;
    assert_eq!(
        by_tag(&got),
        BTreeMap::from([("a".into(), 30), ("b".into(), 30)])
    );
    assert!(got
        .iter()
        .all(|e| e.timestamp_ns >= (BASE + 2 * SHARD_SECS as i64) * NS));

    // Entries arriving later in an already-sent shard (behind the progress key) are sent;
    // those before Start-Time are not.
    let mut late = Vec::new();
    for (shard, label) in [(2, "late3"), (3, "late4"), (0, "early")] {
        late.push(WellEntry {
            timestamp_ns: (BASE + shard * SHARD_SECS as i64 + 1) * NS,
            tag: "a".into(),
            data: label.as_bytes().to_vec().into(),
            ..Default::default()
        });
    }
    src.ingest(1, late, 10).await?;
    let got = wait_count(&dst, "dst", 62).await?;
    assert!(got.iter().any(|e| &e.data[..] == b"late3"));
    assert!(!got.iter().any(|e| &e.data[..] == b"early"));

    // Stats: per worker over gRPC, and as entries under the `tributary` tag.
    let stats = wait::until("ditto stats to show the work", wait::WAIT, || async {
        let s = src.ditto_stats(1).await.ok()?;
        s.workers
            .into_iter()
            .find(|w| w.entries_sent == 62 && w.entries_behind == 0 && w.state == "tailing")
    })
    .await?;
    assert_eq!(stats.well, "default:src");
    assert_eq!(stats.target, "default:dr");
    assert_eq!((stats.shard_index, stats.shard_count), (3, 3));
    // A clean copy never failed: each forward pass ends when its reader says so, even when the
    // end arrives while batches are still in flight.
    assert_eq!(stats.last_error, "", "{stats:?}");
    let entry = wait::until("a stats entry in the system well", wait::WAIT, || async {
        src.query(1, "sys").await.ok()?.into_iter().find(|e| {
            e.tag == "tributary"
                && e.values.get("msg").map(String::as_str) == Some("ditto client stats")
        })
    })
    .await?;
    for k in ["well", "entries", "bytes", "duration", "Bps", "target-name"] {
        assert!(entry.values.contains_key(k), "stats entry lacks {k}");
    }
    src.shutdown().await;
    dst.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresolvable_corrupt_two_targets_compression_and_a_dead_endpoint() -> Result<()> {
    let d1 = target_cluster("d1").await?;
    let d2 = target_cluster("d2").await?;
    let src = cluster("src", |_| {}).await?;
    src.create(well("src", &["a", "b"], &[], |_| {})).await?;
    src.wait_well_served("src", 1).await?;
    src.ingest(1, entries(2, 50, "e"), 25).await?;

    // One entry whose tag id has no name, one value damaged on disk.
    let node = src.data_node(1)?.node.clone();
    let w = node
        .well("default:src")
        .ok_or_else(|| anyhow!("no well src"))?;
    let orphan = EntryValue {
        tag: 4242,
        source: None,
        data: b"orphan".to_vec().into(),
        values: Default::default(),
    };
    node.write_entries(
        vec![(w.clone(), (BASE as u64 + 5) * NS as u64, orphan)],
        None,
        0,
    )?;
    let page = node.page_raw(&w, &[], &[0xff; 8], 10)?;
    let (victim, _) = page.entries[3].clone();
    node.overwrite_raw_for_test(&w, &victim, vec![0xde, 0xad])?;

    // A dead endpoint first (a proxy with nothing behind it, which closes every connection,
    // held for the whole test so no other server can take its port): batches fail over.
    let dead = Proxy::bind(None).await?;
    src.create(target(
        "t1",
        vec![dead.addr().to_string(), d1.endpoint(1)?],
        |t| {
            t.unresolvable_tag_destination = "lost".into();
            t.enable_compression = true;
        },
    ))
    .await?;
    src.create(target("t2", vec![d2.endpoint(1)?], |_| {}))
        .await?;
    src.update(well("src", &["a", "b"], &["t1", "t2"], |_| {}))
        .await?;

    // 100 good entries minus the corrupt one; t1 also gets the orphan, re-tagged.
    let got1 = wait_count(&d1, "all", 100).await?;
    assert_eq!(got1.iter().filter(|e| e.tag == "lost").count(), 1);
    let got2 = wait_count(&d2, "all", 99).await?;
    assert!(got2.iter().all(|e| e.tag == "a" || e.tag == "b"));

    let stats = wait::until("both workers to report", wait::WAIT, || async {
        let s = src.ditto_stats(1).await.ok()?.workers;
        (s.len() == 2 && s.iter().all(|w| w.entries_behind == 0)).then_some(s)
    })
    .await?;
    let of = |t: &str| {
        stats
            .iter()
            .find(|w| w.target == t)
            .ok_or_else(|| anyhow!("no worker for {t}"))
    };
    let (t1, t2) = (of("default:t1")?, of("default:t2")?);
    assert_eq!((t1.unresolvable_retagged, t1.unresolvable_dropped), (1, 0));
    assert_eq!((t2.unresolvable_retagged, t2.unresolvable_dropped), (0, 1));
    assert_eq!((t1.corrupt_skipped, t2.corrupt_skipped), (1, 1));
    assert_eq!(t1.endpoint, d1.endpoint(1)?);
    src.shutdown().await;
    d1.shutdown().await;
    d2.shutdown().await;
    Ok(())
}

/// Four wells with 200 entries each into one target; returns the source's final stats.
async fn four_wells(max_workers: u64) -> Result<tributary_proto::v1::DittoStatsReply> {
    let dst = target_cluster("dst").await?;
    let src = cluster("src", move |c| c.ditto_max_workers = max_workers).await?;
    src.create(target("dr", vec![dst.endpoint(1)?], |_| {}))
        .await?;
    for i in 0..4 {
        let tag = format!("t{i}");
        src.create(well(&format!("w{i}"), &[&tag], &["dr"], |_| {}))
            .await?;
        src.wait_well_served(&format!("w{i}"), 1).await?;
        let mut v = entries(2, 100, &tag);
        for e in &mut v {
            e.tag = tag.clone();
        }
        src.ingest(1, v, 100).await?;
    }
    let got = wait_count(&dst, "all", 800).await?;
    assert_eq!(by_tag(&got).len(), 4, "every well was copied");
    // Caught up, every worker gives its slot back (it only tails).
    let stats = wait::until(
        "four workers caught up, no slot held",
        wait::WAIT,
        || async {
            let s = src.ditto_stats(1).await.ok()?;
            let done = s
                .workers
                .iter()
                .filter(|w| w.entries_sent >= 200 && w.entries_behind == 0)
                .count();
            (done == 4 && s.copying == 0).then_some(s)
        },
    )
    .await?;
    assert_eq!(u64::from(stats.max_workers), max_workers);
    src.shutdown().await;
    dst.shutdown().await;
    Ok(stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_wells_one_worker() -> Result<()> {
    let stats = four_wells(1).await?;
    assert_eq!(
        stats.copying_peak, 1,
        "more than one well copied at once with ditto_max_workers = 1: {stats:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_wells_four_workers() -> Result<()> {
    let stats = four_wells(4).await?;
    assert!(
        (1..=4).contains(&stats.copying_peak),
        "copy slots over the limit: {stats:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ageout_while_mirroring_misses_nothing() -> Result<()> {
    let dst = target_cluster("dst").await?;
    let src = cluster("src", |c| c.maintenance_interval_ms = 50).await?;
    src.create(target("dr", vec![dst.endpoint(1)?], |t| {
        // About a second for the first 400 entries: ageout (every 50 ms) moves shards while
        // the worker is between them.
        t.bandwidth_limit = 2_000;
    }))
    .await?;
    // Every shard is older than an hour: ageout moves each to cold as soon as it runs.
    src.create(well("src", &["a", "b"], &["dr"], |w| {
        w.cold_location = "cold".into();
        w.hot_duration_secs = 3600;
    }))
    .await?;
    src.wait_well_served("src", 1).await?;
    src.ingest(1, entries(4, 100, "e"), 50).await?;
    wait_count(&dst, "all", 400).await?;
    // More entries into shards already sent (and already cold).
    src.ingest(1, entries(2, 30, "again"), 30).await?;
    wait_count(&dst, "all", 460).await?;
    let shards = src.shards(1, "src").await?;
    assert!(
        shards.iter().any(|s| s.tier == "cold"),
        "ageout never ran: {shards:?}"
    );
    src.shutdown().await;
    dst.shutdown().await;
    Ok(())
}
