//! Mirrors and sources on one cluster: the JetStream reference scenario, sequence numbers
//! kept across origin deletes, filters and start positions, sources removed, origins deleted
//! and created again, a mirror of a sourced stream, and a mirror on another node copying the
//! origin's stored bytes as they are.

use anyhow::{anyhow, ensure, Result};
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tributary_common::grpc::STREAM_SECRET_HEADER;
use tributary_data_node::storage::codec::MessageValue;
use tributary_integration::streams::{caught_up, count};
use tributary_integration::Cluster;
use tributary_proto::v1::{
    streams_client::StreamsClient, PublishRequest, StorageType, Stream, StreamMessage,
    StreamSource, SubscribeEvent, SubscribeRequest,
};

fn stream(name: &str, subjects: &[&str], storage: StorageType) -> Stream {
    Stream {
        name: name.into(),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        storage: storage as i32,
        ..Default::default()
    }
}

fn origin(name: &str) -> StreamSource {
    StreamSource {
        stream: name.into(),
        ..Default::default()
    }
}

fn header<'a>(m: &'a StreamMessage, k: &str) -> &'a str {
    m.headers.get(k).map_or("", String::as_str)
}

fn data(m: &StreamMessage) -> String {
    String::from_utf8_lossy(&m.data).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_scenario_orders_returns_archive_report() -> Result<()> {
    let c = Cluster::builder("a").start().await?;
    c.create_stream(stream("ORDERS", &["ORDERS.>"], StorageType::Memory), 1)
        .await?;
    c.create_stream(stream("RETURNS", &["RETURNS.>"], StorageType::Memory), 1)
        .await?;
    let mut archive = stream("ARCHIVE", &[], StorageType::File);
    archive.sources = vec![origin("ORDERS"), origin("RETURNS")];
    c.create_stream(archive, 1).await?;
    let mut report = stream("REPORT", &[], StorageType::File);
    report.mirror = Some(origin("ARCHIVE"));
    c.create_stream(report, 1).await?;

    c.publish_n(1, "ORDERS.new", "ORDER", 100).await?;
    c.publish_n(1, "RETURNS.new", "RETURN", 100).await?;

    let a = c
        .wait_info(1, "ARCHIVE", "200 messages, lag 0", |i| {
            count(i) == 200 && caught_up(i)
        })
        .await?;
    let r = c
        .wait_info(1, "REPORT", "200 messages, lag 0", |i| {
            count(i) == 200 && caught_up(i)
        })
        .await?;
    assert_eq!(count(&c.info(1, "ORDERS").await?), 100);
    assert_eq!(count(&c.info(1, "RETURNS").await?), 100);
    let kinds: Vec<(String, String)> = a
        .replication
        .iter()
        .map(|x| (x.kind.clone(), x.stream.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("source".into(), "default:ORDERS".into()),
            ("source".into(), "default:RETURNS".into())
        ]
    );
    assert_eq!(r.replication.len(), 1);
    assert_eq!(r.replication[0].kind, "mirror");
    assert_eq!(r.replication[0].stream, "default:ARCHIVE");

    // ARCHIVE: its own seqs 1..=200, each origin's messages in order, each exactly once.
    let msgs = c.messages(1, "ARCHIVE").await?;
    assert_eq!(
        msgs.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=200).collect::<Vec<_>>()
    );
    for (origin, prefix) in [("default:ORDERS", "ORDER"), ("default:RETURNS", "RETURN")] {
        let from: Vec<&StreamMessage> = msgs
            .iter()
            .filter(|m| header(m, tributary_common::grpc::ORIGIN_STREAM_HEADER) == origin)
            .collect();
        let seqs: Vec<String> = from
            .iter()
            .map(|m| header(m, tributary_common::grpc::ORIGIN_SEQ_HEADER).to_string())
            .collect();
        assert_eq!(seqs, (1..=100).map(|i| i.to_string()).collect::<Vec<_>>());
        let bodies: Vec<String> = from.iter().map(|m| data(m)).collect();
        assert_eq!(
            bodies,
            (1..=100)
                .map(|i| format!("{prefix} {i}"))
                .collect::<Vec<_>>()
        );
    }
    // REPORT is ARCHIVE, seq for seq.
    let mirrored = c.messages(1, "REPORT").await?;
    assert_eq!(mirrored, msgs);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_keeps_sequence_numbers_across_origin_deletes() -> Result<()> {
    let c = Cluster::builder("a").start().await?;
    c.create_stream(stream("O", &["o.>"], StorageType::File), 1)
        .await?;
    c.publish_n(1, "o.x", "m", 10).await?;
    let mut del = c.streams(1)?;
    for seq in [3, 4, 10] {
        del.delete_message(tributary_proto::v1::DeleteMessageRequest {
            stream: "O".into(),
            seq,
        })
        .await?;
    }
    let mut m = stream("M", &[], StorageType::File);
    m.mirror = Some(origin("O"));
    c.create_stream(m, 1).await?;
    let i = c
        .wait_info(1, "M", "caught up", |i| caught_up(i) && count(i) == 7)
        .await?;
    let st = i.state.unwrap_or_default();
    // The deleted tail message still counts: the mirror's last seq is the origin's.
    assert_eq!((st.first_seq, st.last_seq, st.deleted), (1, 10, 3));
    let seqs: Vec<u64> = c.messages(1, "M").await?.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 2, 5, 6, 7, 8, 9]);

    // New origin messages keep their seqs.
    c.publish_n(1, "o.y", "late", 2).await?;
    c.wait_info(1, "M", "seq 12", |i| {
        i.state.as_ref().is_some_and(|s| s.last_seq == 12) && count(i) == 9
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_start_positions() -> Result<()> {
    let c = Cluster::builder("a").start().await?;
    c.create_stream(stream("O", &["o.>"], StorageType::File), 1)
        .await?;
    c.publish_n(1, "o.a", "a", 5).await?; // seqs 1..=5
    c.publish_n(1, "o.b", "b", 5).await?; // seqs 6..=10
    let t = c
        .messages(1, "O")
        .await?
        .iter()
        .find(|m| m.seq == 8)
        .map_or(0, |m| m.timestamp_ns);

    // A filtered mirror: only o.b, at the origin's seqs; caught up means lag 0 even though
    // the origin's other subjects were skipped.
    let mut fm = stream("FM", &[], StorageType::File);
    fm.mirror = Some(StreamSource {
        filter_subject: "o.b".into(),
        ..origin("O")
    });
    c.create_stream(fm, 1).await?;
    // A mirror from seq 4, sources from seq 9 and from a time (seq 8's).
    let mut sm = stream("SM", &[], StorageType::File);
    sm.mirror = Some(StreamSource {
        start_seq: 4,
        ..origin("O")
    });
    c.create_stream(sm, 1).await?;
    let mut src = stream("SRC", &["own.>"], StorageType::File);
    src.sources = vec![
        StreamSource {
            start_seq: 9,
            filter_subject: "o.b".into(),
            ..origin("O")
        },
        StreamSource {
            start_time_ns: t,
            filter_subject: "o.>".into(),
            ..origin("O")
        },
    ];
    c.create_stream(src, 1).await?;

    c.wait_info(1, "FM", "5 o.b messages", |i| caught_up(i) && count(i) == 5)
        .await?;
    let fm_seqs: Vec<u64> = c.messages(1, "FM").await?.iter().map(|m| m.seq).collect();
    assert_eq!(fm_seqs, [6, 7, 8, 9, 10]);
    c.wait_info(1, "SM", "seqs 4..=10", |i| caught_up(i) && count(i) == 7)
        .await?;
    let sm_seqs: Vec<u64> = c.messages(1, "SM").await?.iter().map(|m| m.seq).collect();
    assert_eq!(sm_seqs, (4..=10).collect::<Vec<_>>());
    // 9, 10 from the first source; 8, 9, 10 from the second; plus its own subject.
    c.publish_n(1, "own.x", "own", 1).await?;
    c.wait_info(1, "SRC", "6 messages", |i| caught_up(i) && count(i) == 6)
        .await?;
    let mut origin_seqs: Vec<String> = c
        .messages(1, "SRC")
        .await?
        .iter()
        .map(|m| header(m, tributary_common::grpc::ORIGIN_SEQ_HEADER).to_string())
        .collect();
    origin_seqs.sort();
    assert_eq!(origin_seqs, ["", "10", "10", "8", "9", "9"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_sources_stop_and_recreated_origins_are_copied_from_their_start() -> Result<()> {
    let c = Cluster::builder("a").start().await?;
    c.create_stream(stream("A", &["a.>"], StorageType::File), 1)
        .await?;
    c.create_stream(stream("B", &["b.>"], StorageType::File), 1)
        .await?;
    let mut agg = stream("AGG", &[], StorageType::File);
    agg.sources = vec![origin("A"), origin("B")];
    c.create_stream(agg.clone(), 1).await?;
    let mut m = stream("MA", &[], StorageType::File);
    m.mirror = Some(origin("A"));
    c.create_stream(m, 1).await?;
    c.publish_n(1, "a.x", "a", 3).await?;
    c.publish_n(1, "b.x", "b", 3).await?;
    c.wait_info(1, "AGG", "6", |i| caught_up(i) && count(i) == 6)
        .await?;

    // Remove B: its later messages are not copied, A's still are.
    agg.sources = vec![origin("A")];
    c.update_stream(agg).await?;
    c.wait_info(1, "AGG", "one source left", |i| i.replication.len() == 1)
        .await?;
    c.publish_n(1, "b.x", "b-late", 2).await?;
    c.publish_n(1, "a.x", "a-late", 1).await?;
    let i = c
        .wait_info(1, "AGG", "7", |i| caught_up(i) && count(i) == 7)
        .await?;
    assert_eq!(i.state.map(|s| s.last_seq), Some(7));

    // Delete A and create it again: both the source and the mirror copy the new A from its
    // start (seq 1 again) rather than waiting for seq 5.
    c.delete_stream("A").await?;
    c.create_stream(stream("A", &["a.>"], StorageType::File), 1)
        .await?;
    c.publish_n(1, "a.x", "new-a", 2).await?;
    c.wait_info(1, "AGG", "9", |i| caught_up(i) && count(i) == 9)
        .await?;
    let last: Vec<String> = c.messages(1, "AGG").await?[7..].iter().map(data).collect();
    assert_eq!(last, ["new-a 1", "new-a 2"]);
    let mi = c
        .wait_info(1, "MA", "the new A", |i| {
            caught_up(i) && i.state.as_ref().is_some_and(|s| s.last_seq == 2)
        })
        .await?;
    assert_eq!(count(&mi), 2);
    let bodies: Vec<String> = c.messages(1, "MA").await?.iter().map(data).collect();
    assert_eq!(bodies, ["new-a 1", "new-a 2"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_of_a_sourced_stream_on_another_node() -> Result<()> {
    // Origins on node 1, the sourced stream on node 2, its mirror back on node 1: every hop
    // goes over gRPC between data nodes.
    let c = Cluster::builder("a").data_nodes(2).start().await?;
    c.create_stream(stream("X", &["x.>"], StorageType::Memory), 1)
        .await?;
    c.create_stream(stream("Y", &["y.>"], StorageType::File), 1)
        .await?;
    let mut s = stream("XY", &["xy.own"], StorageType::File);
    s.sources = vec![origin("X"), origin("Y")];
    c.create_stream(s, 2).await?;
    let mut m = stream("XYM", &[], StorageType::File);
    m.mirror = Some(origin("XY"));
    c.create_stream(m, 1).await?;
    c.publish_n(1, "x.1", "x", 50).await?;
    c.publish_n(1, "y.1", "y", 50).await?;
    c.publish_n(2, "xy.own", "own", 5).await?;
    c.wait_info(2, "XY", "105", |i| caught_up(i) && count(i) == 105)
        .await?;
    c.wait_info(1, "XYM", "105", |i| caught_up(i) && count(i) == 105)
        .await?;
    assert_eq!(
        c.messages(1, "XYM").await?,
        c.messages(2, "XY").await?,
        "the mirror is the sourced stream, seq for seq"
    );
    Ok(())
}

/// Every event of a subscription to `stream` from seq 1 until `last` has gone by, asking for
/// the stored form or not, with the stream secret `secret` (none: the test's own certificate).
async fn events(
    mut c: StreamsClient<Channel>,
    stream: &str,
    last: u64,
    stored_form: bool,
    secret: &str,
) -> Result<Vec<SubscribeEvent>> {
    let mut req = tonic::Request::new(SubscribeRequest {
        stream: stream.into(),
        start_seq: 1,
        batch: 4096,
        stored_form,
        ..Default::default()
    });
    if !secret.is_empty() {
        req.metadata_mut()
            .insert(STREAM_SECRET_HEADER, secret.parse()?);
    }
    let mut sub = c.subscribe(req).await?.into_inner();
    let mut out = Vec::new();
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(5), sub.next()).await? {
        let ev = ev?;
        let done = ev.next_seq > last;
        out.push(ev);
        if done {
            return Ok(out);
        }
    }
    anyhow::bail!("the subscription to {stream} ended before seq {last}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_on_another_node_stores_the_origins_bytes_as_they_are() -> Result<()> {
    const SECRET: &str = "shared";
    let c = Cluster::builder("a")
        .data_nodes(2)
        .tune_data_nodes(|dn| dn.stream_secrets = vec![SECRET.into()])
        .start()
        .await?;
    c.create_stream(stream("O", &["o.>"], StorageType::File), 1)
        .await?;
    let mut m = stream("M", &[], StorageType::Memory);
    m.mirror = Some(origin("O"));
    c.create_stream(m, 2).await?;
    // Headers or none, data of every size up to 200 KiB (empty too), binary.
    let n = 40u64;
    let mut client = c.streams(1)?;
    for i in 1..=n {
        let headers = (0..i % 3)
            .map(|h| (format!("H-{h}"), format!("v{i}")))
            .collect();
        let size = [0, 1, 1024, 200 << 10][i as usize % 4];
        let ack = client
            .publish(PublishRequest {
                subject: format!("o.{}", i % 5),
                headers,
                data: (0..size)
                    .map(|b| (b * 7 + i as usize) as u8)
                    .collect::<Vec<_>>()
                    .into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        ensure!(ack.error.is_empty() && ack.seq == i, "publish {i}: {ack:?}");
    }
    c.wait_caught_up(2, "M", n).await?;
    let origin_msgs = c.messages(1, "O").await?;
    assert_eq!(origin_msgs.len() as u64, n);
    assert!(origin_msgs
        .iter()
        .any(|m| m.headers.len() == 2 && m.timestamp_ns > 0));
    assert_eq!(
        c.messages(2, "M").await?,
        origin_msgs,
        "seq, subject, headers, data and timestamp, message for message"
    );

    // Asked for by a holder of the stream secret (as the mirror's node is a node of the
    // cluster), the messages come as stored; each decodes to the message a client reads, and
    // the mirror holds the very same bytes.
    let stored = |evs: Vec<SubscribeEvent>| {
        assert!(
            evs.iter().all(|e| e.messages.is_empty()),
            "no decoded messages"
        );
        evs.into_iter().flat_map(|e| e.stored).collect::<Vec<_>>()
    };
    let from_origin = stored(events(c.streams(1)?, "O", n, true, SECRET).await?);
    assert_eq!(from_origin.len() as u64, n);
    for (s, m) in from_origin.iter().zip(&origin_msgs) {
        let v = MessageValue::decode(&s.value)?;
        assert_eq!(s.seq, m.seq);
        assert_eq!(
            (&v.subject, &v.data, v.timestamp_ns),
            (&m.subject, &m.data, m.timestamp_ns)
        );
        let headers: std::collections::BTreeMap<_, _> = m.headers.clone().into_iter().collect();
        assert_eq!(v.headers, headers);
    }
    let from_mirror = stored(events(c.streams(2)?, "M", n, true, SECRET).await?);
    assert_eq!(
        from_mirror, from_origin,
        "the mirror stores the origin's bytes"
    );
    // As the mirror's node asks: with data node 2's own certificate.
    let tls = c.tls().ok_or_else(|| anyhow!("the harness runs TLS"))?;
    let as_node = tributary_common::tls::endpoint(
        &c.data_addr(1)?,
        Some(&tls.data_node(2)?),
        Some("data-node-1"),
    )?
    .connect_lazy();
    let as_node = StreamsClient::new(as_node).max_decoding_message_size(256 << 20);
    assert_eq!(
        stored(events(as_node, "O", n, true, "").await?),
        from_origin
    );

    // Not asked for, or asked for by a client (the test's own certificate): decoded, as ever.
    for (asked, secret) in [(false, SECRET), (true, "")] {
        let evs = events(c.streams(1)?, "O", n, asked, secret).await?;
        assert!(evs.iter().all(|e| e.stored.is_empty()), "asked {asked}");
        let msgs: Vec<StreamMessage> = evs.into_iter().flat_map(|e| e.messages).collect();
        assert_eq!(msgs, origin_msgs, "asked {asked}");
    }
    Ok(())
}
