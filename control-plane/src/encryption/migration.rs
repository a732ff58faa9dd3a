//! `Cluster.MigrateEncryption`, as Eclipse Ditto 3.9's `migrateEncryption`: on the leader, every
//! entity holding a value not sealed under the current key is re-sealed through an ordinary
//! catalogue write, one entity at a time at the configured pace, with dry run, status, abort
//! and resume.
//!
//! Progress needs no bookkeeping of its own: what is left is what a scan of the catalogue finds
//! unsettled, so a resume after a restart or on a new leader scans and goes on. Each write is a
//! compare-and-set (`UpdateIf`) on the entity as read, so a client's update in between is never
//! overwritten: the entity is read again and, if still unsettled, re-sealed again.

use super::Secrets;
use crate::catalog::entity::kind_label;
use crate::error::CatalogError;
use crate::node::Node;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::Status;
use tributary_common::grpc::CLUSTER_TOKEN_HEADER;
use tributary_common::sync::lock;
use tributary_common::task::AbortOnDrop;
use tributary_common::time::now_ns;
use tributary_proto::v1::cluster_client::ClusterClient;
use tributary_proto::v1::command::Op;
use tributary_proto::v1::{
    Command, Entity, EntityKind, KeyUse, MigrateEncryptionReply, MigrateEncryptionRequest, UpdateIf,
};

/// Every kind, by the name field pointers start with.
const KINDS: [(EntityKind, &str); 7] = [
    (EntityKind::Target, "target"),
    (EntityKind::Stream, "stream"),
    (EntityKind::Well, "well"),
    (EntityKind::Policy, "policy"),
    (EntityKind::Namespace, "namespace"),
    (EntityKind::Tag, "tag"),
    (EntityKind::DataNode, "data_node"),
];
/// How many of the latest failures a report carries.
const ERRORS_KEPT: usize = 20;
/// Attempts at one entity that keeps changing under the migration.
const ATTEMPTS: usize = 5;
const LEADER_WAIT: Duration = Duration::from_secs(5);

/// What the latest run on this member did (or is doing).
#[derive(Debug, Clone, Default)]
struct Progress {
    phase: &'static str,
    active: bool,
    dry_run: bool,
    resumed: bool,
    total: u64,
    done: u64,
    skipped: u64,
    failed: u64,
    errors: VecDeque<String>,
    started_at_ns: i64,
    updated_at_ns: i64,
}

impl Progress {
    fn fail(&mut self, why: String) {
        self.failed += 1;
        self.note(why);
    }

    fn note(&mut self, why: String) {
        if self.errors.len() == ERRORS_KEPT {
            self.errors.pop_front();
        }
        self.errors.push_back(why);
    }
}

/// The migration of one member; only the leader's ever runs.
pub struct Migration {
    node: Node,
    secrets: Arc<Secrets>,
    /// Time between two entities; zero = unthrottled.
    pace: Duration,
    /// See `ControlPlaneConfig::cluster_secret`.
    cluster_secret: String,
    progress: Arc<Mutex<Progress>>,
    abort: Arc<AtomicBool>,
    task: Mutex<Option<AbortOnDrop>>,
}

/// How one entity went.
enum Outcome {
    Done,
    Skipped,
    Failed(String),
    /// The run cannot go on here (leadership moved, the member is stopping).
    Interrupted(String),
}

impl Migration {
    pub fn new(
        node: Node,
        secrets: Arc<Secrets>,
        entities_per_second: u32,
        cluster_secret: String,
    ) -> Self {
        let pace = match entities_per_second {
            0 => Duration::ZERO,
            n => Duration::from_secs(1) / n,
        };
        Migration {
            node,
            secrets,
            pace,
            cluster_secret,
            progress: Arc::new(Mutex::new(Progress {
                phase: "idle",
                ..Default::default()
            })),
            abort: Arc::new(AtomicBool::new(false)),
            task: Mutex::new(None),
        }
    }

    /// SECURITY HOOK (issue 11): the security model will require ADMIN on `cluster:/` for
    /// this call. Until it lands: when a cluster secret is configured, the caller must present
    /// it (`x-tributary-cluster-token`), as for reading secrets.
    pub fn authorize(&self, metadata: &MetadataMap) -> Result<(), Status> {
        if self.cluster_secret.is_empty() {
            return Ok(());
        }
        tributary_common::secrets::check(
            std::slice::from_ref(&self.cluster_secret),
            metadata,
            CLUSTER_TOKEN_HEADER,
            "cluster secret (the encryption migration is for operators)",
        )
    }

