//! The data node's parts that take Eclipse Ditto's piggyback commands: the ditto supervisor
//! (`/user/dittoSupervisor`) and the mirror supervisor (`/user/mirrorSupervisor`). Each runs
//! as a [`Restartable`] part: `common.commands:shutdown` restarts it (every worker stops and
//! the supervisor starts them again from their saved progress), `modifyConfig` with
//! `enabled: false` stops it until `enabled: true`; `retrieveHealth` lists its workers.

use super::hosts::NodeHost;
use crate::config::DataNodeConfig;
use crate::node::ditto_status::{CopySlots, DittoBoard};
use crate::node::replication::ReplicationBoard;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tributary_common::devops::piggyback::{config_reply, health_info};
use tributary_common::devops::LocalAdmin;
use tributary_common::devops::{DevopsError, PiggyCommand, PiggyReply, PiggybackHandler, Target};
use tributary_common::task::{AbortOnDrop, Restartable};
use tributary_common::tls;

/// What a supervisor reports beyond its running state.
pub trait Report: Send + Sync {
    /// `retrieveHealth`'s detail: its workers.
    fn workers(&self) -> Value;
    /// `retrieveConfig`'s keys other than `enabled` (read at start; not changeable).
    fn fixed_config(&self) -> Map<String, Value>;
}

/// A supervisor as a piggyback target.
pub struct Supervisor {
    pub target: Target,
    pub part: Arc<Restartable>,
    pub report: Box<dyn Report>,
}

impl Supervisor {
    fn config(&self) -> Value {
        let mut c = Map::new();
        c.insert("enabled".into(), self.part.state().enabled.into());
        c.extend(self.report.fixed_config());
        Value::Object(c)
    }

    fn modify(&self, changes: &Map<String, Value>) -> PiggyReply {
        let mut enabled = None;
        for (k, v) in changes {
            match (k.as_str(), v) {
                ("enabled", Value::Bool(b)) => enabled = Some(*b),
                ("enabled", other) => {
                    return Err(DevopsError::BadRequest(format!(
                        "config key \"enabled\" of {} must be true or false, not {other}",
                        self.target.selection()
                    )))
                }
                (other, _) => {
                    return Err(DevopsError::BadRequest(format!(
                        "config key {other:?} of {} cannot change at runtime: only \"enabled\" does (the rest is the data node's config, read at start)",
                        self.target.selection()
                    )))
                }
            }
        }
        if let Some(b) = enabled {
            self.part.set_enabled(b);
        }
        Ok(config_reply(self.config()))
    }
}

#[tonic::async_trait]
impl PiggybackHandler for Supervisor {
    async fn answer(&self, cmd: &PiggyCommand, _timeout: Duration) -> PiggyReply {
        match cmd {
            PiggyCommand::RetrieveHealth => {
                let state = self.part.state();
                let info = json!({
                    "state": if state.enabled { "RUNNING" } else { "STOPPED" },
                    "restarts": state.restarts,
                    "workers": self.report.workers(),
                });
                Ok(health_info(true, info))
            }
            PiggyCommand::RetrieveConfig => Ok(config_reply(self.config())),
            PiggyCommand::ModifyConfig { config } => self.modify(config),
            PiggyCommand::Shutdown => {
                self.part.restart();
                let mut m = Map::new();
                m.insert("restarted".into(), true.into());
                Ok(m)
            }
            other => Err(DevopsError::BadRequest(format!(
                "{} does not take {other:?}",
                self.target.selection()
            ))),
        }
    }
}

/// The ditto supervisor's report: its (well, target) workers.
pub struct DittoReport {
    pub board: Arc<DittoBoard>,
    pub slots: Arc<CopySlots>,
    pub stats_every: Duration,
}

impl Report for DittoReport {
    fn workers(&self) -> Value {
        let workers: Vec<Value> = self
            .board
            .snapshot()
            .into_iter()
            .map(|w| {
                json!({
                    "well": w.well,
                    "target": w.target,
                    "state": w.state,
                    "entries-sent": w.entries_sent,
                    "entries-behind": w.entries_behind,
                    "last-error": w.last_error,
                })
            })
            .collect();
        Value::Array(workers)
    }

    fn fixed_config(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("max-workers".into(), self.slots.max().into());
        m.insert(
            "stats-interval".into(),
            humantime::format_duration(self.stats_every)
                .to_string()
                .into(),
        );
        m
    }
}

/// The mirror supervisor's report: every origin of every stream this node copies into.
pub struct MirrorReport {
    pub board: Arc<ReplicationBoard>,
}

impl Report for MirrorReport {
    fn workers(&self) -> Value {
        let mut out = Vec::new();
        for (dest, lines) in self.board.all() {
            for l in lines {
                out.push(json!({
                    "stream": dest,
                    "origin": l.stream,
                    "kind": l.kind,
                    "external": l.external,
                    "lag": l.lag,
                    "error": l.error,
                }));
            }
        }
        Value::Array(out)
    }

    fn fixed_config(&self) -> Map<String, Value> {
        Map::new()
    }
}

/// The ditto supervisor as a part piggyback commands restart, stop and start again
/// (registered with the node's devops).
pub fn ditto_supervisor(
    local: &LocalAdmin,
    config: &DataNodeConfig,
    host: Arc<NodeHost>,
    source_id: String,
    slots: Arc<CopySlots>,
    board: Arc<DittoBoard>,
) -> AbortOnDrop {
    let stats_every = Duration::from_millis(config.ditto_stats_interval_ms);
    let (s, b, cleared) = (slots.clone(), board.clone(), board.clone());
    let (part, task) = Restartable::start(
        move || {
            crate::ditto::spawn(
                host.clone(),
                source_id.clone(),
                s.clone(),
                stats_every,
                b.clone(),
            )
        },
        move || cleared.clear(),
    );
    let report = Box::new(DittoReport {
        board,
        slots,
        stats_every,
    });
    local.register(
        Target::DittoSupervisor,
        Arc::new(Supervisor {
            target: Target::DittoSupervisor,
            part,
            report,
        }),
    );
    task
}

/// The mirror supervisor, likewise.
pub fn mirror_supervisor(
    local: &LocalAdmin,
    config: &DataNodeConfig,
    host: Arc<NodeHost>,
    board: Arc<ReplicationBoard>,
    cp_addrs: Vec<String>,
    links: Option<tls::TlsFiles>,
) -> AbortOnDrop {
    // Origins on the other nodes of this cluster take this node's stream secret.
    let own_secret = config.stream_secrets.first().cloned().unwrap_or_default();
    let cluster_token = config.cluster_secret.clone();
    let (b, cleared) = (board.clone(), board.clone());
    let (part, task) = Restartable::start(
        move || {
            vec![crate::mirror::spawn(
                host.clone(),
                b.clone(),
                cp_addrs.clone(),
                own_secret.clone(),
                links.clone(),
                cluster_token.clone(),
            )]
        },
        move || cleared.set(Default::default()),
    );
    local.register(
        Target::MirrorSupervisor,
        Arc::new(Supervisor {
            target: Target::MirrorSupervisor,
            part,
            report: Box::new(MirrorReport { board }),
        }),
    );
    task
}
