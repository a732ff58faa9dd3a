//! Background cleanup on a real data node (its own test binary: the slowest-write gauge the
//! coordinator throttles on is process-wide). Under an ingest load whose writes are slower
//! than `timer-threshold` no credit is issued and nothing is cleaned; once the load stops the
//! coordinator catches up: the progress of a removed ditto target, of a deleted well and of a
//! removed source goes, the range of a dropped stream is compacted, while every live
//! progress record and all data stay. The coordinator is driven by piggyback commands
//! through a member.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::sync::Arc;
use tributary_data_node::storage::keys::meta;
use tributary_data_node::storage::streams::replicate::SourceProgress;
use tributary_integration::admin_http::Admin;
use tributary_integration::cluster::Cluster;
use tributary_integration::entities::entity;
use tributary_integration::net::Server;
use tributary_integration::wait;
use tributary_proto::v1::{
    entity::Kind, StorageType, Stream, StreamSource, Target, Well, WellEntry,
};

const TOKEN: &str = "devops-token-of-the-cleanup-test";
const CLEANUP: &str = "/user/persistenceCleanup";

async fn piggyback(admin: &Admin<'_>, command: Value) -> Result<Value> {
    let body = json!({"targetActorSelection": CLEANUP, "headers": {"aggregate": false},
                      "piggybackCommand": command});
    let (status, v) = admin
        .json(
            "POST",
            "/devops/piggyback/data-node/1",
            Some(TOKEN),
            Some(&body),
        )
        .await?;
    anyhow::ensure!(status == 200, "{v}");
    Ok(v)
}

async fn health(admin: &Admin<'_>) -> Result<Value> {
    let v = piggyback(admin, json!({"type": "status.commands:retrieveHealth"})).await?;
    Ok(v["statusInfo"]["details"][0]["INFO"].clone())
}