    /// Answers on the leader; any other member passes the request on to it.
    pub async fn handle(
        &self,
        req: MigrateEncryptionRequest,
    ) -> Result<MigrateEncryptionReply, CatalogError> {
        if req.abort && req.status {
            return Err(CatalogError::invalid(
                "abort",
                "give abort or status, not both",
            ));
        }
        if (req.abort || req.status) && (req.dry_run || req.resume) {
            return Err(CatalogError::invalid(
                "dry_run",
                "dry_run and resume start a run: not with abort or status",
            ));
        }
        let leader = self
            .node
            .wait_leader(Instant::now() + LEADER_WAIT)
            .await
            .ok_or(CatalogError::NoLeader {
                action: "was elected",
                waited: LEADER_WAIT,
                cause: "no member won an election".into(),
            })?;
        if leader != self.node.id {
            return self.forward(leader, req).await;
        }
        if req.status {
            return Ok(self.report());
        }
        if req.abort {
            if lock(&self.progress).active {
                self.abort.store(true, Ordering::Release);
                lock(&self.progress).phase = "aborted";
            }
            return Ok(self.report());
        }
        // One lock from the check to the start, so two starts cannot both begin a run.
        let mut p = lock(&self.progress);
        if p.active {
            if req.resume {
                drop(p);
                return Ok(self.report());
            }
            return Err(CatalogError::FailedPrecondition(
                "a migration is running: ask for its status, or abort it".into(),
            ));
        }
        if req.dry_run {
            *p = self.dry_run();
        } else {
            self.start(&mut p, req.resume);
        }
        drop(p);
        Ok(self.report())
    }

    async fn forward(
        &self,
        leader: u64,
        req: MigrateEncryptionRequest,
    ) -> Result<MigrateEncryptionReply, CatalogError> {
        let ch =
            self.node.peers.channel(leader).await.map_err(|e| {
                CatalogError::Unavailable(format!("no link to leader {leader}: {e}"))
            })?;
        let mut req = tonic::Request::new(req);
        if !self.cluster_secret.is_empty() {
            if let Ok(v) = MetadataValue::try_from(self.cluster_secret.as_str()) {
                req.metadata_mut().insert(CLUSTER_TOKEN_HEADER, v);
            }
        }
        ClusterClient::new(ch)
            .migrate_encryption(req)
            .await
            .map(tonic::Response::into_inner)
            .map_err(CatalogError::from_status)
    }

    /// Every entity of a kind some configured field names, copied out of the catalogue so
    /// that looking into them holds no lock the apply loop needs.
    fn with_fields(&self) -> Vec<(EntityKind, Entity)> {
        let fields = self.secrets.encryption().fields();
        KINDS
            .iter()
            .filter(|(_, name)| fields.iter().any(|f| f.kind() == *name))
            .flat_map(|(kind, _)| {
                let list = self.node.catalogue.list(*kind, "").unwrap_or_default();
                list.into_iter().map(|e| (*kind, e))
            })
            .collect()
    }

    /// Every entity with a value not under the current key, in kind and name order.
    fn unsettled(&self) -> Vec<(EntityKind, Entity)> {
        let enc = self.secrets.encryption();
        let mut all = self.with_fields();
        all.retain(|(_, e)| enc.unsettled(e) > 0);
        all
    }

    /// Counts what a run would change and tries each re-seal in memory; changes nothing.
    fn dry_run(&self) -> Progress {
        let enc = self.secrets.encryption();
        let mut p = Progress {
            phase: "dry_run",
            dry_run: true,
            started_at_ns: now_ns(),
            ..Default::default()
        };
        for (kind, mut e) in self.unsettled() {
            p.total += 1;
            if let Err(err) = enc.reseal_entity(&mut e) {
                p.fail(failure(kind, &e, &err.to_string()));
            }
        }
        p.updated_at_ns = now_ns();
        p
    }

    /// Begins a run over what is unsettled now, in `p` (held locked by the caller).
    fn start(&self, p: &mut Progress, resume: bool) {
        let todo = self.unsettled();
        let now = now_ns();
        // A resume on the member whose run stopped goes on counting; elsewhere it starts anew.
        let carried = if resume && !p.dry_run && p.phase != "idle" {
            p.clone()
        } else {
            Progress::default()
        };
        // Entities that failed are unsettled still: the new run meets them again.
        *p = Progress {
            phase: "running",
            active: true,
            resumed: resume,
            total: carried.done + carried.skipped + todo.len() as u64,
            done: carried.done,
            skipped: carried.skipped,
            started_at_ns: if carried.started_at_ns != 0 {
                carried.started_at_ns
            } else {
                now
            },
            updated_at_ns: now,
            ..Default::default()
        };
        if todo.is_empty() {
            p.phase = if resume {
                "already_completed"
            } else {
                "completed"
            };
            p.active = false;
            return;
        }
        self.abort.store(false, Ordering::Release);
        let run = Run {
            node: self.node.clone(),
            secrets: self.secrets.clone(),
            pace: self.pace,
            progress: self.progress.clone(),
            abort: self.abort.clone(),
        };
        tracing::info!(
            entities = todo.len(),
            resume,
            "encryption migration started"
        );
        *lock(&self.task) = Some(AbortOnDrop::spawn(run.go(todo)));
    }

