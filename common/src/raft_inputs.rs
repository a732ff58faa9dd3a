//! Raft messages from peers, checked before raft-rs sees them. raft-rs trusts what it is
//! stepped with: a heartbeat whose commit index is past the log panics its thread
//! (`commit_to`), an append whose entries skip back over committed ones panics it
//! (`maybe_append`), a snapshot with a malformed configuration panics it (`restore`). So every
//! message is checked first: what needs no Raft state where it arrives ([`envelope`]), the rest
//! on the Raft loop ([`against`]). A refused message is dropped, counted in
//! `tributary_raft_messages_refused_total{why}` and logged (at most once a second per reason).
//! Raft tolerates lost messages: a real peer's message refused by a race is sent again.
//!
//! The control plane's members and the data nodes' stream groups share these checks; what a
//! snapshot's payload must be is each one's own (`snapshot_payload`).

use raft::prelude::{ConfState, Message, MessageType};
use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// How far past this member's term a message may be: a cluster does not hold four billion
/// elections, and a term near `u64::MAX` would overflow raft-rs's `term + 1`.
const MAX_TERM_JUMP: u64 = 1 << 32;
const LOG_EVERY: Duration = Duration::from_secs(1);

/// Why a message was dropped: the metric's `why` label and what the log line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub why: &'static str,
    pub detail: String,
}

impl Refused {
    pub fn new(why: &'static str, detail: impl Into<String>) -> Self {
        Refused {
            why,
            detail: detail.into(),
        }
    }

    /// Counts the refusal and logs it (rate-limited per reason).
    pub fn record(&self, from: u64) {
        metrics::counter!("tributary_raft_messages_refused_total", "why" => self.why).increment(1);
        static LAST: LazyLock<Mutex<HashMap<&'static str, (Instant, u64)>>> =
            LazyLock::new(Mutex::default);
        let mut last = crate::sync::lock(&LAST);
        let (at, quiet) = last
            .entry(self.why)
            .or_insert((Instant::now() - LOG_EVERY, 0));
        if at.elapsed() >= LOG_EVERY {
            tracing::warn!(
                from,
                why = self.why,
                also_refused_since_last_line = *quiet,
                "raft message refused: {}",
                self.detail
            );
            *at = Instant::now();
            *quiet = 0;
        } else {
            *quiet += 1;
        }
    }
}

/// Messages one member sends another. The rest are raft-rs's local messages (`MsgHup`,
/// `MsgBeat`, `MsgUnreachable`, …), proposals (this control plane proposes on the leader only,
/// so a `MsgPropose` from the network could only inject a command), and leadership transfer,
/// which it never starts.
fn from_peers(t: MessageType) -> bool {
    use MessageType::*;
    matches!(
        t,
        MsgAppend
            | MsgAppendResponse
            | MsgRequestVote
            | MsgRequestVoteResponse
            | MsgRequestPreVote
            | MsgRequestPreVoteResponse
            | MsgSnapshot
            | MsgHeartbeat
            | MsgHeartbeatResponse
            | MsgReadIndex
            | MsgReadIndexResp
    )
}

