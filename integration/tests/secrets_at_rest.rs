//! Secrets at rest: a target's ingest secret and a mirror's external credentials, written to a
//! cluster whose members and data node share an encryption key, appear in no file under any
//! data dir (RocksDB files, WAL, Raft log, a snapshot a joining member received, the data
//! node's saved catalogue view), while the ditto copy and the mirror work with the opened
//! values. A bad key stops a server at start, naming the key.

use anyhow::{anyhow, bail, Result};
use std::path::Path;
use tonic::Request;
use tributary_common::crypto::{kid_of, EncryptionConfig, Key};
use tributary_common::grpc::{channel, CLUSTER_TOKEN_HEADER, STREAM_SECRET_HEADER};
use tributary_common::secrets::REDACTED;
use tributary_common::time::now_ns;
use tributary_integration::streams::file_stream;
use tributary_integration::{wait, Cluster, CLUSTER_SECRET};
use tributary_proto::v1::{
    entity::Kind, streams_client::StreamsClient, Entity, EntityKind, EntityRef, MemberRequest,
    PublishRequest, StreamInfoRequest, StreamSource, Target, Well, WellEntry,
};

/// The secrets to look for on disk: nothing else in the test spells them.
const INGEST_PLAIN: &str = "ingest-PLAINTEXT-7d3f1c";
const STREAM_PLAIN: &str = "stream-PLAINTEXT-9e2a4b";
/// Stored next to the secret in the same entity: the scan must find it, or it proves nothing.
const CANARY: &str = "canary-tb-5c1e";
/// 32 bytes in URL-safe base64, as `openssl rand 32 | basenc --base64url` prints them.
const KEY: &str = "3q2-7wEjRWeJq83vASNFZ4mrze8BI0Vniavd7wEjRWc=";

fn encryption() -> EncryptionConfig {
    EncryptionConfig {
        key: KEY.into(),
        ..Default::default()
    }
}

fn entity(kind: Kind) -> Entity {
    Entity { kind: Some(kind) }
}

fn sealed<T>(msg: T) -> Result<Request<T>> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert(CLUSTER_TOKEN_HEADER, CLUSTER_SECRET.parse()?);
    Ok(r)
}

fn with_stream_secret<T>(msg: T) -> Result<Request<T>> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert(STREAM_SECRET_HEADER, STREAM_PLAIN.parse()?);
    Ok(r)
}

/// The target's ingest secret and the mirror's credentials as member `m` returns them, to
/// a data node (`sealed`) or to a client.
async fn secrets_read(c: &Cluster, m: u64, as_node: bool) -> Result<(String, String)> {
    let mut cat = c.catalog(m)?;
    let r = |kind: EntityKind, name: &str| EntityRef {
        kind: kind as i32,
        name: name.into(),
    };
    let (t, s) = if as_node {
        (
            cat.get(sealed(r(EntityKind::Target, CANARY))?).await?,
            cat.get(sealed(r(EntityKind::Stream, "MX"))?).await?,
        )
    } else {
        (
            cat.get(r(EntityKind::Target, CANARY)).await?,
            cat.get(r(EntityKind::Stream, "MX")).await?,
        )
    };
    let secret = match t.into_inner().entity.and_then(|e| e.kind) {
        Some(Kind::Target(t)) => t.ingest_secret,
        other => bail!("not a target: {other:?}"),
    };
    let creds = match s.into_inner().entity.and_then(|e| e.kind) {
        Some(Kind::Stream(s)) => s.mirror.map(|m| m.external_credentials),
        other => bail!("not a stream: {other:?}"),
    };
    Ok((secret, creds.unwrap_or_default()))
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_holding(dir: &Path, needle: &str) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                todo.push(path);
            } else if std::fs::read(&path)?
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                found.push(path.display().to_string());
            }
        }
    }
    Ok(found)
}

fn entries(n: usize, label: &str) -> Vec<WellEntry> {
    let now = now_ns();
    (0..n)
        .map(|i| WellEntry {
            timestamp_ns: now - 1_000_000 * i as i64,
            tag: "t".into(),
            data: format!("{label}-{i}").into_bytes().into(),
            ..Default::default()
        })
        .collect()
}

