//! The well services end to end over gRPC (ingest, query, shards), on a standalone node whose
//! catalogue view is set directly (no control plane); the stream services are in
//! `grpc_streams.rs`.

mod support;

use support::url;
use tempfile::TempDir;
use tokio_stream::StreamExt;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request};
use tributary_data_node::{CatalogView, DataNodeConfig, RunningDataNode};
use tributary_proto::v1::{
    entity::Kind, ingest_client::IngestClient, wells_client::WellsClient, Entity, IngestBatch,
    QueryRequest, ShardsRequest, Well, WellEntry,
};

const SECRET: &str = "s3cret";

async fn start_node(dir: &TempDir) -> RunningDataNode {
    let well = |name: &str, tags: &[&str], default_well: bool, owner_node: u64| Entity {
        kind: Some(Kind::Well(Well {
            name: name.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            default_well,
            owner_node,
            ..Default::default()
        })),
    };
    let entities = vec![
        well("web", &["nginx"], false, 1),
        well("all", &[], true, 1),
        well("elsewhere", &["remote"], false, 2),
    ];
    support::start_with(dir, |c| c.ingest_secrets = vec![SECRET.into()], entities).await
}

fn entry(ts: i64, tag: &str, data: &str) -> WellEntry {
    WellEntry {
        timestamp_ns: ts,
        tag: tag.into(),
        source: "10.0.0.1".into(),
        data: data.to_string().into_bytes().into(),
        values: Default::default(),
    }
}

fn with_secret<T>(msg: T, secret: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert(
        tributary_common::grpc::INGEST_SECRET_HEADER,
        MetadataValue::try_from(secret).unwrap(),
    );
    r
}

async fn ingest(
    addr: &str,
    secret: &str,
    batches: Vec<IngestBatch>,
) -> Result<Vec<tributary_proto::v1::IngestAck>, tonic::Status> {
    let mut c = IngestClient::connect(addr.to_string()).await.unwrap();
    let mut acks = c
        .write(with_secret(tokio_stream::iter(batches), secret))
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(a) = acks.next().await {
        out.push(a?);
    }
    Ok(out)
}

