use super::*;
use crate::storage::memory::MemoryEngine;
use crate::storage::rocks::RocksEngine;
use bytes::Bytes;

const S: u64 = 1_000_000_000;

fn mem_wells() -> (Wells, Arc<dyn KvEngine>) {
    let main: Arc<dyn KvEngine> = Arc::new(MemoryEngine::new());
    let cold: Arc<dyn KvEngine> = Arc::new(MemoryEngine::new());
    let c = cold.clone();
    let ids = Arc::new(LocalIds::new(main.clone()));
    let wells = Wells::open(main, ids, Box::new(move |_| Ok(c.clone()))).unwrap();
    (wells, cold)
}

fn cfg(name: &str, cold: bool) -> WellConfig {
    WellConfig {
        name: name.into(),
        shard_secs: 100,
        cold_location: cold.then(|| PathBuf::from("/cold")),
        hot_secs: 200,
        cold_secs: 1000,
    }
}

fn entry(tag: u32, data: &str) -> EntryValue {
    EntryValue {
        tag,
        source: Some("10.1.2.3".parse().unwrap()),
        data: Bytes::from(data.to_string()),
        values: Default::default(),
    }
}

fn all(wells: &Wells, w: &Well, spec: &QuerySpec) -> Vec<StoredEntry> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let (page, next) = wells.query(w, spec, cursor.as_deref(), 3).unwrap();
        out.extend(page);
        match next {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

#[test]
fn write_query_by_time_and_tag_in_order() {
    let (wells, _) = mem_wells();
    let w = wells.open_well(cfg("default:a", false)).unwrap();
    let items = (0..10u64)
        .rev()
        .map(|i| {
            (
                w.clone(),
                i * 50 * S,
                entry((i % 2) as u32, &format!("e{i}")),
            )
        })
        .collect();
    assert_eq!(
        wells.write(items, None, 0).unwrap(),
        WriteOutcome::Stored(10)
    );
    let got = all(&wells, &w, &QuerySpec::default());
    let ts: Vec<u64> = got.iter().map(|e| e.timestamp_ns / S).collect();
    assert_eq!(ts, (0..10).map(|i| i * 50).collect::<Vec<_>>());
    let spec = QuerySpec {
        from_ns: 100 * S,
        to_ns: Some(300 * S),
        tags: vec![1],
    };
    let got: Vec<u64> = all(&wells, &w, &spec)
        .iter()
        .map(|e| e.timestamp_ns / S)
        .collect();
    assert_eq!(got, vec![150, 250]);
    // 10 entries over shards 0..=4 of 100 s, two per shard.
    let shards = w.shards();
    assert_eq!(shards.len(), 5);
    assert!(shards.iter().all(|s| s.stat.entries == 2 && s.tier == HOT));
    assert_eq!(w.totals().entries, 10);
}

#[test]
fn repeated_batch_id_is_stored_once_until_it_expires() {
    let (wells, _) = mem_wells();
    let w = wells.open_well(cfg("default:a", false)).unwrap();
    let batch = || vec![(w.clone(), S, entry(1, "x"))];
    assert_eq!(
        wells.write(batch(), Some("b1"), 10).unwrap(),
        WriteOutcome::Stored(1)
    );
    assert_eq!(
        wells.write(batch(), Some("b1"), 11).unwrap(),
        WriteOutcome::Duplicate
    );
    assert_eq!(w.totals().entries, 1);
    assert_eq!(wells.expire_batch_ids(100, 50).unwrap(), 1);
    assert_eq!(
        wells.write(batch(), Some("b1"), 101).unwrap(),
        WriteOutcome::Stored(1)
    );
    assert_eq!(w.totals().entries, 2);
}

#[test]
fn ageout_moves_old_shards_to_cold_keeping_keys_then_deletes() {
    let (wells, cold) = mem_wells();
    let w = wells.open_well(cfg("default:a", true)).unwrap();
    let items = (0..6u64)
        .map(|i| (w.clone(), i * 100 * S, entry(1, "x")))
        .collect();
    wells.write(items, None, 0).unwrap();
    let before: Vec<Vec<u8>> = all(&wells, &w, &QuerySpec::default())
        .into_iter()
        .map(|e| e.key)
        .collect();

    // At t = 600 s: shards ending at or before 400 s (0..=3) are older than hot_secs (200).
    let r = wells.ageout((600 * S) as i64).unwrap();
    assert_eq!(
        (r.moved_shards, r.moved_entries, r.deleted_shards),
        (4, 4, 0)
    );
    let tiers: Vec<(u64, u8)> = w.shards().iter().map(|s| (s.shard, s.tier)).collect();
    assert_eq!(
        tiers,
        vec![
            (0, COLD),
            (1, COLD),
            (2, COLD),
            (3, COLD),
            (4, HOT),
            (5, HOT)
        ]
    );
    assert!(cold.get(Space::Wells, &before[0]).unwrap().is_some());
    let after: Vec<Vec<u8>> = all(&wells, &w, &QuerySpec::default())
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(
        before, after,
        "a move keeps every key and the query merges tiers"
    );

    // A late entry into a cold shard lands hot and is moved again by the next ageout.
    wells
        .write(vec![(w.clone(), 50 * S, entry(2, "late"))], None, 0)
        .unwrap();
    assert_eq!(all(&wells, &w, &QuerySpec::default()).len(), 7);
    // At t = 1250 s: shards ending at or before 250 s (0, 1) are older than cold_secs.
    let r = wells.ageout((1250 * S) as i64).unwrap();
    assert_eq!(r.deleted_shards, 2);
    let left: Vec<u64> = all(&wells, &w, &QuerySpec::default())
        .iter()
        .map(|e| e.timestamp_ns / S)
        .collect();
    assert_eq!(left, vec![200, 300, 400, 500]);
    assert_eq!(w.totals().entries, 4);
}

#[test]
fn without_cold_tier_hot_duration_is_retention() {
    let (wells, _) = mem_wells();
    let w = wells.open_well(cfg("default:a", false)).unwrap();
    let items = (0..3u64)
        .map(|i| (w.clone(), i * 100 * S, entry(1, "x")))
        .collect();
    wells.write(items, None, 0).unwrap();
    let r = wells.ageout((400 * S) as i64).unwrap();
    assert_eq!(r.deleted_shards, 2);
    assert_eq!(all(&wells, &w, &QuerySpec::default()).len(), 1);
}

#[test]
fn entries_seqs_stats_and_batch_ids_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let main: Arc<dyn KvEngine> = Arc::new(RocksEngine::open(dir.path(), false).unwrap());
        let ids = Arc::new(LocalIds::new(main.clone()));
        Wells::open(
            main,
            ids,
            Box::new(|p| Err(StorageError::Engine(format!("no cold {}", p.display())))),
        )
        .unwrap()
    };
    {
        let wells = open();
        let w = wells.open_well(cfg("default:a", false)).unwrap();
        wells
            .write(vec![(w.clone(), S, entry(1, "a"))], Some("b"), 1)
            .unwrap();
    }
    let wells = open();
    let w = wells.open_well(cfg("default:a", false)).unwrap();
    assert_eq!(
        wells
            .write(vec![(w.clone(), S, entry(1, "a"))], Some("b"), 2)
            .unwrap(),
        WriteOutcome::Duplicate
    );
    // Same timestamp, new seq: a second entry, not an overwrite.
    wells
        .write(vec![(w.clone(), S, entry(1, "b"))], None, 2)
        .unwrap();
    let got = all(&wells, &w, &QuerySpec::default());
    assert_eq!(got.len(), 2);
    assert_eq!(w.totals().entries, 2);
}

#[test]
fn the_last_shard_of_a_wide_well_ends_at_the_end_of_time() {
    let (wells, _) = mem_wells();
    // Shards of 2^33 s: the shard holding the latest timestamps ends past i64::MAX ns.
    let mut c = cfg("wide", false);
    c.shard_secs = 1 << 33;
    let w = wells.open_well(c).unwrap();
    let late = u64::try_from(i64::MAX).unwrap() - 1;
    wells
        .write(
            vec![
                (w.clone(), late, entry(1, "x")),
                (w.clone(), 5, entry(1, "y")),
            ],
            None,
            0,
        )
        .unwrap();
    let shards = w.shards();
    assert_eq!(shards.len(), 2);
    assert!(shards.iter().all(|s| s.end_ns > s.start_ns), "{shards:?}");
    assert_eq!(shards[1].end_ns, i64::MAX);
}
