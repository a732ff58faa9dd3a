//! The stream services end to end over gRPC (publish, get, info, delete, purge, subscribe),
//! on a standalone node whose catalogue view is set directly (no control plane).

mod support;

use std::time::Duration;
use support::url;
use tempfile::TempDir;
use tokio_stream::StreamExt;
use tonic::Code;
use tributary_data_node::RunningDataNode;
use tributary_proto::v1::{
    entity::Kind, streams_client::StreamsClient, DeleteMessageRequest, Entity, GetMessageRequest,
    PublishRequest, PurgeRequest, StorageType, Stream, StreamInfoRequest, SubscribeRequest,
};

/// `orders` (file, `orders.>`) and `mem` (memory, `mem.*`, at most 2 messages).
async fn start_node(dir: &TempDir) -> RunningDataNode {
    let entities = vec![
        Entity {
            kind: Some(Kind::Stream(Stream {
                name: "orders".into(),
                subjects: vec!["orders.>".into()],
                owner_node: 1,
                ..Default::default()
            })),
        },
        Entity {
            kind: Some(Kind::Stream(Stream {
                name: "mem".into(),
                subjects: vec!["mem.*".into()],
                storage: StorageType::Memory as i32,
                max_msgs: 2,
                owner_node: 1,
                ..Default::default()
            })),
        },
    ];
    support::start_with(dir, |_| {}, entities).await
}

fn pubreq(subject: &str, data: &str) -> PublishRequest {
    PublishRequest {
        subject: subject.into(),
        data: data.to_string().into_bytes().into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn publish_get_info_delete_purge() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(&dir).await;
    let mut c = StreamsClient::connect(url(&node)).await.unwrap();

    let ack = c
        .publish(pubreq("orders.new", "o1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((ack.stream.as_str(), ack.seq), ("default:orders", 1));
    let err = c.publish(pubreq("nobody.listens", "x")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c.publish(pubreq("orders.*", "x")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut wrong = pubreq("orders.new", "x");
    wrong.expected_last_seq = 7;
    assert_eq!(
        c.publish(wrong).await.unwrap_err().code(),
        Code::FailedPrecondition
    );

    // Pipelined: many in flight, acks in order with ids; a bad one answers with an error.
    let reqs: Vec<PublishRequest> = (0..100)
        .map(|i| {
            let mut r = pubreq(
                if i == 50 { "bad..subject" } else { "orders.eu" },
                &format!("m{i}"),
            );
            r.id = i;
            r
        })
        .collect();
    let acks: Vec<_> = tributary_common::publish::pipelined(&mut c, tokio_stream::iter(reqs))
        .await
        .unwrap()
        .collect::<Vec<_>>()
        .await;
    assert_eq!(acks.len(), 100);
    for (i, a) in acks.into_iter().enumerate() {
        let a = a.unwrap();
        assert_eq!(a.id, i as u64);
        assert_eq!(a.error.is_empty(), i != 50, "{a:?}");
    }

    let m = c
        .get(GetMessageRequest {
            stream: "orders".into(),
            seq: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (m.subject.as_str(), m.data.as_ref()),
        ("orders.new", b"o1".as_slice())
    );
    c.delete_message(DeleteMessageRequest {
        stream: "orders".into(),
        seq: 2,
    })
    .await
    .unwrap();
    assert_eq!(
        c.get(GetMessageRequest {
            stream: "orders".into(),
            seq: 2
        })
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    let info = c
        .info(StreamInfoRequest {
            stream: "orders".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let st = info.state.unwrap();
    assert_eq!(
        (st.messages, st.first_seq, st.last_seq, st.deleted),
        (99, 1, 100, 1)
    );
    assert_eq!(info.config.unwrap().subjects, vec!["orders.>".to_string()]);
    let purged = c
        .purge(PurgeRequest {
            stream: "orders".into(),
            subject: "orders.new".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(purged.purged, 1);
    let purged = c
        .purge(PurgeRequest {
            stream: "orders".into(),
            subject: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(purged.purged, 98);

    // Memory storage: same behaviour, limits included.
    for i in 0..3 {
        c.publish(pubreq("mem.a", &format!("{i}"))).await.unwrap();
    }
    let st = c
        .info(StreamInfoRequest {
            stream: "mem".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .state
        .unwrap();
    assert_eq!((st.messages, st.first_seq, st.last_seq), (2, 2, 3));
    node.shutdown().await;
}

#[tokio::test]
async fn subscribe_from_seq_and_time_with_filter_then_live() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(&dir).await;
    let mut c = StreamsClient::connect(url(&node)).await.unwrap();
    for i in 1..=6 {
        let subject = if i % 2 == 0 { "orders.eu" } else { "orders.us" };
        c.publish(pubreq(subject, &format!("m{i}"))).await.unwrap();
    }
    let t4 = c
        .get(GetMessageRequest {
            stream: "orders".into(),
            seq: 4,
        })
        .await
        .unwrap()
        .into_inner()
        .timestamp_ns;

    let mut sub = c
        .subscribe(SubscribeRequest {
            stream: "orders".into(),
            start_seq: 3,
            filter_subject: "orders.eu".into(),
            batch: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    let mut heartbeat = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut published_live = false;
    while got.len() < 3 || heartbeat.is_none() {
        let ev = tokio::time::timeout_at(deadline, sub.next())
            .await
            .expect("deadline")
            .expect("stream ended")
            .unwrap();
        got.extend(ev.messages.iter().map(|m| m.seq));
        if let Some(h) = ev.heartbeat {
            heartbeat = Some(h);
        }
        if got.len() == 2 && !published_live {
            published_live = true;
            c.publish(pubreq("orders.us", "skip")).await.unwrap();
            c.publish(pubreq("orders.eu", "live")).await.unwrap();
        }
    }
    assert_eq!(got, vec![4, 6, 8]);
    let h = heartbeat.unwrap();
    assert_eq!(h.first_seq, 1);
    assert!(h.last_seq >= 6);

    let mut sub = c
        .subscribe(SubscribeRequest {
            stream: "orders".into(),
            start_time_ns: t4,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // A subscription opens with a heartbeat (the origin's state); messages follow.
    let first = loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Some(m) = ev.messages.first() {
            break m.seq;
        }
    };
    assert_eq!(first, 4);

    let err = c
        .subscribe(SubscribeRequest {
            stream: "orders".into(),
            filter_subject: "a..b".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    node.shutdown().await;
}
