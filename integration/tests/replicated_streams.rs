//! Replicated streams (issue 13): a stream of 3 replicas is a Raft group of the data nodes the
//! control plane placed it on. Publishes through any node reach the leader; acknowledged means
//! committed by a quorum and applied; every replica holds the same messages at the same seqs,
//! byte for byte; the leader hands over on `StepDown`; replica counts and placement the
//! cluster cannot meet are refused naming why. The cluster runs TLS, as the README starts it,
//! so the groups' links use the data nodes' certificates.

use anyhow::{anyhow, bail, Result};
use std::collections::HashMap;
use std::sync::Arc;
use tonic::Code;
use tributary_data_node::storage::streams::{RawMessage, StreamStore};
use tributary_integration::{streams, wait, Cluster};
use tributary_proto::v1::{
    entity::Kind, ClusterInfo, Entity, PublishRequest, PurgeRequest, StepDownRequest,
    StreamInfoRequest,
};

const STREAM: &str = "default:ORDERS";

fn orders(replicas: u32) -> Entity {
    streams::replicated("ORDERS", replicas)
}

/// The cluster block of the stream's info as node `k` answers it, once a leader is known.
async fn cluster_info(c: &Cluster, k: u64) -> Result<ClusterInfo> {
    let i = c
        .wait_info(k, STREAM, "a leader", |i| {
            i.cluster.as_ref().is_some_and(|c| !c.leader.is_empty())
        })
        .await?;
    i.cluster.ok_or_else(|| anyhow!("no cluster info"))
}

fn leader_id(c: &ClusterInfo) -> Result<u64> {
    c.leader
        .strip_prefix("node-")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow!("leader {:?}", c.leader))
}

fn store(c: &Cluster, k: u64) -> Result<Arc<StreamStore>> {
    c.data_node(k)?
        .node
        .stream(STREAM)
        .ok_or_else(|| anyhow!("data node {k} holds no replica of {STREAM}"))
}

fn all(s: &StreamStore) -> Result<Vec<RawMessage>> {
    Ok(s.read(1, "", usize::MAX)?.0)
}

