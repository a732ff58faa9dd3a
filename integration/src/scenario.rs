//! The picture the topology tests draw: the reference replication scenario (JetStream's
//! ORDERS and RETURNS, ARCHIVE sourcing both, REPORT mirroring ARCHIVE) and one ditto edge,
//! well `logs` copied to target `dr` in another cluster.

use crate::streams::file_stream;
use crate::{wait, Cluster, INGEST_SECRET};
use anyhow::Result;
use std::time::{SystemTime, UNIX_EPOCH};
use tributary_proto::v1::{entity::Kind, Entity, StreamSource, Target, Well, WellEntry};

/// The four streams, origins first.
pub const STREAMS: [&str; 4] = ["ORDERS", "RETURNS", "ARCHIVE", "REPORT"];
/// The well with a ditto target, and the target.
pub const WELL: &str = "logs";
pub const TARGET: &str = "dr";

fn origin(name: &str) -> StreamSource {
    StreamSource {
        stream: name.into(),
        ..Default::default()
    }
}

/// `dst` takes entries in a default well `all`; on `src`, ORDERS and RETURNS on data node 1,
/// ARCHIVE and REPORT on data node `copies_on` (another node puts the sources' copying on
/// the link in front of node 1, which a test can slow), well `logs` on node 1 with target
/// `dr` (`dst`'s data node 1) and `entries` entries; returns once ARCHIVE and REPORT are
/// served and `dst` received the entries.
pub async fn create(src: &Cluster, dst: &Cluster, copies_on: u64, entries: usize) -> Result<()> {
    dst.create(Entity {
        kind: Some(Kind::Well(Well {
            name: "all".into(),
            default_well: true,
            ..Default::default()
        })),
    })
    .await?;
    dst.wait_well_served("all", 1).await?;

    src.create_stream(file_stream("ORDERS", &["ORDERS.>"]), 1)
        .await?;
    src.create_stream(file_stream("RETURNS", &["RETURNS.>"]), 1)
        .await?;
    let mut archive = file_stream("ARCHIVE", &["ARCHIVE.>"]);
    archive.sources = vec![origin("ORDERS"), origin("RETURNS")];
    src.create_stream(archive, copies_on).await?;
    let mut report = file_stream("REPORT", &[]);
    report.mirror = Some(origin("ARCHIVE"));
    src.create_stream(report, copies_on).await?;

    src.create(Entity {
        kind: Some(Kind::Target(Target {
            name: TARGET.into(),
            cleartext_endpoints: vec![dst.endpoint(1)?],
            ingest_secret: INGEST_SECRET.into(),
            ..Default::default()
        })),
    })
    .await?;
    src.create(Entity {
        kind: Some(Kind::Well(Well {
            name: WELL.into(),
            tags: vec!["app".into()],
            ditto_targets: vec![TARGET.into()],
            owner_node: 1,
            ..Default::default()
        })),
    })
    .await?;
    src.wait_well_served(WELL, 1).await?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as i64;
    let batch = (0..entries)
        .map(|i| WellEntry {
            timestamp_ns: now - 1_000_000_000 + i as i64,
            tag: "app".into(),
            data: format!("entry {i}").into_bytes().into(),
            ..Default::default()
        })
        .collect();
    src.ingest(1, batch, 100).await?;
    dst.wait_entries(1, "all", entries).await?;
    // The worker's stats reach the board on the stats interval.
    wait::until("the ditto worker's stats", wait::WAIT, || async {
        let s = src.ditto_stats(1).await.ok()?;
        s.workers
            .iter()
            .any(|w| w.target.ends_with(TARGET))
            .then_some(())
    })
    .await
}
