//! The event log pages in bounded bytes, trims by revisions and bytes, and tells a watcher
//! exactly when it missed something.

use super::Cursor;
use crate::catalog::{apply_command, Catalogue};
use crate::error::CatalogError;
use rocksdb::WriteBatch;
use tributary_proto::v1::command::Op;
use tributary_proto::v1::{entity::Kind, Command, Entity, Target, WatchEvent};

fn open(max_revisions: u64) -> (tempfile::TempDir, Catalogue) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = crate::open_db(dir.path()).expect("db");
    (dir, Catalogue::open(db, max_revisions).expect("catalogue"))
}

/// A target of about `bytes` bytes (its CA certificate), version `v`.
fn fat(v: usize, bytes: usize) -> Entity {
    Entity {
        kind: Some(Kind::Target(Target {
            name: "fat".into(),
            cleartext_endpoints: vec!["127.0.0.1:1".into()],
            ingest_secret: "s".into(),
            ca_pem: format!("{v}{}", "s".repeat(bytes)),
            ..Default::default()
        })),
    }
}

fn write(cat: &Catalogue, index: u64, op: Op) {
    let cmd = Command {
        op: Some(op),
        live_nodes: vec![],
        erasure: false,
    };
    let mut batch = WriteBatch::default();
    let (r, revision, events) = apply_command(cat, index, &cmd, &mut batch);
    r.expect("apply");
    cat.db().write(batch).expect("write");
    cat.committed(index, revision, events);
}

/// Every event from `from` on, page by page; the largest page's bytes.
fn read_all(cat: &Catalogue, from: u64, page_bytes: usize) -> (Vec<WatchEvent>, usize) {
    let (mut all, mut biggest) = (Vec::new(), 0);
    let mut at = Cursor::after(from);
    loop {
        let page = cat.events_page(at, 0, page_bytes).expect("page");
        if page.events.is_empty() {
            return (all, biggest);
        }
        let bytes = page.events.iter().map(prost::Message::encoded_len).sum();
        biggest = biggest.max(bytes);
        at = page.next;
        all.extend(page.events);
    }
}

#[test]
fn pages_hold_at_most_their_bytes_and_together_every_event_once() {
    let (_d, cat) = open(1000);
    write(&cat, 1, Op::Create(fat(0, 10_000)));
    for v in 1..30 {
        write(&cat, v as u64 + 1, Op::Update(fat(v, 10_000)));
    }
    // Revision 1 has two events (the namespace and the policy), the others one.
    let (events, biggest) = read_all(&cat, 0, 35_000);
    let revisions: Vec<u64> = events.iter().map(|e| e.revision).collect();
    let mut expected = vec![1, 1];
    expected.extend(2..=30);
    assert_eq!(revisions, expected);
    assert!(biggest <= 35_000, "a page held {biggest} bytes");
    // Pages of one event each, so one ends inside revision 1: still every event once.
    let first = cat.events_page(Cursor::after(0), 0, 1).expect("page");
    assert_eq!(first.events.len(), 1);
    assert_eq!(
        first.next,
        Cursor {
            revision: 1,
            index: 1
        }
    );
    let (tiny, _) = read_all(&cat, 0, 1);
    assert_eq!(tiny, events);
    assert_eq!(read_all(&cat, 1, 1).0.len(), 29);
    // One event bigger than a page still goes, alone.
    let page = cat.events_page(Cursor::after(5), 0, 10).expect("page");
    assert_eq!(page.events.len(), 1);
}

#[test]
fn the_log_keeps_its_bytes_and_a_watcher_behind_them_is_told_to_list_again() {
    let (_d, cat) = open(1000);
    cat.limit_event_log_bytes(100_000);
    write(&cat, 1, Op::Create(fat(0, 10_000)));
    for v in 1..50 {
        write(&cat, v as u64 + 1, Op::Update(fat(v, 10_000)));
    }
    let held = cat.event_log_bytes();
    assert!(held <= 100_000, "the log holds {held} bytes");
    let (events, _) = read_all(&cat, cat.inner.events.floor(), 1 << 20);
    assert_eq!(events.last().map(|e| e.revision), Some(50));
    assert!(events.len() >= 9, "{} events kept", events.len());
    let err = cat
        .events_page(Cursor::after(3), 0, 1 << 20)
        .err()
        .expect("compacted");
    assert!(matches!(err, CatalogError::Compacted { .. }), "{err:?}");
    // A watcher that has read part of the log when it is trimmed past it hears so too.
    let floor = cat.inner.events.floor();
    let page = cat.events_page(Cursor::after(floor), 0, 1).expect("page");
    for v in 50..70 {
        write(&cat, v as u64 + 1, Op::Update(fat(v, 10_000)));
    }
    let err = cat
        .events_page(page.next, 0, 1 << 20)
        .err()
        .expect("trimmed");
    assert!(matches!(err, CatalogError::Compacted { .. }), "{err:?}");
}

#[test]
fn a_snapshot_replacing_the_catalogue_ends_every_watch() {
    let (_d, cat) = open(1000);
    write(&cat, 1, Op::Create(fat(0, 100)));
    let mut feed = cat.feed();
    let restores = feed.borrow_and_update().restores;
    let snapshot = cat.export().expect("export");
    write(&cat, 2, Op::Update(fat(1, 100)));
    assert!(feed.has_changed().expect("feed"));
    let mut batch = WriteBatch::default();
    cat.restore(&mut batch, &snapshot, 3).expect("restore");
    cat.db().write(batch).expect("write");
    cat.after_restore(3);
    let err = cat
        .events_page(Cursor::after(1), restores, 1 << 20)
        .err()
        .expect("replaced");
    assert_eq!(err, CatalogError::Replaced);
    assert_eq!(feed.borrow_and_update().restores, restores + 1);
}

#[test]
fn history_retention_trims_the_oldest_revisions_and_keeps_the_newest() {
    let (_d, cat) = open(1000);
    write(&cat, 1, Op::Create(fat(0, 10)));
    let later = std::time::Instant::now() + std::time::Duration::from_secs(3600);
    for v in 1..10 {
        write(&cat, v as u64 + 1, Op::Update(fat(v, 10)));
    }
    // Nothing committed before an hour ago.
    let past = std::time::Instant::now() - std::time::Duration::from_secs(3600);
    assert_eq!(cat.trim_events_before(past, 100).expect("trim").1, 0);
    // Two at a time, oldest first; the newest revision always stays.
    assert_eq!(cat.trim_events_before(later, 2).expect("trim"), (2, 2));
    assert!(matches!(
        cat.events_page(Cursor::after(0), 0, 1 << 20),
        Err(CatalogError::Compacted { oldest: 2, .. })
    ));
    let (events, _) = read_all(&cat, 2, 1 << 20);
    assert_eq!(events.first().map(|e| e.revision), Some(3));
    assert_eq!(cat.trim_events_before(later, 100).expect("trim"), (9, 7));
    assert_eq!(cat.trim_events_before(later, 100).expect("trim").1, 0);
    let (events, _) = read_all(&cat, 9, 1 << 20);
    assert_eq!(events.iter().map(|e| e.revision).collect::<Vec<_>>(), [10]);
}
