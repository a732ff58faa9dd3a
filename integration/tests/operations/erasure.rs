//! Namespace erasure as Eclipse Ditto's four piggyback commands, on real processes, while a
//! publish and an ingest load run into the namespace and another namespace keeps serving:
//! block refuses them everywhere, shutdown stops the namespace's mirror and lets its
//! subscribers go, purge deletes its entities and data, unblock lets it start empty.
//! Afterwards no RocksDB of any member or data node holds a key of it (read as RocksDB
//! secondaries of the running servers).

use super::http::call;
use super::piggyback::TOKEN;
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tributary_integration::admin_http::Admin;
use tributary_integration::cluster::Cluster;
use tributary_integration::entities::entity;
use tributary_integration::net::Server;
use tributary_integration::streams::count;
use tributary_integration::wait;
use tributary_proto::v1::{
    entity::Kind, EntityKind, StorageType, Stream, StreamSource, Well, WellEntry,
};

pub const MEDIATOR: &str = "/system/distributedPubSubMediator";

fn entries(tag: &str, n: usize) -> Vec<WellEntry> {
    (0..n)
        .map(|i| WellEntry {
            timestamp_ns: 1_700_000_000_000_000_000 + i as i64,
            tag: tag.into(),
            data: format!("{tag} {i}").into_bytes().into(),
            ..Default::default()
        })
        .collect()
}

fn well(name: &str, tag: &str, owner: u64) -> tributary_proto::v1::Entity {
    entity(Kind::Well(Well {
        name: name.into(),
        tags: vec![tag.into()],
        owner_node: owner,
        ..Default::default()
    }))
}

pub fn stream(name: &str, subjects: &[&str]) -> Stream {
    Stream {
        name: name.into(),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        storage: StorageType::File as i32,
        ..Default::default()
    }
}

/// One erasure step through member 1's admin listener; every instance's answer.
async fn step(admin: &Admin<'_>, command: Value) -> Result<Value> {
    let body = json!({"targetActorSelection": MEDIATOR, "headers": {"aggregate": true},
                      "piggybackCommand": command});
    let (status, all) = call(
        admin,
        "POST",
        "/devops/piggyback?timeout=30s",
        Some(TOKEN),
        Some(&body),
    )
    .await?;
    ensure!(status == 200, "{all}");
    for service in ["control-plane", "data-node"] {
        let instances = all[service].as_object().context("instances")?;
        ensure!(!instances.is_empty(), "no {service} answered: {all}");
        for (id, a) in instances {
            ensure!(a["status"] == 200, "{service} {id} did not complete: {all}");
            ensure!(a["successful"] != false, "{service} {id} failed: {all}");
        }
    }
    Ok(all)
}

/// Every key (and value) of every column family of the RocksDB at `db`, read as a secondary
/// instance (the server keeps running and holds the primary).
type Stored = Vec<(String, Vec<u8>, Vec<u8>)>;

fn keys(db: &Path, scratch: &Path) -> Result<Stored> {
    let mut opts = rocksdb::Options::default();
    // A secondary keeps every table file open.
    opts.set_max_open_files(-1);
    let cfs = rocksdb::DB::list_cf(&opts, db)?;
    let secondary = rocksdb::DB::open_cf_as_secondary(&opts, db, scratch, &cfs)?;
    secondary.try_catch_up_with_primary()?;
    let mut out = Vec::new();
    for name in &cfs {
        let cf = secondary.cf_handle(name).context("column family")?;
        for item in secondary.iterator_cf(cf, rocksdb::IteratorMode::Start) {
            let (k, v) = item?;
            out.push((name.clone(), k.to_vec(), v.to_vec()));
        }
    }
    Ok(out)
}

/// The node-local ids of acme's wells and streams (`well-id/acme:…` → id): the prefix of
/// their keys in the data spaces.
fn acme_ids(stored: &Stored) -> Vec<Vec<u8>> {
    stored
        .iter()
        .filter(|(cf, k, _)| {
            cf == "meta" && (k.starts_with(b"well-id/acme:") || k.starts_with(b"stream-id/acme:"))
        })
        .map(|(_, _, v)| v.clone())
        .collect()
}

