//! Replicated streams under faults: a replica cut off (the harness's link faults) falls
//! behind while the other two take writes, and catches up once healed; a stream of 5 with two
//! nodes down keeps taking writes; forged or misaddressed Raft traffic between data nodes is
//! dropped with the node and the stream unharmed.

use anyhow::{anyhow, Result};
use protobuf::Message as _;
use std::sync::Arc;
use tonic::Code;
use tributary_data_node::storage::streams::{RawMessage, StreamStore};
use tributary_integration::net::Mode;
use tributary_integration::{streams, wait, Cluster, Server};
use tributary_proto::v1::{
    stream_groups_client::StreamGroupsClient, Entity, GroupBatch, GroupMessage, Stream,
};

const STREAM: &str = "default:ORDERS";

fn orders(replicas: u32) -> Entity {
    streams::replicated("ORDERS", replicas)
}

/// The leader's node, once every node's answer names one.
async fn leader(c: &Cluster, ask: u64) -> Result<u64> {
    c.wait_leader_of(ask, STREAM, &[]).await
}

fn store(c: &Cluster, k: u64) -> Result<Arc<StreamStore>> {
    c.replica(k, STREAM)
}

async fn replica_at(c: &Cluster, k: u64, last: u64) -> Result<Vec<RawMessage>> {
    c.replica_at(k, STREAM, last).await
}

