//! Changing where a live replicated stream's replicas are (issue 13), while it takes writes:
//! a replica moved to another data node (`tribctl stream move NAME --from N --to M`), the
//! leader's own replica moved too, and `replicas` 1 → 3 → 1 (`tribctl stream edit`). The
//! group adds each new replica as a learner that catches up by snapshot, promotes it, then
//! removes the old one; every acknowledged message is kept, once, at the same seq everywhere.

use anyhow::{anyhow, Result};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tributary_data_node::storage::streams::{RawMessage, StreamStore};
use tributary_integration::{streams, wait, Cluster};
use tributary_proto::v1::{entity::Kind, Entity, EntityKind, MoveRequest, PublishRequest, Stream};

const STREAM: &str = "default:ORDERS";

async fn stream_entity(c: &Cluster) -> Result<Stream> {
    c.stream_entity(STREAM).await
}

fn store(c: &Cluster, k: u64) -> Option<Arc<StreamStore>> {
    c.data_node(k).ok()?.node.stream(STREAM)
}

/// Publishes `prefix-1..=n` with those Msg-Ids through data node `node`, each until it is
/// acknowledged (a publish cut off by a change of leader is sent again: stored once).
fn publisher(
    c: &Cluster,
    node: u64,
    prefix: &'static str,
    n: u64,
) -> Result<JoinHandle<Result<()>>> {
    let client = streams::client(&c.data_addr(node)?)?;
    Ok(tokio::spawn(async move {
        for i in 1..=n {
            let id = format!("{prefix}-{i}");
            let req = PublishRequest {
                subject: "ORDERS.new".into(),
                headers: [("Msg-Id".to_string(), id.clone())].into(),
                data: id.clone().into_bytes().into(),
                ..Default::default()
            };
            wait::until(&format!("{id} acknowledged"), wait::WAIT, || {
                let mut c = client.clone();
                let req = req.clone();
                async move { c.publish(req).await.ok() }
            })
            .await?;
        }
        Ok(())
    }))
}

async fn leader(c: &Cluster, ask: u64) -> Result<u64> {
    c.wait_leader_of(ask, STREAM, &[]).await
}

/// The leader and its view of the other replicas, once it names exactly `others`, all current.
async fn settled(c: &Cluster, ask: u64, others: &[u64]) -> Result<u64> {
    let want: HashSet<String> = others.iter().map(|n| format!("node-{n}")).collect();
    let i = c
        .wait_info(ask, STREAM, &format!("replicas {others:?} current"), |i| {
            i.cluster.as_ref().is_some_and(|cl| {
                let named: HashSet<String> = cl.replicas.iter().map(|r| r.name.clone()).collect();
                !cl.leader.is_empty() && named == want && cl.replicas.iter().all(|r| r.current)
            })
        })
        .await?;
    i.cluster
        .and_then(|cl| cl.leader.strip_prefix("node-").and_then(|n| n.parse().ok()))
        .ok_or_else(|| anyhow!("no leader named"))
}

/// The replicas on `nodes` hold the same messages at the same seqs, `n` of them, each
/// publish once.
async fn identical(c: &Cluster, nodes: &[u64], n: u64) -> Result<Vec<RawMessage>> {
    let mut first: Option<Vec<RawMessage>> = None;
    for k in nodes {
        let s = store(c, *k).ok_or_else(|| anyhow!("data node {k} holds no replica"))?;
        wait::until(
            &format!("data node {k} at {n} messages"),
            wait::WAIT,
            || async { (s.state().messages == n && s.state().last_seq == n).then_some(()) },
        )
        .await?;
        let msgs = s.read(1, "", usize::MAX)?.0;
        match &first {
            None => first = Some(msgs),
            Some(f) => assert_eq!(*f, msgs, "data node {k} differs"),
        }
    }
    let msgs = first.unwrap_or_default();
    let mut seen = HashSet::new();
    for m in &msgs {
        assert!(seen.insert(m.decode()?.data), "seq {} stored twice", m.seq);
    }
    Ok(msgs)
}

async fn gone_from(c: &Cluster, k: u64) -> Result<()> {
    wait::until(
        &format!("data node {k} no longer holds ORDERS"),
        wait::WAIT,
        || async { store(c, k).is_none().then_some(()) },
    )
    .await
}

