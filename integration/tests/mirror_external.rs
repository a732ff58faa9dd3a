//! Origins behind TLS and stream secrets: a mirror of a stream in another cluster whose control
//! plane serves external clients on a TLS listener and whose data node speaks TLS and takes a
//! stream secret; and a source on another data node of a cluster that shares a stream secret.

use anyhow::{anyhow, Result};
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tributary_common::grpc::STREAM_SECRET_HEADER;
use tributary_integration::streams::{caught_up, count, file_stream as stream};
use tributary_integration::tls::{anonymous_channel, channel};
use tributary_integration::{wait, Cluster};
use tributary_proto::v1::{
    catalog_client::CatalogClient, entity::Kind, streams_client::StreamsClient, Entity, EntityKind,
    EntityRef, PublishRequest, Stream, StreamInfoReply, StreamInfoRequest, StreamSource,
};

const SECRET: &str = "b-stream-secret";

fn entity(s: Stream) -> Entity {
    Entity {
        kind: Some(Kind::Stream(s)),
    }
}

fn error_of(i: &StreamInfoReply) -> String {
    i.replication
        .iter()
        .map(|r| r.error.clone())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `msg` carrying `secret` as the stream secret (none when empty).
fn with_secret<T>(msg: T, secret: &str) -> Result<Request<T>> {
    let mut r = Request::new(msg);
    if !secret.is_empty() {
        r.metadata_mut()
            .insert(STREAM_SECRET_HEADER, secret.parse()?);
    }
    Ok(r)
}

async fn info(ch: &Channel, secret: &str, name: &str) -> Result<StreamInfoReply, Status> {
    let req = with_secret(
        StreamInfoRequest {
            stream: name.into(),
        },
        secret,
    )
    .map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok(StreamsClient::new(ch.clone()).info(req).await?.into_inner())
}

async fn wait_info(
    ch: &Channel,
    secret: &str,
    name: &str,
    what: &str,
    ok: impl Fn(&StreamInfoReply) -> bool,
) -> Result<StreamInfoReply> {
    wait::until(
        &format!("{name}: {what}"),
        Duration::from_secs(30),
        || async {
            let i = info(ch, secret, name).await.ok()?;
            ok(&i).then_some(i)
        },
    )
    .await
}

async fn publish(ch: &Channel, secret: &str, subject: &str, n: u64) -> Result<()> {
    let mut c = StreamsClient::new(ch.clone());
    for i in 0..n {
        let req = PublishRequest {
            subject: subject.into(),
            data: format!("m{i}").into_bytes().into(),
            ..Default::default()
        };
        let ack = c.publish(with_secret(req, secret)?).await?.into_inner();
        anyhow::ensure!(ack.error.is_empty(), "publish: {}", ack.error);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_over_tls_with_credentials_and_recovery_from_bad_ones() -> Result<()> {
    // B speaks TLS everywhere (the harness's default): its CA is what A trusts. Its members
    // know the stream secret too, so A's mirror can find where EXT is served.
    let b = Cluster::builder("b")
        .tune_members(move |m| m.stream_secrets = vec![SECRET.into()])
        .tune_data_nodes(move |dn| {
            dn.stream_secrets = vec![SECRET.into()];
        })
        .start()
        .await?;
    let b_ca = b.ca_pem();
    let b_tls = b.cp_addr(1)?;
    b.create(entity(stream("EXT", &["ext.>"]))).await?;
    let b_dn = channel(&b.data_addr(1)?)?;
    wait_info(&b_dn, SECRET, "EXT", "served", |_| true).await?;
    // To a caller with no credentials of its own, B's streams take only the secret, and say
    // what is wrong without it.
    let stranger = anonymous_channel(&b.data_addr(1)?)?;
    for (given, why) in [("", "missing"), ("wrong", "bad")] {
        let err = info(&stranger, given, "EXT").await.expect_err(why);
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
        assert!(
            err.message().contains(why) && err.message().contains(STREAM_SECRET_HEADER),
            "{err:?}"
        );
    }
    publish(&b_dn, SECRET, "ext.in", 100).await?;

    let a = Cluster::builder("a").start().await?;
    let a_dn = channel(&a.data_addr(1)?)?;
    let origin = |credentials: &str, ca: &str| StreamSource {
        stream: "EXT".into(),
        external: format!("https://{b_tls}"),
        external_ca_pem: ca.into(),
        external_credentials: credentials.into(),
        ..Default::default()
    };
    let mut mx = stream("MX", &[]);
    mx.mirror = Some(origin(SECRET, &b_ca));
    a.create(entity(mx)).await?;
    let i = wait_info(&a_dn, "", "MX", "100 over TLS", |i| {
        caught_up(i) && count(i) == 100
    })
    .await?;
    assert!(i.replication[0].external_tls, "{:?}", i.replication);
    let shown = i
        .config
        .and_then(|c| c.mirror)
        .map(|m| m.external_credentials);
    assert_eq!(shown.as_deref(), Some("<redacted>"), "Info hides them");

    // An update that echoes the redacted credentials keeps them: more messages arrive.
    let mut cat = CatalogClient::new(channel(&a.cp_addr(1)?)?);
    let stored = |name: &str| EntityRef {
        kind: EntityKind::Stream as i32,
        name: name.into(),
    };
    let mut e = cat.get(stored("MX")).await?.into_inner().entity;
    if let Some(Kind::Stream(s)) = e.as_mut().and_then(|e| e.kind.as_mut()) {
        s.max_msgs = 1_000;
    }
    cat.update(e.ok_or_else(|| anyhow!("no MX"))?).await?;
    publish(&b_dn, SECRET, "ext.in", 10).await?;
    wait_info(&a_dn, "", "MX", "110 after the update", |i| {
        caught_up(i) && count(i) == 110
    })
    .await?;

    // Wrong credentials: the error names the authentication failure; nothing is copied.
    let mut mw = stream("MW", &[]);
    mw.mirror = Some(origin("not-the-secret", &b_ca));
    a.create(entity(mw)).await?;
    let i = wait_info(&a_dn, "", "MW", "an authentication error", |i| {
        error_of(i).contains("bad stream secret")
    })
    .await?;
    assert!(
        error_of(&i).contains(STREAM_SECRET_HEADER),
        "{}",
        error_of(&i)
    );
    assert_eq!(count(&i), 0);
    // An untrusted certificate shows too.
    let other_ca = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()])?
        .cert
        .pem();
    let mut mc = stream("MC", &[]);
    mc.mirror = Some(origin(SECRET, &other_ca));
    a.create(entity(mc)).await?;
    let i = wait_info(&a_dn, "", "MC", "a certificate error", |i| {
        error_of(i).contains("certificate")
    })
    .await?;
    assert_eq!(count(&i), 0, "{}", error_of(&i));

    // The right credentials, by update: MW recovers and copies everything.
    let mut e = cat.get(stored("MW")).await?.into_inner().entity;
    if let Some(Kind::Stream(s)) = e.as_mut().and_then(|e| e.kind.as_mut()) {
        if let Some(m) = s.mirror.as_mut() {
            m.external_credentials = SECRET.into();
        }
    }
    cat.update(e.ok_or_else(|| anyhow!("no MW"))?).await?;
    wait_info(&a_dn, "", "MW", "110, error cleared", |i| {
        caught_up(i) && count(i) == 110
    })
    .await?;
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_on_another_node_of_the_cluster_takes_the_shared_secret() -> Result<()> {
    let c = Cluster::builder("a")
        .data_nodes(2)
        .tune_data_nodes(|dn| dn.stream_secrets = vec!["shared".into(), "next".into()])
        .start()
        .await?;
    let chs = [channel(&c.data_addr(1)?)?, channel(&c.data_addr(2)?)?];
    let mut cat = c.catalog_any()?;
    let mut orig = stream("ORIG", &["orig.>"]);
    orig.owner_node = 1;
    let mut src = stream("SRC", &[]);
    src.sources = vec![StreamSource {
        stream: "ORIG".into(),
        ..Default::default()
    }];
    src.owner_node = 2;
    // Both nodes have registered: the catalogue takes streams owned by either at once.
    for s in [orig, src] {
        cat.create(entity(s)).await?;
    }
    wait_info(&chs[0], "next", "ORIG", "served", |_| true).await?;
    publish(&chs[0], "next", "orig.in", 20).await?;
    wait_info(&chs[1], "shared", "SRC", "20 from the other node", |i| {
        caught_up(i) && count(i) == 20
    })
    .await?;
    Ok(())
}
