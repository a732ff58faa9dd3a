use super::write::NewMessage;
use super::*;
use crate::storage::memory::MemoryEngine;
use crate::storage::rocks::RocksEngine;

fn store(limits: StreamLimits) -> StreamStore {
    StreamStore::open(1, "default:s".into(), Arc::new(MemoryEngine::new()), limits).unwrap()
}

fn msg(subject: &str, data: &str, ts: i64) -> NewMessage {
    NewMessage {
        subject: subject.into(),
        headers: Default::default(),
        data: bytes::Bytes::from(data.to_string()),
        timestamp_ns: ts,
    }
}

fn with_id(mut m: NewMessage, id: &str) -> NewMessage {
    m.headers.insert("Msg-Id".into(), id.into());
    m
}

fn seqs(s: &StreamStore) -> Vec<u64> {
    s.read(0, "", 1000)
        .unwrap()
        .0
        .into_iter()
        .map(|m| m.seq)
        .collect()
}

#[test]
fn publish_assigns_seqs_and_state_tracks_them() {
    let s = store(StreamLimits::default());
    for i in 1..=3 {
        let r = s.publish(msg("a.b", "x", i * 10), None).unwrap();
        assert_eq!(
            r,
            PubResult {
                seq: i as u64,
                duplicate: false
            }
        );
    }
    let st = s.state();
    assert_eq!(
        (
            st.messages,
            st.first_seq,
            st.last_seq,
            st.first_ts_ns,
            st.last_ts_ns
        ),
        (3, 1, 3, 10, 30)
    );
    assert_eq!(s.get(2).unwrap().timestamp_ns, 20);
    assert!(matches!(s.get(9), Err(StreamError::NoMessage { .. })));
}

#[test]
fn max_msgs_discard_old_drops_the_oldest() {
    let s = store(StreamLimits {
        max_msgs: 3,
        ..Default::default()
    });
    for i in 0..5 {
        s.publish(msg("a", "x", i), None).unwrap();
    }
    assert_eq!(seqs(&s), vec![3, 4, 5]);
    let st = s.state();
    assert_eq!(
        (st.messages, st.first_seq, st.last_seq, st.deleted),
        (3, 3, 5, 0)
    );
}

#[test]
fn max_msgs_discard_new_refuses_and_keeps_everything() {
    let s = store(StreamLimits {
        max_msgs: 2,
        discard_new: true,
        ..Default::default()
    });
    s.publish(msg("a", "x", 0), None).unwrap();
    s.publish(msg("a", "x", 0), None).unwrap();
    let e = s.publish(msg("a", "x", 0), None).unwrap_err();
    assert!(matches!(e, StreamError::Full(_)), "{e}");
    assert_eq!(seqs(&s), vec![1, 2]);
}

#[test]
fn max_bytes_discard_old_and_new() {
    let one = MessageValue {
        subject: "a".into(),
        headers: Default::default(),
        data: bytes::Bytes::from_static(b"0123456789"),
        timestamp_ns: 0,
    }
    .encode()
    .len() as u64;
    let s = store(StreamLimits {
        max_bytes: one * 2,
        ..Default::default()
    });
    for _ in 0..4 {
        s.publish(msg("a", "0123456789", 0), None).unwrap();
    }
    assert_eq!(seqs(&s), vec![3, 4]);
    assert_eq!(s.state().bytes, one * 2);
    let s = store(StreamLimits {
        max_bytes: one * 2,
        discard_new: true,
        ..Default::default()
    });
    s.publish(msg("a", "0123456789", 0), None).unwrap();
    s.publish(msg("a", "0123456789", 0), None).unwrap();
    assert!(matches!(
        s.publish(msg("a", "0123456789", 0), None),
        Err(StreamError::Full(_))
    ));
    assert!(matches!(
        s.publish(msg("a", &"y".repeat(100), 0), None),
        Err(StreamError::Invalid { .. })
    ));
}

