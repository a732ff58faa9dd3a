//! Ditto between two (or three) clusters on 127.0.0.1, data nodes in-process: Start-Time,
//! late entries behind the progress key, stats, unresolvable tags, corrupt values, several
//! targets and endpoints, compression, worker slots, ageout while mirroring.

use std::collections::BTreeMap;
use std::time::Duration;
use tributary_data_node::storage::codec::EntryValue;
use tributary_integration::ditto_pair::{MiniCluster, INGEST_SECRET};
use tributary_integration::wait;
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

/// Waits until `well` on `c` holds exactly `n` entries, then checks no data repeats.
async fn wait_count(c: &MiniCluster, well: &str, n: usize) -> Vec<WellEntry> {
    let got = wait::until(
        &format!("{n} entries in {well}"),
        Duration::from_secs(30),
        || async move {
            let v = c.query(well).await.ok()?;
            (v.len() >= n).then_some(v)
        },
    )
    .await
    .unwrap();
    let mut data: Vec<_> = got.iter().map(|e| e.data.clone()).collect();
    data.sort();
    data.dedup();
    assert_eq!(got.len(), n, "more entries than expected in {well}");
    assert_eq!(data.len(), n, "an entry arrived twice in {well}");
    got
}

#[tokio::test]
async fn start_time_late_entries_and_stats() {
    let dst = MiniCluster::start(false, |_| {}).await.unwrap();
    dst.create(well("dst", &["a", "b"], &[], |_| {}))
        .await
        .unwrap();
    dst.wait_well("dst").await.unwrap();
    let src = MiniCluster::start(false, |_| {}).await.unwrap();
    // The default well takes the `tributary` stats entries.
    src.create(well("sys", &[], &[], |w| w.default_well = true))
        .await
        .unwrap();
    src.create(well("src", &["a", "b"], &[], |_| {}))
        .await
        .unwrap();
    src.wait_well("src").await.unwrap();
    src.ingest(entries(5, 20, "e"), 50).await.unwrap();
    assert_eq!(src.shards("src").await.unwrap().len(), 5);

    // Start-Time inside the 3rd shard: shards 3-5 go whole, nothing before.
    let start = (BASE + 2 * SHARD_SECS as i64 + 1800) * NS;
    src.create(target("dr", vec![dst.dn_addr.clone()], |t| {
        t.start_time_ns = start;
        // Compressing makes the one batch slow to launch, so the reader's end is already
        // queued behind it when the pipeline looks again (as in `tribctl demo`).
        t.enable_compression = true;
    }))
    .await
    .unwrap();
    let mut cat = src.catalog().await.unwrap();
    cat.update(well("src", &["a", "b"], &["dr"], |_| {}))
        .await
        .unwrap();
    let got = wait_count(&dst, "dst", 60).await;
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
    src.ingest(late, 10).await.unwrap();
    let got = wait_count(&dst, "dst", 62).await;
    assert!(got.iter().any(|e| &e.data[..] == b"late3"));
    assert!(!got.iter().any(|e| &e.data[..] == b"early"));

    // Stats: per worker over gRPC, and as entries under the `tributary` tag.
    let stats = wait::until(
        "ditto stats to show the work",
        Duration::from_secs(10),
        || {
            let src = &src;
            async move {
                let s = src.ditto_stats().await.ok()?;
                s.into_iter()
                    .find(|w| w.entries_sent == 62 && w.entries_behind == 0 && w.state == "tailing")
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(stats.well, "default:src");
    assert_eq!(stats.target, "default:dr");
    assert_eq!((stats.shard_index, stats.shard_count), (3, 3));
    // A clean copy never failed: each forward pass ends when its reader says so, even when the
    // end arrives while batches are still in flight.
    assert_eq!(stats.last_error, "", "{stats:?}");
    let entry = wait::until(
        "a stats entry in the system well",
        Duration::from_secs(10),
        || {
            let src = &src;
            async move {
                src.query("sys").await.ok()?.into_iter().find(|e| {
                    e.tag == "tributary"
                        && e.values.get("msg").map(String::as_str) == Some("ditto client stats")
                })
            }
        },
    )
    .await
    .unwrap();
    for k in ["well", "entries", "bytes", "duration", "Bps", "target-name"] {
        assert!(entry.values.contains_key(k), "stats entry lacks {k}");
    }
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test]
async fn unresolvable_corrupt_two_targets_compression_and_a_dead_endpoint() {
    let d1 = MiniCluster::start(false, |_| {}).await.unwrap();
    d1.create(well("all", &[], &[], |w| w.default_well = true))
        .await
        .unwrap();
    let d2 = MiniCluster::start(false, |_| {}).await.unwrap();
    d2.create(well("all", &[], &[], |w| w.default_well = true))
        .await
        .unwrap();
    d1.wait_well("all").await.unwrap();
    d2.wait_well("all").await.unwrap();
    let src = MiniCluster::start(false, |_| {}).await.unwrap();
    src.create(well("src", &["a", "b"], &[], |_| {}))
        .await
        .unwrap();
    src.wait_well("src").await.unwrap();
    src.ingest(entries(2, 50, "e"), 25).await.unwrap();

    // One entry whose tag id has no name, one value damaged on disk.
    let node = src.node().unwrap().node.clone();
    let w = node.well("default:src").unwrap();
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
    )
    .unwrap();
    let page = node.page_raw(&w, &[], &[0xff; 8], 10).unwrap();
    let (victim, _) = page.entries[3].clone();
    node.overwrite_raw_for_test(&w, &victim, vec![0xde, 0xad])
        .unwrap();

    // A dead endpoint first: batches fail over to the live one.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    src.create(target("t1", vec![dead, d1.dn_addr.clone()], |t| {
        t.unresolvable_tag_destination = "lost".into();
        t.enable_compression = true;
    }))
    .await
    .unwrap();
    src.create(target("t2", vec![d2.dn_addr.clone()], |_| {}))
        .await
        .unwrap();
    let mut cat = src.catalog().await.unwrap();
    cat.update(well("src", &["a", "b"], &["t1", "t2"], |_| {}))
        .await
        .unwrap();

    // 100 good entries minus the corrupt one; t1 also gets the orphan, re-tagged.
    let got1 = wait_count(&d1, "all", 100).await;
    assert_eq!(got1.iter().filter(|e| e.tag == "lost").count(), 1);
    let got2 = wait_count(&d2, "all", 99).await;
    assert!(got2.iter().all(|e| e.tag == "a" || e.tag == "b"));

    let stats = wait::until("both workers to report", Duration::from_secs(10), || {
        let src = &src;
        async move {
            let s = src.ditto_stats().await.ok()?;
            (s.len() == 2 && s.iter().all(|w| w.entries_behind == 0)).then_some(s)
        }
    })
    .await
    .unwrap();
    let t1 = stats.iter().find(|w| w.target == "default:t1").unwrap();
    let t2 = stats.iter().find(|w| w.target == "default:t2").unwrap();
    assert_eq!((t1.unresolvable_retagged, t1.unresolvable_dropped), (1, 0));
    assert_eq!((t2.unresolvable_retagged, t2.unresolvable_dropped), (0, 1));
    assert_eq!((t1.corrupt_skipped, t2.corrupt_skipped), (1, 1));
    assert_eq!(t1.endpoint, d1.dn_addr);
    src.shutdown().await;
    d1.shutdown().await;
    d2.shutdown().await;
}

