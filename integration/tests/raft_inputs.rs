//! What a member does with forged Raft messages (issue 11, `probe_raft.py`): each is sent to a
//! real member's peer listener on an `insecure` cluster (where nothing proves who is
//! talking), and each is dropped and counted under its reason; no member panics or stops, the
//! injected command is not applied, and the cluster keeps its leader and takes writes.

use anyhow::{bail, ensure, Result};
use prost::Message as _;
use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, EntryType, Message, MessageType, Snapshot};
use tributary_integration::{wait, Cluster, Server};
use tributary_proto::v1::{
    command::Op, entity::Kind, raft_client::RaftClient, Command, Entity, EntityKind, EntityRef,
    Namespace, RaftBatch, Well,
};

/// The count of refused Raft messages for `why` in this process's metrics.
fn refused(why: &str) -> f64 {
    let text = tributary_common::telemetry::prometheus().render();
    let key = format!("tributary_raft_messages_refused_total{{why=\"{why}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn msg(t: MessageType, from: u64, to: u64, term: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(t);
    m.from = from;
    m.to = to;
    m.term = term;
    m
}

fn injected_command() -> Vec<u8> {
    Command {
        op: Some(Op::Create(Entity {
            kind: Some(Kind::Well(Well {
                name: "evil:injected".into(),
                tags: vec!["inj".into()],
                owner_node: 4242,
                ..Default::default()
            })),
        })),
        live_nodes: Vec::new(),
        erasure: false,
    }
    .encode_to_vec()
}

/// Sends `raw` messages to `addr`'s peer listener as a batch from `from`.
async fn send(addr: &str, from: u64, raw: Vec<Vec<u8>>) -> Result<()> {
    let ch = tributary_common::grpc::channel(addr)?;
    RaftClient::new(ch)
        .send(RaftBatch {
            from,
            messages: raw.into_iter().map(Into::into).collect(),
        })
        .await?;
    Ok(())
}

/// Sends one forged message and waits until it is counted as refused for `why`.
async fn refused_for(addr: &str, batch_from: u64, m: Message, why: &str) -> Result<()> {
    send_counted(addr, batch_from, vec![m.write_to_bytes()?], why).await
}

async fn send_counted(addr: &str, from: u64, raw: Vec<Vec<u8>>, why: &str) -> Result<()> {
    let before = refused(why);
    send(addr, from, raw).await?;
    wait::until(
        &format!("a refusal counted as {why}"),
        wait::WAIT,
        || async { (refused(why) > before).then_some(()) },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_raft_messages_are_dropped_counted_and_harmless() -> Result<()> {
    tributary_common::telemetry::prometheus();
    let c = Cluster::builder("raftin")
        .insecure()
        .members(3)
        .data_nodes(0)
        .start()
        .await?;
    let leader = c.wait_leader().await?;
    let follower = c
        .member_ids()
        .into_iter()
        .find(|id| *id != leader)
        .unwrap_or(leader);
    let other = c
        .member_ids()
        .into_iter()
        .find(|id| *id != leader && *id != follower)
        .unwrap_or(leader);
    c.create(Entity {
        kind: Some(Kind::Namespace(Namespace {
            name: "before".into(),
            ..Default::default()
        })),
    })
    .await?;
    let st = c.member_state(follower).await?;
    let (term, commit) = (st.term, st.commit);
    let Some(peer) = c.addrs(Server::Member(follower))?.peer else {
        bail!("member {follower} reported no peer address");
    };
    let to = peer.to_string();
    let f = follower;

    // probe R1: an append from an id that is no member, carrying a catalogue command.
    let mut append = msg(MessageType::MsgAppend, 5, f, term + 1);
    append.index = commit;
    append.log_term = term;
    append.commit = commit + 1;
    append.set_entries(
        vec![Entry {
            entry_type: EntryType::EntryNormal,
            term: term + 1,
            index: commit + 1,
            data: injected_command().into(),
            ..Default::default()
        }]
        .into(),
    );
    refused_for(&to, 5, append.clone(), "not_member").await?;
    // The same claimed to come from the leader, inside another member's batch.
    let mut relabelled = append.clone();
    relabelled.from = leader;
    refused_for(&to, other, relabelled, "from").await?;
    // probe R5: a heartbeat from the leader's id with a commit index far past the log.
    let mut hb = msg(MessageType::MsgHeartbeat, leader, f, term);
    hb.commit = commit + 1_000_000;
    refused_for(&to, leader, hb, "commit").await?;
    // probe R2: a term near u64::MAX.
    refused_for(
        &to,
        leader,
        msg(MessageType::MsgHeartbeat, leader, f, u64::MAX),
        "term",
    )
    .await?;
    // A message for another member.
    refused_for(
        &to,
        leader,
        msg(MessageType::MsgHeartbeat, leader, 9, term),
        "to",
    )
    .await?;
    // A proposal from the network would append the attacker's command.
    let mut propose = msg(MessageType::MsgPropose, leader, f, 0);
    propose.set_entries(
        vec![Entry {
            data: injected_command().into(),
            ..Default::default()
        }]
        .into(),
    );
    refused_for(&to, leader, propose, "type").await?;
    // An append whose entry goes back over committed ones (raft-rs panics on it).
    let mut bent = msg(MessageType::MsgAppend, leader, f, term);
    bent.index = commit;
    bent.log_term = term;
    bent.set_entries(
        vec![Entry {
            term,
            index: 1,
            ..Default::default()
        }]
        .into(),
    );
    refused_for(&to, leader, bent, "entries").await?;
    // probe R1c: a snapshot whose payload is no catalogue (it stopped the Raft loop).
    let mut snap = Snapshot::default();
    snap.mut_metadata().index = commit + 100;
    snap.mut_metadata().term = term;
    snap.mut_metadata()
        .set_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
    snap.data = b"not a catalogue\xff\xff\xff".to_vec().into();
    let mut garbage = msg(MessageType::MsgSnapshot, leader, f, term);
    garbage.set_snapshot(snap.clone());
    refused_for(&to, leader, garbage, "snapshot").await?;
    // probe R3/R4: a snapshot making a configuration without this member.
    snap.data = Default::default();
    snap.mut_metadata()
        .set_conf_state(ConfState::from((vec![leader, 9], vec![])));
    let mut phantom = msg(MessageType::MsgSnapshot, leader, f, term);
    phantom.set_snapshot(snap);
    refused_for(&to, leader, phantom, "snapshot").await?;
    // probe R1b: nested start-group tags and a varint that never ends.
    let mut junk = vec![0x0a];
    junk.extend([0xff; 9]);
    junk.push(0x01);
    send_counted(
        &to,
        leader,
        vec![[0xA3u8, 0x06].repeat(200_000), junk],
        "undecodable",
    )
    .await?;
    // To the leader: an acknowledgement past its log.
    let Some(leader_peer) = c.addrs(Server::Member(leader))?.peer else {
        bail!("member {leader} reported no peer address");
    };
    let mut ack = msg(MessageType::MsgAppendResponse, f, leader, term);
    ack.index = commit + (1 << 40);
    refused_for(&leader_peer.to_string(), f, ack, "index").await?;

    // Nothing stopped, nothing was injected, and the cluster goes on.
    for id in c.member_ids() {
        let st = c.member_state(id).await?;
        ensure!(st.role != "stopped", "member {id} stopped");
        let halt = c.member(id)?.node.halts().borrow().clone();
        ensure!(
            halt == tributary_control_plane::node::Halt::Running,
            "member {id}: {halt:?}"
        );
    }
    ensure!(
        c.wait_leader().await? == leader,
        "the leader changed under forged messages"
    );
    c.create(Entity {
        kind: Some(Kind::Namespace(Namespace {
            name: "after".into(),
            ..Default::default()
        })),
    })
    .await?;
    let applied = c.member_state(leader).await?.applied;
    c.wait_applied(applied).await?;
    let got = c
        .catalog_any()?
        .get(EntityRef {
            kind: EntityKind::Well as i32,
            name: "evil:injected".into(),
        })
        .await;
    ensure!(
        got.as_ref().err().map(|s| s.code()) == Some(tonic::Code::NotFound),
        "the injected well: {got:?}"
    );
    c.shutdown().await;
    Ok(())
}

/// A member being added hears the leader before it has a configuration of its own: the
/// checks let it join, and the new configuration then takes its messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_being_added_still_joins() -> Result<()> {
    let mut c = Cluster::builder("raftjoin")
        .insecure()
        .members(3)
        .data_nodes(0)
        .start()
        .await?;
    let leader = c.wait_leader().await?;
    let addr = c.start_joiner(4).await?;
    let mut cluster = tributary_proto::v1::cluster_client::ClusterClient::new(
        tributary_integration::tls::channel(&c.cp_addr(leader)?)?,
    );
    cluster
        .add_member(tributary_proto::v1::MemberRequest {
            id: 4,
            addr,
            peer_addr: String::new(),
        })
        .await?;
    c.create(Entity {
        kind: Some(Kind::Namespace(Namespace {
            name: "joined".into(),
            ..Default::default()
        })),
    })
    .await?;
    let applied = c.member_state(leader).await?.applied;
    c.wait_applied(applied).await?;
    let st = c.member_state(4).await?;
    ensure!(st.leader == leader, "member 4 sees leader {}", st.leader);
    c.shutdown().await;
    Ok(())
}