/// The checks that need no Raft state, where a batch arrives: the message says it comes from
/// the member that sent the batch (whose certificate the service checked) and goes to this
/// one, it is of a kind peers send, and a snapshot is one this member could install.
/// `snapshot_payload` says whether a snapshot's data is one this receiver could install.
/// Leadership transfer (`MsgTimeoutNow`) is refused here: see [`envelope_with_transfer`].
pub fn envelope(
    me: u64,
    batch_from: u64,
    m: &Message,
    snapshot_payload: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<(), Refused> {
    if m.from == 0 || m.from == me || m.from != batch_from {
        return Err(Refused::new(
            "from",
            format!(
                "message from {} in a batch from member {batch_from} (to member {me})",
                m.from
            ),
        ));
    }
    if m.to != me {
        return Err(Refused::new(
            "to",
            format!("message to member {}, this is member {me}", m.to),
        ));
    }
    let t = m.get_msg_type();
    if !from_peers(t) {
        return Err(Refused::new("type", format!("{t:?} is not sent by peers")));
    }
    if t == MessageType::MsgSnapshot {
        snapshot(me, m, snapshot_payload)?;
    }
    Ok(())
}

/// As [`envelope`], and a leader's `MsgTimeoutNow` (leadership transfer) is taken too, for
/// Raft groups that hand leadership over; [`against`] then takes it only from the leader.
pub fn envelope_with_transfer(
    me: u64,
    batch_from: u64,
    m: &Message,
    snapshot_payload: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<(), Refused> {
    if m.get_msg_type() != MessageType::MsgTimeoutNow {
        return envelope(me, batch_from, m, snapshot_payload);
    }
    if m.from == 0 || m.from == me || m.from != batch_from || m.to != me {
        return Err(Refused::new(
            "from",
            format!(
                "transfer from {} to {} in a batch from {batch_from} (to {me})",
                m.from, m.to
            ),
        ));
    }
    Ok(())
}

fn snapshot(
    me: u64,
    m: &Message,
    payload: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<(), Refused> {
    let meta = m.get_snapshot().get_metadata();
    if meta.index == 0 || meta.term == 0 || meta.term > m.term {
        return Err(Refused::new(
            "snapshot",
            format!(
                "snapshot at index {} term {} in a message of term {}",
                meta.index, meta.term, m.term
            ),
        ));
    }
    conf_state(me, meta.get_conf_state())?;
    payload(m.get_snapshot().get_data()).map_err(|e| Refused::new("snapshot", e))
}

/// A configuration as this control plane makes them (single changes, no joint consensus):
/// voters, maybe learners, all distinct and non-zero, this member among them.
fn conf_state(me: u64, cs: &ConfState) -> Result<(), Refused> {
    let bad = |why: String| Err(Refused::new("snapshot", format!("configuration {why}")));
    if cs.get_voters().is_empty() {
        return bad("without voters".into());
    }
    if !cs.get_voters_outgoing().is_empty() || !cs.get_learners_next().is_empty() || cs.auto_leave {
        return bad("in joint consensus, which this control plane never enters".into());
    }
    let mut seen = HashSet::new();
    for id in cs.get_voters().iter().chain(cs.get_learners()) {
        if *id == 0 || !seen.insert(*id) {
            return bad(format!("naming member {id} twice or as 0"));
        }
    }
    if !seen.contains(&me) {
        return bad(format!("without this member ({me})"));
    }
    Ok(())
}

/// The checks against this member's Raft state, on the Raft loop just before stepping.
/// `known` says whether a member id was in the peers this member started with (what a member
/// with no configuration yet takes messages from).
pub fn against<T: raft::Storage>(
    raft: &raft::Raft<T>,
    known: impl Fn(u64) -> bool,
    m: &Message,
) -> Result<(), Refused> {
    let configured = raft.prs().iter().len() != 0;
    let member = if configured {
        raft.prs().get(m.from).is_some()
    } else {
        known(m.from)
    };
    if !member {
        return Err(Refused::new(
            "not_member",
            format!(
                "member {} is not in this member's configuration{}",
                m.from,
                if configured {
                    ""
                } else {
                    " nor among the peers it was started with"
                }
            ),
        ));
    }
    if m.term > raft.term.saturating_add(MAX_TERM_JUMP) {
        return Err(Refused::new(
            "term",
            format!("term {} is far beyond this member's {}", m.term, raft.term),
        ));
    }
    let log = &raft.raft_log;
    let last = log.last_index();
    match m.get_msg_type() {
        MessageType::MsgTimeoutNow if m.from != raft.leader_id => Err(Refused::new(
            "transfer",
            format!(
                "leadership handed over by {}, which does not lead (leader: {})",
                m.from, raft.leader_id
            ),
        )),
        MessageType::MsgHeartbeat if m.commit > last => Err(Refused::new(
            "commit",
            format!(
                "heartbeat commits {} beyond this member's last index {last}",
                m.commit
            ),
        )),
        MessageType::MsgAppend => append(raft, m),
        MessageType::MsgAppendResponse if !m.reject && m.index > last => Err(Refused::new(
            "index",
            format!(
                "append acknowledged up to {}, past the log's {last}",
                m.index
            ),
        )),
        _ => Ok(()),
    }
}

/// An append as a leader sends it: entries numbered on from `index`, their terms rising from
/// `log_term` to at most the message's term, and — when it does not lie wholly below the
/// commit index, which raft-rs answers without looking — no older than the committed entry
/// every leader holds.
fn append<T: raft::Storage>(raft: &raft::Raft<T>, m: &Message) -> Result<(), Refused> {
    let bad = |d: String| Err(Refused::new("entries", d));
    let mut prev_term = m.log_term;
    for (i, e) in m.get_entries().iter().enumerate() {
        let want = m.index.checked_add(1).and_then(|n| n.checked_add(i as u64));
        if want != Some(e.index) {
            return bad(format!(
                "entry {} at position {i} of an append after index {}",
                e.index, m.index
            ));
        }
        if e.term < prev_term || e.term > m.term {
            return bad(format!(
                "entry {} of term {} after term {prev_term}, in a message of term {}",
                e.index, e.term, m.term
            ));
        }
        prev_term = e.term;
    }
    let log = &raft.raft_log;
    if m.index >= log.committed {
        if let Ok(t) = log.term(log.committed) {
            if m.log_term < t {
                return Err(Refused::new(
                    "log_term",
                    format!(
                        "append after index {} of term {}, older than committed index {} of term {t}",
                        m.index, m.log_term, log.committed
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
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

#[cfg(test)]
mod state_tests {
    use super::*;
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
