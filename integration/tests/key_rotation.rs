//! Key rotation and `Cluster.MigrateEncryption` with a write load running on a 3-member
//! control plane: dry run, a throttled run through a follower aborted midway, a resume on a
//! new leader, and in the end every stored secret under the new key, none lost, the old key
//! removable.

use anyhow::{anyhow, ensure, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tonic::transport::Channel;
use tonic::{Code, Request};
use tributary_common::crypto::{Encryption, EncryptionConfig, Key};
use tributary_common::grpc::CLUSTER_TOKEN_HEADER;
use tributary_common::secrets::REDACTED;
use tributary_integration::tls::anonymous_channel;
use tributary_integration::{wait, Cluster, Server, CLUSTER_SECRET};
use tributary_proto::v1::cluster_client::ClusterClient;
use tributary_proto::v1::{
    catalog_client::CatalogClient, entity::Kind, Entity, EntityKind, KeyUse, ListRequest,
    MigrateEncryptionReply, MigrateEncryptionRequest, Stream, StreamSource, Target,
};

const OLD: &str = "gc1_rQ2C26E6cE0S-pQyjD1tZ9BDry1GkDzn1sxnDF8";
const NEW: &str = "yn1PdsM2aZiV7iPyIpBdkmpsoCclvtDGlt-0lkKHTsw";
const TARGETS: usize = 12;
/// Targets the load gives new secrets; the others it updates echoing the redacted secret,
/// which keeps a value under the old key for the migration to move while they change.
const CHURNED: usize = 4;
const STREAMS: usize = 3;

fn keys(key: &str, old: &[&str]) -> EncryptionConfig {
    EncryptionConfig {
        key: key.into(),
        old_keys: old.iter().map(|k| k.to_string()).collect(),
        migration_entities_per_second: 5,
        ..Default::default()
    }
}

fn kid(key: &str) -> Result<String> {
    Ok(Key::parse(key).map_err(|e| anyhow!(e))?.kid().to_string())
}

fn target(i: usize, secret: &str, start: i64) -> Entity {
    Entity {
        kind: Some(Kind::Target(Target {
            name: format!("t{i}"),
            cleartext_endpoints: vec!["127.0.0.1:9".into()],
            ingest_secret: secret.into(),
            start_time_ns: start,
            ..Default::default()
        })),
    }
}

fn stream(j: usize) -> Entity {
    let source = |side: &str| StreamSource {
        stream: format!("O{side}"),
        external: "127.0.0.1:1".into(),
        external_credentials: format!("creds-{j}-{side}"),
        ..Default::default()
    };
    Entity {
        kind: Some(Kind::Stream(Stream {
            name: format!("s{j}"),
            subjects: vec![format!("s{j}.>")],
            sources: vec![source("a"), source("b")],
            ..Default::default()
        })),
    }
}

fn with_token<T>(msg: T) -> Result<Request<T>> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert(CLUSTER_TOKEN_HEADER, CLUSTER_SECRET.parse()?);
    Ok(r)
}

async fn migrate(
    c: &Cluster,
    m: u64,
    req: MigrateEncryptionRequest,
) -> Result<MigrateEncryptionReply> {
    // As the cluster's admin (the harness's client); a data node may not.
    Ok(c.cluster(m)?.migrate_encryption(req).await?.into_inner())
}

fn status() -> MigrateEncryptionRequest {
    MigrateEncryptionRequest {
        status: true,
        ..Default::default()
    }
}

/// Polls the status on member `m` until `ok` holds.
async fn wait_status(
    c: &Cluster,
    m: u64,
    what: &str,
    ok: impl Fn(&MigrateEncryptionReply) -> bool,
) -> Result<MigrateEncryptionReply> {
    wait::until(what, wait::WAIT, || async {
        let r = migrate(c, m, status()).await.ok()?;
        ok(&r).then_some(r)
    })
    .await
}

/// What each target may hold: the last secret and start time written, or any written since
/// by a call whose outcome is unknown. A start time older than that would be a client's
/// update lost under the migration's write.
#[derive(Default)]
struct Written {
    secrets: BTreeSet<String>,
    starts: BTreeSet<i64>,
}

type Expected = Arc<Mutex<BTreeMap<usize, Written>>>;

impl Written {
    /// A write of `secret` (None: the redacted echo, which keeps it) and `start`, by a call
    /// that succeeded (`ok`) or whose outcome is unknown.
    fn record(&mut self, ok: bool, secret: Option<String>, start: i64) {
        if ok {
            self.starts.clear();
            if secret.is_some() {
                self.secrets.clear();
            }
        }
        self.starts.insert(start);
        self.secrets.extend(secret);
    }
}

