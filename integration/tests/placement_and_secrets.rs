//! Through the gRPC API, as a client that may write its own entities but is no cluster admin
//! (issue 11): it cannot choose or change the data node that owns a stream, and it cannot send
//! a target's stored ingest secret to new endpoints by echoing `<redacted>` back.

use anyhow::{ensure, Result};
use tonic::Code;
use tributary_integration::entities::{entity, stream};
use tributary_integration::Cluster;
use tributary_proto::v1::{entity::Kind, Entity, EntityKind, EntityRef, Target};

/// Callers without credentials are `test:user`, who is no admin; the harness's own
/// anonymous admin is gone.
async fn cluster() -> Result<Cluster> {
    Cluster::builder("place")
        .insecure()
        .data_nodes(2)
        .tune_members(|m| {
            m.anonymous_subjects = vec!["test:user".into()];
            m.admin_subjects = vec!["test:nobody".into()];
        })
        .start()
        .await
}

fn invalid_naming(
    r: Result<tonic::Response<impl std::fmt::Debug>, tonic::Status>,
    field: &str,
) -> Result<String> {
    match r {
        Err(s) if s.code() == Code::InvalidArgument && s.message().contains(field) => {
            Ok(s.message().to_string())
        }
        other => anyhow::bail!("expected INVALID_ARGUMENT naming {field}, got {other:?}"),
    }
}

async fn get(c: &Cluster, kind: EntityKind, name: &str) -> Result<Entity> {
    let r = c
        .catalog_any()?
        .get(EntityRef {
            kind: kind as i32,
            name: name.into(),
        })
        .await?
        .into_inner();
    r.entity.ok_or_else(|| anyhow::anyhow!("no entity"))
}

fn owner(e: &Entity) -> u64 {
    match &e.kind {
        Some(Kind::Stream(s)) => s.owner_node,
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_choose_or_change_the_owner() -> Result<()> {
    let c = cluster().await?;
    let mut cat = c.catalog_any()?;
    let mut chosen = stream("acme:S", &["s.>"]);
    if let Some(Kind::Stream(s)) = &mut chosen.kind {
        s.owner_node = 4242;
    }
    let msg = invalid_naming(cat.create(chosen).await, "owner_node")?;
    ensure!(msg.contains("Catalog.Move"), "{msg}");
    ensure!(
        cat.get(EntityRef {
            kind: EntityKind::Stream as i32,
            name: "acme:S".into()
        })
        .await
        .is_err_and(|s| s.code() == Code::NotFound),
        "a refused create left a stream"
    );

    cat.create(stream("acme:S", &["s.>"])).await?;
    let placed = get(&c, EntityKind::Stream, "acme:S").await?;
    let home = owner(&placed);
    ensure!(home == 1 || home == 2, "placed on {home}");
    // Echoing what was read is an update like any other.
    let mut echo = placed.clone();
    if let Some(Kind::Stream(s)) = &mut echo.kind {
        s.max_msgs = 10;
    }
    cat.update(echo.clone()).await?;
    // Naming another node is refused, and nothing moves.
    if let Some(Kind::Stream(s)) = &mut echo.kind {
        s.owner_node = 3 - home;
    }
    invalid_naming(cat.update(echo).await, "owner_node")?;
    ensure!(owner(&get(&c, EntityKind::Stream, "acme:S").await?) == home);
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_endpoints_need_the_ingest_secret_again() -> Result<()> {
    let c = cluster().await?;
    let mut cat = c.catalog_any()?;
    cat.create(entity(Kind::Target(Target {
        name: "acme:dr".into(),
        cleartext_endpoints: vec!["127.0.0.1:1".into()],
        ingest_secret: "hush".into(),
        ..Default::default()
    })))
    .await?;
    // What `tribctl target update` sends: the target as read, one field changed.
    let read = get(&c, EntityKind::Target, "acme:dr").await?;
    let Some(Kind::Target(t)) = read.kind.clone() else {
        anyhow::bail!("not a target: {read:?}");
    };
    ensure!(t.ingest_secret == tributary_common::secrets::REDACTED);
    let mut same = t.clone();
    same.enable_compression = true;
    cat.update(entity(Kind::Target(same))).await?;
    let mut moved = t.clone();
    moved.cleartext_endpoints = vec!["127.0.0.1:2".into()];
    let msg = invalid_naming(
        cat.update(entity(Kind::Target(moved.clone()))).await,
        "ingest_secret",
    )?;
    ensure!(msg.contains("give the ingest secret again"), "{msg}");
    let mut tls = t.clone();
    tls.ca_pem = "-----BEGIN CERTIFICATE-----\nattacker".into();
    invalid_naming(cat.update(entity(Kind::Target(tls))).await, "ingest_secret")?;
    let now = get(&c, EntityKind::Target, "acme:dr").await?;
    let Some(Kind::Target(now)) = now.kind else {
        anyhow::bail!("not a target");
    };
    ensure!(now.cleartext_endpoints == vec!["127.0.0.1:1".to_string()]);
    // The writer of the new endpoints gives the secret again.
    moved.ingest_secret = "hush-2".into();
    cat.update(entity(Kind::Target(moved))).await?;
    c.shutdown().await;
    Ok(())
}
