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
mod tests;
