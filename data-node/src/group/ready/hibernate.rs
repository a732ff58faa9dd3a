//! Hibernation of idle groups, as TiKV's hibernate regions and CockroachDB's quiesced ranges:
//! 1,000 replicated streams that take no writes cost next to nothing.
//!
//! A leader whose group has had no work for two election timeouts, whose every replica holds
//! everything it has (all applied, no learner, no change or hand-over under way, placement
//! met) and whose replicas' nodes are all up, sends each replica one heartbeat that asks it to
//! hibernate, and stops ticking. A follower that gets it, and holds everything it commits,
//! stops ticking too: no heartbeats, no elections. Instead every data node tells each peer it
//! is alive every heartbeat (`Outbound::Alive`, one message per node pair, not per group).
//!
//! Any work wakes a group: a proposal, a message other than a heartbeat's, a new placement or
//! limits, a hand-over. A replica whose node falls silent for an election timeout wakes every
//! group it is in: a leader that lost a replica ticks again, so it steps down without a
//! quorum; a follower whose leader it was, asleep or awake (woken by another replica's
//! campaign, say), forgets that leader, so no lease holds its vote back, and the first replica
//! still up stands at once: a new leader is in place an election timeout after its node went
//! silent, sooner on average than the randomised timeout of an awake group.

use super::membership::settled;
use super::{send, stand, wake, Group, Loop};
use raft::prelude::{Message, MessageType};
use raft::{StateRole, INVALID_ID};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// What a heartbeat that asks its follower to hibernate carries as its context (a follower
/// that does not know it takes it as a plain heartbeat).
const HIBERNATE: &[u8] = b"tributary:hibernate";

pub(super) fn asks_to_hibernate(m: &Message) -> bool {
    m.get_msg_type() == MessageType::MsgHeartbeat && m.context[..] == *HIBERNATE
}

/// After stepping a leader's request to hibernate: a follower holding everything its leader
/// committed stops ticking.
pub(super) fn follow_into_hibernation(g: &mut Group, from: u64) {
    let raft = &g.raw.raft;
    if raft.state == StateRole::Follower
        && raft.leader_id == from
        && raft.raft_log.committed == raft.raft_log.last_index()
    {
        g.hibernating = true;
        g.leader_contact = Instant::now();
    }
}

/// Whether the leader of an idle group may put it to sleep, as far as the group itself says
/// (its replicas' nodes being up and no proposal of its waiting are asked after).
fn may_hibernate(g: &Group) -> bool {
    let raft = &g.raw.raft;
    let last = raft.raft_log.last_index();
    let cs = g.log.conf_state();
    raft.state == StateRole::Leader
        && g.founding == 0
        && raft.lead_transferee.is_none()
        && raft.pending_conf_index <= raft.raft_log.applied
        && raft.raft_log.committed == last
        && raft.raft_log.applied == last
        && cs.learners.is_empty()
        && raft.prs().iter().all(|(_, pr)| pr.matched == last)
        && g.snapshot_wait.is_empty()
        && g.limits == g.store.limits()
        && settled(g)
        && !g.raw.has_ready()
}

