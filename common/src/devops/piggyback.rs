//! Eclipse Ditto's piggyback commands: `{targetActorSelection, headers, piggybackCommand}`,
//! a command for one part of each process in scope. The parts ([`Target`]) and what each
//! takes ([`PiggyCommand`]) are checked once, where the request enters; each process hands the
//! command to the [`PiggybackHandler`] it registered for the target.
//!
//! | target | runs on | commands |
//! |---|---|---|
//! | `/user/dittoSupervisor` | data nodes | retrieveHealth, retrieveConfig, modifyConfig, shutdown (restart) |
//! | `/user/mirrorSupervisor` | data nodes | the same |
//! | `/user/persistenceCleanup` | every process | the same (`modifyConfig` takes every knob and `last-pid`) |
//! | `/system/distributedPubSubMediator` | every process | block, shutdown (`reason.type` `purge-namespace`), purge, unblock a namespace |

use super::{DevopsError, Service};
use serde_json::{json, Map, Value};
use std::time::Duration;
use tributary_proto::v1::{DevopsScope, PiggybackRequest};

/// The default of Ditto's `?timeout=`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A part of a process that takes piggyback commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    DittoSupervisor,
    MirrorSupervisor,
    PersistenceCleanup,
    Namespaces,
}

impl Target {
    pub const ALL: [Target; 4] = [
        Target::DittoSupervisor,
        Target::MirrorSupervisor,
        Target::PersistenceCleanup,
        Target::Namespaces,
    ];

    /// Its `targetActorSelection`.
    pub fn selection(self) -> &'static str {
        match self {
            Target::DittoSupervisor => "/user/dittoSupervisor",
            Target::MirrorSupervisor => "/user/mirrorSupervisor",
            Target::PersistenceCleanup => "/user/persistenceCleanup",
            Target::Namespaces => "/system/distributedPubSubMediator",
        }
    }

    pub fn parse(s: &str) -> Result<Target, DevopsError> {
        let s = s.trim_end_matches('/');
        Target::ALL
            .into_iter()
            .find(|t| t.selection() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Target::ALL.iter().map(|t| t.selection()).collect();
                DevopsError::BadRequest(format!(
                    "unknown targetActorSelection {s:?}: use one of {}",
                    known.join(", ")
                ))
            })
    }

    /// The services whose processes run this part.
    pub fn services(self) -> &'static [Service] {
        match self {
            Target::DittoSupervisor | Target::MirrorSupervisor => &[Service::DataNode],
            Target::PersistenceCleanup | Target::Namespaces => &Service::ALL,
        }
    }
}

/// What a piggyback command asks of a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PiggyCommand {
    /// `status.commands:retrieveHealth`: state and progress.
    RetrieveHealth,
    /// `common.commands:retrieveConfig`: the part's effective config.
    RetrieveConfig,
    /// `common.commands:modifyConfig`: the keys given change; the rest stay.
    ModifyConfig { config: Map<String, Value> },
    /// `common.commands:shutdown`: restart the part.
    Shutdown,
    /// `namespaces.commands:blockNamespace`.
    BlockNamespace { namespace: String },
    /// `common.commands:shutdown` with `reason: {type: purge-namespace, details: NS}`.
    ShutdownNamespace { namespace: String },
    /// `namespaces.commands:purgeNamespace`.
    PurgeNamespace { namespace: String },
    /// `namespaces.commands:unblockNamespace`.
    UnblockNamespace { namespace: String },
}

const RETRIEVE_HEALTH: &str = "status.commands:retrieveHealth";
const RETRIEVE_CONFIG: &str = "common.commands:retrieveConfig";
const MODIFY_CONFIG: &str = "common.commands:modifyConfig";
const SHUTDOWN: &str = "common.commands:shutdown";
const BLOCK: &str = "namespaces.commands:blockNamespace";
const PURGE: &str = "namespaces.commands:purgeNamespace";
const UNBLOCK: &str = "namespaces.commands:unblockNamespace";

/// A checked piggyback request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piggyback {
    pub target: Target,
    pub command: PiggyCommand,
    /// `piggybackCommand` as sent (what a member passes on to the others).
    pub raw_command: Value,
    /// Ditto's `headers.aggregate` (default true): false answers with one response.
    pub aggregate: bool,
    /// How long each process may take.
    pub timeout: Duration,
}

fn bad(msg: String) -> DevopsError {
    DevopsError::BadRequest(msg)
}