#[test]
fn max_msg_size_names_the_field() {
    let s = store(StreamLimits {
        max_msg_size: 16,
        ..Default::default()
    });
    let e = s.publish(msg("a", &"x".repeat(64), 0), None).unwrap_err();
    assert!(
        matches!(&e, StreamError::Invalid { field, .. } if *field == "data"),
        "{e}"
    );
    assert_eq!(s.state().messages, 0);
}

#[test]
fn max_msgs_per_subject_drops_that_subjects_oldest() {
    let s = store(StreamLimits {
        max_msgs_per_subject: 2,
        ..Default::default()
    });
    for subj in ["a", "b", "a", "a", "b", "a"] {
        s.publish(msg(subj, "x", 0), None).unwrap();
    }
    // a: 1,3,4,6 → keeps 4,6; b: 2,5.
    assert_eq!(seqs(&s), vec![2, 4, 5, 6]);
    let st = s.state();
    assert_eq!((st.messages, st.first_seq, st.deleted), (4, 2, 1));
}

#[test]
fn max_age_expires_from_the_front() {
    let s = store(StreamLimits {
        max_age_ns: 100,
        ..Default::default()
    });
    for ts in [10, 20, 150, 160] {
        s.publish(msg("a", "x", ts), None).unwrap();
    }
    assert_eq!(s.expire(200).unwrap(), 2);
    assert_eq!(seqs(&s), vec![3, 4]);
    assert_eq!(s.state().first_ts_ns, 150);
}

#[test]
fn msg_id_dedupes_within_the_window_only() {
    let s = store(StreamLimits {
        duplicate_window_ns: 100,
        ..Default::default()
    });
    assert_eq!(
        s.publish(with_id(msg("a", "x", 0), "m1"), None)
            .unwrap()
            .seq,
        1
    );
    let again = s.publish(with_id(msg("a", "x", 50), "m1"), None).unwrap();
    assert_eq!(
        again,
        PubResult {
            seq: 1,
            duplicate: true
        }
    );
    assert_eq!(s.state().messages, 1);
    let later = s.publish(with_id(msg("a", "x", 200), "m1"), None).unwrap();
    assert_eq!(
        later,
        PubResult {
            seq: 2,
            duplicate: false
        }
    );
}

#[test]
fn expected_last_seq_is_checked() {
    let s = store(StreamLimits::default());
    s.publish(msg("a", "x", 0), None).unwrap();
    assert!(matches!(
        s.publish(msg("a", "x", 0), Some(5)),
        Err(StreamError::WrongLastSeq {
            expected: 5,
            actual: 1
        })
    ));
    assert_eq!(s.publish(msg("a", "x", 0), Some(1)).unwrap().seq, 2);
}

#[test]
fn delete_and_purge_keep_state_right() {
    let s = store(StreamLimits::default());
    for subj in ["o.new", "o.old", "o.new", "x", "o.new"] {
        s.publish(msg(subj, "x", 0), None).unwrap();
    }
    s.delete_message(3).unwrap();
    assert!(matches!(
        s.delete_message(3),
        Err(StreamError::NoMessage { .. })
    ));
    let st = s.state();
    assert_eq!(
        (st.messages, st.first_seq, st.last_seq, st.deleted),
        (4, 1, 5, 1)
    );
    s.delete_message(1).unwrap();
    assert_eq!(s.state().first_seq, 2);
    assert_eq!(s.purge(Some("o.*")).unwrap(), 2);
    assert_eq!(seqs(&s), vec![4]);
    // Seq 5 went but stays the last seq, so it counts as deleted (as JetStream's num_deleted).
    let st = s.state();
    assert_eq!(
        (st.messages, st.first_seq, st.last_seq, st.deleted),
        (1, 4, 5, 1)
    );
    assert_eq!(s.purge(None).unwrap(), 1);
    let st = s.state();
    assert_eq!(
        (st.messages, st.first_seq, st.last_seq, st.bytes),
        (0, 6, 5, 0)
    );
    assert_eq!(
        s.publish(msg("a", "x", 0), None).unwrap().seq,
        6,
        "purge keeps the sequence"
    );
}

