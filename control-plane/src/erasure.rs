//! Namespace erasure on a member, as Eclipse Ditto's four piggyback commands to
//! `/system/distributedPubSubMediator`: the member a command enters writes it into the
//! catalogue (`prepare`), so it reaches every member and data node by replication; then every
//! process answers once its own view has it (`answer`; a member after a ReadIndex, a data node
//! once its watch brought it), so the reply means all have it.
//!
//! * **block**: the namespace's `blocked` flag; every write of its entities is refused when
//!   applied, every read by the services, on members and data nodes alike.
//! * **shutdown**: `shut_down`; the data nodes' supervisors run no worker of it.
//! * **purge**: every well, stream, target and policy of it deleted (the data nodes drop their
//!   data on each delete, then scrub what else names it); each resource type answers with
//!   `successful`.
//! * **unblock**: the flags cleared, and the namespace's record deleted when it holds nothing,
//!   so it starts empty.

use crate::catalog::entity::{kind_label, name_of};
use crate::error::CatalogError;
use crate::node::Node;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::Duration;
use tributary_common::devops::{DevopsError, PiggyCommand, PiggyReply, PiggybackHandler};
use tributary_common::sync::lock;
use tributary_proto::v1::command::Op;
use tributary_proto::v1::{entity::Kind, Command, Entity, EntityKind, EntityRef, Namespace};

/// What a purge deletes, in an order that lets each go (policies last: the rest name them).
const PURGED: [EntityKind; 4] = [
    EntityKind::Well,
    EntityKind::Stream,
    EntityKind::Target,
    EntityKind::Policy,
];

pub struct Namespaces {
    pub node: Node,
    /// The last purge this member ran, per namespace: its answer lists what it deleted.
    purged: std::sync::Mutex<HashMap<String, Map<String, Value>>>,
}

fn devops(e: CatalogError) -> DevopsError {
    match e {
        CatalogError::Invalid { .. } => DevopsError::BadRequest(e.to_string()),
        CatalogError::NotFound { .. } => DevopsError::NotFound(e.to_string()),
        CatalogError::FailedPrecondition(m) => DevopsError::Precondition(m),
        other => DevopsError::Unavailable(other.to_string()),
    }
}

impl Namespaces {
    pub fn new(node: Node) -> Namespaces {
        Namespaces {
            node,
            purged: std::sync::Mutex::new(HashMap::new()),
        }
    }

    async fn write(&self, op: Op) -> Result<(), CatalogError> {
        self.node
            .write(Command {
                op: Some(op),
                live_nodes: Vec::new(),
                erasure: true,
            })
            .await
            .map(|_| ())
    }

    /// Writes the namespace's flags (creating its record when there is none).
    async fn set_flags(&self, ns: &str, blocked: bool, shut_down: bool) -> Result<(), DevopsError> {
        let stored = self.node.catalogue.namespace(ns).map_err(devops)?;
        let entity = Entity {
            kind: Some(Kind::Namespace(Namespace {
                name: ns.to_string(),
                blocked,
                shut_down,
            })),
        };
        match stored {
            Some(n) if n.blocked == blocked && n.shut_down == shut_down => Ok(()),
            Some(_) => self.write(Op::Update(entity)).await.map_err(devops),
            None => self.write(Op::Create(entity)).await.map_err(devops),
        }
    }

    fn require_blocked(&self, ns: &str, step: &str) -> Result<(), DevopsError> {
        match self.node.catalogue.namespace(ns).map_err(devops)? {
            Some(n) if n.blocked => Ok(()),
            _ => Err(DevopsError::Precondition(format!(
                "namespace {ns} is not blocked: block it before {step} (tribctl namespace block {ns})"
            ))),
        }
    }

    fn entities(&self, kind: EntityKind, ns: &str) -> Vec<Entity> {
        self.node.catalogue.list(kind, ns).unwrap_or_default()
    }

    /// Deletes every entity of `ns`; what each resource type came to.
    async fn purge(&self, ns: &str) -> Map<String, Value> {
        let mut out = Map::new();
        for kind in PURGED {
            let (mut deleted, mut errors) = (0u64, Vec::new());
            for e in self.entities(kind, ns) {
                let name = name_of(&e);
                let r = EntityRef {
                    kind: kind as i32,
                    name: name.clone(),
                };
                match self.write(Op::Delete(r)).await {
                    Ok(()) => deleted += 1,
                    Err(CatalogError::NotFound { .. }) => {}
                    Err(e) => errors.push(format!("{} {name}: {e}", kind_label(kind))),
                }
            }
            let mut m = json!({"successful": errors.is_empty(), "deleted": deleted});
            if !errors.is_empty() {
                m["errors"] = json!(errors);
            }
            out.insert(kind_label(kind).to_string(), m);
        }
        out
    }

