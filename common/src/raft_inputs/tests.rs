//! The checks against forged and malformed messages, and raft-rs panicking without them.

mod envelope {
    use super::super::*;
    use raft::prelude::Snapshot;

    fn any(_: &[u8]) -> Result<(), String> {
        Ok(())
    }

    fn empty_only(d: &[u8]) -> Result<(), String> {
        if d.is_empty() {
            Ok(())
        } else {
            Err("not a catalogue".into())
        }
    }

    fn msg(t: MessageType, from: u64, to: u64) -> Message {
        let mut m = Message::default();
        m.set_msg_type(t);
        m.from = from;
        m.to = to;
        m.term = 3;
        m
    }

    #[test]
    fn the_envelope_names_sender_receiver_and_a_peer_kind() {
        let ok = msg(MessageType::MsgHeartbeat, 2, 1);
        assert_eq!(envelope(1, 2, &ok, any), Ok(()));
        let why = |m: &Message, batch: u64| envelope(1, batch, m, any).map_err(|r| r.why);
        assert_eq!(why(&ok, 3), Err("from"), "another member's batch");
        assert_eq!(why(&msg(MessageType::MsgHeartbeat, 1, 1), 1), Err("from"));
        assert_eq!(why(&msg(MessageType::MsgHeartbeat, 2, 7), 2), Err("to"));
        for t in [
            MessageType::MsgPropose,
            MessageType::MsgHup,
            MessageType::MsgTimeoutNow,
            MessageType::MsgTransferLeader,
            MessageType::MsgCheckQuorum,
        ] {
            assert_eq!(why(&msg(t, 2, 1), 2), Err("type"), "{t:?}");
        }
    }

    #[test]
    fn a_leadership_transfer_is_taken_only_where_asked_for() {
        let now = msg(MessageType::MsgTimeoutNow, 2, 1);
        assert!(envelope(1, 2, &now, any).is_err());
        assert_eq!(envelope_with_transfer(1, 2, &now, any), Ok(()));
        assert!(
            envelope_with_transfer(1, 3, &now, any).is_err(),
            "another's batch"
        );
        let propose = msg(MessageType::MsgPropose, 2, 1);
        assert!(envelope_with_transfer(1, 2, &propose, any).is_err());
    }

    #[test]
    fn a_snapshot_must_carry_a_payload_the_receiver_takes_and_a_sane_configuration() {
        let mut m = msg(MessageType::MsgSnapshot, 2, 1);
        let mut snap = Snapshot::default();
        snap.mut_metadata().index = 10;
        snap.mut_metadata().term = 3;
        snap.mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
        snap.data = b"not a catalogue\xff\xff".to_vec().into();
        m.set_snapshot(snap.clone());
        assert_eq!(
            envelope(1, 2, &m, empty_only).map_err(|r| r.why),
            Err("snapshot")
        );
        snap.data = Default::default();
        for voters in [vec![], vec![2, 3], vec![1, 1, 2], vec![0, 1]] {
            snap.mut_metadata().mut_conf_state().voters = voters.clone();
            m.set_snapshot(snap.clone());
            assert!(envelope(1, 2, &m, empty_only).is_err(), "voters {voters:?}");
        }
        snap.mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
        m.set_snapshot(snap.clone());
        assert_eq!(envelope(1, 2, &m, empty_only), Ok(()));
        snap.mut_metadata().term = 4;
        m.set_snapshot(snap);
        assert!(
            envelope(1, 2, &m, empty_only).is_err(),
            "a term beyond the message's"
        );
    }

    #[test]
    fn the_audits_nested_groups_do_not_parse() {
        use protobuf::Message as _;
        // probe_raft.py: 200,000 start-group tags, and a varint that never ends.
        let groups = [0xA3u8, 0x06].repeat(200_000);
        assert!(Message::parse_from_bytes(&groups).is_err());
        let mut junk = vec![0x0a];
        junk.extend([0xff; 9]);
        junk.push(0x01);
        assert!(Message::parse_from_bytes(&junk).is_err());
    }
}

mod state {
    use super::super::*;
    use raft::prelude::{ConfState, Entry};
    use raft::storage::MemStorage;
    use raft::RawNode;