    fn report(&self) -> MigrateEncryptionReply {
        let p = lock(&self.progress).clone();
        let enc = self.secrets.encryption();
        let mut uses = BTreeMap::new();
        let mut remaining = 0;
        for (_, e) in self.with_fields() {
            enc.count_key_uses(&e, &mut uses);
            remaining += u64::from(enc.unsettled(&e) > 0);
        }
        MigrateEncryptionReply {
            phase: p.phase.to_string(),
            active: p.active,
            dry_run: p.dry_run,
            resumed: p.resumed,
            total: p.total,
            done: p.done,
            skipped: p.skipped,
            failed: p.failed,
            errors: p.errors.into_iter().collect(),
            remaining,
            current_kid: enc.keys().current_kid().unwrap_or_default().to_string(),
            key_uses: uses
                .into_iter()
                .map(|(kid, values)| KeyUse { kid, values })
                .collect(),
            started_at_ns: p.started_at_ns,
            updated_at_ns: p.updated_at_ns,
            member: self.node.id,
        }
    }
}

fn failure(kind: EntityKind, e: &Entity, why: &str) -> String {
    let name = crate::catalog::entity::name_of(e);
    format!("{} {name}: {why}", kind_label(kind))
}

/// A running migration: what its task needs, and nothing that owns it.
struct Run {
    node: Node,
    secrets: Arc<Secrets>,
    pace: Duration,
    progress: Arc<Mutex<Progress>>,
    abort: Arc<AtomicBool>,
}

impl Run {
    async fn go(self, todo: Vec<(EntityKind, Entity)>) {
        let mut next = tokio::time::Instant::now();
        for (kind, seen) in todo {
            if self.abort.load(Ordering::Acquire) {
                self.finish("aborted");
                return;
            }
            tokio::time::sleep_until(next).await;
            next = tokio::time::Instant::now() + self.pace;
            let name = crate::catalog::entity::name_of(&seen);
            let outcome = self.one(kind, &name).await;
            let mut p = lock(&self.progress);
            p.updated_at_ns = now_ns();
            match outcome {
                Outcome::Done => p.done += 1,
                Outcome::Skipped => p.skipped += 1,
                Outcome::Failed(why) => p.fail(failure(kind, &seen, &why)),
                Outcome::Interrupted(why) => {
                    p.note(format!("interrupted: {why}; resume on the leader"));
                    drop(p);
                    self.finish("interrupted");
                    return;
                }
            }
        }
        self.finish("completed");
    }

    fn finish(&self, phase: &'static str) {
        let mut p = lock(&self.progress);
        // An abort asked for meanwhile stays the phase the operator sees.
        p.phase = if p.phase == "aborted" {
            "aborted"
        } else {
            phase
        };
        p.active = false;
        p.updated_at_ns = now_ns();
        tracing::info!(
            phase = p.phase,
            done = p.done,
            skipped = p.skipped,
            failed = p.failed,
            "encryption migration stopped"
        );
    }

    /// Re-seals one entity as it is now, retrying while clients keep changing it.
    async fn one(&self, kind: EntityKind, name: &str) -> Outcome {
        let enc = self.secrets.encryption();
        // Whether a write of ours may have applied without our hearing so.
        let mut uncertain = false;
        for _ in 0..ATTEMPTS {
            if !self.node.is_leader() {
                return Outcome::Interrupted(format!("member {} no longer leads", self.node.id));
            }
            let stored = match self.node.catalogue.get(kind, name) {
                Ok(Some(e)) => e,
                Ok(None) => return Outcome::Skipped,
                Err(e) => return Outcome::Failed(e.to_string()),
            };
            if enc.unsettled(&stored) == 0 {
                return if uncertain {
                    Outcome::Done
                } else {
                    Outcome::Skipped
                };
            }
            let mut next = stored.clone();
            if let Err(e) = enc.reseal_entity(&mut next) {
                return Outcome::Failed(e.to_string());
            }
            let cmd = Command {
                op: Some(Op::UpdateIf(UpdateIf {
                    expected: Some(Box::new(stored.clone())),
                    entity: Some(Box::new(next)),
                })),
                live_nodes: Vec::new(),
                erasure: false,
            };
            match self.node.write(cmd).await {
                Ok(_) => return Outcome::Done,
                Err(CatalogError::Uncertain(_)) => uncertain = true,
                Err(e) if e.retryable() || matches!(e, CatalogError::NoLeader { .. }) => {
                    return Outcome::Interrupted(e.to_string())
                }
                // Changed since read (or refused): read again and decide on what is stored.
                Err(e) => {
                    if self.node.catalogue.get(kind, name).ok().flatten().as_ref() == Some(&stored)
                    {
                        return Outcome::Failed(e.to_string());
                    }
                }
            }
        }
        Outcome::Failed(format!("still changing after {ATTEMPTS} attempts"))
    }
}