#[test]
fn deny_delete_and_purge() {
    let s = store(StreamLimits {
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    });
    s.publish(msg("a", "x", 0), None).unwrap();
    assert!(matches!(s.delete_message(1), Err(StreamError::Refused(_))));
    assert!(matches!(s.purge(None), Err(StreamError::Refused(_))));
}

#[test]
fn read_filters_and_time_lookup() {
    let s = store(StreamLimits::default());
    for (i, subj) in ["a.1", "b.1", "a.2", "b.2"].iter().enumerate() {
        s.publish(msg(subj, "x", (i as i64 + 1) * 100), None)
            .unwrap();
    }
    let (got, next) = s.read(2, "a.*", 10).unwrap();
    assert_eq!(got.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![3]);
    assert_eq!(got[0].decode().unwrap().subject, "a.2");
    assert_eq!(next, 5);
    assert_eq!(s.seq_at_time(250).unwrap(), 3);
    assert_eq!(s.seq_at_time(9999).unwrap(), 5);
}

#[test]
fn file_stream_state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let e: Arc<dyn KvEngine> = Arc::new(RocksEngine::open(dir.path(), false).unwrap());
        StreamStore::open(7, "default:f".into(), e, StreamLimits::default()).unwrap()
    };
    {
        let s = open();
        s.publish(with_id(msg("a", "x", 1), "m"), None).unwrap();
        s.publish(msg("b", "y", 2), None).unwrap();
        s.publish(msg("a", "z", 3), None).unwrap();
        s.delete_message(2).unwrap();
    }
    let s = open();
    let st = s.state();
    assert_eq!(
        (st.messages, st.first_seq, st.last_seq, st.deleted),
        (2, 1, 3, 1)
    );
    assert!(
        s.publish(with_id(msg("a", "x", 4), "m"), None)
            .unwrap()
            .duplicate
    );
    s.purge(None).unwrap();
    drop(s);
    let s = open();
    assert_eq!(s.publish(msg("a", "x", 5), None).unwrap().seq, 4);
}

#[test]
fn batch_publish_matches_one_by_one() {
    let limits = StreamLimits {
        max_msgs: 4,
        discard_new: true,
        ..Default::default()
    };
    let s = store(limits);
    s.publish(msg("a", "x", 1), None).unwrap();
    let batch = vec![
        (with_id(msg("a", "1", 2), "m1"), None),
        (with_id(msg("a", "dup", 3), "m1"), None),
        (msg("a", "wrong", 4), Some(7)),
        (msg("a", "expected", 5), Some(2)),
        (msg("a", "last fits", 6), None),
        (msg("a", "full", 7), None),
    ];
    let r = s.publish_batch(batch);
    assert_eq!(
        r[0].as_ref().unwrap(),
        &PubResult {
            seq: 2,
            duplicate: false
        }
    );
    assert_eq!(
        r[1].as_ref().unwrap(),
        &PubResult {
            seq: 2,
            duplicate: true
        }
    );
    assert!(matches!(
        r[2],
        Err(StreamError::WrongLastSeq {
            expected: 7,
            actual: 2
        })
    ));
    assert_eq!(r[3].as_ref().unwrap().seq, 3);
    assert_eq!(r[4].as_ref().unwrap().seq, 4);
    assert!(matches!(r[5], Err(StreamError::Full(_))));
    let st = s.state();
    assert_eq!(
        (st.messages, st.first_seq, st.last_seq, st.last_ts_ns),
        (4, 1, 4, 6)
    );
    assert_eq!(s.get(3).unwrap().data.as_ref(), b"expected");
    assert!(
        s.publish(with_id(msg("a", "again", 8), "m1"), None)
            .unwrap()
            .duplicate
    );
}

#[test]
fn batch_publish_with_evicting_limits_goes_one_by_one() {
    let s = store(StreamLimits {
        max_msgs: 2,
        ..Default::default()
    });
    let r = s.publish_batch((0..5).map(|i| (msg("a", "x", i), None)).collect());
    assert!(r.iter().all(|r| r.is_ok()));
    assert_eq!(seqs(&s), vec![4, 5]);
}

