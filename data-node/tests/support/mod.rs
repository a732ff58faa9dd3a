//! A standalone data node for the limits and throttling tests: insecure, a credential-less
//! client acting as admin, one well (`web`, the default) and one stream (`orders`,
//! `orders.>`) set directly in its catalogue view. Each [`connect`] is its own connection.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;
use tempfile::TempDir;
use tonic::transport::{Channel, Endpoint};
use tributary_data_node::{CatalogView, DataNodeConfig, RunningDataNode};
use tributary_proto::v1::{entity::Kind, Entity, Stream, Well};

pub async fn start(dir: &TempDir, tune: impl FnOnce(&mut DataNodeConfig)) -> RunningDataNode {
    let entities = vec![
        Entity {
            kind: Some(Kind::Well(Well {
                name: "web".into(),
                tags: vec!["nginx".into()],
                default_well: true,
                owner_node: 1,
                ..Default::default()
            })),
        },
        Entity {
            kind: Some(Kind::Stream(Stream {
                name: "orders".into(),
                subjects: vec!["orders.>".into()],
                owner_node: 1,
                ..Default::default()
            })),
        },
    ];
    start_with(dir, tune, entities).await
}

/// A node as [`start`] makes it, with `entities` (owned by node 1 to be served here) as its
/// catalogue view.
pub async fn start_with(
    dir: &TempDir,
    tune: impl FnOnce(&mut DataNodeConfig),
    entities: Vec<Entity>,
) -> RunningDataNode {
    let mut config = DataNodeConfig {
        insecure: true,
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        admin_listen: String::new(),
        anonymous_subjects: vec!["test:anonymous".into()],
        admin_subjects: vec!["test:anonymous".into()],
        ..Default::default()
    };
    tune(&mut config);
    let running = tributary_data_node::start(config).await.expect("start");
    let view = CatalogView::from_entities(1, entities);
    running.node.set_catalog(view).expect("catalog");
    running
}

/// The node's gRPC address as a client dials it.
pub fn url(r: &RunningDataNode) -> String {
    format!("http://{}", r.addr)
}

/// A new connection to the node (a tonic channel is one HTTP/2 connection).
pub async fn connect(node: &RunningDataNode) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(format!("http://{}", node.addr))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

/// Polls `check` until it yields a value or `within` passes (then panics naming `what`).
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    tributary_common::wait::until(what, within, check)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}