async fn publish(addr: &str, n: u64) -> Result<()> {
    let mut c = StreamsClient::new(channel(addr)?);
    for i in 0..n {
        let req = PublishRequest {
            subject: "ext.in".into(),
            data: format!("m{i}").into_bytes().into(),
            ..Default::default()
        };
        let ack = c.publish(with_stream_secret(req)?).await?.into_inner();
        anyhow::ensure!(ack.error.is_empty(), "publish: {}", ack.error);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_secret_on_disk_while_ditto_and_the_mirror_use_them() -> Result<()> {
    // B: the other cluster, taking A's ditto copy (with its ingest secret) and serving the
    // stream A mirrors (with its stream secret).
    // B takes cleartext (its TLS is not what this test is about).
    let b = Cluster::builder("b")
        .insecure()
        .tune_data_nodes(|dn| {
            dn.ingest_secrets = vec![INGEST_PLAIN.into()];
            dn.stream_secrets = vec![STREAM_PLAIN.into()];
        })
        .start()
        .await?;
    b.create(entity(Kind::Well(Well {
        name: "all".into(),
        default_well: true,
        ..Default::default()
    })))
    .await?;
    b.wait_well_served("all", 1).await?;
    b.create(entity(Kind::Stream(file_stream("EXT", &["ext.>"]))))
        .await?;
    let b_dn = channel(&b.data_addr(1)?)?;
    wait::until("B serving EXT", wait::WAIT, || async {
        let req = with_stream_secret(StreamInfoRequest {
            stream: "EXT".into(),
        })
        .ok()?;
        StreamsClient::new(b_dn.clone()).info(req).await.ok()
    })
    .await?;

    // A: every member and its data node with the same key; snapshots after a few entries.
    let mut a = Cluster::builder("a")
        .members(3)
        .tune_members(|cp| {
            cp.encryption = encryption();
            cp.raft.snapshot_entries = 4;
        })
        .tune_data_nodes(|dn| dn.encryption = encryption())
        .start()
        .await?;
    a.create(entity(Kind::Target(Target {
        name: CANARY.into(),
        cleartext_endpoints: vec![b.endpoint(1)?],
        ingest_secret: INGEST_PLAIN.into(),
        ..Default::default()
    })))
    .await?;
    a.create(entity(Kind::Well(Well {
        name: "w".into(),
        tags: vec!["t".into()],
        ditto_targets: vec![CANARY.into()],
        ..Default::default()
    })))
    .await?;
    let mut mx = file_stream("MX", &[]);
    mx.mirror = Some(StreamSource {
        stream: "EXT".into(),
        external: b.cp_addrs(),
        external_credentials: STREAM_PLAIN.into(),
        ..Default::default()
    });
    a.create(entity(Kind::Stream(mx))).await?;
    a.wait_well_served("w", 1).await?;

    // Ditto and the mirror work: the data node opened both secrets.
    a.ingest(1, entries(30, "first"), 10).await?;
    b.wait_entries(1, "all", 30).await?;
    publish(&b.data_addr(1)?, 20).await?;
    a.wait_caught_up(1, "MX", 20).await?;

    // Data nodes read them sealed under the key's id; clients read them redacted.
    let kid = Key::parse(KEY).map_err(|e| anyhow!(e))?.kid().to_string();
    let (secret, creds) = secrets_read(&a, 1, true).await?;
    assert_eq!(kid_of(&secret), Some(kid.as_str()), "{secret}");
    assert_eq!(kid_of(&creds), Some(kid.as_str()), "{creds}");
    assert_eq!(
        secrets_read(&a, 1, false).await?,
        (REDACTED.to_string(), REDACTED.to_string())
    );

    // Fill the log past the snapshot threshold, then a new member joins: it gets a snapshot.
    for i in 0..6 {
        a.create(entity(Kind::Namespace(tributary_proto::v1::Namespace {
            name: format!("fill{i}"),
            ..Default::default()
        })))
        .await?;
    }
    let addr = a.start_joiner(4).await?;
    a.cluster(1)?
        .add_member(MemberRequest {
            id: 4,
            addr,
            ..Default::default()
        })
        .await?;
    wait::until("member 4 holds the catalogue", wait::WAIT, || async {
        let cat = &a.member(4).ok()?.node.catalogue;
        cat.get(EntityKind::Stream, "default:MX").ok().flatten()
    })
    .await?;

    // An update through the new member (a follower) echoing the redacted secret keeps the
    // sealed value itself; ditto goes on with it.
    let mut cat = a.catalog(4)?;
    cat.update(entity(Kind::Target(Target {
        name: CANARY.into(),
        cleartext_endpoints: vec![b.endpoint(1)?],
        ingest_secret: REDACTED.into(),
        enable_compression: true,
        ..Default::default()
    })))
    .await?;
    assert_eq!(secrets_read(&a, 4, true).await?, (secret, creds));
    a.ingest(1, entries(10, "after-echo"), 10).await?;
    b.wait_entries(1, "all", 40).await?;

    // Once the data node has the update too (it compresses now), scan every file.
    wait::until("the data node sees the update", wait::WAIT, || async {
        let n = &a.data_node(1).ok()?.node;
        n.with_catalog(|c| c.targets.values().any(|t| t.enable_compression))
            .then_some(())
    })
    .await?;
    for dir in ["cp-1", "cp-2", "cp-3", "cp-4", "dn-1"] {
        let found = files_holding(&a.dir().join(dir), CANARY)?;
        assert!(!found.is_empty(), "the scan cannot see {dir}'s catalogue");
    }
    for needle in [INGEST_PLAIN, STREAM_PLAIN] {
        for dir in [a.dir(), b.dir()] {
            let found = files_holding(dir, needle)?;
            assert!(found.is_empty(), "{needle} is in {found:?}");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_key_stops_either_server_at_start_naming_the_key() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cp = tributary_control_plane::ControlPlaneConfig {
        listen: "127.0.0.1:0".into(),
        admin_listen: String::new(),
        data_dir: dir.path().join("cp"),
        insecure: true,
        encryption: EncryptionConfig {
            key: "dG9vLXNob3J0".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    match tributary_control_plane::start_on(cp, l).await {
        Ok(_) => bail!("the control plane started with a 9-byte key"),
        Err(e) => assert!(
            e.to_string().contains("`encryption.key`") && e.to_string().contains("9 bytes"),
            "{e}"
        ),
    }
    assert!(!dir.path().join("cp").exists(), "nothing was started");

    let dn = tributary_data_node::DataNodeConfig {
        listen: "127.0.0.1:0".into(),
        admin_listen: String::new(),
        data_dir: dir.path().join("dn"),
        insecure: true,
        encryption: EncryptionConfig {
            key: KEY.into(),
            old_keys: vec!["not+base64/url".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    match tributary_data_node::start_on(dn, l).await {
        Ok(_) => bail!("the data node started with a bad old key"),
        Err(e) => assert!(
            e.to_string().contains("`encryption.old_keys[0]`")
                && !e.to_string().contains("not+base64/url"),
            "{e}"
        ),
    }
    Ok(())
}
