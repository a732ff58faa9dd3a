//! The data node's parts that take Eclipse Ditto's piggyback commands: the ditto supervisor
//! (`/user/dittoSupervisor`) and the mirror supervisor (`/user/mirrorSupervisor`). Each runs
//! as a [`Restartable`] part: `common.commands:shutdown` restarts it (every worker stops and
//! the supervisor starts them again from their saved progress), `modifyConfig` with
//! `enabled: false` stops it until `enabled: true`; `retrieveHealth` lists its workers.

use crate::node::ditto_status::{CopySlots, DittoBoard};
use crate::node::replication::ReplicationBoard;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tributary_common::devops::piggyback::{config_reply, health_info};
use tributary_common::devops::{DevopsError, PiggyCommand, PiggyReply, PiggybackHandler, Target};
use tributary_common::task::Restartable;

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
