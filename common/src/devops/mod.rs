//! The devops API of Eclipse Ditto (`/devops/logging`, `/devops/config`), the same on the
//! admin HTTP listener and on the gRPC `Admin` service, for every process:
//!
//! * [`Command`]s for a [`Scope`] (all processes, one service, one instance) go to a
//!   [`Devops`]: a data node answers for itself ([`LocalOnly`]); a member asks the other
//!   members and the data nodes too ([`Fanout`]), and an instance that does not answer
//!   appears with its error.
//! * [`local::LocalAdmin`] is one process's own answer: its log levels and its effective
//!   config (secrets redacted).
//! * [`shape`] renders answers as Ditto's JSON; [`http`] and [`grpc`] serve them, after
//!   [`Operators`] let the caller in (the devops user or token, `ADMIN` on `cluster:/`, or the
//!   cluster's own members).
//!
//! * [`piggyback`]: Ditto's piggyback commands to the parts of a process (supervisors,
//!   background cleanup, namespaces), each answered by the [`PiggybackHandler`] the process
//!   registered for it.

pub mod config_view;
mod fanout;
pub mod grpc;
pub mod http;
pub mod local;
pub mod piggyback;
pub mod shape;

pub use fanout::{Directory, Fanout, Remote};
pub use local::LocalAdmin;
pub use piggyback::{PiggyCommand, PiggyReply, Piggyback, PiggybackHandler, Target};

use crate::access::{Access, Caller, Refusal};
use crate::auth::AuthMethod;
use std::sync::Arc;
use tributary_proto::v1::{DevopsScope, InstanceAnswer};

/// The two kinds of process, as they are named in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    ControlPlane,
    DataNode,
}

impl Service {
    pub const ALL: [Service; 2] = [Service::ControlPlane, Service::DataNode];

    pub fn name(self) -> &'static str {
        match self {
            Service::ControlPlane => "control-plane",
            Service::DataNode => "data-node",
        }
    }

    pub fn parse(s: &str) -> Result<Service, DevopsError> {
        Service::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| {
                DevopsError::BadRequest(format!(
                    "unknown service {s:?}: use control-plane or data-node"
                ))
            })
    }
}

/// Which processes a command is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub service: Option<Service>,
    /// An instance id; only with a service.
    pub instance: Option<String>,
    /// Only the receiving process (a member fanning out asks the others so).
    pub local: bool,
}

impl Scope {
    /// From the path parts of a request (`/devops/logging/{service}/{instance}`).
    pub fn parse(service: Option<&str>, instance: Option<&str>) -> Result<Scope, DevopsError> {
        let service = service
            .filter(|s| !s.is_empty())
            .map(Service::parse)
            .transpose()?;
        let instance = instance.filter(|i| !i.is_empty());
        if let Some(i) = instance {
            if service.is_none() {
                return Err(DevopsError::BadRequest(format!(
                    "instance {i:?} needs a service"
                )));
            }
            if i.parse::<u64>().is_err() {
                return Err(DevopsError::BadRequest(format!(
                    "unknown instance {i:?}: instances are the ids of members and data nodes (1, 2, …)"
                )));
            }
        }
        Ok(Scope {
            service,
            instance: instance.map(str::to_string),
            local: false,
        })
    }

    pub fn from_proto(p: Option<&DevopsScope>) -> Result<Scope, DevopsError> {
        let Some(p) = p else {
            return Ok(Scope::default());
        };
        let mut s = Scope::parse(Some(&p.service), Some(&p.instance))?;
        s.local = p.local;
        Ok(s)
    }

    pub fn to_proto(&self) -> DevopsScope {
        DevopsScope {
            service: self
                .service
                .map(|s| s.name().to_string())
                .unwrap_or_default(),
            instance: self.instance.clone().unwrap_or_default(),
            local: self.local,
        }
    }

    pub fn includes(&self, service: Service, instance: &str) -> bool {
        self.service.is_none_or(|s| s == service)
            && self.instance.as_deref().is_none_or(|i| i == instance)
    }

