//! The catalogue API of a control plane on 127.0.0.1: watch, validation of bad input, and
//! target secrets shown only to holders of the cluster secret.

use anyhow::Result;
use tonic::Code;
use tributary_control_plane::ControlPlaneConfig;
use tributary_integration::entities::{stream, well};
use tributary_integration::Cluster;
use tributary_proto::v1::{
    entity::Kind, Entity, EntityKind, EntityRef, Stream, StreamSource, Target, WatchRequest, Well,
};

async fn control_plane(
    members: u64,
    tune: impl Fn(&mut ControlPlaneConfig) + Send + Sync + 'static,
) -> Result<Cluster> {
    Cluster::builder("cp")
        .members(members)
        .data_nodes(0)
        .tune_members(tune)
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_every_change_and_reports_compacted_revisions() -> Result<()> {
    let c = control_plane(1, |cfg| cfg.raft.max_watch_events = 5).await?;
    c.wait_leader().await?;
    let mut cat = c.catalog(1)?;
    // What the cluster holds from its start (its first policy) is left behind.
    let r0 = c.member(1)?.node.catalogue.revision();
    let mut watch = cat
        .watch(WatchRequest { from_revision: r0 })
        .await?
        .into_inner();
    cat.create(well("acme:a", &["x"])).await?;
    let first = watch
        .message()
        .await?
        .ok_or_else(|| anyhow::anyhow!("watch ended"))?;
    assert_eq!(first.revision, r0 + 1);
    let mut kinds = vec![first.kind];
    while kinds.len() < 3 {
        kinds.push(
            watch
                .message()
                .await?
                .ok_or_else(|| anyhow::anyhow!("watch ended"))?
                .kind,
        );
    }
    kinds.sort();
    // One revision: the namespace, the tag and the well.
    assert_eq!(
        kinds,
        vec![
            EntityKind::Well as i32,
            EntityKind::Tag as i32,
            EntityKind::Namespace as i32
        ]
    );
    cat.delete(EntityRef {
        kind: EntityKind::Well as i32,
        name: "acme:a".into(),
    })
    .await?;
    let del = watch
        .message()
        .await?
        .ok_or_else(|| anyhow::anyhow!("watch ended"))?;
    assert_eq!((del.revision, del.r#type), (r0 + 2, 1));
    for i in 0..10 {
        cat.create(stream(&format!("w{i}"), &[&format!("w{i}")]))
            .await?;
    }
    let err = cat
        .watch(WatchRequest { from_revision: 1 })
        .await
        .expect_err("compacted revision accepted");
    assert_eq!(err.code(), Code::OutOfRange);
    assert!(err.message().contains("list again"), "{}", err.message());
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_the_field_named_and_changes_nothing() -> Result<()> {
    let c = control_plane(3, |_| {}).await?;
    let leader = c.wait_leader().await?;
    let mut cat = c.catalog(leader)?;
    cat.create(stream("ORDERS", &["ORDERS.>"])).await?;
    let before = c.member(leader)?.node.catalogue.revision();
    let target = |name: &str, ep: &str| Entity {
        kind: Some(Kind::Target(Target {
            name: name.into(),
            cleartext_endpoints: vec![ep.into()],
            ingest_secret: "s".into(),
            ..Default::default()
        })),
    };
    let mirror_and_source = Entity {
        kind: Some(Kind::Stream(Stream {
            name: "M".into(),
            mirror: Some(StreamSource {
                stream: "ORDERS".into(),
                ..Default::default()
            }),
            sources: vec![StreamSource {
                stream: "ORDERS".into(),
                ..Default::default()
            }],
            ..Default::default()
        })),
    };
    let cases: Vec<(Entity, Code, &str)> = vec![
        (well("bad name!", &[]), Code::InvalidArgument, "name"),
        (
            stream("ORDERS", &["ORDERS.x"]),
            Code::AlreadyExists,
            "ORDERS",
        ),
        (
            stream("DUP", &["ORDERS.new"]),
            Code::InvalidArgument,
            "subjects",
        ),
        (stream("BAD", &["a..b"]), Code::InvalidArgument, "subjects"),
        (mirror_and_source, Code::InvalidArgument, "mirror"),
        (
            target("t", "nohost"),
            Code::InvalidArgument,
            "cleartext_endpoints",
        ),
        (
            Entity {
                kind: Some(Kind::Well(Well {
                    name: "w".into(),
                    ditto_targets: vec!["nope".into()],
                    ..Default::default()
                })),
            },
            Code::NotFound,
            "nope",
        ),
        (
            Entity {
                kind: Some(Kind::Stream(Stream {
                    name: "S".into(),
                    mirror: Some(StreamSource {
                        stream: "GHOST".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })),
            },
            Code::NotFound,
            "GHOST",
        ),
    ];
    for (e, code, needle) in cases {
        let err = cat.create(e.clone()).await.expect_err("bad input accepted");
        assert_eq!(err.code(), code, "{e:?}: {}", err.message());
        assert!(
            err.message().contains(needle),
            "{:?} should name {needle}",
            err.message()
        );
    }
    // A cycle of mirrors: A mirrors ORDERS… then ORDERS cannot come to copy from A.
    cat.create(Entity {
        kind: Some(Kind::Stream(Stream {
            name: "A".into(),
            mirror: Some(StreamSource {
                stream: "ORDERS".into(),
                ..Default::default()
            }),
            ..Default::default()
        })),
    })
    .await?;
    let cyc = Entity {
        kind: Some(Kind::Stream(Stream {
            name: "ORDERS".into(),
            sources: vec![StreamSource {
                stream: "A".into(),
                ..Default::default()
            }],
            ..Default::default()
        })),
    };
    let err = cat.update(cyc).await.expect_err("cycle accepted");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("cycle"), "{}", err.message());
    assert_eq!(
        c.member(leader)?.node.catalogue.revision(),
        before + 1,
        "rejected writes changed the catalogue"
    );
    let get = cat
        .get(EntityRef {
            kind: EntityKind::Stream as i32,
            name: "ORDERS".into(),
        })
        .await?
        .into_inner();
    let Some(Kind::Stream(s)) = get.entity.and_then(|e| e.kind) else {
        anyhow::bail!("not a stream")
    };
    assert_eq!(s.subjects, vec!["ORDERS.>"]);
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_secrets_are_shown_only_to_holders_of_the_cluster_secret() -> Result<()> {
    let c = control_plane(1, |cfg| cfg.cluster_secret = "cluster-s3cret".into()).await?;
    c.wait_leader().await?;
    let t = Entity {
        kind: Some(Kind::Target(Target {
            name: "dr".into(),
            cleartext_endpoints: vec!["127.0.0.1:4023".into()],
            ingest_secret: "hush".into(),
            ..Default::default()
        })),
    };
    let created = c.catalog(1)?.create(t).await?.into_inner();
    let secret_of = |e: Option<Entity>| match e.and_then(|e| e.kind) {
        Some(Kind::Target(t)) => t.ingest_secret,
        _ => String::new(),
    };
    assert_eq!(secret_of(created.entity), "<redacted>");
    let get = |token: &'static str| {
        let mut req = tonic::Request::new(EntityRef {
            kind: EntityKind::Target as i32,
            name: "dr".into(),
        });
        req.metadata_mut().insert(
            tributary_common::grpc::CLUSTER_TOKEN_HEADER,
            tonic::metadata::MetadataValue::from_static(token),
        );
        req
    };
    // A wrong token is wrong credentials, not a lesser view.
    let wrong = c.catalog(1)?.get(get("wrong")).await;
    assert_eq!(
        wrong.map(|_| ()).unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    assert_eq!(
        secret_of(
            c.catalog(1)?
                .get(EntityRef {
                    kind: EntityKind::Target as i32,
                    name: "dr".into(),
                })
                .await?
                .into_inner()
                .entity
        ),
        "<redacted>",
        "an admin reads the secret redacted"
    );
    assert_eq!(
        secret_of(
            c.catalog(1)?
                .get(get("cluster-s3cret"))
                .await?
                .into_inner()
                .entity
        ),
        "hush"
    );
    // An update that leaves the secret out (or redacted) keeps it, for the same endpoints
    // (new ones need it given again: placement_and_secrets.rs).
    let mut t = Target {
        name: "dr".into(),
        cleartext_endpoints: vec!["127.0.0.1:4023".into()],
        ingest_secret: "<redacted>".into(),
        ..Default::default()
    };
    c.catalog(1)?
        .update(Entity {
            kind: Some(Kind::Target(t.clone())),
        })
        .await?;
    assert_eq!(
        secret_of(
            c.catalog(1)?
                .get(get("cluster-s3cret"))
                .await?
                .into_inner()
                .entity
        ),
        "hush"
    );
    t.ingest_secret = "new".into();
    c.catalog(1)?
        .update(Entity {
            kind: Some(Kind::Target(t)),
        })
        .await?;
    assert_eq!(
        secret_of(
            c.catalog(1)?
                .get(get("cluster-s3cret"))
                .await?
                .into_inner()
                .entity
        ),
        "new"
    );
    c.shutdown().await;
    Ok(())
}

/// A client that creates through a follower and at once updates and deletes through the same
/// follower finds what it wrote, even while that follower hears the leader late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_finds_the_entity_it_just_created_through_the_leader() -> Result<()> {
    let c = control_plane(3, |_| {}).await?;
    let leader = c.wait_leader().await?;
    let follower = c
        .member_ids()
        .into_iter()
        .find(|&m| m != leader)
        .unwrap_or(1);
    // Appends reach this follower late; the third member acknowledges in time.
    c.set_link(
        tributary_integration::LinkId::raft(leader, follower),
        tributary_integration::Mode::Delay(std::time::Duration::from_millis(300)),
    )?;
    let mut cat = c.catalog(follower)?;
    for i in 0..3 {
        let name = format!("acme:fresh{i}");
        cat.create(well(&name, &["x"])).await?;
        let mut changed = well(&name, &["x"]);
        if let Some(Kind::Well(w)) = &mut changed.kind {
            w.hot_duration_secs = 7200;
        }
        cat.update(changed).await?;
        cat.delete(EntityRef {
            kind: EntityKind::Well as i32,
            name,
        })
        .await?;
    }
    c.shutdown().await;
    Ok(())
}
