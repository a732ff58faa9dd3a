//! A data node's part in namespace erasure (`/system/distributedPubSubMediator`): the
//! member a command entered wrote it into the catalogue; this node answers once its own view
//! and its workers have it. Sent to a data node directly, a command is refused: only a member
//! can write the catalogue every process follows.

use crate::node::catalog::namespace_of;
use crate::node::ditto_status::DittoBoard;
use crate::node::replication::ReplicationBoard;
use crate::node::Node;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tributary_common::devops::{DevopsError, PiggyCommand, PiggyReply, PiggybackHandler};

pub struct Namespaces {
    pub node: Arc<Node>,
    pub ditto: Arc<DittoBoard>,
    pub mirror: Arc<ReplicationBoard>,
}

impl Namespaces {
    /// Waits until `done` holds, re-checking on every catalogue change (and every 50 ms, as
    /// workers stop between changes).
    async fn until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Namespaces) -> bool,
    ) -> Result<(), DevopsError> {
        let deadline = Instant::now() + timeout;
        let mut changes = self.node.catalog_changes();
        loop {
            changes.borrow_and_update();
            if done(self) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(DevopsError::Timeout(format!(
                    "data node {}: {what} not seen within {timeout:?}",
                    self.node.id
                )));
            }
            let next = (Instant::now() + Duration::from_millis(50)).min(deadline);
            let _ = tokio::time::timeout_at(next, changes.changed()).await;
        }
    }

    /// Workers of `ns` still running here: ditto (as well or target) and mirrors or sources
    /// into its streams.
    fn workers_of(&self, ns: &str) -> usize {
        let ditto = self
            .ditto
            .snapshot()
            .into_iter()
            .filter(|w| namespace_of(&w.well) == ns || namespace_of(&w.target) == ns)
            .count();
        let mirror = self
            .mirror
            .all()
            .into_iter()
            .filter(|(dest, _)| namespace_of(dest) == ns)
            .map(|(_, lines)| lines.len())
            .sum::<usize>();
        ditto + mirror
    }
}

fn reply(ns: &str, resource_type: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("namespace".into(), ns.into());
    m.insert("resourceType".into(), resource_type.into());
    m
}

#[tonic::async_trait]
impl PiggybackHandler for Namespaces {
    async fn prepare(&self, _cmd: &PiggyCommand, _timeout: Duration) -> Result<(), DevopsError> {
        Err(DevopsError::BadRequest(
            "namespace commands go to a control-plane member, which writes them into the catalogue every data node follows".into(),
        ))
    }

    async fn answer(&self, cmd: &PiggyCommand, timeout: Duration) -> PiggyReply {
        match cmd {
            PiggyCommand::BlockNamespace { namespace: ns } => {
                let what = format!("namespace {ns} blocked");
                self.until(&what, timeout, |s| s.node.with_catalog(|c| c.blocked(ns)))
                    .await?;
                Ok(reply(ns, "namespaces"))
            }
            PiggyCommand::ShutdownNamespace { namespace: ns } => {
                let what = format!("every worker of namespace {ns} stopped");
                self.until(&what, timeout, |s| {
                    s.node.with_catalog(|c| c.shut_down(ns)) && s.workers_of(ns) == 0
                })
                .await?;
                Ok(reply(ns, "workers"))
            }
            PiggyCommand::PurgeNamespace { namespace: ns } => {
                let what = format!("no well or stream of namespace {ns}");
                self.until(&what, timeout, |s| !s.node.holds_namespace(ns))
                    .await?;
                let node = self.node.clone();
                let n = ns.clone();
                let scrubbed = tokio::task::spawn_blocking(move || node.scrub_namespace(&n))
                    .await
                    .map_err(|e| DevopsError::Unavailable(format!("scrub stopped: {e}")))?;
                let mut m = reply(ns, "data");
                match scrubbed {
                    Ok(s) => {
                        m.insert("successful".into(), true.into());
                        m.insert(
                            "resourceTypes".into(),
                            json!({
                                "well": {"successful": true, "scrubbed": s.wells},
                                "stream": {"successful": true, "scrubbed": s.streams},
                                "progress": {"successful": true, "scrubbed": s.progress},
                            }),
                        );
                    }
                    Err(e) => {
                        m.insert("successful".into(), false.into());
                        m.insert("error".into(), e.to_string().into());
                    }
                }
                Ok(m)
            }
            PiggyCommand::UnblockNamespace { namespace: ns } => {
                let what = format!("namespace {ns} unblocked");
                self.until(&what, timeout, |s| !s.node.with_catalog(|c| c.blocked(ns)))
                    .await?;
                Ok(reply(ns, "namespaces"))
            }
            other => Err(DevopsError::BadRequest(format!(
                "namespaces do not take {other:?}"
            ))),
        }
    }
}