fn names_acme(stored: &Stored) -> Vec<String> {
    stored
        .iter()
        .filter(|(_, k, _)| k.windows(5).any(|w| w == b"acme:"))
        .map(|(cf, k, _)| format!("{cf}: {}", String::from_utf8_lossy(k)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn erasing_a_namespace_under_load_leaves_nothing_of_it() -> Result<()> {
    let secrets = tempfile::tempdir()?;
    let token_file = secrets.path().join("devops-token");
    std::fs::write(&token_file, TOKEN)?;
    let (tf, tf2) = (
        token_file.display().to_string(),
        token_file.display().to_string(),
    );
    let c = Cluster::builder("erase")
        .members(3)
        .data_nodes(2)
        .member_processes()
        .data_node_processes()
        .tune_members(move |m| {
            m.admin_listen = "127.0.0.1:0".into();
            m.auth.devops_token_file = tf.clone();
        })
        .tune_data_nodes(move |d| {
            d.admin_listen = "127.0.0.1:0".into();
            d.auth.devops_token_file = tf2.clone();
        })
        .start()
        .await?;
    c.wait_leader().await?;
    let ca = c.ca_pem();
    let admin = Admin {
        addr: c
            .addrs(Server::Member(1))?
            .admin
            .context("member 1 admin")?,
        ca_pem: Some(&ca),
    };

    // acme: a well and a stream on data node 1, a mirror of it on data node 2.
    c.create(well("acme:orders", "orders", 1)).await?;
    c.wait_well_served("acme:orders", 1).await?;
    c.create_stream(stream("acme:ORDERS", &["ACME.>"]), 1)
        .await?;
    let mut copy = stream("acme:COPY", &[]);
    copy.mirror = Some(StreamSource {
        stream: "acme:ORDERS".into(),
        ..Default::default()
    });
    c.create_stream(copy, 2).await?;
    // other: the same on the same nodes, which must not notice.
    c.create(well("other:logs", "logs", 1)).await?;
    c.wait_well_served("other:logs", 1).await?;
    c.create_stream(stream("other:EVENTS", &["EV.>"]), 1)
        .await?;
    c.ingest(1, entries("orders", 100), 50).await?;
    c.ingest(1, entries("logs", 100), 50).await?;
    c.publish_n(1, "ACME.new", "ORDER", 50).await?;
    c.wait_caught_up(2, "acme:COPY", 50).await?;

    let scratch = tempfile::tempdir()?;
    let mut ids = Vec::new();
    for k in [1, 2] {
        let before = keys(
            &c.dir().join(format!("dn-{k}")).join("db"),
            &scratch.path().join(format!("before-{k}")),
        )?;
        assert!(
            !names_acme(&before).is_empty(),
            "acme is stored on data node {k}"
        );
        ids.push(acme_ids(&before));
    }
    assert!(ids.iter().all(|i| !i.is_empty()), "{ids:?}");

    // A reader of acme's stream, tailing it.
    let mut reader = tributary_integration::streams::client(&c.data_addr(1)?)?
        .subscribe(tributary_proto::v1::SubscribeRequest {
            stream: "acme:ORDERS".into(),
            start_seq: 1,
            batch: 16,
            ..Default::default()
        })
        .await?
        .into_inner();
    let reading = tokio::spawn(async move {
        use tokio_stream::StreamExt;
        let mut got = 0usize;
        while let Some(ev) = reader.next().await {
            match ev {
                Ok(ev) => got += ev.messages.len(),
                Err(e) => return (got, e.message().to_string()),
            }
        }
        (got, "ended".to_string())
    });

    // Loads into acme (until refused) and into other (all along).
    let dn1 = c.data_addr(1)?;
    let (publish_load, ingest_load) = {
        let (a, b) = (dn1.clone(), dn1.clone());
        (
            tokio::spawn(async move {
                loop {
                    if let Err(e) =
                        tributary_integration::streams::publish_n(&a, "ACME.new", "LOAD", 20).await
                    {
                        return e.to_string();
                    }
                }
            }),
            tokio::spawn(async move {
                loop {
                    let r = tributary_integration::wells::ingest(
                        &b,
                        tributary_integration::cluster::INGEST_SECRET,
                        entries("orders", 20),
                        10,
                    )
                    .await;
                    if let Err(e) = r {
                        return e.to_string();
                    }
                }
            }),
        )
    };
    let served = Arc::new(AtomicU64::new(0));
    let other_load = {
        let (a, served) = (dn1.clone(), served.clone());
        tokio::spawn(async move {
            loop {
                let r = tributary_integration::streams::publish_n(&a, "EV.new", "EVENT", 10).await;
                if let Err(e) = r {
                    return e.to_string();
                }
                served.fetch_add(10, Ordering::SeqCst);
            }
        })
    };

    // 1. block: both loads are refused, naming the namespace; so is the catalogue.
    let blocked = step(
        &admin,
        json!({"type": "namespaces.commands:blockNamespace", "namespace": "acme"}),
    )
    .await?;
    assert_eq!(
        blocked["control-plane"]["2"]["type"], "namespaces.responses:blockNamespace",
        "{blocked}"
    );
    for load in [publish_load, ingest_load] {
        let why = tokio::time::timeout(wait::WAIT, load).await??;
        assert!(why.contains("namespace acme is blocked"), "{why}");
    }
    let got = c
        .catalog(2)?
        .get(tributary_proto::v1::EntityRef {
            kind: EntityKind::Well as i32,
            name: "acme:orders".into(),
        })
        .await;
    let refused = got.expect_err("a blocked namespace's well is not read");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    let created = c.create(well("acme:more", "more", 1)).await;
    assert!(
        format!("{created:?}").contains("namespace acme is blocked"),
        "{created:?}"
    );

    // 2. shutdown: the mirror into acme:COPY stops.
    step(
        &admin,
        json!({"type": "common.commands:shutdown",
                        "reason": {"type": "purge-namespace", "details": "acme"}}),
    )
    .await?;
    // The reader of acme's stream is let go.
    let (got, end) = tokio::time::timeout(wait::WAIT, reading).await??;
    assert!(got >= 50, "the reader read {got} messages before: {end}");
    // 3. purge: every resource type of the namespace, successful.
    let purged = step(
        &admin,
        json!({"type": "namespaces.commands:purgeNamespace", "namespace": "acme"}),
    )
    .await?;
    let cat = &purged["control-plane"]["1"]["resourceTypes"];
    for (kind, n) in [("well", 1), ("stream", 2), ("target", 0)] {
        assert_eq!(cat[kind]["successful"], true, "{purged}");
        assert_eq!(cat[kind]["deleted"], n, "{kind}: {purged}");
    }
    assert_eq!(cat["policy"]["successful"], true, "{purged}");
    assert_eq!(purged["data-node"]["1"]["successful"], true, "{purged}");
    // 4. unblock.
    step(
        &admin,
        json!({"type": "namespaces.commands:unblockNamespace", "namespace": "acme"}),
    )
    .await?;

    // Nothing of acme is listed; other kept serving through it all.
    for kind in [EntityKind::Well, EntityKind::Stream, EntityKind::Policy] {
        let names = c.names(3, kind).await?;
        assert!(names.iter().all(|n| !n.starts_with("acme:")), "{names:?}");
    }
    let so_far = served.load(Ordering::SeqCst);
    wait::until("other's load goes on", wait::WAIT, || {
        let served = served.clone();
        async move { (served.load(Ordering::SeqCst) > so_far + 50).then_some(()) }
    })
    .await?;
    assert!(
        !other_load.is_finished(),
        "other's load failed: {:?}",
        other_load.await
    );
    other_load.abort();
    assert_eq!(c.query(1, "other:logs").await?.len(), 100);

    // No key of acme in any RocksDB: nothing names it, and the data nodes' wells and
    // streams spaces hold no key under acme's old ids.
    for (k, db) in [
        (1, "dn-1"),
        (2, "dn-2"),
        (3, "cp-1"),
        (4, "cp-2"),
        (5, "cp-3"),
    ] {
        let all = keys(
            &c.dir().join(db).join("db"),
            &scratch.path().join(format!("after-{k}")),
        )?;
        let named = names_acme(&all);
        assert!(named.is_empty(), "{db}: {named:?}");
        if let Some(old) = ids.get(k - 1) {
            let left: Vec<String> = all
                .iter()
                .filter(|(cf, key, _)| {
                    (cf == "wells" || cf == "streams") && old.iter().any(|id| key.starts_with(id))
                })
                .map(|(cf, key, _)| format!("{cf}: {key:?}"))
                .collect();
            assert!(left.is_empty(), "{db}: acme's data is left: {left:?}");
        }
        if db.starts_with("cp") {
            let record = [&[EntityKind::Namespace as u8][..], b"acme"].concat();
            assert!(
                !all.iter()
                    .any(|(cf, key, _)| cf == "catalog" && *key == record),
                "{db}: the namespace's record is left"
            );
        }
    }

    // A stream and a well of the same names start empty.
    c.create_stream(stream("acme:ORDERS", &["ACME.>"]), 1)
        .await?;
    assert_eq!(count(&c.info(1, "acme:ORDERS").await?), 0);
    c.create(well("acme:orders", "orders", 1)).await?;
    c.wait_well_served("acme:orders", 1).await?;
    assert!(c.query(1, "acme:orders").await?.is_empty());
    c.publish_n(1, "ACME.new", "AGAIN", 1).await?;
    let again = c.messages(1, "acme:ORDERS").await?;
    assert_eq!((again.len(), again[0].seq), (1, 1));
    c.shutdown().await;
    Ok(())
}
