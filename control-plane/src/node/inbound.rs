//! What a member takes from its peers. raft-rs trusts what it is stepped with: a heartbeat
//! whose commit index is past the log panics its thread (`commit_to`), an append whose entries
//! skip back over committed ones panics it (`maybe_append`), a snapshot whose payload is not a
//! catalogue stops the loop when it is installed, a snapshot with a malformed configuration
//! panics it (`restore`). So every message is checked here first: what needs no Raft state
//! where it arrives (`envelope`), the rest on the Raft loop (`against`). A refused message is
//! dropped, counted in `tributary_raft_messages_refused_total{why}` and logged (at most once a
//! second per reason). Raft tolerates lost messages: a real peer's message refused by a race
//! (a member not yet known here) is sent again.
//!
//! Membership: a message must come from a member of this member's configuration (voters and
//! learners, as raft-rs's progress tracker holds them), as etcd refuses removed members. A
//! member being added is in the leader's configuration before the leader speaks to it, and
//! the new member itself has no configuration until the leader's snapshot gives it one: until
//! then it takes messages from the members it was started with (`--peers`). Caveat: a member
//! that missed the change adding the member that now leads refuses that leader; remove and
//! add it again (with an empty data dir) — as etcd asks of a member that cannot catch up.

use raft::prelude::Message;
pub use tributary_common::raft_inputs::{against, Refused};

/// The checks that need no Raft state (`raft_inputs::envelope`), a snapshot's payload being a
/// catalogue this member could install (one that does not decode would stop the Raft loop on
/// installing it).
pub fn envelope(me: u64, batch_from: u64, m: &Message) -> Result<(), Refused> {
    tributary_common::raft_inputs::envelope(me, batch_from, m, |data| {
        crate::catalog::snapshot_decodes(data).map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::prelude::{MessageType, Snapshot};

    #[test]
    fn a_snapshot_must_be_a_catalogue() {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgSnapshot);
        (m.from, m.to, m.term) = (2, 1, 3);
        let mut snap = Snapshot::default();
        snap.mut_metadata().index = 10;
        snap.mut_metadata().term = 3;
        snap.mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
        snap.data = b"not a catalogue\xff\xff".to_vec().into();
        m.set_snapshot(snap.clone());
        assert_eq!(envelope(1, 2, &m).map_err(|r| r.why), Err("snapshot"));
        snap.data = Default::default();
        m.set_snapshot(snap);
        assert_eq!(envelope(1, 2, &m), Ok(()));
    }
}
