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
//! Piggyback commands will be one more [`Command`] and one more route in [`http::routes`].

pub mod config_view;
mod fanout;
pub mod grpc;
pub mod http;
pub mod local;
pub mod shape;

pub use fanout::{Directory, Fanout, Remote};
pub use local::LocalAdmin;

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
        }
    }

    /// Ditto's type of the response.
    pub fn response_type(&self) -> &'static str {
        match self {
            Command::RetrieveLoggerConfig => "devops.responses:retrieveLoggerConfig",
            Command::ChangeLogLevel { .. } => "devops.responses:changeLogLevel",
            Command::RetrieveConfig { .. } => "common.responses:retrieveConfig",
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
    #[error(transparent)]
    Refused(#[from] Refusal),
}

impl DevopsError {
    /// The HTTP status, as Ditto answers.
    pub fn http_status(&self) -> u16 {
        match self {
            DevopsError::BadRequest(_) => 400,
            DevopsError::NotFound(_) => 404,
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
        if !scope.includes(self.0.service(), &self.0.instance()) {
            return Err(DevopsError::NotFound(format!(
                "{} {} answers for itself only, not for {}: ask a control-plane member for the cluster",
                self.0.service().name(),
                self.0.instance(),
                scope.describe()
            )));
        }
        Ok(vec![self.0.answer(cmd)])
    }
}

/// Who may send devops commands to a server: it knows how callers authenticate and which
/// policies it holds.
pub trait Operators: Send + Sync {
    fn access(&self) -> &Access;
    /// Whether `caller` may: the devops user or token, `ADMIN` on `cluster:/` by the
    /// server's policies, or the cluster's own members.
    fn may_operate(&self, caller: &Caller) -> Result<(), Refusal>;
}

/// The rule every server applies, given its policies.
pub fn operator(
    access: &Access,
    caller: &Caller,
    policies: &dyn crate::access::Policies,
) -> Result<(), Refusal> {
    match caller {
        Caller::Member(_) | Caller::DataNode(None) => Ok(()),
        Caller::User(p) if p.method == AuthMethod::Devops => Ok(()),
        _ => access.require(
            caller,
            crate::policy::Permission::Admin,
            "cluster:/",
            None,
            policies,
        ),
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