    /// Once this member has applied everything committed (ReadIndex), whether `done` holds:
    /// the command was written before, so a member that has it answers.
    async fn has(&self, what: &str, done: impl Fn(&Namespaces) -> bool) -> Result<(), DevopsError> {
        self.node.read_index().await.map_err(devops)?;
        match done(self) {
            true => Ok(()),
            false => Err(DevopsError::Precondition(format!(
                "member {}: {what} is not so in its catalogue",
                self.node.id
            ))),
        }
    }

    fn flags(&self, ns: &str) -> (bool, bool) {
        match self.node.catalogue.namespace(ns) {
            Ok(Some(n)) => (n.blocked, n.shut_down),
            _ => (false, false),
        }
    }

    fn holds_nothing(&self, ns: &str) -> bool {
        PURGED.iter().all(|k| self.entities(*k, ns).is_empty())
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
    async fn prepare(&self, cmd: &PiggyCommand, _timeout: Duration) -> Result<(), DevopsError> {
        match cmd {
            PiggyCommand::BlockNamespace { namespace: ns } => {
                let (_, shut_down) = self.flags(ns);
                self.set_flags(ns, true, shut_down).await
            }
            PiggyCommand::ShutdownNamespace { namespace: ns } => {
                self.require_blocked(ns, "shutting it down")?;
                self.set_flags(ns, true, true).await
            }
            PiggyCommand::PurgeNamespace { namespace: ns } => {
                self.require_blocked(ns, "purging it")?;
                let outcome = self.purge(ns).await;
                lock(&self.purged).insert(ns.clone(), outcome);
                Ok(())
            }
            PiggyCommand::UnblockNamespace { namespace: ns } => {
                if self.node.catalogue.namespace(ns).map_err(devops)?.is_none() {
                    return Ok(());
                }
                match self.holds_nothing(ns) {
                    // Nothing left: the record goes too, and the namespace starts empty.
                    true => self
                        .write(Op::Delete(EntityRef {
                            kind: EntityKind::Namespace as i32,
                            name: ns.clone(),
                        }))
                        .await
                        .or_else(|e| match e {
                            CatalogError::NotFound { .. } => Ok(()),
                            e => Err(e),
                        })
                        .map_err(devops),
                    false => self.set_flags(ns, false, false).await,
                }
            }
            _ => Ok(()),
        }
    }

    async fn answer(&self, cmd: &PiggyCommand, _timeout: Duration) -> PiggyReply {
        match cmd {
            PiggyCommand::BlockNamespace { namespace: ns } => {
                self.has(&format!("namespace {ns} blocked"), |s| s.flags(ns).0)
                    .await?;
                Ok(reply(ns, "namespaces"))
            }
            PiggyCommand::ShutdownNamespace { namespace: ns } => {
                self.has(&format!("namespace {ns} shut down"), |s| s.flags(ns).1)
                    .await?;
                Ok(reply(ns, "namespaces"))
            }
            PiggyCommand::PurgeNamespace { namespace: ns } => {
                self.node.read_index().await.map_err(devops)?;
                // The member that purged lists what it deleted; every member what is left.
                let types = lock(&self.purged).remove(ns).unwrap_or_default();
                let left: Vec<String> = PURGED
                    .iter()
                    .flat_map(|k| self.entities(*k, ns))
                    .map(|e| {
                        format!(
                            "{} {}",
                            kind_label(crate::catalog::entity::kind_of(&e)),
                            name_of(&e)
                        )
                    })
                    .collect();
                let mut m = reply(ns, "catalogue");
                m.insert("successful".into(), left.is_empty().into());
                if !left.is_empty() {
                    m.insert("left".into(), json!(left));
                }
                if !types.is_empty() {
                    m.insert("resourceTypes".into(), Value::Object(types));
                }
                Ok(m)
            }
            PiggyCommand::UnblockNamespace { namespace: ns } => {
                self.has(&format!("namespace {ns} unblocked"), |s| !s.flags(ns).0)
                    .await?;
                Ok(reply(ns, "namespaces"))
            }
            other => Err(DevopsError::BadRequest(format!(
                "namespaces do not take {other:?}"
            ))),
        }
    }
}
