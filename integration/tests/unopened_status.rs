//! `probe_poison.py` end to end: a well whose cold location its data node cannot open (a
//! relative path under a regular file) shows in `Cluster.Status` — what `tribctl cluster
//! status` prints — as an error of that node's, while the node takes other wells.

use anyhow::{bail, Result};
use tributary_integration::entities::{entity, well};
use tributary_integration::{wait, Cluster};
use tributary_proto::v1::{entity::Kind, StatusRequest, Well, WellEntry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_its_node_cannot_open_shows_in_cluster_status() -> Result<()> {
    let c = Cluster::builder("unopened").insecure().start().await?;
    c.wait_leader().await?;
    std::fs::write(c.dir().join("dn-1").join("afile"), "a regular file\n")?;
    c.create(entity(Kind::Well(Well {
        name: "aaa:poison".into(),
        tags: vec!["pz".into()],
        cold_location: "afile/sub".into(),
        hot_duration_secs: 60,
        ..Default::default()
    })))
    .await?;
    c.create(well("late", &["late"])).await?;
    let cluster = c.cluster(1)?;
    let error = wait::until("the node to report the well", wait::WAIT, || {
        let mut cluster = cluster.clone();
        async move {
            let s = cluster.status(StatusRequest {}).await.ok()?.into_inner();
            s.data_nodes
                .iter()
                .flat_map(|d| &d.stats)
                .find(|st| st.name == "aaa:poison" && !st.error.is_empty())
                .map(|st| st.error.clone())
        }
    })
    .await?;
    if !error.contains("cannot open") {
        bail!("reported as {error:?}");
    }
    // The node goes on: the well created after it takes entries.
    let entries = (1..=5)
        .map(|i| WellEntry {
            timestamp_ns: 1_700_000_000_000_000_000 + i,
            tag: "late".into(),
            data: format!("late-{i}").into_bytes().into(),
            ..Default::default()
        })
        .collect();
    c.ingest(1, entries, 5).await?;
    c.wait_entries(1, "late", 5).await?;
    let s = c.cluster(1)?.status(StatusRequest {}).await?.into_inner();
    tributary_ctl_print(&s);
    c.shutdown().await;
    Ok(())
}

/// What an operator reads (`tribctl cluster status` prints the same lines).
fn tributary_ctl_print(s: &tributary_proto::v1::StatusReply) {
    for d in &s.data_nodes {
        for st in d.stats.iter().filter(|st| !st.error.is_empty()) {
            println!("data node {}: {}: {}", d.id, st.name, st.error);
        }
    }
}
