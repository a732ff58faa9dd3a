//! One behaviour suite run against every engine, so `memory` and `file` storage agree.

use super::*;

fn suite(e: &dyn KvEngine) {
    let mut b = Batch::default();
    for i in 0u8..10 {
        b.put(Space::Wells, vec![1, i], vec![i]);
    }
    b.put(Space::Meta, vec![1, 0], b"meta".to_vec());
    e.write(b).unwrap();
    assert_eq!(e.get(Space::Wells, &[1, 3]).unwrap(), Some(vec![3]));
    assert_eq!(e.get(Space::Streams, &[1, 3]).unwrap(), None);
    assert_eq!(e.get(Space::Meta, &[1, 0]).unwrap(), Some(b"meta".to_vec()));

    let page = e.page(Space::Wells, &[1, 2], &[1, 5], 10).unwrap();
    assert_eq!(
        page.iter().map(|(k, _)| k[1]).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    let page = e.page(Space::Wells, &[1], &[2], 2).unwrap();
    assert_eq!(page.len(), 2);
    let last = e.first(Space::Wells, &[1], &[2], true).unwrap().unwrap();
    assert_eq!(last.0, vec![1, 9]);
    assert_eq!(e.first(Space::Wells, &[2], &[3], false).unwrap(), None);

    let mut b = Batch::default();
    b.delete(Space::Wells, vec![1, 0]);
    b.delete_range(Space::Wells, vec![1, 5], vec![1, 8]);
    e.write(b).unwrap();
    let keys: Vec<u8> = e
        .page(Space::Wells, &[0], &[9], 100)
        .unwrap()
        .iter()
        .map(|(k, _)| k[1])
        .collect();
    assert_eq!(keys, vec![1, 2, 3, 4, 8, 9]);
    // Empty and inverted ranges visit nothing.
    assert!(e
        .page(Space::Wells, &[1, 5], &[1, 5], 10)
        .unwrap()
        .is_empty());
    assert!(e.page(Space::Wells, &[2], &[1], 10).unwrap().is_empty());
}

/// A pinned scan sees the range as it was when `pinned` was called: no write after it.
fn pinned_suite(e: &dyn KvEngine) {
    let mut b = Batch::default();
    for i in 0u8..5 {
        b.put(Space::Streams, vec![7, i], vec![i]);
    }
    b.put(Space::Streams, vec![8, 0], b"outside".to_vec());
    e.write(b).unwrap();
    let mut seen = Vec::new();
    let mut pins = 0;
    e.scan_pinned(
        Space::Streams,
        &[7],
        &[8],
        &mut || {
            pins += 1;
            let mut b = Batch::default();
            b.put(Space::Streams, vec![7, 1], b"changed".to_vec());
            b.put(Space::Streams, vec![7, 9], b"new".to_vec());
            b.delete(Space::Streams, vec![7, 2]);
            b.delete_range(Space::Streams, vec![7, 3], vec![7, 5]);
            e.write(b).unwrap();
        },
        &mut |k, v| {
            seen.push((k.to_vec(), v.to_vec()));
            Scan::Continue
        },
    )
    .unwrap();
    assert_eq!(pins, 1);
    let before: Vec<(Vec<u8>, Vec<u8>)> = (0u8..5).map(|i| (vec![7, i], vec![i])).collect();
    assert_eq!(seen, before);
    // The writes did land, for everyone else.
    let now: Vec<Vec<u8>> = e
        .page(Space::Streams, &[7], &[8], 100)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(now, vec![vec![7, 0], vec![7, 1], vec![7, 9]]);

    // A visitor can stop early; an empty range still pins (and visits nothing).
    let mut visited = 0;
    e.scan_pinned(Space::Streams, &[7], &[8], &mut || {}, &mut |_, _| {
        visited += 1;
        Scan::Stop
    })
    .unwrap();
    assert_eq!(visited, 1);
    let mut pins = 0;
    e.scan_pinned(
        Space::Streams,
        &[8],
        &[8],
        &mut || pins += 1,
        &mut |_, _| panic!("nothing to visit"),
    )
    .unwrap();
    assert_eq!(pins, 1);
}

#[test]
fn memory_engine_conforms() {
    suite(&MemoryEngine::new());
    pinned_suite(&MemoryEngine::new());
}

#[test]
fn rocks_engine_conforms_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = RocksEngine::open(dir.path(), false).unwrap();
        suite(&e);
        pinned_suite(&e);
    }
    let e = RocksEngine::open(dir.path(), false).unwrap();
    assert_eq!(e.get(Space::Wells, &[1, 9]).unwrap(), Some(vec![9]));
}

#[test]
fn prefix_end_and_successor() {
    assert_eq!(prefix_end(&[1, 2]), vec![1, 3]);
    assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
    assert!(successor(&[1]) > vec![1]);
}
