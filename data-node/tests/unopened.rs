//! A well the node cannot open (issue 11, `probe_poison.py`: a cold location under a regular
//! file kept its data node from starting at all, even after the well was deleted): the node
//! starts, serves everything else, and reports the well — in `/health`, in its heartbeat's
//! stats (what `cluster status` shows) and in the error of every call naming it — until it
//! opens (tried again on each maintenance round) or is deleted.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tributary_data_node::{CatalogView, DataNodeConfig, RunningDataNode};
use tributary_proto::v1::{
    entity::Kind, streams_client::StreamsClient, wells_client::WellsClient, Entity, EntityKind,
    EventType, ShardsRequest, Stream, StreamInfoRequest, WatchEvent, Well,
};

const ME: &str = "test:anonymous";

async fn start(dir: &Path) -> RunningDataNode {
    let config = DataNodeConfig {
        insecure: true,
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        data_dir: dir.to_path_buf(),
        maintenance_interval_ms: 100,
        anonymous_subjects: vec![ME.into()],
        admin_subjects: vec![ME.into()],
        ..Default::default()
    };
    // The last run's storage may still be closing (its last references going).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tributary_data_node::start(config.clone()).await {
            Ok(n) => return n,
            Err(e) if Instant::now() < deadline => {
                eprintln!("retrying start: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the node does not start: {e}"),
        }
    }
}

fn view() -> CatalogView {
    let well = |name: &str, tag: &str, cold: &str| Entity {
        kind: Some(Kind::Well(Well {
            name: name.into(),
            tags: vec![tag.into()],
            cold_location: cold.into(),
            hot_duration_secs: if cold.is_empty() { 0 } else { 60 },
            owner_node: 1,
            ..Default::default()
        })),
    };
    CatalogView::from_entities(
        1,
        [
            well("good", "good", ""),
            // Relative to the data dir, under a regular file: RocksDB cannot be created there.
            well("poison", "pz", "afile/sub"),
            Entity {
                kind: Some(Kind::Stream(Stream {
                    name: "S".into(),
                    subjects: vec!["s.>".into()],
                    owner_node: 1,
                    ..Default::default()
                })),
            },
        ],
    )
}

async fn http(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: n\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.expect("read");
    let code = raw.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (code, body)
}

async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    f: impl FnMut() -> F,
) -> T {
    tributary_common::wait::until(what, Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn shards(n: &RunningDataNode, well: &str) -> Result<usize, tonic::Status> {
    let mut c = WellsClient::connect(format!("http://{}", n.addr))
        .await
        .expect("connect");
    c.shards(ShardsRequest { well: well.into() })
        .await
        .map(|r| r.into_inner().shards.len())
}

/// Serving the well and stream that open, reporting the one that does not.
async fn serves_the_rest_and_reports(n: &RunningDataNode) {
    shards(n, "good").await.expect("the good well is served");
    let mut streams = StreamsClient::connect(format!("http://{}", n.addr))
        .await
        .expect("connect");
    streams
        .info(StreamInfoRequest { stream: "S".into() })
        .await
        .expect("the stream is served");
    let err = shards(n, "poison").await.expect_err("the poisoned well");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("default:poison cannot be opened"),
        "{err:?}"
    );
    let stats = n.node.owned_stats();
    let line = stats.iter().find(|s| s.name == "default:poison");
    assert!(
        line.is_some_and(|s| s.kind == EntityKind::Well as i32 && s.error.contains("cannot open")),
        "heartbeat stats: {stats:?}"
    );
    let admin = n.admin_addr.expect("admin listener");
    let (code, body) = until("/health to list the well", || async {
        let (code, body) = http(admin, "/health").await;
        body.contains("well default:poison: cannot open")
            .then_some((code, body))
    })
    .await;
    assert_eq!(code, 200, "the node is up, degraded: {body}");
    assert!(body.starts_with("degraded"), "{body}");
    assert_eq!(http(admin, "/ready").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_that_cannot_be_opened_is_reported_while_the_node_serves_the_rest() {
    let dir = TempDir::new().expect("tempdir");
    std::fs::write(dir.path().join("afile"), "a regular file\n").expect("file");
    let n = start(dir.path()).await;
    n.node.set_catalog(view()).expect("the catalogue is taken");
    serves_the_rest_and_reports(&n).await;

    // The probe's second half: the saved view holds the well; the node starts all the same.
    n.shutdown().await;
    let n = start(dir.path()).await;
    serves_the_rest_and_reports(&n).await;

    // Once the location can be made, the next maintenance round opens the well.
    std::fs::remove_file(dir.path().join("afile")).expect("rm");
    until("the well to open", || async {
        shards(&n, "poison").await.ok()
    })
    .await;
    let admin = n.admin_addr.expect("admin listener");
    until("/health to be ok", || async {
        (http(admin, "/health").await == (200, "ok".to_string())).then_some(())
    })
    .await;
    assert!(n.node.unopened().is_empty());
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_well_that_cannot_be_opened_clears_it() {
    let dir = TempDir::new().expect("tempdir");
    std::fs::write(dir.path().join("afile"), "a regular file\n").expect("file");
    let n = start(dir.path()).await;
    n.node.set_catalog(view()).expect("the catalogue is taken");
    assert_eq!(n.node.unopened().len(), 1, "{:?}", n.node.unopened());
    n.node
        .apply_event(WatchEvent {
            revision: 2,
            r#type: EventType::Delete as i32,
            kind: EntityKind::Well as i32,
            name: "default:poison".into(),
            entity: None,
        })
        .expect("the delete applies");
    assert!(n.node.unopened().is_empty(), "{:?}", n.node.unopened());
    let err = shards(&n, "poison").await.expect_err("deleted");
    assert_eq!(err.code(), Code::NotFound);
    let admin = n.admin_addr.expect("admin listener");
    until("/health to be ok", || async {
        (http(admin, "/health").await == (200, "ok".to_string())).then_some(())
    })
    .await;
    n.shutdown().await;
}