impl Piggyback {
    /// From Ditto's request body and the `timeout` query parameter.
    pub fn from_body(body: &[u8], timeout: Option<&str>) -> Result<Piggyback, DevopsError> {
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            bad(format!(
                r#"the body must be JSON {{"targetActorSelection": "...", "headers": {{}}, "piggybackCommand": {{"type": "..."}}}}: {e}"#
            ))
        })?;
        let target = v
            .get("targetActorSelection")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("the body has no string field \"targetActorSelection\"".into()))?;
        let command = v
            .get("piggybackCommand")
            .cloned()
            .ok_or_else(|| bad("the body has no field \"piggybackCommand\"".into()))?;
        let headers = v.get("headers").cloned().unwrap_or(Value::Null);
        let aggregate = match headers.get("aggregate") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
            Some(other) => return Err(bad(format!("headers.aggregate {other} is not a boolean"))),
        };
        let timeout = timeout.map(parse_timeout).transpose()?;
        let mut p = Piggyback::parse(target, command, timeout.unwrap_or(DEFAULT_TIMEOUT))?;
        p.aggregate = aggregate;
        Ok(p)
    }

    /// From a target and a command (as the gRPC request carries them).
    pub fn parse(
        target: &str,
        raw_command: Value,
        timeout: Duration,
    ) -> Result<Piggyback, DevopsError> {
        let target = Target::parse(target)?;
        let command = PiggyCommand::parse(target, &raw_command)?;
        Ok(Piggyback {
            target,
            command,
            raw_command,
            aggregate: true,
            timeout,
        })
    }

    /// The gRPC request (what tribctl sends, and what a member sends the others).
    pub fn to_proto(&self, scope: DevopsScope) -> PiggybackRequest {
        PiggybackRequest {
            scope: Some(scope),
            target_actor_selection: self.target.selection().to_string(),
            piggyback_command_json: self.raw_command.to_string(),
            timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// From the gRPC request.
    pub fn from_proto(r: &PiggybackRequest) -> Result<Piggyback, DevopsError> {
        let command: Value = serde_json::from_str(&r.piggyback_command_json).map_err(|e| {
            bad(format!(
                "piggyback_command_json must be a JSON object with a \"type\": {e}"
            ))
        })?;
        let timeout = match r.timeout_ms {
            0 => DEFAULT_TIMEOUT,
            ms => parse_timeout(&ms.to_string())?,
        };
        Piggyback::parse(&r.target_actor_selection, command, timeout)
    }

    /// Ditto's type of the response (`status.responses:retrieveHealth`).
    pub fn response_type(&self) -> String {
        let t = self
            .raw_command
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        t.replacen(".commands:", ".responses:", 1)
    }
}

/// Ditto's `?timeout=10s` (also `500ms`, `1m`, or plain milliseconds as Ditto takes them).
pub fn parse_timeout(raw: &str) -> Result<Duration, DevopsError> {
    let d = match raw.parse::<u64>() {
        Ok(ms) => Duration::from_millis(ms),
        Err(_) => humantime::parse_duration(raw).map_err(|e| {
            bad(format!(
                "timeout {raw:?} is not a duration (10s, 500ms): {e}"
            ))
        })?,
    };
    if d > Duration::from_secs(3600) {
        return Err(bad(format!("timeout {raw:?} is more than an hour")));
    }
    Ok(d)
}

impl PiggyCommand {
    fn parse(target: Target, v: &Value) -> Result<PiggyCommand, DevopsError> {
        let ty = v
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("piggybackCommand has no string field \"type\"".into()))?;
        let namespace = || {
            let ns = v
                .get("namespace")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("{ty} needs a string field \"namespace\"")))?;
            crate::names::validate_part(ns).map_err(|r| bad(format!("namespace {ns:?} {r}")))?;
            Ok::<_, DevopsError>(ns.to_string())
        };
        let cmd = match (target, ty) {
            (Target::Namespaces, BLOCK) => PiggyCommand::BlockNamespace {
                namespace: namespace()?,
            },
            (Target::Namespaces, PURGE) => PiggyCommand::PurgeNamespace {
                namespace: namespace()?,
            },
            (Target::Namespaces, UNBLOCK) => PiggyCommand::UnblockNamespace {
                namespace: namespace()?,
            },
            (Target::Namespaces, SHUTDOWN) => {
                let reason = v.get("reason").cloned().unwrap_or(Value::Null);
                let kind = reason.get("type").and_then(Value::as_str);
                let details = reason.get("details").and_then(Value::as_str);
                match (kind, details) {
                    (Some("purge-namespace"), Some(ns)) => {
                        crate::names::validate_part(ns)
                            .map_err(|r| bad(format!("namespace {ns:?} {r}")))?;
                        PiggyCommand::ShutdownNamespace {
                            namespace: ns.to_string(),
                        }
                    }
                    _ => {
                        return Err(bad(format!(
                            r#"{SHUTDOWN} to {} needs "reason": {{"type": "purge-namespace", "details": NAMESPACE}}"#,
                            target.selection()
                        )))
                    }
                }
            }
            (Target::Namespaces, other) => return Err(unknown(target, other)),
            (_, RETRIEVE_HEALTH) => PiggyCommand::RetrieveHealth,
            (_, RETRIEVE_CONFIG) => PiggyCommand::RetrieveConfig,
            (_, SHUTDOWN) => PiggyCommand::Shutdown,
            (_, MODIFY_CONFIG) => match v.get("config") {
                Some(Value::Object(m)) => PiggyCommand::ModifyConfig { config: m.clone() },
                _ => return Err(bad(format!("{MODIFY_CONFIG} needs an object \"config\""))),
            },
            (_, other) => return Err(unknown(target, other)),
        };
        Ok(cmd)
    }
}