async fn stream_entity(c: &Cluster) -> Result<Stream> {
    c.stream_entity(STREAM).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_replica_falls_behind_and_catches_up() -> Result<()> {
    let c = Cluster::builder("r3cut")
        .members(1)
        .data_nodes(3)
        .start()
        .await?;
    c.create(orders(3)).await?;
    let l = leader(&c, 1).await?;
    let victim = (1..=3).find(|k| *k != l).unwrap_or(1);
    c.publish_n(l, "ORDERS.a", "before", 50).await?;
    replica_at(&c, victim, 50).await?;

    // Nothing reaches the victim: the other two are a quorum and go on.
    c.set_links_into(Server::DataNode(victim), Mode::Cut)?;
    c.publish_n(l, "ORDERS.a", "while cut", 200).await?;
    assert_eq!(store(&c, victim)?.state().last_seq, 50);
    c.wait_info(l, STREAM, "the victim reported behind", |i| {
        i.cluster.as_ref().is_some_and(|cl| {
            cl.replicas
                .iter()
                .any(|r| r.name == format!("node-{victim}") && !r.current && r.lag > 0)
        })
    })
    .await?;

    c.heal_all()?;
    let want = replica_at(&c, l, 250).await?;
    for k in 1..=3 {
        assert_eq!(replica_at(&c, k, 250).await?, want, "data node {k}");
    }
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_replicas_take_writes_with_two_nodes_down() -> Result<()> {
    let mut c = Cluster::builder("r5")
        .members(1)
        .data_nodes(5)
        .start()
        .await?;
    c.create(orders(5)).await?;
    let l = leader(&c, 1).await?;
    let down: Vec<u64> = (1..=5).filter(|k| *k != l).take(2).collect();
    for k in &down {
        c.kill(Server::DataNode(*k)).await?;
    }
    c.publish_n(l, "ORDERS.a", "two down", 100).await?;
    for k in &down {
        c.start(Server::DataNode(*k)).await?;
    }
    let want = replica_at(&c, l, 100).await?;
    for k in 1..=5 {
        assert_eq!(replica_at(&c, k, 100).await?, want, "data node {k}");
    }
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_raft_traffic_is_dropped_and_the_stream_goes_on() -> Result<()> {
    let c = Cluster::builder("r3forge")
        .members(1)
        .data_nodes(3)
        .start()
        .await?;
    c.create(orders(3)).await?;
    let l = leader(&c, 1).await?;
    c.publish_n(l, "ORDERS.a", "before", 20).await?;
    let group = stream_entity(&c).await?.group_id;
    let target = (1..=3).find(|k| *k != l).unwrap_or(1);
    let other = (1..=3).find(|k| *k != l && *k != target).unwrap_or(1);
    // Data node `other`'s own certificate: a node of the cluster, as itself.
    let tls = c.tls().ok_or_else(|| anyhow!("the cluster runs TLS"))?;
    let files = tls.data_node(other)?;
    let ch = tributary_common::tls::endpoint(
        &c.data_addr(target)?,
        Some(&files),
        Some(&format!("data-node-{target}")),
    )?
    .connect()
    .await?;
    let mut client = StreamGroupsClient::new(ch);

    // Posing as another node.
    let posing = client
        .send(GroupBatch {
            from_node: l,
            messages: vec![],
        })
        .await
        .expect_err("posing as the leader");
    assert_eq!(posing.code(), Code::PermissionDenied, "{posing:?}");

    // A heartbeat committing far past the log (raft-rs panics on it), junk, an unknown group.
    let mut beat = raft::prelude::Message::default();
    beat.set_msg_type(raft::prelude::MessageType::MsgHeartbeat);
    (beat.from, beat.to, beat.commit) = (other, target, 1_000_000);
    let term = c.info(l, STREAM).await?.cluster.map_or(1, |cl| cl.term);
    beat.term = term;
    let forged = |group: u64, message: Vec<u8>| GroupMessage {
        group,
        message: message.into(),
    };
    client
        .send(GroupBatch {
            from_node: other,
            messages: vec![
                forged(group, beat.write_to_bytes()?),
                forged(group, vec![0xff; 64]),
                forged(group + 1_000, beat.write_to_bytes()?),
            ],
        })
        .await?;

    // The node, its replica and the group are unharmed.
    c.publish_n(target, "ORDERS.a", "after", 30).await?;
    let want = replica_at(&c, l, 50).await?;
    assert_eq!(replica_at(&c, target, 50).await?, want);
    c.shutdown().await;
    Ok(())
}

/// 100 streams of 3 replicas on 3 nodes (100 groups sharing each node's ready loop and links),
/// idle and so asleep: when the node leading some of them goes, each of those wakes and has a
/// new leader again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_groups_elect_again_when_a_node_goes() -> Result<()> {
    const N: usize = 100;
    let mut c = Cluster::builder("r3many")
        .members(1)
        .data_nodes(3)
        .start()
        .await?;
    let names: Vec<String> = (0..N).map(|i| format!("S{i}")).collect();
    for n in &names {
        c.create(streams::replicated(n, 3)).await?;
    }
    // Every stream's leader, as node 1 answers (forwarding where it does not lead).
    let leaders = |c: &Cluster, avoid: u64| {
        let names = names.clone();
        let addr = c.data_addr(if avoid == 1 { 2 } else { 1 });
        async move {
            let addr = addr.ok()?;
            let mut out = Vec::new();
            for n in &names {
                let i = streams::info(&addr, n).await.ok()?;
                let l = i.cluster?.leader;
                if l.is_empty() || l == format!("node-{avoid}") {
                    return None;
                }
                out.push(l);
            }
            Some(out)
        }
    };
    let before = wait::until("a leader for every stream", wait::WAIT, || leaders(&c, 0)).await?;
    let led = |node: u64| {
        before
            .iter()
            .filter(|l| **l == format!("node-{node}"))
            .count()
    };
    let victim = (1..=3).max_by_key(|k| led(*k)).unwrap_or(1);
    let lost = led(victim);
    // The groups' ids, to ask the surviving nodes' own view (no round trips while timing).
    let mut groups = Vec::new();
    for n in &names {
        groups.push(c.stream_entity(n).await?.group_id);
    }
    assert_eq!(groups.len(), N);
    // Idle, every group falls asleep on every node (`[replication] hibernate`, on by default):
    // the node's going must wake them.
    wait::until("every group asleep on every node", wait::WAIT, || {
        let all = (1..=3).all(|k| {
            c.data_node(k)
                .is_ok_and(|n| n.node.groups().is_some_and(|g| g.hibernating() == N))
        });
        async move { all.then_some(()) }
    })
    .await?;
    let t = std::time::Instant::now();
    c.kill(Server::DataNode(victim)).await?;
    let survivors: Vec<u64> = (1..=3).filter(|k| *k != victim).collect();
    wait::until("a new leader for every stream", wait::WAIT, || {
        let all = survivors.iter().all(|k| {
            c.data_node(*k).is_ok_and(|n| {
                n.node.groups().is_some_and(|g| {
                    groups
                        .iter()
                        .all(|id| g.leader(*id).is_some_and(|l| l != victim))
                })
            })
        });
        async move { all.then_some(()) }
    })
    .await?;
    let elected = t.elapsed();
    println!("{N} groups: data node {victim} led {lost}; all led again {elected:?} after it went");
    // And they serve: a publish to every stream through a survivor.
    for n in &names {
        c.publish_n(survivors[0], &format!("{n}.x"), "after", 1)
            .await?;
    }
    c.shutdown().await;
    Ok(())
}

/// A stream of one replica mirroring a replicated one follows it through whichever node
/// leads it: the origin's leader goes, the mirror goes on from the new one, with the same
/// seqs and no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_follows_a_replicated_origin_across_a_change_of_leader() -> Result<()> {
    let mut c = Cluster::builder("r3mirror")
        .members(1)
        .data_nodes(4)
        .start()
        .await?;
    c.create(orders(3)).await?;
    let l = leader(&c, 1).await?;
    let origin = stream_entity(&c).await?;
    // The mirror on the node holding no replica, so it reads over the network.
    let home = (1..=4)
        .find(|k| !origin.replica_nodes.contains(k))
        .ok_or_else(|| anyhow!("no node outside {:?}", origin.replica_nodes))?;
    let mut copy = streams::file_stream("COPY", &[]);
    copy.mirror = Some(tributary_proto::v1::StreamSource {
        stream: "ORDERS".into(),
        ..Default::default()
    });
    c.create_stream(copy, home).await?;
    c.publish_n(l, "ORDERS.a", "before", 100).await?;
    c.wait_info(home, "COPY", "100 copied", |i| {
        streams::count(i) == 100 && streams::caught_up(i)
    })
    .await?;
    c.kill(Server::DataNode(l)).await?;
    let survivor = origin
        .replica_nodes
        .iter()
        .copied()
        .find(|k| *k != l)
        .unwrap_or(1);
    let nl = leader(&c, survivor).await?;
    assert_ne!(nl, l);
    c.publish_n(nl, "ORDERS.a", "after", 50).await?;
    c.wait_info(home, "COPY", "150 copied", |i| {
        streams::count(i) == 150 && streams::caught_up(i)
    })
    .await?;
    let copied = c.messages(home, "default:COPY").await?;
    let seqs: Vec<u64> = copied.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=150).collect::<Vec<_>>());
    c.shutdown().await;
    Ok(())
}