    /// Member 1 of {1, 2, 3}: entries 1..=5 of term 2, committed up to 3.
    fn member() -> RawNode<MemStorage> {
        let store = MemStorage::new_with_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
        let entries: Vec<Entry> = (1..=5)
            .map(|i| Entry {
                index: i,
                term: 2,
                ..Default::default()
            })
            .collect();
        store.wl().append(&entries).unwrap();
        let mut hs = store.wl().hard_state().clone();
        hs.term = 2;
        hs.commit = 3;
        store.wl().set_hardstate(hs);
        let config = raft::Config {
            id: 1,
            ..Default::default()
        };
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        RawNode::new(&config, store, &logger).unwrap()
    }

    fn msg(t: MessageType, from: u64) -> Message {
        let mut m = Message::default();
        m.set_msg_type(t);
        m.from = from;
        m.to = 1;
        m.term = 2;
        m
    }

    fn why(raw: &RawNode<MemStorage>, m: &Message) -> Result<(), &'static str> {
        against(&raw.raft, |_| false, m).map_err(|r| r.why)
    }

    #[test]
    fn raft_rs_panics_on_the_forged_heartbeat_this_refuses() {
        let mut forged = msg(MessageType::MsgHeartbeat, 2);
        forged.commit = 5 + 1_000_000;
        assert_eq!(why(&member(), &forged), Err("commit"));
        // What stepping it would do without the check (probe_raft.py's R5).
        let mut raw = member();
        let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| raw.step(forged)));
        assert!(stepped.is_err(), "raft-rs took a commit index past its log");
        let mut fine = msg(MessageType::MsgHeartbeat, 2);
        fine.commit = 5;
        assert_eq!(why(&member(), &fine), Ok(()));
    }

    #[test]
    fn strangers_far_terms_and_bent_appends_are_refused() {
        let raw = member();
        assert_eq!(
            why(&raw, &msg(MessageType::MsgHeartbeat, 9)),
            Err("not_member")
        );
        let mut far = msg(MessageType::MsgRequestVote, 2);
        far.term = u64::MAX;
        assert_eq!(why(&raw, &far), Err("term"));

        let entry = |index, term| Entry {
            index,
            term,
            ..Default::default()
        };
        let mut app = msg(MessageType::MsgAppend, 2);
        app.index = 5;
        app.log_term = 2;
        app.set_entries(vec![entry(6, 2), entry(7, 2)].into());
        assert_eq!(why(&raw, &app), Ok(()));
        // An entry back over the committed ones: raft-rs's `maybe_append` panics on it.
        app.set_entries(vec![entry(2, 3)].into());
        assert_eq!(why(&raw, &app), Err("entries"));
        let mut stepped = member();
        let forged = app.clone();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stepped.step(forged)));
        assert!(
            r.is_err(),
            "raft-rs took an entry conflicting with a committed one"
        );
        app.set_entries(vec![entry(6, 3)].into());
        assert_eq!(why(&raw, &app), Err("entries"), "a term past the message's");
        // Older than the committed entry every leader has: raft-rs's hint search panics.
        app.set_entries(Vec::new().into());
        app.log_term = 1;
        assert_eq!(why(&raw, &app), Err("log_term"));

        let mut ack = msg(MessageType::MsgAppendResponse, 3);
        ack.index = 1 << 40;
        assert_eq!(why(&raw, &ack), Err("index"));
    }

    #[test]
    fn a_transfer_is_taken_from_the_leader_only() {
        let mut raw = member();
        raw.raft.leader_id = 2;
        let mut now = msg(MessageType::MsgTimeoutNow, 3);
        assert_eq!(why(&raw, &now), Err("transfer"));
        now.from = 2;
        assert_eq!(why(&raw, &now), Ok(()));
    }

    #[test]
    fn a_member_without_a_configuration_hears_the_peers_it_was_started_with() {
        let store = MemStorage::new();
        let config = raft::Config {
            id: 4,
            ..Default::default()
        };
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&config, store, &logger).unwrap();
        let mut m = msg(MessageType::MsgAppend, 1);
        m.to = 4;
        assert_eq!(
            against(&raw.raft, |id| id <= 3, &m).map_err(|r| r.why),
            Ok(())
        );
        m.from = 5;
        assert_eq!(
            against(&raw.raft, |id| id <= 3, &m).map_err(|r| r.why),
            Err("not_member")
        );
    }
}