    /// How the scope reads in errors.
    pub fn describe(&self) -> String {
        match (&self.service, &self.instance) {
            (None, _) => "any service".into(),
            (Some(s), None) => s.name().into(),
            (Some(s), Some(i)) => format!("{} {i}", s.name()),
        }
    }
}

/// What a devops request asks of each process in its scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    RetrieveLoggerConfig,
    ChangeLogLevel {
        logger: String,
        level: String,
    },
    /// A dotted path; empty: the whole config.
    RetrieveConfig {
        path: String,
    },
    /// A command for one part of each process (checked when parsed).
    Piggyback(Piggyback),
}

impl Command {
    /// Checks the input once, before anything is asked of anyone.
    pub fn validate(&self) -> Result<(), DevopsError> {
        match self {
            Command::RetrieveLoggerConfig => Ok(()),
            Command::ChangeLogLevel { logger, level } => crate::logging::parse_logger(logger)
                .and_then(|_| crate::logging::parse_level(level).map(|_| ()))
                .map_err(|e| DevopsError::BadRequest(e.to_string())),
            Command::RetrieveConfig { path } => config_view::check_path(path),
            Command::Piggyback(_) => Ok(()),
        }
    }

    /// Ditto's type of the response.
    pub fn response_type(&self) -> String {
        match self {
            Command::RetrieveLoggerConfig => "devops.responses:retrieveLoggerConfig".into(),
            Command::ChangeLogLevel { .. } => "devops.responses:changeLogLevel".into(),
            Command::RetrieveConfig { .. } => "common.responses:retrieveConfig".into(),
            Command::Piggyback(p) => p.response_type(),
        }
    }

