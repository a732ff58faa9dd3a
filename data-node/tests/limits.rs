//! The data node's limits as a client meets them: more streams than `grpc.max_concurrent_streams`
//! on one connection wait while others are served; connections beyond `grpc.max_connections`
//! are closed and the node stays up; a silent connection is closed after `grpc.idle_timeout`
//! while a live one is not; subjects and headers over `limits.*` are `INVALID_ARGUMENT`
//! naming the key.

mod support;

use std::collections::HashMap;
use std::time::Duration;
use support::{connect, eventually, start};
use tokio::io::AsyncReadExt;
use tokio_stream::StreamExt;
use tonic::Code;
use tributary_proto::v1::{
    streams_client::StreamsClient, PublishBatch, PublishRequest, PurgeRequest, StreamInfoRequest,
    SubscribeRequest,
};

const WAIT: Duration = Duration::from_secs(15);

fn publish(subject: &str, data: &str) -> PublishRequest {
    PublishRequest {
        subject: subject.into(),
        data: data.to_string().into_bytes().into(),
        ..Default::default()
    }
}

async fn subscribers(c: &mut StreamsClient<tonic::transport::Channel>) -> u64 {
    c.info(StreamInfoRequest {
        stream: "orders".into(),
    })
    .await
    .expect("info")
    .into_inner()
    .state
    .expect("state")
    .subscribers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_max_concurrent_streams_on_one_connection_wait_while_others_are_served() {
    const MAX: usize = 4;
    const ASKED: usize = 10;
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(&dir, |c| c.grpc.max_concurrent_streams = MAX as u32).await;
    let crowded = StreamsClient::new(connect(&node).await.expect("connect"));
    let mut other = StreamsClient::new(connect(&node).await.expect("connect"));
    // One call first, so the client knows the node's settings (its limit) before the burst:
    // the extra subscriptions then wait in the client (sent before, they would be refused).
    subscribers(&mut crowded.clone()).await;

    // Ten subscriptions at once on one connection.
    let (tx, mut answers) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..ASKED {
        let (mut c, tx) = (crowded.clone(), tx.clone());
        tokio::spawn(async move {
            let r = c
                .subscribe(SubscribeRequest {
                    stream: "orders".into(),
                    ..Default::default()
                })
                .await;
            let _ = tx.send(r.map(tonic::Response::into_inner));
        });
    }
    let mut open = Vec::new();
    while open.len() < MAX {
        let r = tokio::time::timeout(WAIT, answers.recv())
            .await
            .expect("the first subscriptions are answered")
            .expect("senders alive");
        open.push(r.expect("within the limit a subscription is taken"));
    }
    // The server holds exactly the allowed number; another connection is still served...
    eventually("the node counts the open subscribers", WAIT, || {
        let mut c = other.clone();
        async move { (subscribers(&mut c).await == MAX as u64).then_some(()) }
    })
    .await;
    let ack = other
        .publish(publish("orders.new", "while crowded"))
        .await
        .expect("another connection publishes")
        .into_inner();
    assert!(ack.error.is_empty(), "{}", ack.error);
    // ...and every open subscription has delivered that message, so the server has taken all
    // it was going to from the crowded connection: the others are still waiting.
    for s in &mut open {
        let ev = tokio::time::timeout(WAIT, async {
            loop {
                let ev = s.next().await.expect("open").expect("event");
                if !ev.messages.is_empty() {
                    return ev;
                }
            }
        })
        .await
        .expect("the message is delivered");
        assert_eq!(ev.messages[0].data.as_ref(), b"while crowded");
    }
    if let Ok(answer) = answers.try_recv() {
        panic!("a subscription beyond grpc.max_concurrent_streams was answered: {answer:?}");
    }
    assert_eq!(subscribers(&mut other).await, MAX as u64);

    // As open ones end, the waiting ones get in, never more than the limit at once.
    let mut answered = open.len();
    while answered < ASKED {
        open.pop();
        let r = tokio::time::timeout(WAIT, answers.recv())
            .await
            .expect("a waiting subscription gets in once one ends")
            .expect("senders alive");
        open.push(r.expect("taken"));
        answered += 1;
        if let Ok(answer) = answers.try_recv() {
            panic!("two got in where one ended: {answer:?}");
        }
    }
    // (The node counts a subscriber gone a moment after its stream ends.)
    eventually(
        "the node holds the limit's worth of subscribers",
        WAIT,
        || {
            let mut c = other.clone();
            async move { (subscribers(&mut c).await == MAX as u64).then_some(()) }
        },
    )
    .await;
    drop(open);
    eventually("the subscribers are gone", WAIT, || {
        let mut c = other.clone();
        async move { (subscribers(&mut c).await == 0).then_some(()) }
    })
    .await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_are_refused_and_the_node_stays_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(&dir, |c| c.grpc.max_connections = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = StreamsClient::new(connect(&node).await.expect("connect"));
        subscribers(&mut c).await;
        held.push(c);
    }
    // A fourth connection is closed as soon as it is accepted.
    for _ in 0..3 {
        let refused = async {
            let mut c = StreamsClient::new(connect(&node).await?);
            c.info(StreamInfoRequest {
                stream: "orders".into(),
            })
            .await
            .map_err(|s| -> Box<dyn std::error::Error> { Box::new(s) })?;
            Ok::<_, Box<dyn std::error::Error>>(())
        };
        assert!(refused.await.is_err(), "a 4th connection was served");
    }
    // The admitted ones are served as before.
    for c in &mut held {
        let ack = c
            .publish(publish("orders.a", "x"))
            .await
            .expect("publish")
            .into_inner();
        assert!(ack.error.is_empty());
    }
    // A connection that ends gives its slot back.
    held.pop();
    let mut late = eventually("a new connection is served once one closed", WAIT, || {
        let node = &node;
        async move {
            let mut c = StreamsClient::new(connect(node).await.ok()?);
            c.info(StreamInfoRequest {
                stream: "orders".into(),
            })
            .await
            .ok()?;
            Some(c)
        }
    })
    .await;
    assert_eq!(subscribers(&mut late).await, 0);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_after_idle_timeout_and_a_live_one_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let idle = Duration::from_millis(1_000);
    let node = start(&dir, |c| {
        c.grpc.max_connections = 2;
        c.grpc.keepalive_interval = Duration::from_millis(200);
        c.grpc.keepalive_timeout = Duration::from_millis(300);
        c.grpc.idle_timeout = idle;
    })
    .await;
    // Two peers that connect and never speak take both slots...
    let opened = tokio::time::Instant::now();
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(
            tokio::net::TcpStream::connect(node.addr)
                .await
                .expect("connect"),
        );
    }
    assert!(
        async {
            StreamsClient::new(connect(&node).await.ok()?)
                .info(StreamInfoRequest {
                    stream: "orders".into(),
                })
                .await
                .ok()
        }
        .await
        .is_none(),
        "a third connection was served"
    );
    // ...until the node closes them for saying nothing.
    for s in &mut silent {
        // The node speaks first (its HTTP/2 settings), then hangs up.
        let mut seen = Vec::new();
        // (Closed or reset: either ends the read.)
        let _closed = tokio::time::timeout(WAIT, s.read_to_end(&mut seen))
            .await
            .expect("the node closes a silent connection");
    }
    assert!(
        opened.elapsed() >= idle.mul_f32(0.8),
        "{:?}",
        opened.elapsed()
    );

    // A live client is heard from (it answers the keepalive pings): its subscription, quiet
    // for longer than the idle timeout, still delivers.
    let mut sub = eventually("a connection is served again", WAIT, || {
        let node = &node;
        async move {
            let mut c = StreamsClient::new(connect(node).await.ok()?);
            c.subscribe(SubscribeRequest {
                stream: "orders".into(),
                ..Default::default()
            })
            .await
            .ok()
            .map(tonic::Response::into_inner)
        }
    })
    .await;
    tokio::time::sleep(idle * 3).await;
    let mut publisher = StreamsClient::new(connect(&node).await.expect("connect"));
    publisher
        .publish(publish("orders.late", "still here"))
        .await
        .expect("publish");
    let ev = tokio::time::timeout(WAIT, async {
        loop {
            let ev = sub.next().await.expect("open").expect("event");
            if !ev.messages.is_empty() {
                return ev;
            }
        }
    })
    .await
    .expect("the quiet subscription still delivers");
    assert_eq!(ev.messages[0].data.as_ref(), b"still here");
    drop(sub);
    node.shutdown().await;
}