fn entries(n: usize) -> Vec<WellEntry> {
    (0..n)
        .map(|i| WellEntry {
            timestamp_ns: 1_700_000_000_000_000_000 + i as i64,
            tag: "orders".into(),
            data: vec![b'x'; 512].into(),
            ..Default::default()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cleanup_waits_for_quiet_writes_then_removes_only_stale_progress() -> Result<()> {
    let secrets = tempfile::tempdir()?;
    let token_file = secrets.path().join("devops-token");
    std::fs::write(&token_file, TOKEN)?;
    let (tf, tf2) = (
        token_file.display().to_string(),
        token_file.display().to_string(),
    );
    let c = Cluster::builder("clean")
        .members(1)
        .data_nodes(1)
        .tune_members(move |m| {
            m.admin_listen = "127.0.0.1:0".into();
            m.auth.devops_token_file = tf.clone();
        })
        .tune_data_nodes(move |d| {
            d.admin_listen = "127.0.0.1:0".into();
            d.auth.devops_token_file = tf2.clone();
            d.cleanup.enabled = false;
            d.cleanup.interval = std::time::Duration::from_millis(200);
            d.cleanup.credits_per_batch = 1;
            d.cleanup.reads_per_query = 1;
        })
        .start()
        .await?;
    c.wait_leader().await?;
    let ca = c.ca_pem();
    let admin = Admin {
        addr: c.addrs(Server::Member(1))?.admin.context("member admin")?,
        ca_pem: Some(&ca),
    };
    let node = c.data_node(1)?.node.clone();

    // A well with a live target (unreachable: its worker only retries), a sourced stream.
    c.create(entity(Kind::Target(Target {
        name: "t".into(),
        cleartext_endpoints: vec!["127.0.0.1:9".into()],
        ingest_secret: "s".into(),
        ..Default::default()
    })))
    .await?;
    c.create(entity(Kind::Well(Well {
        name: "w".into(),
        tags: vec!["orders".into()],
        ditto_targets: vec!["t".into()],
        owner_node: 1,
        ..Default::default()
    })))
    .await?;
    c.wait_well_served("w", 1).await?;
    let file = StorageType::File as i32;
    c.create_stream(
        Stream {
            name: "S0".into(),
            subjects: vec!["S0.>".into()],
            storage: file,
            ..Default::default()
        },
        1,
    )
    .await?;
    let mut copy = Stream {
        name: "COPY".into(),
        storage: file,
        ..Default::default()
    };
    copy.sources = vec![StreamSource {
        stream: "S0".into(),
        ..Default::default()
    }];
    c.create_stream(copy, 1).await?;
    c.publish_n(1, "S0.x", "m", 10).await?;
    c.wait_caught_up(1, "COPY", 10).await?;

    // Progress records: live ones, and stale ones no worker will read again.
    let live = meta::ditto_progress("default:w", "default:t");
    let stale = [
        meta::ditto_progress("default:w", "default:removed"),
        meta::ditto_progress("default:gone", "default:t"),
    ];
    for k in std::iter::once(&live).chain(stale.iter()) {
        node.put_meta(k, b"progress".to_vec())?;
    }
    let store = node.stream("default:COPY").context("COPY")?;
    let old_origin = "|default:OLD|";
    store.append_sourced(
        Vec::new(),
        old_origin,
        SourceProgress {
            next_seq: 7,
            incarnation: 1,
        },
    )?;
    let origins = |store: &Arc<tributary_data_node::storage::streams::StreamStore>| {
        store.source_progress_keys().expect("progress keys")
    };
    assert_eq!(origins(&store).len(), 2, "{:?}", origins(&store));

    // A stream dropped with its messages: its range is marked for compaction.
    let gone = Stream {
        name: "GONE".into(),
        subjects: vec!["GONE.>".into()],
        storage: file,
        ..Default::default()
    };
    c.create_stream(gone, 1).await?;
    c.publish_n(1, "GONE.x", "m", 10).await?;
    c.delete_stream("GONE").await?;
    wait::until("GONE dropped", wait::WAIT, || async {
        node.stream("default:GONE").is_none().then_some(())
    })
    .await?;
    // Marked right after its records go (cleanup is off here, so the mark stays).
    wait::until("the dropped range marked", wait::WAIT, || async {
        (node.compaction_marks(&[], 10).ok()?.len() == 1).then_some(())
    })
    .await?;

    // An ingest load whose writes are slower than the threshold: no credits.
    let addr = c.data_addr(1)?;
    let batches = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let loaders: Vec<_> = (0..2)
        .map(|_| {
            let (addr, batches) = (addr.clone(), batches.clone());
            tokio::spawn(async move {
                loop {
                    let r = tributary_integration::wells::ingest(
                        &addr,
                        tributary_integration::cluster::INGEST_SECRET,
                        entries(200),
                        100,
                    )
                    .await;
                    if let Err(e) = r {
                        return e.to_string();
                    }
                    batches.fetch_add(2, std::sync::atomic::Ordering::SeqCst);
                }
            })
        })
        .collect();
    wait::until("the load writing", wait::WAIT, || async {
        (batches.load(std::sync::atomic::Ordering::SeqCst) >= 4).then_some(())
    })
    .await?;
    let on = json!({"type": "common.commands:modifyConfig",
                    "config": {"enabled": true, "timer-threshold": "1us", "quiet-period": "100ms"}});
    let changed = piggyback(&admin, on).await?;
    assert_eq!(changed["config"]["timer-threshold"], "1us", "{changed}");
    let h = wait::until("five throttled intervals", wait::WAIT, || async {
        health(&admin)
            .await
            .ok()
            .filter(|h| h["throttled-intervals"].as_u64() >= Some(5))
    })
    .await?;
    assert_eq!(h["credits"], 0, "credits under a slow write load: {h}");
    for k in &stale {
        assert!(node.get_meta(k)?.is_some(), "cleaned under load");
    }
    for l in &loaders {
        l.abort();
    }

    // The load stops: it catches up, one record per credit, and keeps what is live.
    let h = wait::until("a whole pass", wait::WAIT, || async {
        health(&admin)
            .await
            .ok()
            .filter(|h| h["passes"].as_u64() >= Some(1))
    })
    .await?;
    assert!(h["removed"].as_u64() >= Some(4), "{h}");
    assert!(
        node.compaction_marks(&[], 10)?.is_empty(),
        "the dropped range was compacted"
    );
    for k in &stale {
        assert!(node.get_meta(k)?.is_none(), "stale progress left: {h}");
    }
    assert!(node.get_meta(&live)?.is_some(), "live progress removed");
    assert_eq!(
        origins(&store),
        ["|default:S0|"],
        "only the live origin's progress stays"
    );
    c.publish_n(1, "S0.x", "m", 5).await?;
    c.wait_caught_up(1, "COPY", 15).await?;
    assert!(c.query(1, "w").await?.len() >= 200, "the well's data stays");

    let config = piggyback(&admin, json!({"type": "common.commands:retrieveConfig"})).await?;
    assert_eq!(config["config"]["credits-per-batch"], 1, "{config}");
    let bad = json!({"targetActorSelection": CLEANUP,
                     "piggybackCommand": {"type": "common.commands:modifyConfig", "config": {"speed": 1}}});
    let (status, v) = admin
        .json(
            "POST",
            "/devops/piggyback/data-node/1",
            Some(TOKEN),
            Some(&bad),
        )
        .await?;
    assert!(status == 400 && v["status"] == 400, "{v}");
    assert!(v["message"].as_str().unwrap_or("").contains("speed"), "{v}");
    c.shutdown().await;
    Ok(())
}

/// A member trims its watch-event log's revisions older than `history_retention`: a watcher
/// from before them is told to list again, a current one goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_trims_watch_history_older_than_its_retention() -> Result<()> {
    let secrets = tempfile::tempdir()?;
    let token_file = secrets.path().join("devops-token");
    std::fs::write(&token_file, TOKEN)?;
    let tf = token_file.display().to_string();
    let c = Cluster::builder("history")
        .members(1)
        .data_nodes(1)
        .tune_members(move |m| {
            m.admin_listen = "127.0.0.1:0".into();
            m.auth.devops_token_file = tf.clone();
            m.cleanup.history_retention = std::time::Duration::from_secs(1);
            m.cleanup.interval = std::time::Duration::from_millis(100);
            m.cleanup.quiet_period = std::time::Duration::from_millis(100);
            m.cleanup.timer_threshold = std::time::Duration::from_secs(10);
        })
        .start()
        .await?;
    c.wait_leader().await?;
    let ca = c.ca_pem();
    let admin = Admin {
        addr: c.addrs(Server::Member(1))?.admin.context("member admin")?,
        ca_pem: Some(&ca),
    };
    for i in 0..5 {
        c.create(tributary_integration::entities::stream(
            &format!("H{i}"),
            &[&format!("H{i}.>")],
        ))
        .await?;
    }
    let body = json!({"targetActorSelection": CLEANUP, "headers": {"aggregate": false},
                      "piggybackCommand": {"type": "status.commands:retrieveHealth"}});
    let h = wait::until("old watch history trimmed", wait::WAIT, || async {
        let (status, v) = admin
            .json(
                "POST",
                "/devops/piggyback/control-plane/1",
                Some(TOKEN),
                Some(&body),
            )
            .await
            .ok()?;
        let info = v["statusInfo"]["details"][0]["INFO"].clone();
        (status == 200 && info["removed"].as_u64() >= Some(5)).then_some(info)
    })
    .await?;
    assert_eq!(h["error"], "", "{h}");
    let watched = c
        .catalog(1)?
        .watch(tributary_proto::v1::WatchRequest { from_revision: 1 })
        .await;
    let first = match watched {
        Ok(s) => {
            use tokio_stream::StreamExt;
            s.into_inner().next().await.transpose().map(|_| ())
        }
        Err(e) => Err(e),
    };
    let e = first.expect_err("watching from a trimmed revision");
    assert_eq!(e.code(), tonic::Code::OutOfRange, "{e:?}");
    // The data node, watching all along, still follows: a new stream is served.
    c.create_stream(
        Stream {
            name: "LATE".into(),
            subjects: vec!["LATE.>".into()],
            ..Default::default()
        },
        1,
    )
    .await?;
    c.shutdown().await;
    Ok(())
}

/// A member compacts its Raft log's entries applied longer than `history_retention` ago
/// (its size thresholds are far off here), and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_compacts_its_raft_log_older_than_its_retention() -> Result<()> {
    let c = Cluster::builder("raftlog")
        .members(1)
        .data_nodes(1)
        .tune_members(|m| {
            m.raft.snapshot_entries = 1_000_000;
            m.cleanup.history_retention = std::time::Duration::from_secs(1);
            m.cleanup.interval = std::time::Duration::from_millis(100);
            m.cleanup.quiet_period = std::time::Duration::from_millis(100);
            m.cleanup.timer_threshold = std::time::Duration::from_secs(10);
        })
        .start()
        .await?;
    c.wait_leader().await?;
    for i in 0..5 {
        c.create(tributary_integration::entities::stream(
            &format!("R{i}"),
            &[&format!("R{i}.>")],
        ))
        .await?;
    }
    let applied = c.member(1)?.node.state().applied;
    let first = wait::until("the log compacted past the creates", wait::WAIT, || async {
        let first = c.member(1).ok()?.node.log_first_index();
        (first > applied).then_some(first)
    })
    .await?;
    assert!(first <= c.member(1)?.node.state().applied + 1);
    // The member goes on: a new stream is created and served.
    c.create_stream(
        Stream {
            name: "AFTER".into(),
            subjects: vec!["AFTER.>".into()],
            ..Default::default()
        },
        1,
    )
    .await?;
    c.shutdown().await;
    Ok(())
}
