//! A cluster run as the README says, with the certificates `tribctl certs` makes and nothing
//! shared by hand between its members and data nodes (no `cluster_secret`, no stream secret):
//! the data nodes are known by their certificates, so a ditto worker gets its target's ingest
//! secret and mirrors a well into another cluster, and a stream on one data node is mirrored
//! on another.

use anyhow::Result;
use tributary_integration::entities::{entity, well};
use tributary_integration::streams::{caught_up, count, file_stream};
use tributary_integration::{Cluster, INGEST_SECRET};
use tributary_proto::v1::{entity::Kind, EntityKind, EntityRef, StreamSource, Target, WellEntry};

/// The data node the control plane placed well `name` on.
async fn owner_of(c: &Cluster, name: &str) -> Result<u64> {
    let r = EntityRef {
        kind: EntityKind::Well as i32,
        name: name.into(),
    };
    match c
        .catalog(1)?
        .get(r)
        .await?
        .into_inner()
        .entity
        .and_then(|e| e.kind)
    {
        Some(Kind::Well(w)) => Ok(w.owner_node),
        other => anyhow::bail!("well {name}: {other:?}"),
    }
}

/// TLS (the harness's default) and no cluster token anywhere.
async fn cluster(name: &str, data_nodes: u64) -> Result<Cluster> {
    Cluster::builder(name)
        .data_nodes(data_nodes)
        .tune_members(|c| c.cluster_secret.clear())
        .tune_data_nodes(|c| {
            c.cluster_secret.clear();
            c.stream_secrets.clear();
        })
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ditto_and_mirrors_work_on_certificates_alone() -> Result<()> {
    let dst = cluster("dst", 1).await?;
    dst.create(well("copy", &["t"])).await?;
    let src = cluster("src", 2).await?;

    // A stream on one data node, mirrored by a stream placed on the other.
    src.create_stream(file_stream("ORIGIN", &["o.>"]), 1)
        .await?;
    let mut mirror = file_stream("COPY", &[]);
    mirror.mirror = Some(StreamSource {
        stream: "ORIGIN".into(),
        ..Default::default()
    });
    src.create_stream(mirror, 2).await?;
    src.publish_n(1, "o.x", "m", 20).await?;
    src.wait_info(2, "COPY", "20 mirrored", |i| caught_up(i) && count(i) == 20)
        .await?;

    // A well mirrored into the other cluster with that cluster's ingest secret, which the
    // worker reads from the catalogue as a data node of its own cluster.
    src.create(entity(Kind::Target(Target {
        name: "dr".into(),
        encrypted_endpoints: vec![dst.endpoint(1)?],
        ingest_secret: INGEST_SECRET.into(),
        ca_pem: dst.ca_pem(),
        ..Default::default()
    })))
    .await?;
    let mut w = well("copy", &["t"]);
    if let Some(Kind::Well(x)) = &mut w.kind {
        x.ditto_targets = vec!["dr".into()];
    }
    src.create(w).await?;
    let owner = owner_of(&src, "copy").await?;
    src.wait_well_served("copy", owner).await?;
    let entries: Vec<WellEntry> = (0..30)
        .map(|i| WellEntry {
            timestamp_ns: 1_700_000_000_000_000_000 + i,
            tag: "t".into(),
            data: format!("e{i}").into_bytes().into(),
            ..Default::default()
        })
        .collect();
    src.ingest(owner, entries, 10).await?;
    let got = match dst.wait_entries(1, "copy", 30).await {
        Ok(g) => g,
        Err(e) => anyhow::bail!("{e}; ditto: {:?}", src.ditto_stats(owner).await?.workers),
    };
    assert_eq!(got.len(), 30);
    src.shutdown().await;
    dst.shutdown().await;
    Ok(())
}
