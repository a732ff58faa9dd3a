//! A replica too far behind for its group's log catches up by snapshot (issue 13): one replica
//! of a stream of 3 is down while far more than the log keeps (`[replication] log_tail`) is
//! written, messages deleted and Msg-Ids recorded; started again, it pulls the leader's stream
//! state and holds the same messages at the same seqs, byte for byte, and the same dedupe
//! window: leading the stream, it answers a repeated Msg-Id as a duplicate it never saw in
//! the log.

use anyhow::{anyhow, Result};
use std::sync::Arc;
use tributary_data_node::storage::streams::{RawMessage, StreamStore};
use tributary_integration::{streams, wait, Cluster, Server};
use tributary_proto::v1::{DeleteMessageRequest, PubAck, PublishRequest, StepDownRequest};

const STREAM: &str = "default:ORDERS";
const LOG_TAIL: u64 = 5;

fn store(c: &Cluster, k: u64) -> Result<Arc<StreamStore>> {
    c.replica(k, STREAM)
}

/// The stream's leader as data node `ask` reports it.
async fn leader(c: &Cluster, ask: u64, not: &[u64]) -> Result<u64> {
    c.wait_leader_of(ask, STREAM, not).await
}

async fn publish_with_id(c: &Cluster, node: u64, msg_id: &str) -> Result<PubAck> {
    let req = PublishRequest {
        subject: "ORDERS.keyed".into(),
        headers: [("Msg-Id".to_string(), msg_id.to_string())].into(),
        data: format!("keyed {msg_id}").into_bytes().into(),
        ..Default::default()
    };
    Ok(streams::client(&c.data_addr(node)?)?
        .publish(req)
        .await?
        .into_inner())
}

/// Every message of data node `k`'s replica once its last seq is `last`.
async fn replica_at(c: &Cluster, k: u64, last: u64) -> Result<Vec<RawMessage>> {
    c.replica_at(k, STREAM, last).await
}

/// The replicas on `nodes` hold the same messages at the same seqs, and the same state.
async fn identical(c: &Cluster, nodes: &[u64], last: u64) -> Result<Vec<RawMessage>> {
    let want = replica_at(c, nodes[0], last).await?;
    let state = store(c, nodes[0])?.state();
    for k in &nodes[1..] {
        assert_eq!(
            replica_at(c, *k, last).await?,
            want,
            "data node {k}'s messages"
        );
        let mut st = store(c, *k)?.state();
        st.subscribers = state.subscribers;
        assert_eq!(st, state, "data node {k}'s stream state");
    }
    Ok(want)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_behind_the_log_catches_up_by_snapshot() -> Result<()> {
    let mut c = Cluster::builder("r3snap")
        .members(1)
        .data_nodes(3)
        .tune_data_nodes(|d| d.replication.log_tail = LOG_TAIL)
        .start()
        .await?;
    c.create(streams::replicated("ORDERS", 3)).await?;
    let l = leader(&c, 1, &[]).await?;
    let behind = (1..=3).find(|k| *k != l).unwrap_or(1);
    let other = (1..=3).find(|k| *k != l && *k != behind).unwrap_or(1);
    for i in 1..=5 {
        publish_with_id(&c, l, &format!("early-{i}")).await?;
    }
    replica_at(&c, behind, 5).await?;
    let had = store(&c, behind)?.group_index();
    c.kill(Server::DataNode(behind)).await?;

    // Far more than the log keeps (a pipelined frame is one entry; a publish on its own is
    // one), Msg-Ids it will only know from the snapshot, a gap.
    c.publish_n(l, "ORDERS.bulk", "while down", 2_000).await?;
    let mut late = Vec::new();
    for i in 1..=10 * LOG_TAIL {
        late.push(publish_with_id(&c, l, &format!("late-{i}")).await?);
    }
    for i in 10 * LOG_TAIL + 1..=10 * LOG_TAIL + 5 {
        late.push(publish_with_id(&c, l, &format!("late-{i}")).await?);
    }
    streams::client(&c.data_addr(l)?)?
        .delete_message(DeleteMessageRequest {
            stream: STREAM.into(),
            seq: 1_000,
        })
        .await?;
    let last = 2_005 + 10 * LOG_TAIL + 5;
    let group = c
        .data_node(l)?
        .node
        .replicated(STREAM)
        .ok_or_else(|| anyhow!("ORDERS is not replicated"))?
        .0;
    let groups = c
        .data_node(l)?
        .node
        .groups()
        .ok_or_else(|| anyhow!("no groups on the leader"))?
        .clone();
    let what =
        format!("the leader's log compacted past entry {had}, which data node {behind} holds");
    let first = wait::until(&what, wait::WAIT, || async {
        groups
            .status(group)
            .await
            .map(|s| s.log_first)
            .filter(|f| *f > had + 1)
    })
    .await?;

    c.start(Server::DataNode(behind)).await?;
    let msgs = identical(&c, &[l, behind, other], last).await?;
    assert_eq!(msgs.len() as u64, last - 1, "one message deleted");
    assert!(
        store(&c, behind)?.group_index() >= first - 1,
        "data node {behind} holds what the log no longer has"
    );

    // The caught-up replica leads: its dedupe window came with the snapshot.
    c.kill(Server::DataNode(l)).await?;
    let mut now = leader(&c, behind, &[l]).await?;
    if now != behind {
        streams::client(&c.data_addr(now)?)?
            .step_down(StepDownRequest {
                stream: STREAM.into(),
            })
            .await?;
        now = leader(&c, behind, &[l, other]).await?;
    }
    assert_eq!(now, behind);
    for (i, ack) in late.iter().enumerate() {
        let again = publish_with_id(&c, behind, &format!("late-{}", i + 1)).await?;
        assert!(again.duplicate, "late-{} stored twice: {again:?}", i + 1);
        assert_eq!(again.seq, ack.seq);
    }
    c.publish_n(behind, "ORDERS.after", "after", 10).await?;
    c.start(Server::DataNode(l)).await?;
    identical(&c, &[behind, l, other], last + 10).await?;
    c.shutdown().await;
    Ok(())
}
