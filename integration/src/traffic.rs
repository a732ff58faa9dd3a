//! A little of everything a cluster does, so that every kind of metric has series: a well
//! copied by ditto into another cluster, a stream and its mirror, ingest and publish traffic,
//! and one call that fails (`NotFound`). What the metrics and dashboard tests run.

use crate::entities::entity;
use crate::streams::{caught_up, count, file_stream};
use crate::{Cluster, INGEST_SECRET};
use anyhow::{ensure, Result};
use tributary_proto::v1::{entity::Kind, StreamSource, Target, Well, WellEntry};

/// The well `a` copies into `b` by ditto, the target, and the stream and its mirror.
pub const WELL: &str = "events";
pub const TARGET: &str = "backup";
pub const STREAM: &str = "orders";
pub const MIRROR: &str = "orders-copy";
const TAG: &str = "ev";
const ENTRIES: usize = 200;
const MESSAGES: u64 = 200;

/// On `a`'s data node 1: well [`WELL`] copied by ditto to `b` (an `insecure` cluster: its
/// endpoint is cleartext), stream [`STREAM`] and its mirror [`MIRROR`]; then traffic through
/// all of them, waiting until the copies hold it, and one `Streams.Info` of a stream that
/// does not exist.
pub async fn every_kind(a: &Cluster, b: &Cluster) -> Result<()> {
    b.create(entity(Kind::Well(Well {
        name: "received".into(),
        tags: vec![TAG.into()],
        ..Default::default()
    })))
    .await?;
    b.wait_well_served("received", 1).await?;
    a.create(entity(Kind::Target(Target {
        name: TARGET.into(),
        cleartext_endpoints: vec![b.endpoint(1)?],
        ingest_secret: INGEST_SECRET.into(),
        ..Default::default()
    })))
    .await?;
    a.create(entity(Kind::Well(Well {
        name: WELL.into(),
        tags: vec![TAG.into()],
        ditto_targets: vec![TARGET.into()],
        ..Default::default()
    })))
    .await?;
    a.wait_well_served(WELL, 1).await?;
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as i64;
    let entries = (0..ENTRIES)
        .map(|i| WellEntry {
            timestamp_ns: now_ns - 1_000_000_000 + i as i64,
            tag: TAG.into(),
            data: format!("entry-{i}").into_bytes().into(),
            ..Default::default()
        })
        .collect();
    a.ingest(1, entries, 50).await?;

    a.create_stream(file_stream(STREAM, &["orders.>"]), 1)
        .await?;
    let mut mirror = file_stream(MIRROR, &[]);
    mirror.mirror = Some(StreamSource {
        stream: STREAM.into(),
        ..Default::default()
    });
    a.create_stream(mirror, 1).await?;
    a.publish_n(1, "orders.new", "order", MESSAGES).await?;
    a.wait_info(1, MIRROR, "the mirror to hold every message", |i| {
        count(i) == MESSAGES && caught_up(i)
    })
    .await?;
    b.wait_entries(1, "received", ENTRIES).await?;

    let missing = a.info(1, "no-such-stream").await;
    ensure!(missing.is_err(), "a stream that does not exist answered");
    Ok(())
}