/// Writers at once, each updating its own targets (so each target's last write is known).
const WRITERS: usize = 3;

/// Updates targets round-robin through every member until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<u64>>,
}

impl Load {
    /// `first` makes the start times this load writes differ from any earlier load's.
    fn start(c: &Cluster, expected: Expected, first: i64) -> Result<Load> {
        let clients: Vec<CatalogClient<Channel>> = c
            .running_members()
            .iter()
            .map(|m| c.catalog(*m))
            .collect::<Result<_>>()?;
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..WRITERS)
            .map(|w| {
                let (halt, clients, expected) = (stop.clone(), clients.clone(), expected.clone());
                let mine: Vec<usize> = (0..TARGETS).filter(|i| i % WRITERS == w).collect();
                tokio::spawn(async move {
                    let mut ok = 0;
                    let mut round = 0;
                    while !halt.load(Ordering::Relaxed) {
                        let i = mine[round % mine.len()];
                        let fresh = i < CHURNED && round % 3 != 0;
                        let start = first + (w * 1_000_000 + round) as i64;
                        let secret = if fresh {
                            format!("secret-{i}-{start}")
                        } else {
                            REDACTED.to_string()
                        };
                        let mut cat = clients[round % clients.len()].clone();
                        let r = cat.update(target(i, &secret, start)).await;
                        expected
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(i)
                            .or_default()
                            .record(r.is_ok(), fresh.then_some(secret), start);
                        ok += u64::from(r.is_ok());
                        round += 1;
                    }
                    ok
                })
            })
            .collect();
        Ok(Load { stop, tasks })
    }

    /// Stops the load; the number of updates that succeeded.
    async fn stop(self) -> Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let mut ok = 0;
        for t in self.tasks {
            ok += t.await?;
        }
        Ok(ok)
    }
}

/// Every stored secret opened with `key` alone, checked against what was written.
async fn check_secrets(c: &Cluster, m: u64, key: &str, expected: &Expected) -> Result<()> {
    let only = Encryption::from_config(&keys(key, &[]))?;
    let mut cat = c.catalog(m)?;
    for kind in [EntityKind::Target, EntityKind::Stream] {
        let list = cat
            .list(with_token(ListRequest {
                kind: kind as i32,
                namespace: String::new(),
            })?)
            .await?
            .into_inner();
        for mut e in list.entities {
            only.open_entity(&mut e)?;
            match e.kind {
                Some(Kind::Target(t)) => {
                    let i: usize = t.name.trim_start_matches("default:t").parse()?;
                    let exp = expected.lock().unwrap_or_else(|p| p.into_inner());
                    let w = exp
                        .get(&i)
                        .ok_or_else(|| anyhow!("{} never written", t.name))?;
                    ensure!(
                        w.secrets.contains(&t.ingest_secret),
                        "{}: secret {:?} not in {:?}",
                        t.name,
                        t.ingest_secret,
                        w.secrets
                    );
                    ensure!(
                        w.starts.contains(&t.start_time_ns),
                        "{}: start {} not in {:?}: an update was lost",
                        t.name,
                        t.start_time_ns,
                        w.starts
                    );
                }
                Some(Kind::Stream(s)) => {
                    let j = s.name.trim_start_matches("default:s");
                    let creds: Vec<String> = s
                        .sources
                        .into_iter()
                        .map(|o| o.external_credentials)
                        .collect();
                    ensure!(
                        creds == [format!("creds-{j}-a"), format!("creds-{j}-b")],
                        "{creds:?}"
                    );
                }
                other => anyhow::bail!("unexpected {other:?}"),
            }
        }
    }
    Ok(())
}