/// Waits until every replica holds `last` as its last seq, and returns their messages.
async fn replicas_at(c: &Cluster, last: u64) -> Result<Vec<Vec<RawMessage>>> {
    let mut out = Vec::new();
    for k in c.data_node_ids() {
        let s = store(c, k)?;
        let what = format!("data node {k}'s replica at seq {last}");
        wait::until(&what, wait::WAIT, || async {
            (s.state().last_seq == last).then_some(())
        })
        .await?;
        out.push(all(&s)?);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_stream_is_the_same_on_every_replica() -> Result<()> {
    let c = Cluster::builder("r3")
        .members(1)
        .data_nodes(3)
        .start()
        .await?;
    // 2 and 4 replicas are refused with the reason, and so is more than the nodes there are.
    for (n, why) in [
        (2, "quorum"),
        (4, "quorum"),
        (5, "5 distinct live data nodes"),
    ] {
        let err = c
            .catalog_any()?
            .create(orders(n))
            .await
            .expect_err("refused");
        assert!(
            err.message().contains(why),
            "replicas {n}: {}",
            err.message()
        );
    }
    c.create(orders(3)).await?;
    let placed = cluster_info(&c, 1).await?;
    let leader = leader_id(&placed)?;
    assert_eq!(placed.replicas.len(), 2, "{placed:?}");

    // Pipelined publishes through every node: the followers forward to the leader.
    for k in 1..=3 {
        c.publish_n(k, "ORDERS.new", &format!("via {k}"), 100)
            .await?;
    }
    // The group's Raft metrics (the in-process nodes share one registry): its term and
    // leader, and the leader's proposals timed from propose to applied.
    let metrics = tributary_common::telemetry::prometheus().render();
    let group = format!("group=\"stream:{STREAM}\"");
    let sample = |family: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("{family}{{")) && l.contains(&group))
            .and_then(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
    };
    assert!(sample("tributary_raft_term").is_some_and(|t| t >= 1.0));
    assert!(sample("tributary_raft_is_leader").is_some());
    assert!(
        sample("tributary_raft_proposal_duration_seconds_count").is_some_and(|n| n >= 1.0),
        "no timed proposal of the group in {metrics}"
    );
    // Unary: expected-last-seq and Msg-Id dedupe are decided once, by the leader.
    let follower = (1..=3).find(|k| *k != leader).unwrap_or(1);
    let mut client = c.streams(follower)?;
    let with_id = |id: &str, expected| PublishRequest {
        subject: "ORDERS.paid".into(),
        data: b"paid".to_vec().into(),
        headers: [("Msg-Id".to_string(), id.to_string())].into(),
        expected_last_seq: expected,
        ..Default::default()
    };
    let first = client.publish(with_id("p1", 300)).await?.into_inner();
    assert_eq!((first.seq, first.duplicate), (301, false));
    let again = client.publish(with_id("p1", 0)).await?.into_inner();
    assert_eq!((again.seq, again.duplicate), (301, true));
    let stale = client.publish(with_id("p2", 300)).await.expect_err("stale");
    assert_eq!(stale.code(), Code::FailedPrecondition, "{stale:?}");

    let copies = replicas_at(&c, 301).await?;
    assert_eq!(copies[0].len(), 301);
    assert!(copies.iter().all(|m| *m == copies[0]), "replicas differ");
    let seqs: Vec<u64> = copies[0].iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=301).collect::<Vec<_>>());
    // Pipelined frames reach the log in the order they were sent.
    for (i, m) in copies[0].iter().take(300).enumerate() {
        let want = format!("via {} {}", i / 100 + 1, i % 100 + 1);
        assert_eq!(m.decode()?.data, want.as_bytes(), "seq {}", m.seq);
    }

    // Every node answers Info with the leader's view, and the leader sees both followers.
    for k in 1..=3 {
        let i = c
            .wait_info(k, STREAM, "every replica current", |i| {
                i.cluster
                    .as_ref()
                    .is_some_and(|c| c.replicas.iter().all(|r| r.current && r.lag == 0))
            })
            .await?;
        assert_eq!(streams::count(&i), 301);
        assert_eq!(i.cluster.map(|c| c.leader), Some(format!("node-{leader}")));
    }

    // A purge through a follower reaches every replica; the sequence goes on.
    let purged = client
        .purge(PurgeRequest {
            stream: STREAM.into(),
            subject: "ORDERS.paid".into(),
        })
        .await?
        .into_inner();
    assert_eq!(purged.purged, 1);
    c.publish_n(follower, "ORDERS.new", "after", 1).await?;
    let copies = replicas_at(&c, 302).await?;
    assert!(copies.iter().all(|m| *m == copies[0] && m.len() == 301));

    // Step down: another replica leads, and publishing goes on through it.
    let r = c
        .streams(follower)?
        .step_down(StepDownRequest {
            stream: STREAM.into(),
        })
        .await?
        .into_inner();
    assert_ne!(r.leader, format!("node-{leader}"));
    let now = cluster_info(&c, 1).await?;
    assert_eq!(now.leader, r.leader);
    c.publish_n(leader, "ORDERS.new", "after step-down", 10)
        .await?;
    let copies = replicas_at(&c, 312).await?;
    assert!(copies.iter().all(|m| *m == copies[0]));
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_holds_no_replica_forwards() -> Result<()> {
    let c = Cluster::builder("r3f")
        .members(1)
        .data_nodes(4)
        .start()
        .await?;
    c.create(orders(3)).await?;
    let info = cluster_info(&c, 1).await?;
    let stream = c.stream_entity(STREAM).await?;
    let outside = (1..=4)
        .find(|k| !stream.replica_nodes.contains(k))
        .ok_or_else(|| anyhow!("every node holds a replica: {:?}", stream.replica_nodes))?;
    c.publish_n(outside, "ORDERS.x", "from outside", 50).await?;
    let i = streams::info(&c.data_addr(outside)?, STREAM).await?;
    assert_eq!(streams::count(&i), 50);
    // The leader it names is one of the replicas (under load it may have changed since).
    let leader = i.cluster.map(|c| c.leader).unwrap_or_default();
    assert!(
        stream
            .replica_nodes
            .iter()
            .any(|k| leader == format!("node-{k}")),
        "{outside} names {leader:?} as leader; replicas {:?} (first seen: {})",
        stream.replica_nodes,
        info.leader
    );
    let msgs = c.messages(outside, STREAM).await?;
    assert_eq!(msgs.len(), 50);
    c.shutdown().await;
    Ok(())
}

