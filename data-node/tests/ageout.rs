//! Ingest → query across an ageout: old shards move to the cold RocksDB under the well's cold
//! location, keep their keys, and queries still see every entry.

use std::time::Duration;
use tokio_stream::StreamExt;
use tributary_data_node::{CatalogView, DataNodeConfig};
use tributary_proto::v1::{
    entity::Kind, ingest_client::IngestClient, wells_client::WellsClient, Entity, IngestBatch,
    QueryRequest, ShardsRequest, Well, WellEntry,
};

const S: i64 = 1_000_000_000;

#[tokio::test]
async fn ingest_then_query_across_an_ageout() {
    let dir = tempfile::tempdir().unwrap();
    let config = DataNodeConfig {
        insecure: true,
        anonymous_subjects: vec!["test:anonymous".into()],
        admin_subjects: vec!["test:anonymous".into()],
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        admin_listen: String::new(),
        maintenance_interval_ms: 100,
        ..Default::default()
    };
    let node = tributary_data_node::start(config).await.unwrap();
    node.node
        .set_catalog(CatalogView::from_entities(
            1,
            [Entity {
                kind: Some(Kind::Well(Well {
                    name: "w".into(),
                    default_well: true,
                    shard_duration_secs: 60,
                    cold_location: "cold".into(),
                    hot_duration_secs: 3600,
                    owner_node: 1,
                    ..Default::default()
                })),
            }],
        ))
        .unwrap();
    let now = tributary_common::time::now_ns();
    // Three entries two hours old (cold after ageout), two from now (stay hot).
    let stamps = [now - 7200 * S, now - 7190 * S, now - 7100 * S, now - S, now];
    let entries = stamps
        .iter()
        .map(|ts| WellEntry {
            timestamp_ns: *ts,
            tag: "t".into(),
            data: b"x".to_vec().into(),
            ..Default::default()
        })
        .collect();
    let addr = format!("http://{}", node.addr);
    let mut ingest = IngestClient::connect(addr.clone()).await.unwrap();
    let batch = IngestBatch {
        seq: 1,
        entries,
        batch_id: String::new(),
        traceparent: String::new(),
    };
    let acks: Vec<_> = ingest
        .write(tokio_stream::iter(vec![batch]))
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert_eq!(acks[0].as_ref().unwrap().stored, 5);

    let mut wells = WellsClient::connect(addr).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let shards = loop {
        let shards = wells
            .shards(ShardsRequest { well: "w".into() })
            .await
            .unwrap()
            .into_inner()
            .shards;
        if shards
            .iter()
            .filter(|s| s.tier == "cold")
            .map(|s| s.entries)
            .sum::<u64>()
            == 3
        {
            break shards;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ageout did not move the old shards: {shards:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        shards
            .iter()
            .filter(|s| s.tier == "hot")
            .map(|s| s.entries)
            .sum::<u64>()
            == 2
    );
    assert!(
        dir.path().join("cold").join("node-1").exists(),
        "cold RocksDB under the cold location"
    );

    let mut s = wells
        .query(QueryRequest {
            well: "w".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    while let Some(r) = s.next().await {
        got.extend(r.unwrap().entries.into_iter().map(|e| e.timestamp_ns));
    }
    assert_eq!(got, stamps.to_vec());
    let mut s = wells
        .query(QueryRequest {
            well: "w".into(),
            from_ns: now - 7195 * S,
            to_ns: now - 10 * S,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    while let Some(r) = s.next().await {
        got.extend(r.unwrap().entries.into_iter().map(|e| e.timestamp_ns));
    }
    assert_eq!(got, vec![stamps[1], stamps[2]]);
    node.shutdown().await;
}