impl Loop {
    /// One tick of the clock: every group awake ticks, idle ones may go to sleep, sleeping
    /// ones whose replicas' nodes fell silent wake, and every peer hears this node is up.
    pub(super) fn tick(&mut self) {
        self.ticks += 1;
        if self
            .ticks
            .is_multiple_of(self.settings.heartbeat_ticks.max(1) as u64)
        {
            for to in &self.peers {
                let _ = self.outbox.send(super::Outbound::Alive { to: *to });
            }
        }
        let timeout = self.settings.election_timeout();
        let silent = match self.settings.hibernate {
            true => self.liveness.silent(&self.peers, timeout),
            false => Vec::new(),
        };
        let quiet_enough = self.settings.election_ticks * 2;
        let me = self.me;
        let mut asleep = 0;
        for (id, g) in self.groups.iter_mut() {
            if !silent.is_empty() && (g.hibernating || silent.contains(&g.raw.raft.leader_id)) {
                let voters = g.log.conf_state().voters;
                if voters.iter().any(|v| silent.contains(v)) {
                    on_silence(me, g, &voters, &silent);
                }
            }
            if g.hibernating {
                asleep += 1;
                continue;
            }
            if self.settings.hibernate {
                g.quiet_ticks += 1;
                // Before this tick's own heartbeats, which would leave it something to send.
                if g.quiet_ticks >= quiet_enough && g.raw.raft.state == StateRole::Leader {
                    let all_up = || {
                        g.log.conf_state().voters.iter().all(|v| {
                            *v == me || self.liveness.silent_for(*v).is_some_and(|d| d <= timeout)
                        })
                    };
                    let busy = || self.pending.values().any(|p| p.group == *id);
                    if may_hibernate(g) && all_up() && !busy() {
                        ask_to_hibernate(&self.outbox, *id, g);
                        asleep += 1;
                        continue;
                    }
                    // Asked again after another quiet spell, not on every tick: a group kept
                    // awake (a replica's node down, say) costs no look each tick.
                    g.quiet_ticks = 0;
                }
            }
            g.raw.tick();
            if g.founding > 0 {
                g.founding -= 1;
                if g.founding % 2 == 0 {
                    stand(g);
                }
            }
        }
        if self.hibernating.swap(asleep, Ordering::Relaxed) != asleep {
            metrics::gauge!("tributary_dn_raft_hibernating_groups").set(asleep as f64);
        }
    }

    /// The data nodes sharing a group with this one (once a second, by housekeeping).
    pub(super) fn note_peers(&mut self) {
        let mut peers: Vec<u64> = self
            .groups
            .values()
            .flat_map(|g| {
                let cs = g.log.conf_state();
                cs.voters.into_iter().chain(cs.learners)
            })
            .filter(|n| *n != self.me)
            .collect();
        peers.sort_unstable();
        peers.dedup();
        self.peers = peers;
    }
}

/// The leader's last heartbeat before it sleeps, to each replica, asking it to sleep too.
fn ask_to_hibernate(
    outbox: &tokio::sync::mpsc::UnboundedSender<super::Outbound>,
    id: u64,
    g: &mut Group,
) {
    let raft = &g.raw.raft;
    let committed = raft.raft_log.committed;
    for (to, pr) in raft.prs().iter() {
        if *to == raft.id {
            continue;
        }
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgHeartbeat);
        m.from = raft.id;
        m.to = *to;
        m.term = raft.term;
        // As raft-rs's own heartbeat: never past what the follower holds.
        m.commit = committed.min(pr.matched);
        m.context = HIBERNATE.to_vec().into();
        send(outbox, id, m);
    }
    g.hibernating = true;
    g.touched = true;
    g.leader_contact = Instant::now();
}

/// A group one of whose replicas' nodes fell silent wakes if asleep; if that was its leader,
/// it is forgotten (no lease holds a vote back: a replica woken by another's campaign drops
/// it too) and the first replica still up stands at once.
fn on_silence(me: u64, g: &mut Group, voters: &[u64], silent: &[u64]) {
    wake(g);
    let raft = &mut g.raw.raft;
    let leader = raft.leader_id;
    if raft.state == StateRole::Leader || leader == INVALID_ID || !silent.contains(&leader) {
        return;
    }
    let term = raft.term;
    raft.become_follower(term, INVALID_ID);
    tracing::info!(stream = %g.store.name, leader, "the leader's data node fell silent; another replica is to lead");
    let first_up = voters.iter().filter(|v| !silent.contains(v)).min();
    if first_up == Some(&me) {
        // Now, and twice more over the next ticks, while no leader is known (the other
        // replicas may notice the silence a tick later).
        g.founding = 4;
        stand(g);
    }
}