async fn restart_all(c: &mut Cluster) -> Result<()> {
    for m in c.member_ids() {
        c.restart(Server::Member(m)).await?;
        c.wait_leader().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_and_a_migration_under_load_loses_no_secret() -> Result<()> {
    let config = Arc::new(Mutex::new(keys(OLD, &[])));
    let shared = config.clone();
    let mut c = Cluster::builder("rot")
        .members(3)
        .data_nodes(0)
        .tune_members(move |cp| {
            cp.encryption = shared.lock().unwrap_or_else(|p| p.into_inner()).clone()
        })
        .start()
        .await?;
    c.wait_leader().await?;
    let expected: Expected = Arc::default();
    for i in 0..TARGETS {
        let secret = format!("secret-{i}-r0");
        c.create(target(i, &secret, 0)).await?;
        expected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(i)
            .or_default()
            .record(true, Some(secret), 0);
    }
    for j in 0..STREAMS {
        c.create(stream(j)).await?;
    }
    let values = (TARGETS + 2 * STREAMS) as u64;
    let entities = (TARGETS + STREAMS) as u64;
    let (old_kid, new_kid) = (kid(OLD)?, kid(NEW)?);
    let st = migrate(&c, 1, status()).await?;
    assert_eq!(
        st.key_uses,
        [KeyUse {
            kid: old_kid.clone(),
            values
        }]
    );
    assert_eq!((st.phase.as_str(), st.remaining), ("idle", 0));
    let anonymous = ClusterClient::new(anonymous_channel(&c.cp_addr(1)?)?)
        .migrate_encryption(status())
        .await;
    assert_eq!(
        anonymous.map(|_| ()).unwrap_err().code(),
        Code::Unauthenticated
    );

    // The new key seals, the old one still opens: every member, one at a time.
    *config.lock().unwrap_or_else(|p| p.into_inner()) = keys(NEW, &[OLD]);
    restart_all(&mut c).await?;
    let leader = c.wait_leader().await?;
    let follower = c
        .member_ids()
        .into_iter()
        .find(|m| *m != leader)
        .ok_or_else(|| anyhow!("no follower"))?;
    let dry = migrate(
        &c,
        follower,
        MigrateEncryptionRequest {
            dry_run: true,
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(
        (dry.phase.as_str(), dry.total, dry.failed),
        ("dry_run", entities, 0),
        "{dry:?}"
    );
    assert_eq!(
        (dry.remaining, dry.current_kid.as_str()),
        (entities, new_kid.as_str())
    );
    assert_eq!(
        dry.member, leader,
        "a follower passes the call to the leader"
    );
    assert_eq!(
        dry.key_uses,
        [KeyUse {
            kid: old_kid.clone(),
            values
        }],
        "a dry run changes nothing"
    );

    // A throttled run under load, started through a follower, aborted midway.
    let load = Load::start(&c, expected.clone(), 1)?;
    let run = migrate(&c, follower, MigrateEncryptionRequest::default()).await?;
    assert!(run.active && run.total > 0, "{run:?}");
    let as_node = c
        .cluster(follower)?
        .migrate_encryption(with_token(status())?)
        .await;
    assert_eq!(
        as_node.map(|_| ()).unwrap_err().code(),
        Code::PermissionDenied,
        "a data node's token does not administer the cluster"
    );
    let again = c
        .cluster(follower)?
        .migrate_encryption(MigrateEncryptionRequest::default())
        .await;
    assert_eq!(
        again.map(|_| ()).unwrap_err().code(),
        Code::FailedPrecondition
    );
    wait_status(&c, follower, "3 entities re-sealed", |r| r.done >= 3).await?;
    let aborted = migrate(
        &c,
        follower,
        MigrateEncryptionRequest {
            abort: true,
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(aborted.phase, "aborted");
    let st = wait_status(&c, follower, "the run to stop", |r| !r.active).await?;
    assert!(
        st.phase == "aborted" && st.remaining > 0 && st.failed == 0,
        "{st:?}"
    );
    let writes = load.stop().await?;

    // The leader goes; the new one resumes from what a scan finds left, under a new load.
    c.kill(Server::Member(leader)).await?;
    c.wait_leader().await?;
    c.start(Server::Member(leader)).await?;
    let new_leader = c.wait_leader().await?;
    let load = Load::start(&c, expected.clone(), 100_000_000)?;
    let any = c
        .member_ids()
        .into_iter()
        .find(|m| *m != new_leader)
        .ok_or_else(|| anyhow!("one member"))?;
    let resumed = migrate(
        &c,
        any,
        MigrateEncryptionRequest {
            resume: true,
            ..Default::default()
        },
    )
    .await?;
    assert!(
        resumed.resumed && resumed.member == new_leader,
        "{resumed:?}"
    );
    let done = wait_status(&c, new_leader, "the resumed run to end", |r| !r.active).await?;
    assert_eq!(
        (done.phase.as_str(), done.failed),
        ("completed", 0),
        "{done:?}"
    );
    let writes = writes + load.stop().await?;
    assert!(writes > 50, "the load ran: {writes} updates");

    let st = migrate(&c, 1, status()).await?;
    assert_eq!(st.remaining, 0, "{st:?}");
    assert_eq!(
        st.key_uses,
        [KeyUse {
            kid: new_kid.clone(),
            values
        }]
    );
    check_secrets(&c, 1, NEW, &expected).await?;

    // The old key can go: members start without it, and everything still opens.
    *config.lock().unwrap_or_else(|p| p.into_inner()) = keys(NEW, &[]);
    restart_all(&mut c).await?;
    let leader = c.wait_leader().await?;
    let nothing = migrate(
        &c,
        leader,
        MigrateEncryptionRequest {
            resume: true,
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(nothing.phase, "already_completed");
    check_secrets(&c, leader, NEW, &expected).await?;
    Ok(())
}