/// A subscriber on a node that forwards to the leader sees one unbroken stream across a
/// change of leader: every message once, in order, no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_subscription_survives_a_change_of_leader() -> Result<()> {
    use tokio_stream::StreamExt;
    let mut c = Cluster::builder("r3sub")
        .members(1)
        .data_nodes(4)
        .start()
        .await?;
    c.create(orders(3)).await?;
    let l = leader(&c, 1).await?;
    let s = stream_entity(&c).await?;
    let outside = (1..=4)
        .find(|k| !s.replica_nodes.contains(k))
        .ok_or_else(|| anyhow!("no node outside {:?}", s.replica_nodes))?;
    let mut sub = streams::client(&c.data_addr(outside)?)?
        .subscribe(tributary_proto::v1::SubscribeRequest {
            stream: STREAM.into(),
            start_seq: 1,
            ..Default::default()
        })
        .await?
        .into_inner();
    let got = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let reader = {
        let got = got.clone();
        tokio::spawn(async move {
            while let Some(ev) = sub.next().await {
                let ev = ev?;
                got.lock()
                    .expect("lock")
                    .extend(ev.messages.iter().map(|m| m.seq));
            }
            anyhow::Ok(())
        })
    };
    let have = |n: usize| {
        let got = got.clone();
        move || {
            let ok = got.lock().map(|g| g.len() >= n).unwrap_or(false);
            async move { ok.then_some(()) }
        }
    };
    c.publish_n(l, "ORDERS.a", "before", 100).await?;
    wait::until("100 delivered", wait::WAIT, have(100)).await?;
    c.kill(Server::DataNode(l)).await?;
    let survivor = s
        .replica_nodes
        .iter()
        .copied()
        .find(|k| *k != l)
        .unwrap_or(1);
    let nl = leader(&c, survivor).await?;
    c.publish_n(nl, "ORDERS.a", "after", 100).await?;
    wait::until("200 delivered", wait::WAIT, have(200)).await?;
    assert!(!reader.is_finished(), "the subscription ended");
    let seqs = got.lock().map_err(|_| anyhow!("lock"))?.clone();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    reader.abort();
    c.shutdown().await;
    Ok(())
}