async fn query(addr: &str, well: &str, tags: Vec<String>) -> Vec<WellEntry> {
    let mut c = WellsClient::connect(addr.to_string()).await.unwrap();
    let mut s = c
        .query(QueryRequest {
            well: well.into(),
            tags,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = s.next().await {
        out.extend(r.unwrap().entries);
    }
    out
}

#[tokio::test]
async fn ingest_query_and_shards() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(&dir).await;
    let addr = url(&node);

    let bad = ingest(
        &addr,
        "wrong",
        vec![IngestBatch {
            seq: 1,
            entries: vec![entry(1, "nginx", "x")],
            batch_id: String::new(),
            traceparent: String::new(),
        }],
    )
    .await;
    assert_eq!(bad.unwrap_err().code(), Code::Unauthenticated);

    let batches = vec![
        IngestBatch {
            seq: 1,
            entries: vec![entry(2_000, "nginx", "b"), entry(1_000, "nginx", "a")],
            batch_id: "b1".into(),
            traceparent: String::new(),
        },
        IngestBatch {
            seq: 2,
            entries: vec![entry(3_000, "syslog", "c")],
            batch_id: String::new(),
            traceparent: String::new(),
        },
        IngestBatch {
            seq: 3,
            entries: vec![entry(2_000, "nginx", "b"), entry(1_000, "nginx", "a")],
            batch_id: "b1".into(),
            traceparent: String::new(),
        },
    ];
    let acks = ingest(&addr, SECRET, batches).await.unwrap();
    assert_eq!(
        acks.iter()
            .map(|a| (a.seq, a.stored, a.duplicate))
            .collect::<Vec<_>>(),
        vec![(1, 2, false), (2, 1, false), (3, 0, true)]
    );

    let web = query(&addr, "web", vec![]).await;
    assert_eq!(
        web.iter().map(|e| e.data.as_ref()).collect::<Vec<&[u8]>>(),
        vec![b"a".as_slice(), b"b"]
    );
    assert_eq!(web[0].tag, "nginx");
    assert_eq!(web[0].source, "10.0.0.1");
    // An unrouted tag lands in the default well.
    let all = query(&addr, "default:all", vec!["syslog".into()]).await;
    assert_eq!(all.len(), 1);

    // A malformed entry fails its whole batch, naming the field; earlier batches stay.
    let mut broken = entry(5_000, "nginx", "d");
    broken.source = "not-an-ip".into();
    let err = ingest(
        &addr,
        SECRET,
        vec![IngestBatch {
            seq: 9,
            entries: vec![entry(4_000, "nginx", "ok"), broken],
            batch_id: String::new(),
            traceparent: String::new(),
        }],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("entries[1].source"),
        "{}",
        err.message()
    );
    let big = entry(6_000, "nginx", &"x".repeat(2 << 20));
    let err = ingest(
        &addr,
        SECRET,
        vec![IngestBatch {
            seq: 10,
            entries: vec![big],
            batch_id: String::new(),
            traceparent: String::new(),
        }],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("entries[0].data"),
        "{}",
        err.message()
    );
    // A tag routed to a well another node owns.
    let err = ingest(
        &addr,
        SECRET,
        vec![IngestBatch {
            seq: 11,
            entries: vec![entry(1, "remote", "r")],
            batch_id: String::new(),
            traceparent: String::new(),
        }],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(query(&addr, "web", vec![]).await.len(), 2);

    let mut wells = WellsClient::connect(addr.clone()).await.unwrap();
    let shards = wells
        .shards(ShardsRequest { well: "web".into() })
        .await
        .unwrap()
        .into_inner()
        .shards;
    assert_eq!(shards.len(), 1);
    assert_eq!((shards[0].entries, shards[0].tier.as_str()), (2, "hot"));
    let err = wells
        .shards(ShardsRequest {
            well: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    node.shutdown().await;
}

/// A frame the node cannot read (bigger than `max_message_bytes`) ends the stream with an error
/// saying so, after the acks of the batches before it; those stay stored, nothing after it is.
#[tokio::test]
async fn an_unreadable_frame_ends_ingest_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = DataNodeConfig {
        insecure: true,
        anonymous_subjects: vec!["test:anonymous".into()],
        admin_subjects: vec!["test:anonymous".into()],
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        admin_listen: String::new(),
        max_message_bytes: 64 << 10,
        max_entry_bytes: 32 << 10,
        ..Default::default()
    };
    let running = tributary_data_node::start(config).await.expect("start");
    running
        .node
        .set_catalog(CatalogView::from_entities(
            1,
            [Entity {
                kind: Some(Kind::Well(Well {
                    name: "all".into(),
                    default_well: true,
                    owner_node: 1,
                    ..Default::default()
                })),
            }],
        ))
        .unwrap();
    let batch = |seq: u64, size: usize| IngestBatch {
        seq,
        entries: vec![entry(1_000 + seq as i64, "t", &"x".repeat(size))],
        batch_id: String::new(),
        traceparent: String::new(),
    };
    let mut c = IngestClient::connect(url(&running)).await.unwrap();
    let mut acks = c
        .write(tokio_stream::iter(vec![
            batch(1, 10),
            batch(2, 200 << 10),
            batch(3, 10),
        ]))
        .await
        .unwrap()
        .into_inner();
    let first = acks.next().await.expect("an ack").expect("batch 1 stored");
    assert_eq!((first.seq, first.stored), (1, 1));
    let end = acks
        .next()
        .await
        .expect("the stream ends with an error, not OK");
    let status = end.expect_err("the unreadable frame is an error");
    assert!(
        status.message().contains("after batch seq 1"),
        "{}",
        status.message()
    );
    assert!(acks.next().await.is_none());
    assert_eq!(query(&url(&running), "all", vec![]).await.len(), 1);
    running.shutdown().await;
}