fn unknown(target: Target, ty: &str) -> DevopsError {
    let known: &[&str] = match target {
        Target::Namespaces => &[BLOCK, SHUTDOWN, PURGE, UNBLOCK],
        _ => &[RETRIEVE_HEALTH, RETRIEVE_CONFIG, MODIFY_CONFIG, SHUTDOWN],
    };
    bad(format!(
        "unknown piggyback command {ty:?} for {}: use one of {}",
        target.selection(),
        known.join(", ")
    ))
}

/// A part's answer: the response's fields beyond `type` and `status`, or why it failed.
pub type PiggyReply = Result<Map<String, Value>, DevopsError>;

/// A part of a process that takes piggyback commands (registered with the process's
/// `LocalAdmin`).
#[tonic::async_trait]
pub trait PiggybackHandler: Send + Sync {
    /// Once, on the process a request enters, before it goes to every process in scope (a
    /// member writes a namespace's block into the catalogue here).
    async fn prepare(&self, _cmd: &PiggyCommand, _timeout: Duration) -> Result<(), DevopsError> {
        Ok(())
    }

    /// This process's part's answer.
    async fn answer(&self, cmd: &PiggyCommand, timeout: Duration) -> PiggyReply;
}

/// Ditto's `statusInfo` of a retrieveHealth response: `UP` with one `INFO` detail.
pub fn health_info(up: bool, info: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "statusInfo".into(),
        json!({"status": if up { "UP" } else { "DOWN" }, "details": [{"INFO": info}]}),
    );
    m
}

/// A `config` field (retrieveConfig and modifyConfig responses).
pub fn config_reply(config: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("config".into(), config);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    #[test]
    fn requests_are_checked_and_errors_name_what_is_wrong() {
        let p = Piggyback::from_body(
            &body(json!({"targetActorSelection": "/user/dittoSupervisor", "headers": {"aggregate": false},
                         "piggybackCommand": {"type": "status.commands:retrieveHealth"}})),
            Some("2s"),
        )
        .expect("valid");
        assert_eq!(
            (p.target, &p.command, p.aggregate, p.timeout),
            (
                Target::DittoSupervisor,
                &PiggyCommand::RetrieveHealth,
                false,
                Duration::from_secs(2)
            )
        );
        assert_eq!(p.response_type(), "status.responses:retrieveHealth");

        let e = Piggyback::from_body(
            &body(
                json!({"targetActorSelection": "/user/gateway", "piggybackCommand": {"type": "x"}}),
            ),
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("/user/gateway") && e.http_status() == 400);
        let e = Piggyback::from_body(
            &body(json!({"targetActorSelection": "/user/mirrorSupervisor",
                         "piggybackCommand": {"type": "common.commands:explode"}})),
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("common.commands:explode"), "{e}");
        let e = Piggyback::from_body(
            &body(json!({"targetActorSelection": "/system/distributedPubSubMediator",
                         "piggybackCommand": {"type": "namespaces.commands:blockNamespace", "namespace": "a:b"}})),
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("a:b"), "{e}");
        let p = Piggyback::from_body(
            &body(json!({"targetActorSelection": "/system/distributedPubSubMediator",
                         "piggybackCommand": {"type": "common.commands:shutdown",
                                              "reason": {"type": "purge-namespace", "details": "acme"}}})),
            Some("0"),
        )
        .expect("namespace shutdown");
        assert_eq!(
            p.command,
            PiggyCommand::ShutdownNamespace {
                namespace: "acme".into()
            }
        );
        assert!(Piggyback::from_body(b"{", None).is_err());
        assert!(parse_timeout("soon").is_err());
        assert_eq!(parse_timeout("1500").unwrap(), Duration::from_millis(1500));
    }
}