async fn four_wells(max_workers: u64) {
    let dst = MiniCluster::start(false, |_| {}).await.unwrap();
    dst.create(well("all", &[], &[], |w| w.default_well = true))
        .await
        .unwrap();
    dst.wait_well("all").await.unwrap();
    let src = MiniCluster::start(false, |c| c.ditto_max_workers = max_workers)
        .await
        .unwrap();
    src.create(target("dr", vec![dst.dn_addr.clone()], |_| {}))
        .await
        .unwrap();
    for i in 0..4 {
        let tag = format!("t{i}");
        src.create(well(&format!("w{i}"), &[&tag], &["dr"], |_| {}))
            .await
            .unwrap();
        src.wait_well(&format!("w{i}")).await.unwrap();
        let mut v = entries(2, 100, &tag);
        for e in &mut v {
            e.tag = tag.clone();
        }
        src.ingest(v, 100).await.unwrap();
    }
    let got = wait_count(&dst, "all", 800).await;
    assert_eq!(by_tag(&got).len(), 4);
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test]
async fn four_wells_one_worker() {
    four_wells(1).await;
}

#[tokio::test]
async fn four_wells_four_workers() {
    four_wells(4).await;
}

#[tokio::test]
async fn ageout_while_mirroring_misses_nothing() {
    let dst = MiniCluster::start(false, |_| {}).await.unwrap();
    dst.create(well("all", &[], &[], |w| w.default_well = true))
        .await
        .unwrap();
    dst.wait_well("all").await.unwrap();
    let src = MiniCluster::start(false, |c| c.maintenance_interval_ms = 50)
        .await
        .unwrap();
    src.create(target("dr", vec![dst.dn_addr.clone()], |t| {
        // About a second for the first 400 entries: ageout (every 50 ms) moves shards while
        // the worker is between them.
        t.bandwidth_limit = 2_000;
    }))
    .await
    .unwrap();
    // Every shard is older than an hour: ageout moves each to cold as soon as it runs.
    src.create(well("src", &["a", "b"], &["dr"], |w| {
        w.cold_location = "cold".into();
        w.hot_duration_secs = 3600;
    }))
    .await
    .unwrap();
    src.wait_well("src").await.unwrap();
    src.ingest(entries(4, 100, "e"), 50).await.unwrap();
    wait_count(&dst, "all", 400).await;
    // More entries into shards already sent (and already cold).
    src.ingest(entries(2, 30, "again"), 30).await.unwrap();
    wait_count(&dst, "all", 460).await;
    let shards = src.shards("src").await.unwrap();
    assert!(
        shards.iter().any(|s| s.tier == "cold"),
        "ageout never ran: {shards:?}"
    );
    src.shutdown().await;
    dst.shutdown().await;
}
