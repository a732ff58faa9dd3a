//! A 1-member control plane and a data node in-process: registration, assignment through the
//! catalogue watch, tag creation at ingest, and serving on with the control plane down.

use std::future::Future;
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::metadata::MetadataValue;
use tributary_control_plane::ControlPlaneConfig;
use tributary_data_node::{DataNodeConfig, RunningDataNode};
use tributary_proto::v1::{
    catalog_client::CatalogClient, cluster_client::ClusterClient, entity::Kind,
    ingest_client::IngestClient, streams_client::StreamsClient, wells_client::WellsClient, Entity,
    IngestBatch, PublishRequest, QueryRequest, StatusRequest, Stream, Well, WellEntry,
};

/// Polls `check` until it yields a value or the deadline passes.
async fn wait_for<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    tributary_common::wait::until(what, Duration::from_secs(30), check)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn ingest_one(addr: &str, tag: &str, data: &str) -> Result<u64, tonic::Status> {
    let mut c = IngestClient::connect(format!("http://{addr}"))
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let batch = IngestBatch {
        seq: 1,
        entries: vec![WellEntry {
            timestamp_ns: 0,
            tag: tag.into(),
            data: data.to_string().into_bytes().into(),
            ..Default::default()
        }],
        batch_id: String::new(),
        traceparent: String::new(),
    };
    let mut req = tonic::Request::new(tokio_stream::iter(vec![batch]));
    req.metadata_mut().insert(
        tributary_common::grpc::INGEST_SECRET_HEADER,
        MetadataValue::from_static("k"),
    );
    let mut acks = c.write(req).await?.into_inner();
    let ack = acks
        .next()
        .await
        .ok_or_else(|| tonic::Status::internal("no ack"))??;
    Ok(ack.stored)
}

async fn query_tags(addr: &str) -> Vec<String> {
    let mut c = WellsClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let mut s = c
        .query(QueryRequest {
            well: "web".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut tags = Vec::new();
    while let Some(r) = s.next().await {
        tags.extend(r.unwrap().entries.into_iter().map(|e| e.tag));
    }
    tags
}

fn dn_config(dir: &std::path::Path, cp: &str) -> DataNodeConfig {
    DataNodeConfig {
        insecure: true,
        anonymous_subjects: vec!["test:anonymous".into()],
        admin_subjects: vec!["test:anonymous".into()],
        cluster_secret: "test-cluster".into(),
        listen: "127.0.0.1:0".into(),
        data_dir: dir.to_path_buf(),
        admin_listen: String::new(),
        control_plane: cp.into(),
        ingest_secrets: vec!["k".into()],
        heartbeat_interval_ms: 200,
        ..Default::default()
    }
}

#[tokio::test]
async fn assignment_tags_and_serving_with_control_plane_down() {
    let cp_dir = tempfile::tempdir().unwrap();
    let dn_dir = tempfile::tempdir().unwrap();
    let cp = tributary_control_plane::start(ControlPlaneConfig {
        insecure: true,
        cluster_secret: "test-cluster".into(),
        anonymous_subjects: vec!["test:anonymous".into()],
        admin_subjects: vec!["test:anonymous".into()],
        listen: "127.0.0.1:0".into(),
        data_dir: cp_dir.path().to_path_buf(),
        admin_listen: String::new(),
        ..Default::default()
    })
    .await
    .expect("control plane");
    let cp_addr = cp.addr.to_string();
    let dn: RunningDataNode = tributary_data_node::start(dn_config(dn_dir.path(), &cp_addr))
        .await
        .expect("data node");
    let addr = dn.addr.to_string();

    let mut catalog = CatalogClient::connect(format!("http://{cp_addr}"))
        .await
        .unwrap();
    // Registration first, so placement has a node to give the new well to.
    let well = Entity {
        kind: Some(Kind::Well(Well {
            name: "web".into(),
            default_well: true,
            ..Default::default()
        })),
    };
    let stream = Entity {
        kind: Some(Kind::Stream(Stream {
            name: "orders".into(),
            subjects: vec!["orders.>".into()],
            ..Default::default()
        })),
    };
    wait_for("the well to be created and placed", || {
        let (mut c, e) = (catalog.clone(), well.clone());
        async move { c.create(e).await.ok() }
    })
    .await;
    catalog.create(stream).await.unwrap();
    wait_for("the data node to open its well and stream", || {
        let open =
            dn.node.well("default:web").is_some() && dn.node.stream("default:orders").is_some();
        async move { open.then_some(()) }
    })
    .await;

    // A tag never seen: created in the catalogue by the data node, then stored.
    assert_eq!(ingest_one(&addr, "fresh", "a").await.unwrap(), 1);
    assert_eq!(query_tags(&addr).await, vec!["fresh".to_string()]);
    let mut streams = StreamsClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let ack = streams
        .publish(PublishRequest {
            subject: "orders.new".into(),
            data: b"o".to_vec().into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ack.seq, 1);

    // Heartbeats carry the node's per-well and per-stream stats to the control plane.
    let cluster = ClusterClient::connect(format!("http://{cp_addr}"))
        .await
        .unwrap();
    wait_for("heartbeat stats for the well", || {
        let mut c = cluster.clone();
        async move {
            let status = c.status(StatusRequest {}).await.ok()?.into_inner();
            let dn = status.data_nodes.into_iter().find(|d| d.id == 1)?;
            (dn.up
                && dn
                    .stats
                    .iter()
                    .any(|s| s.name == "default:web" && s.entries == 1))
            .then_some(())
        }
    })
    .await;
    drop(cluster);

    // Control plane down: what the node owns keeps working, known tags included.
    cp.shutdown().await;
    assert_eq!(ingest_one(&addr, "fresh", "b").await.unwrap(), 1);
    streams
        .publish(PublishRequest {
            subject: "orders.new".into(),
            data: b"p".to_vec().into(),
            ..Default::default()
        })
        .await
        .unwrap();

    // And after a restart with the control plane still down, from the saved view. Clients
    // go first: their connections hold the old node (and its RocksDB lock) open.
    drop(streams);
    dn.shutdown().await;
    let dn = tributary_data_node::start(dn_config(dn_dir.path(), &cp_addr))
        .await
        .expect("restart");
    let addr = dn.addr.to_string();
    assert_eq!(query_tags(&addr).await.len(), 2);
    assert_eq!(ingest_one(&addr, "fresh", "c").await.unwrap(), 1);
    dn.shutdown().await;
}