#[tokio::test]
async fn oversized_subjects_and_headers_are_invalid_argument_naming_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(&dir, |c| {
        c.limits.max_subject_bytes = 32;
        c.limits.max_headers = 2;
        c.limits.max_header_bytes = 64;
    })
    .await;
    let mut c = StreamsClient::new(connect(&node).await.expect("connect"));
    let long = format!("orders.{}", "x".repeat(40));
    let with_headers = |n: usize, len: usize| PublishRequest {
        headers: (0..n)
            .map(|i| (format!("h{i}"), "v".repeat(len)))
            .collect::<HashMap<_, _>>(),
        ..publish("orders.new", "x")
    };
    let cases = [
        (publish(&long, "x"), "limits.max_subject_bytes"),
        (with_headers(3, 1), "limits.max_headers"),
        (with_headers(2, 40), "limits.max_header_bytes"),
    ];
    for (req, key) in cases.clone() {
        let e = c.publish(req).await.expect_err(key);
        assert_eq!(e.code(), Code::InvalidArgument, "{key}: {e:?}");
        assert!(e.message().contains(key), "{key}: {}", e.message());
    }
    // Pipelined, each refused message gets its ack with the reason; the others are stored.
    let mut batch: Vec<PublishRequest> = cases.iter().map(|(r, _)| r.clone()).collect();
    batch.push(with_headers(2, 8));
    for (i, r) in batch.iter_mut().enumerate() {
        r.id = i as u64 + 1;
    }
    let mut acks = c
        .publish_stream(tokio_stream::iter([PublishBatch { messages: batch }]))
        .await
        .expect("publish stream")
        .into_inner();
    let acks = acks.next().await.expect("acks").expect("ok").acks;
    assert_eq!(acks.len(), 4);
    for (ack, (_, key)) in acks.iter().zip(&cases) {
        assert!(ack.error.contains(key), "{key}: {}", ack.error);
    }
    assert!(
        acks[3].error.is_empty() && acks[3].seq == 1,
        "{:?}",
        acks[3]
    );

    // Filters are subjects too.
    let e = c
        .subscribe(SubscribeRequest {
            stream: "orders".into(),
            filter_subject: long.clone(),
            ..Default::default()
        })
        .await
        .expect_err("long filter");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("limits.max_subject_bytes"),
        "{}",
        e.message()
    );
    let e = c
        .purge(PurgeRequest {
            stream: "orders".into(),
            subject: long,
        })
        .await
        .expect_err("long purge subject");
    assert_eq!(e.code(), Code::InvalidArgument);
    // The node is up and serves a message within the limits.
    let ack = c
        .publish(with_headers(2, 8))
        .await
        .expect("within the limits")
        .into_inner();
    assert_eq!(ack.seq, 2);
    node.shutdown().await;
}