#[test]
fn batch_publish_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let e: Arc<dyn KvEngine> = Arc::new(RocksEngine::open(dir.path(), false).unwrap());
        StreamStore::open(3, "default:b".into(), e, StreamLimits::default()).unwrap()
    };
    {
        let s = open();
        let r = s.publish_batch(
            (0..10)
                .map(|i| (with_id(msg("a", "x", i), &format!("id{i}")), None))
                .collect(),
        );
        assert!(r.iter().all(|r| r.is_ok()));
    }
    let s = open();
    let st = s.state();
    assert_eq!((st.messages, st.last_seq), (10, 10));
    assert!(
        s.publish(with_id(msg("a", "x", 11), "id3"), None)
            .unwrap()
            .duplicate
    );
}

/// Messages of an origin as a mirror receives them (seq, stored bytes).
fn origin_msgs(seqs: &[u64]) -> Vec<RawMessage> {
    let origin = store(StreamLimits::default());
    for _ in 1..=*seqs.iter().max().unwrap() {
        origin.publish(msg("o.x", "payload", 1), None).unwrap();
    }
    let (all, _) = origin.read(1, "", 1000).unwrap();
    all.into_iter().filter(|m| seqs.contains(&m.seq)).collect()
}

#[test]
fn mirror_batches_prepared_ahead_commit_in_order_with_the_origin_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let engines: [Arc<dyn crate::storage::KvEngine>; 2] = [
        Arc::new(MemoryEngine::new()),
        Arc::new(RocksEngine::open(dir.path(), false).unwrap()),
    ];
    for engine in engines {
        let m = StreamStore::open(2, "default:m".into(), engine, StreamLimits::default()).unwrap();
        // Two events prepared before either is written; the origin deleted seq 3.
        let first = m.prepare_mirrored(origin_msgs(&[1, 2]), 0).unwrap();
        let second = m.prepare_mirrored(origin_msgs(&[4, 5]), 3).unwrap();
        m.commit_mirrored(first, 3, 7).unwrap();
        m.commit_mirrored(second, 5, 7).unwrap();
        assert_eq!(seqs(&m), vec![1, 2, 4, 5]);
        let st = m.state();
        assert_eq!((st.last_seq, st.messages, st.deleted), (5, 4, 1));
        assert_eq!(m.mirror_origin().unwrap(), 7);
    }
}

#[test]
fn a_prepared_mirror_batch_overtaken_by_another_writer_stores_nothing() {
    let m = store(StreamLimits::default());
    let stale = m.prepare_mirrored(origin_msgs(&[1, 2, 3]), 0).unwrap();
    m.append_mirrored(origin_msgs(&[1, 2]), 2, 7).unwrap();
    let e = m.commit_mirrored(stale, 3, 7).unwrap_err();
    assert!(e.to_string().contains("already holds seq 1"), "{e}");
    // What was stored stays exactly as it was: no duplicate, no gap filled in.
    assert_eq!(seqs(&m), vec![1, 2]);
    assert_eq!(m.state().last_seq, 2);
}

#[test]
fn a_closed_store_refuses_writes_and_the_store_opened_after_it_holds_everything() {
    let engine: Arc<dyn crate::storage::KvEngine> = Arc::new(MemoryEngine::new());
    let open = || StreamStore::open(1, "default:s".into(), engine.clone(), Default::default());
    let old = open().unwrap();
    old.publish(msg("a", "1", 1), None).unwrap();
    old.close();
    // A worker still holding the old store fails instead of writing behind the new one.
    let e = old.publish(msg("a", "2", 2), None).unwrap_err();
    assert!(e.to_string().contains("closed on this node"), "{e}");
    let e = old
        .append_mirrored(origin_msgs(&[2]), 2, 7)
        .expect_err("a mirror write on a closed store");
    assert!(e.to_string().contains("closed on this node"), "{e}");
    let new = open().unwrap();
    assert_eq!(new.state().messages, 1);
    new.publish(msg("a", "2", 2), None).unwrap();
    assert_eq!(seqs(&new), vec![1, 2]);
}
