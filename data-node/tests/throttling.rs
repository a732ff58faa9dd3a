//! Per-connection throttling (`[throttling]`) as clients meet it: a client over its budget is
//! slowed to it, never cut off, and does not slow a client on another connection; ingest,
//! query and subscription delivery each spend the budget. Speeds are compared between
//! clients of one run, and a throttled client is only asserted to take *at least* the time its
//! budget imposes (a loaded machine makes it slower, never faster).

mod support;

use std::time::{Duration, Instant};
use support::{connect, eventually, start};
use tokio_stream::StreamExt;
use tributary_common::throttle::ThrottlingConfig;
use tributary_data_node::storage::NewMessage;
use tributary_proto::v1::{
    ingest_client::IngestClient, streams_client::StreamsClient, wells_client::WellsClient,
    IngestBatch, PublishRequest, QueryRequest, StreamInfoRequest, SubscribeRequest, WellEntry,
};

const WAIT: Duration = Duration::from_secs(60);

fn throttling(interval: Duration, messages: u32) -> ThrottlingConfig {
    ThrottlingConfig {
        enabled: true,
        interval,
        messages,
        bytes: 0,
    }
}

fn publish(i: usize) -> PublishRequest {
    PublishRequest {
        subject: "orders.new".into(),
        data: format!("order {i}").into_bytes().into(),
        ..Default::default()
    }
}

async fn stored(c: &mut StreamsClient<tonic::transport::Channel>) -> u64 {
    c.info(StreamInfoRequest {
        stream: "orders".into(),
    })
    .await
    .expect("info")
    .into_inner()
    .state
    .expect("state")
    .messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_publisher_does_not_slow_a_publisher_on_another_connection() {
    // 50 messages per 5 s: a burst of 50, then 10 a second.
    let (interval, budget) = (Duration::from_secs(5), 50);
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(&dir, |c| c.throttling = throttling(interval, budget)).await;
    let mut heavy = StreamsClient::new(connect(&node).await.expect("connect"));
    let mut light = StreamsClient::new(connect(&node).await.expect("connect"));

    // The heavy client publishes twice its budget as fast as it is let.
    let heavy_n = 2 * budget as usize;
    let heavy_task = tokio::spawn(async move {
        let started = Instant::now();
        for i in 0..heavy_n {
            let ack = heavy
                .publish(publish(i))
                .await
                .expect("slowed, never refused");
            assert!(ack.into_inner().error.is_empty());
        }
        started.elapsed()
    });
    // Once it is over its budget, the light client publishes its own budget's worth.
    eventually("the heavy client spends its burst", WAIT, || {
        let mut c = light.clone();
        async move { (stored(&mut c).await >= u64::from(budget)).then_some(()) }
    })
    .await;
    let light_n = budget as usize;
    let started = Instant::now();
    for i in 0..light_n {
        let ack = light
            .publish(publish(i))
            .await
            .expect("publish")
            .into_inner();
        assert!(ack.error.is_empty());
    }
    let light_took = started.elapsed();
    assert!(
        !heavy_task.is_finished(),
        "the light client took {light_took:?}, as long as the throttled one"
    );
    let heavy_took = heavy_task.await.expect("heavy client");

    // The heavy client is held to its budget: its second 50 come at 10 a second.
    let budget_rate = f64::from(budget) / interval.as_secs_f64();
    let heavy_rate = heavy_n as f64 / heavy_took.as_secs_f64();
    let light_rate = light_n as f64 / light_took.as_secs_f64();
    eprintln!(
        "budget {budget_rate:.1}/s: heavy {heavy_rate:.1}/s ({heavy_took:?}), light \
         {light_rate:.1}/s ({light_took:?})"
    );
    assert!(
        heavy_took >= interval.mul_f64(0.9),
        "{heavy_n} publishes over a budget of {budget} per {interval:?} took only {heavy_took:?}"
    );
    assert!(
        heavy_took < interval * 6,
        "the throttled client is starved, not slowed: {heavy_took:?}"
    );
    // The light one is not held to anyone's budget while the heavy one waits.
    assert!(
        light_rate > 2.0 * budget_rate && light_rate > 2.0 * heavy_rate,
        "light {light_rate:.1}/s (in {light_took:?}), heavy {heavy_rate:.1}/s, budget \
         {budget_rate:.1}/s"
    );
    let mut c = StreamsClient::new(connect(&node).await.expect("connect"));
    assert_eq!(stored(&mut c).await, (heavy_n + light_n) as u64);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_query_and_delivery_are_each_held_to_the_budget() {
    // 100 a second; each client below moves 300 on a fresh connection: 100 at once, then
    // 200 more take at least 2 s.
    let (interval, budget) = (Duration::from_secs(1), 100);
    let at_least = interval.mul_f64(1.6);
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(&dir, |c| c.throttling = throttling(interval, budget)).await;

    // Ingest: six batches of 50, all acknowledged.
    let mut ingest = IngestClient::new(connect(&node).await.expect("connect"));
    let batches = (0..6u64).map(|b| IngestBatch {
        seq: b + 1,
        entries: (0..50)
            .map(|i| WellEntry {
                timestamp_ns: 1_000 + (b * 50 + i) as i64,
                tag: "nginx".into(),
                data: b"line".to_vec().into(),
                ..Default::default()
            })
            .collect(),
        batch_id: String::new(),
        traceparent: String::new(),
    });
    let started = Instant::now();
    let mut acks = ingest
        .write(tokio_stream::iter(batches))
        .await
        .expect("write")
        .into_inner();
    let mut stored = 0;
    while let Some(a) = acks.next().await {
        stored += a.expect("slowed, never refused").stored;
    }
    let took = started.elapsed();
    assert_eq!(stored, 300);
    assert!(took >= at_least, "ingest of 300 took {took:?}");

    // Query: the 300 entries come back, at the budget's pace.
    let mut wells = WellsClient::new(connect(&node).await.expect("connect"));
    let started = Instant::now();
    let mut replies = wells
        .query(QueryRequest {
            well: "web".into(),
            ..Default::default()
        })
        .await
        .expect("query")
        .into_inner();
    let mut got = 0;
    while let Some(r) = replies.next().await {
        got += r.expect("reply").entries.len();
    }
    let took = started.elapsed();
    assert_eq!(got, 300);
    assert!(took >= at_least, "query of 300 took {took:?}");

    // Delivery: 300 messages stored in-process, then subscribed to in events of 50.
    let store = node.node.owned_stream("stream", "orders").expect("stream");
    for i in 0..300 {
        store
            .publish(
                NewMessage {
                    subject: "orders.new".into(),
                    headers: Default::default(),
                    data: format!("m{i}").into_bytes().into(),
                    timestamp_ns: 1,
                },
                None,
            )
            .expect("publish");
    }
    let mut streams = StreamsClient::new(connect(&node).await.expect("connect"));
    let started = Instant::now();
    let mut events = streams
        .subscribe(SubscribeRequest {
            stream: "orders".into(),
            start_seq: 1,
            batch: 50,
            ..Default::default()
        })
        .await
        .expect("subscribe")
        .into_inner();
    let mut seqs = Vec::new();
    while seqs.len() < 300 {
        let ev = tokio::time::timeout(WAIT, events.next())
            .await
            .expect("delivery goes on")
            .expect("open")
            .expect("event");
        seqs.extend(ev.messages.iter().map(|m| m.seq));
    }
    let took = started.elapsed();
    assert_eq!(seqs, (1..=300).collect::<Vec<u64>>());
    assert!(took >= at_least, "delivery of 300 took {took:?}");
    drop(events);
    node.shutdown().await;
}