/// `kill -9` the leader's data node (the real binary) while publishers run: a new leader takes
/// over, and every acknowledged message is stored exactly once, at the seq its ack named, on
/// every replica, byte for byte, once the killed node is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_loses_and_duplicates_no_acknowledged_message() -> Result<()> {
    let mut c = Cluster::builder("r3k")
        .members(1)
        .data_nodes(3)
        .data_node_processes()
        .start()
        .await?;
    c.create(orders(3)).await?;
    let leader = leader_id(&cluster_info(&c, 1).await?)?;
    let addrs: Vec<String> = (1..=3).map(|k| c.data_addr(k)).collect::<Result<_>>()?;

    // Publishers with their own Msg-Ids, each retrying a publish (same id) on the next node
    // until it is acknowledged: what a client that must not lose or double a message does.
    let acked: Arc<std::sync::Mutex<HashMap<String, u64>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for p in 0..4u64 {
        let (acked, stop, addrs) = (acked.clone(), stop.clone(), addrs.clone());
        tasks.push(tokio::spawn(async move {
            let mut node = p as usize % addrs.len();
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let id = format!("p{p}-{i}");
                loop {
                    let req = PublishRequest {
                        subject: format!("ORDERS.p{p}"),
                        data: format!("{id} {}", "x".repeat(64)).into_bytes().into(),
                        headers: [("Msg-Id".to_string(), id.clone())].into(),
                        ..Default::default()
                    };
                    let sent = match streams::client(&addrs[node]) {
                        Ok(mut cl) => {
                            tokio::time::timeout(std::time::Duration::from_secs(3), cl.publish(req))
                                .await
                                .ok()
                                .and_then(|r| r.ok())
                        }
                        Err(_) => None,
                    };
                    match sent {
                        Some(ack) => {
                            let a = ack.into_inner();
                            let mut acked = acked.lock().expect("lock");
                            if let Some(old) = acked.insert(id.clone(), a.seq) {
                                assert_eq!(old, a.seq, "{id} acked at two seqs");
                            }
                            break;
                        }
                        None => node = (node + 1) % addrs.len(),
                    }
                }
            }
        }));
    }
    let count = |acked: &Arc<std::sync::Mutex<HashMap<String, u64>>>| {
        acked.lock().map(|a| a.len()).unwrap_or(0)
    };
    wait::until("publishing under way", wait::WAIT, || async {
        (count(&acked) >= 200).then_some(())
    })
    .await?;
    let before = count(&acked);
    let killed_at = std::time::Instant::now();
    c.kill(tributary_integration::Server::DataNode(leader))
        .await?;
    // Acks of publishes in flight at the kill may still land: the first ack of a publish
    // begun after it tells when a new leader took over.
    let begun = count(&acked) + 4;
    wait::until("acks again after the kill", wait::WAIT, || async {
        (count(&acked) > begun).then_some(())
    })
    .await?;
    let failover = killed_at.elapsed();
    wait::until("50 more acks", wait::WAIT, || async {
        (count(&acked) > begun + 50).then_some(())
    })
    .await?;
    println!("failover: {before} acks before the kill, acks again {failover:?} after it");
    let survivor = (1..=3).find(|k| *k != leader).unwrap_or(1);
    let new_leader = leader_id(&cluster_info(&c, survivor).await?)?;
    assert_ne!(new_leader, leader);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }
    c.start(tributary_integration::Server::DataNode(leader))
        .await?;
    let last = streams::info(&c.data_addr(survivor)?, STREAM)
        .await?
        .state
        .map_or(0, |s| s.last_seq);
    c.wait_info(survivor, STREAM, "the restarted replica current", |i| {
        i.cluster.as_ref().is_some_and(|cl| {
            cl.replicas.len() == 2 && cl.replicas.iter().all(|r| r.current && r.lag == 0)
        })
    })
    .await?;
    let acked = acked.lock().map_err(|_| anyhow!("lock"))?.clone();
    for k in 1..=3 {
        c.kill(tributary_integration::Server::DataNode(k)).await?;
    }

    // Each replica's storage, opened from its directory: its group applies what its log
    // holds committed, then every replica must be the same, holding every ack once.
    let mut copies = Vec::new();
    for k in 1..=3u64 {
        let node =
            tributary_data_node::Node::open(k, &c.dir().join(format!("dn-{k}")), false, None)?;
        let _outbox = node.start_groups(tributary_data_node::group::Settings {
            tick: std::time::Duration::from_millis(50),
            election_ticks: 10,
            heartbeat_ticks: 2,
            log_tail: 100_000,
            hibernate: false,
        })?;
        let s = node
            .stream(STREAM)
            .ok_or_else(|| anyhow!("data node {k} lost its replica"))?;
        wait::until(
            &format!("replica {k} at seq {last}"),
            wait::WAIT,
            || async { (s.state().last_seq >= last).then_some(()) },
        )
        .await?;
        copies.push(all(&s)?);
    }
    assert!(copies.iter().all(|m| *m == copies[0]), "replicas differ");
    let mut by_id: HashMap<String, Vec<u64>> = HashMap::new();
    for m in &copies[0] {
        let v = m.decode()?;
        let id = v.headers.get("Msg-Id").cloned().unwrap_or_default();
        by_id.entry(id).or_default().push(m.seq);
    }
    for (id, seq) in &acked {
        assert_eq!(
            by_id.get(id),
            Some(&vec![*seq]),
            "acked {id} at seq {seq}: stored at {:?}",
            by_id.get(id)
        );
    }
    let seqs: Vec<u64> = copies[0].iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "seqs contiguous"
    );
    println!(
        "{} acked, {} stored, identical on 3 replicas",
        acked.len(),
        seqs.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_of_a_stream_of_one_replica_names_its_node() -> Result<()> {
    let c = Cluster::builder("r1")
        .members(1)
        .data_nodes(1)
        .start()
        .await?;
    c.create(orders(1)).await?;
    c.wait_stream_served(STREAM, 1).await?;
    let i = streams::client(&c.data_addr(1)?)?
        .info(StreamInfoRequest {
            stream: STREAM.into(),
        })
        .await?
        .into_inner();
    assert_eq!(i.cluster.map(|c| c.leader), Some("node-1".into()));
    let err = c
        .streams(1)?
        .step_down(StepDownRequest {
            stream: STREAM.into(),
        })
        .await
        .expect_err("one replica");
    assert_eq!(err.code(), Code::FailedPrecondition);
    c.shutdown().await;
    Ok(())
}

/// A changed limit reaches every replica through the log (the leader puts it there), so
/// every replica trims alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_limit_applies_alike_on_every_replica() -> Result<()> {
    let c = Cluster::builder("r3lim")
        .members(1)
        .data_nodes(3)
        .start()
        .await?;
    c.create(orders(3)).await?;
    let leader = leader_id(&cluster_info(&c, 1).await?)?;
    c.publish_n(leader, "ORDERS.a", "before", 20).await?;
    replicas_at(&c, 20).await?;
    let Some(Kind::Stream(mut s)) = orders(3).kind else {
        bail!("not a stream")
    };
    s.max_msgs = 5;
    c.update_stream(s).await?;
    for k in 1..=3 {
        let st = store(&c, k)?;
        wait::until(
            &format!("data node {k} under max_msgs 5"),
            wait::WAIT,
            || async { (st.limits().max_msgs == 5).then_some(()) },
        )
        .await?;
    }
    c.publish_n(leader, "ORDERS.a", "after", 1).await?;
    let copies = replicas_at(&c, 21).await?;
    assert_eq!(copies[0].len(), 5);
    assert!(copies.iter().all(|m| *m == copies[0]));
    assert_eq!(copies[0][0].seq, 17);
    c.shutdown().await;
    Ok(())
}

/// A replicated stream deleted and created again under its name is a new group, empty on
/// every replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_stream_deleted_and_created_again_starts_empty() -> Result<()> {
    let c = Cluster::builder("r3del")
        .members(1)
        .data_nodes(3)
        .start()
        .await?;
    c.create(orders(3)).await?;
    let leader = leader_id(&cluster_info(&c, 1).await?)?;
    c.publish_n(leader, "ORDERS.a", "first", 10).await?;
    replicas_at(&c, 10).await?;
    c.delete_stream(STREAM).await?;
    for k in 1..=3 {
        wait::until(
            &format!("data node {k} dropping ORDERS"),
            wait::WAIT,
            || async { store(&c, k).is_err().then_some(()) },
        )
        .await?;
    }
    c.create(orders(3)).await?;
    let leader = leader_id(&cluster_info(&c, 1).await?)?;
    c.publish_n(leader, "ORDERS.a", "second", 5).await?;
    let copies = replicas_at(&c, 5).await?;
    assert!(copies.iter().all(|m| *m == copies[0] && m.len() == 5));
    c.shutdown().await;
    Ok(())
}