async fn move_replica(c: &Cluster, from: u64, to: u64) -> Result<()> {
    c.catalog_any()?
        .r#move(MoveRequest {
            kind: EntityKind::Stream as i32,
            name: STREAM.into(),
            node_id: to,
            from_node: from,
        })
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_move_to_other_nodes_under_load_keeping_every_message() -> Result<()> {
    let c = Cluster::builder("r3move")
        .members(1)
        .data_nodes(4)
        .start()
        .await?;
    c.create(streams::replicated("ORDERS", 3)).await?;
    let placed = stream_entity(&c).await?.replica_nodes;
    let spare = (1..=4)
        .find(|k| !placed.contains(k))
        .ok_or_else(|| anyhow!("no spare node"))?;
    let l = leader(&c, placed[0]).await?;
    let follower = *placed
        .iter()
        .find(|k| **k != l)
        .ok_or_else(|| anyhow!("no follower"))?;
    let stays = *placed
        .iter()
        .find(|k| **k != l && **k != follower)
        .ok_or_else(|| anyhow!("no third replica"))?;
    c.publish_n(stays, "ORDERS.before", "before", 100).await?;

    // A follower's replica moves to the spare node while messages keep coming.
    let during = publisher(&c, stays, "first", 150)?;
    move_replica(&c, follower, spare).await?;
    gone_from(&c, follower).await?;
    during.await??;
    let mut replicas = vec![l, stays, spare];
    identical(&c, &replicas, 250).await?;

    // The leader's own replica moves (to the node just freed): it hands leadership over first.
    let during = publisher(&c, stays, "second", 150)?;
    move_replica(&c, l, follower).await?;
    gone_from(&c, l).await?;
    during.await??;
    replicas = vec![stays, spare, follower];
    identical(&c, &replicas, 400).await?;
    let placed = stream_entity(&c).await?.replica_nodes;
    assert_eq!(
        placed.iter().copied().collect::<HashSet<_>>(),
        replicas.iter().copied().collect::<HashSet<_>>()
    );
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_go_from_one_to_three_and_back_under_load() -> Result<()> {
    let c = Cluster::builder("r131")
        .members(1)
        .data_nodes(3)
        .start()
        .await?;
    c.create(Entity {
        kind: Some(Kind::Stream(streams::file_stream("ORDERS", &["ORDERS.>"]))),
    })
    .await?;
    let owner = stream_entity(&c).await?.owner_node;
    c.publish_n(owner, "ORDERS.before", "before", 100).await?;

    // 1 → 3: the plain stream becomes a group; its data is the new replicas' first snapshot.
    let during = publisher(&c, owner, "grow", 150)?;
    let mut s = stream_entity(&c).await?;
    s.replicas = 3;
    c.update(Entity {
        kind: Some(Kind::Stream(s)),
    })
    .await?;
    during.await??;
    let others: Vec<u64> = (1..=3).filter(|k| *k != owner).collect();
    settled(&c, owner, &others).await?;
    identical(&c, &[1, 2, 3], 250).await?;

    // 3 → 1, keeping the owner's copy: the others are removed (a leader elsewhere hands over).
    let during = publisher(&c, owner, "shrink", 150)?;
    let mut s = stream_entity(&c).await?;
    s.replicas = 1;
    s.replica_nodes = vec![owner];
    c.update(Entity {
        kind: Some(Kind::Stream(s)),
    })
    .await?;
    for k in &others {
        gone_from(&c, *k).await?;
    }
    during.await??;
    let leading = settled(&c, owner, &[]).await?;
    assert_eq!(leading, owner);
    identical(&c, &[owner], 400).await?;
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_nodes_replica_is_placed_elsewhere_after_replace_after() -> Result<()> {
    let mut c = Cluster::builder("r3gone")
        .members(1)
        .data_nodes(4)
        .tune_members(|m| m.replicas.replace_after = std::time::Duration::from_secs(2))
        .start()
        .await?;
    c.create(streams::replicated("ORDERS", 3)).await?;
    let placed = stream_entity(&c).await?.replica_nodes;
    let l = leader(&c, placed[0]).await?;
    let gone = *placed
        .iter()
        .find(|k| **k != l)
        .ok_or_else(|| anyhow!("no follower"))?;
    c.publish_n(l, "ORDERS.before", "before", 100).await?;
    c.kill(tributary_integration::Server::DataNode(gone))
        .await?;
    c.publish_n(l, "ORDERS.after", "after", 50).await?;

    let now = wait::until(
        &format!("data node {gone}'s replica placed elsewhere"),
        wait::WAIT,
        || async {
            let s = stream_entity(&c).await.ok()?;
            (!s.replica_nodes.contains(&gone)).then_some(s.replica_nodes)
        },
    )
    .await?;
    assert_eq!(now.len(), 3);
    let others: Vec<u64> = now.iter().copied().filter(|k| *k != l).collect();
    settled(&c, l, &others).await?;
    identical(&c, &now, 150).await?;
    c.shutdown().await;
    Ok(())
}