    /// The services whose processes take the command.
    pub fn services(&self) -> &'static [Service] {
        match self {
            Command::Piggyback(p) => p.target.services(),
            _ => &Service::ALL,
        }
    }

    /// How long each process may take, when the command says (else the server's default).
    pub fn timeout(&self) -> Option<std::time::Duration> {
        match self {
            Command::Piggyback(p) => Some(p.timeout),
            _ => None,
        }
    }

    /// Refuses a scope naming a service that does not run the command's part.
    pub fn check_scope(&self, scope: &Scope) -> Result<(), DevopsError> {
        match (self, scope.service) {
            (Command::Piggyback(p), Some(s)) if !p.target.services().contains(&s) => {
                Err(DevopsError::BadRequest(format!(
                    "{} runs on {} only, not on {}",
                    p.target.selection(),
                    p.target
                        .services()
                        .iter()
                        .map(|s| s.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                    s.name()
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Why a devops request as a whole is refused (an instance's own failure is in its answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DevopsError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// The state does not allow it (purging a namespace that is not blocked).
    #[error("{0}")]
    Precondition(String),
    /// The part cannot answer now (not running on this process, no leader).
    #[error("{0}")]
    Unavailable(String),
    /// The part did not finish within the request's timeout.
    #[error("{0}")]
    Timeout(String),
    #[error(transparent)]
    Refused(#[from] Refusal),
}

impl DevopsError {
    /// The HTTP status, as Ditto answers.
    pub fn http_status(&self) -> u16 {
        match self {
            DevopsError::BadRequest(_) => 400,
            DevopsError::NotFound(_) => 404,
            DevopsError::Precondition(_) => 409,
            DevopsError::Unavailable(_) => 503,
            DevopsError::Timeout(_) => 504,
            DevopsError::Refused(Refusal::Unauthenticated(_)) => 401,
            DevopsError::Refused(Refusal::Denied { .. }) => 403,
        }
    }
}

impl From<DevopsError> for tonic::Status {
    fn from(e: DevopsError) -> tonic::Status {
        match e {
            DevopsError::BadRequest(m) => tonic::Status::invalid_argument(m),
            DevopsError::NotFound(m) => tonic::Status::not_found(m),
            DevopsError::Precondition(m) => tonic::Status::failed_precondition(m),
            DevopsError::Unavailable(m) => tonic::Status::unavailable(m),
            DevopsError::Timeout(m) => tonic::Status::deadline_exceeded(m),
            DevopsError::Refused(r) => r.into(),
        }
    }
}

/// Whoever answers devops commands for a process: itself, or the cluster through it.
#[tonic::async_trait]
pub trait Devops: Send + Sync {
    async fn execute(
        &self,
        scope: &Scope,
        cmd: &Command,
    ) -> Result<Vec<InstanceAnswer>, DevopsError>;
}

/// A process that answers for itself only (a data node).
pub struct LocalOnly(pub Arc<LocalAdmin>);

#[tonic::async_trait]
impl Devops for LocalOnly {
    async fn execute(
        &self,
        scope: &Scope,
        cmd: &Command,
    ) -> Result<Vec<InstanceAnswer>, DevopsError> {
        cmd.validate()?;
        cmd.check_scope(scope)?;
        if !scope.includes(self.0.service(), &self.0.instance())
            || !cmd.services().contains(&self.0.service())
        {
            return Err(DevopsError::NotFound(format!(
                "{} {} answers for itself only, not for {}: ask a control-plane member for the cluster",
                self.0.service().name(),
                self.0.instance(),
                scope.describe()
            )));
        }
        if !scope.local {
            self.0.prepare(cmd).await?;
        }
        Ok(vec![self.0.answer(cmd).await])
    }
}

/// Who may send devops commands to a server: it knows how callers authenticate and which
/// policies it holds.
pub trait Operators: Send + Sync {
    fn access(&self) -> &Access;
    /// Whether `caller` may: the devops user or token, `ADMIN` on `cluster:/` by the
    /// server's policies, or the cluster's own members.
    fn may_operate(&self, caller: &Caller) -> Result<(), Refusal>;
    /// Whether `caller` may look at the whole cluster (the status page): READ on
    /// `cluster:/` ([`viewer`]); by default only operators.
    fn may_view(&self, caller: &Caller) -> Result<(), Refusal> {
        self.may_operate(caller)
    }
}

/// The rule every server applies, given its policies: ADMIN on `cluster:/`.
pub fn operator(
    access: &Access,
    caller: &Caller,
    policies: &dyn crate::access::Policies,
) -> Result<(), Refusal> {
    on_cluster(access, caller, policies, crate::policy::Permission::Admin)
}

/// Who may look at the whole cluster (the status page's names, lags and errors): what
/// `stream report` needs on every stream, so READ on `cluster:/`, or an operator.
pub fn viewer(
    access: &Access,
    caller: &Caller,
    policies: &dyn crate::access::Policies,
) -> Result<(), Refusal> {
    on_cluster(access, caller, policies, crate::policy::Permission::Read)
}

/// The cluster's own servers and the devops user always; anyone else needs `permission` on
/// `cluster:/`.
fn on_cluster(
    access: &Access,
    caller: &Caller,
    policies: &dyn crate::access::Policies,
    permission: crate::policy::Permission,
) -> Result<(), Refusal> {
    match caller {
        Caller::Member(_) | Caller::DataNode(None) => Ok(()),
        Caller::User(p) if p.method == AuthMethod::Devops => Ok(()),
        _ => access.require(caller, permission, "cluster:/", None, policies),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_checked_and_name_what_is_wrong() {
        assert_eq!(Scope::parse(None, None), Ok(Scope::default()));
        let s = Scope::parse(Some("data-node"), Some("2")).expect("scope");
        assert!(s.includes(Service::DataNode, "2"));
        assert!(!s.includes(Service::DataNode, "3"));
        assert!(!s.includes(Service::ControlPlane, "2"));
        let e = Scope::parse(Some("gateway"), None).unwrap_err();
        assert!(e.to_string().contains("gateway") && e.http_status() == 400);
        assert!(Scope::parse(Some("data-node"), Some("x")).is_err());
        let back = Scope::from_proto(Some(&s.to_proto())).expect("round trip");
        assert_eq!(back, s);
        let bad = Command::ChangeLogLevel {
            logger: "ROOT".into(),
            level: "loud".into(),
        };
        assert!(bad.validate().unwrap_err().to_string().contains("loud"));
    }
}
