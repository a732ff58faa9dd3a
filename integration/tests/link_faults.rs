//! Faults on the data links, through the harness's proxies: a data node cut off from its
//! control plane keeps serving what it owns and catches up after the heal; a ditto link cut
//! mid-transfer shows the error and, healed, delivers every entry once.

use anyhow::Result;
use tributary_integration::streams::file_stream as stream;
use tributary_integration::{wait, Cluster, LinkId, Mode, Server, INGEST_SECRET};
use tributary_proto::v1::{entity::Kind, Entity, StatusRequest, Target, Well, WellEntry};

/// Whether the control plane (as member 1 reports it) counts data node 1 as up.
async fn node_up(c: &Cluster) -> Option<bool> {
    let s = c.cluster(1).ok()?.status(StatusRequest {}).await.ok()?;
    s.into_inner()
        .data_nodes
        .iter()
        .find(|n| n.id == 1)
        .map(|n| n.up)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_node_cut_from_its_control_plane_keeps_serving_and_catches_up() -> Result<()> {
    let c = Cluster::builder("a")
        .tune_members(|m| m.heartbeat_timeout_ms = 1_000)
        .start()
        .await?;
    c.create_stream(stream("S", &["s.>"]), 1).await?;
    c.publish_n(1, "s.a", "before", 10).await?;
    wait::until("data node 1 up", wait::WAIT, || async {
        node_up(&c).await?.then_some(())
    })
    .await?;

    c.partition(&[Server::DataNode(1)], &[Server::Member(1)])?;
    // The operator sees the node go quiet; clients of the node see nothing change.
    wait::until("data node 1 reported down", wait::WAIT, || async {
        (!node_up(&c).await?).then_some(())
    })
    .await?;
    c.publish_n(1, "s.a", "during", 10).await?;
    let i = c.info(1, "S").await?;
    assert_eq!(i.state.map(|s| s.messages), Some(20));
    // A stream placed on the node meanwhile reaches it once the link is back.
    c.create(Entity {
        kind: Some(Kind::Stream(tributary_proto::v1::Stream {
            owner_node: 1,
            ..stream("T", &["t.>"])
        })),
    })
    .await?;

    c.heal_all()?;
    c.wait_stream_served("T", 1).await?;
    c.publish_n(1, "t.a", "after", 5).await?;
    wait::until("data node 1 up again", wait::WAIT, || async {
        node_up(&c).await?.then_some(())
    })
    .await?;
    // The partition was on the proxies: the link from node 1 carried its traffic before.
    assert!(c.net().bytes(LinkId::to_member(1, 1))? > 0);
    c.shutdown().await;
    Ok(())
}

const N: usize = 6_000;

fn well(name: &str, tags: &[&str], default: bool, targets: &[&str]) -> Entity {
    Entity {
        kind: Some(Kind::Well(Well {
            name: name.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            default_well: default,
            ditto_targets: targets.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ditto_link_cut_mid_transfer_shows_the_error_and_delivers_every_entry_once() -> Result<()>
{
    let dst = Cluster::builder("dst").insecure().start().await?;
    dst.create(well("all", &[], true, &[])).await?;
    dst.wait_well_served("all", 1).await?;
    let src = Cluster::builder("src").start().await?;
    src.create(well("src", &["x"], false, &[])).await?;
    src.wait_well_served("src", 1).await?;
    let entries: Vec<WellEntry> = (0..N)
        .map(|i| WellEntry {
            timestamp_ns: 1_700_000_000_000_000_000 + i as i64 * 1_000_000,
            tag: "x".into(),
            data: format!("entry-{i:06}-{}", "p".repeat(90))
                .into_bytes()
                .into(),
            ..Default::default()
        })
        .collect();
    src.ingest(1, entries, 500).await?;

    // ~700 kB through a 200 kB/s link: the transfer is surely going when the link is cut.
    dst.set_links_into(Server::DataNode(1), Mode::Throttle(200_000))?;
    src.create(Entity {
        kind: Some(Kind::Target(Target {
            name: "dr".into(),
            cleartext_endpoints: vec![dst.endpoint(1)?],
            ingest_secret: INGEST_SECRET.into(),
            ..Default::default()
        })),
    })
    .await?;
    src.update(well("src", &["x"], false, &["dr"])).await?;
    wait::until("part of the transfer", wait::WAIT, || async {
        let n = dst.query(1, "all").await.ok()?.len();
        (n > 0).then_some(())
    })
    .await?;
    dst.set_links_into(Server::DataNode(1), Mode::Cut)?;
    let failing = wait::until("the worker to report the cut", wait::WAIT, || async {
        let s = src.ditto_stats(1).await.ok()?;
        s.workers
            .into_iter()
            .find(|w| w.state == "retrying" && !w.last_error.is_empty())
    })
    .await?;
    assert!(failing.entries_behind > 0, "{failing:?}");
    eprintln!(
        "cut with {} of {N} sent: {}",
        failing.entries_sent, failing.last_error
    );

    dst.heal_all()?;
    let got = wait::until("every entry", 2 * wait::WAIT, || async {
        let v = dst.query(1, "all").await.ok()?;
        (v.len() >= N).then_some(v)
    })
    .await?;
    let mut data: Vec<_> = got.iter().map(|e| e.data.clone()).collect();
    data.sort();
    data.dedup();
    assert_eq!(data.len(), N, "an entry is missing");
    assert_eq!(got.len(), N, "an entry arrived twice");
    src.shutdown().await;
    dst.shutdown().await;
    Ok(())
}
