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

#[test]
fn memory_engine_conforms() {
    suite(&MemoryEngine::new());
}

#[test]
fn rocks_engine_conforms_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = RocksEngine::open(dir.path(), false).unwrap();
        suite(&e);
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
