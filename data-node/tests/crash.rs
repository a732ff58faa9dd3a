//! `kill -9` right after acks: every acknowledged entry and message is there after restart.
//! Runs the real binary; the catalogue view is seeded into the data dir beforehand (a
//! standalone node serves what its saved view says it owns).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::metadata::MetadataValue;
use tributary_data_node::{CatalogView, Node};
use tributary_proto::v1::{
    entity::Kind, ingest_client::IngestClient, streams_client::StreamsClient,
    wells_client::WellsClient, Entity, IngestBatch, PublishRequest, QueryRequest, Stream,
    StreamInfoRequest, Well, WellEntry,
};

/// Starts the binary and waits (with a deadline) for the address it logs.
fn spawn(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary-data-node"))
        .args([
            "--id",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "",
            "--ingest-secret",
            "k",
            "--insecure",
            "--anonymous-subject",
            "test:anonymous",
            "--admin-subject",
            "test:anonymous",
        ])
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn data node");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(i) = line.find("addr=") {
                let addr: String = line[i + 5..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("data node logged its address");
    (child, format!("http://{addr}"))
}

#[tokio::test]
async fn acked_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    {
        let node = Node::open(1, dir.path(), false, None).unwrap();
        node.set_catalog(CatalogView::from_entities(
            1,
            [
                Entity {
                    kind: Some(Kind::Well(Well {
                        name: "w".into(),
                        default_well: true,
                        owner_node: 1,
                        ..Default::default()
                    })),
                },
                Entity {
                    kind: Some(Kind::Stream(Stream {
                        name: "s".into(),
                        subjects: vec!["s.>".into()],
                        owner_node: 1,
                        ..Default::default()
                    })),
                },
            ],
        ))
        .unwrap();
    }
    let (mut child, addr) = spawn(dir.path());

    let batches: Vec<IngestBatch> = (0..50u64)
        .map(|b| IngestBatch {
            seq: b,
            entries: (0..100)
                .map(|i| WellEntry {
                    timestamp_ns: (b * 100 + i + 1) as i64,
                    tag: "t".into(),
                    data: vec![b'x'; 128].into(),
                    ..Default::default()
                })
                .collect(),
            batch_id: String::new(),
            traceparent: String::new(),
        })
        .collect();
    let mut ingest = IngestClient::connect(addr.clone()).await.unwrap();
    let mut req = tonic::Request::new(tokio_stream::iter(batches));
    req.metadata_mut().insert(
        tributary_common::grpc::INGEST_SECRET_HEADER,
        MetadataValue::from_static("k"),
    );
    let acks: Vec<_> = ingest
        .write(req)
        .await
        .unwrap()
        .into_inner()
        .collect::<Vec<_>>()
        .await;
    let stored: u64 = acks.iter().map(|a| a.as_ref().unwrap().stored).sum();
    assert_eq!(stored, 5000);

    let mut streams = StreamsClient::connect(addr.clone()).await.unwrap();
    let reqs: Vec<PublishRequest> = (0..500)
        .map(|i| PublishRequest {
            subject: "s.a".into(),
            data: vec![b'y'; 128].into(),
            id: i,
            ..Default::default()
        })
        .collect();
    let acked = tributary_common::publish::pipelined(&mut streams, tokio_stream::iter(reqs))
        .await
        .unwrap()
        .collect::<Vec<_>>()
        .await;
    assert!(acked
        .iter()
        .all(|a| a.as_ref().is_ok_and(|a| a.error.is_empty())));

    // SIGKILL straight after the last ack: no shutdown path runs.
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut child, addr) = spawn(dir.path());
    let mut wells = WellsClient::connect(addr.clone()).await.unwrap();
    let mut s = wells
        .query(QueryRequest {
            well: "w".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while let Some(r) = s.next().await {
        n += r.unwrap().entries.len();
    }
    assert_eq!(n, 5000);
    let mut streams = StreamsClient::connect(addr).await.unwrap();
    let st = streams
        .info(StreamInfoRequest { stream: "s".into() })
        .await
        .unwrap()
        .into_inner()
        .state
        .unwrap();
    assert_eq!((st.messages, st.last_seq), (500, 500));
    child.kill().unwrap();
    child.wait().unwrap();
}
