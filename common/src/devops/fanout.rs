//! A member answering for the cluster: its own answer, and the answers of the other members
//! (over the peer links) and of the data nodes (at their catalogue addresses), asked at once
//! with a deadline each. An instance that cannot be reached or does not answer in time
//! appears with its error (503, 504); it never fails the whole request.

use super::{Command, Devops, DevopsError, LocalAdmin, Scope, Service};
use crate::trace_context::TracedChannel;
use std::sync::Arc;
use std::time::Duration;
use tributary_proto::v1::admin_client::AdminClient;
use tributary_proto::v1::{
    ChangeLogLevelRequest, DevopsReply, InstanceAnswer, RetrieveConfigRequest,
    RetrieveLoggerConfigRequest,
};

/// Another process of the cluster and how to reach its `Admin` service.
pub struct Remote {
    pub service: Service,
    pub instance: String,
    /// The channel, or why there is none (no known address).
    pub channel: Result<TracedChannel, String>,
    /// Sent as `x-tributary-cluster-token` (an `insecure` cluster's proof of membership).
    pub cluster_token: String,
}

/// Who else is in the cluster (the member's peers and catalogue).
#[tonic::async_trait]
pub trait Directory: Send + Sync {
    /// Every other process in `scope`.
    async fn others(&self, scope: &Scope) -> Vec<Remote>;
}

pub struct Fanout {
    pub local: Arc<LocalAdmin>,
    pub directory: Arc<dyn Directory>,
    /// How long each instance may take.
    pub timeout: Duration,
}

#[tonic::async_trait]
impl Devops for Fanout {
    async fn execute(
        &self,
        scope: &Scope,
        cmd: &Command,
    ) -> Result<Vec<InstanceAnswer>, DevopsError> {
        cmd.validate()?;
        cmd.check_scope(scope)?;
        let services = cmd.services();
        let mine = scope.includes(self.local.service(), &self.local.instance())
            && services.contains(&self.local.service());
        if !scope.local {
            self.local.prepare(cmd).await?;
        }
        let timeout = cmd.timeout().unwrap_or(self.timeout);
        let me = async {
            match mine {
                true => Some(self.local.answer(cmd).await),
                false => None,
            }
        };
        if scope.local {
            return me.await.map(|a| vec![a]).ok_or_else(|| {
                DevopsError::NotFound(format!(
                    "{} {} is not {}",
                    self.local.service().name(),
                    self.local.instance(),
                    scope.describe()
                ))
            });
        }
        let remotes = self.directory.others(scope).await;
        let asks = remotes
            .into_iter()
            .filter(|r| services.contains(&r.service))
            .map(|r| ask(r, cmd, timeout));
        let (me, others) = futures::future::join(me, futures::future::join_all(asks)).await;
        let mut answers: Vec<InstanceAnswer> = me.into_iter().collect();
        answers.extend(others);
        if answers.is_empty() {
            return Err(DevopsError::NotFound(format!(
                "no instance of {} is known to this cluster",
                scope.describe()
            )));
        }
        answers.sort_by(|a, b| {
            (&a.service, a.instance.parse::<u64>().unwrap_or(0))
                .cmp(&(&b.service, b.instance.parse::<u64>().unwrap_or(0)))
        });
        Ok(answers)
    }
}

/// A request with the deadline and the cluster token (when the cluster has one).
fn with_token<M>(msg: M, timeout: Duration, token: &str) -> tonic::Request<M> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(timeout);
    match token.parse() {
        Ok(v) if !token.is_empty() => {
            req.metadata_mut()
                .insert(crate::grpc::CLUSTER_TOKEN_HEADER, v);
        }
        _ => {}
    }
    req
}

async fn ask(r: Remote, cmd: &Command, timeout: Duration) -> InstanceAnswer {
    let failed = |status: u32, why: String| LocalAdmin::blank(r.service, &r.instance, status, why);
    let channel = match &r.channel {
        Ok(c) => c.clone(),
        Err(e) => return failed(503, e.clone()),
    };
    let scope = Scope {
        service: Some(r.service),
        instance: Some(r.instance.clone()),
        local: true,
    }
    .to_proto();
    let mut client = AdminClient::new(channel);
    let token = r.cluster_token.as_str();
    let call = async {
        match cmd {
            Command::RetrieveLoggerConfig => {
                client
                    .retrieve_logger_config(with_token(
                        RetrieveLoggerConfigRequest {
                            scope: Some(scope.clone()),
                        },
                        timeout,
                        token,
                    ))
                    .await
            }
            Command::ChangeLogLevel { logger, level } => {
                client
                    .change_log_level(with_token(
                        ChangeLogLevelRequest {
                            scope: Some(scope.clone()),
                            logger: logger.clone(),
                            level: level.clone(),
                        },
                        timeout,
                        token,
                    ))
                    .await
            }
            Command::RetrieveConfig { path } => {
                client
                    .retrieve_config(with_token(
                        RetrieveConfigRequest {
                            scope: Some(scope.clone()),
                            path: path.clone(),
                        },
                        timeout,
                        token,
                    ))
                    .await
            }
            Command::Piggyback(p) => {
                client
                    .piggyback(with_token(
                        p.to_proto(scope.clone()),
                        timeout + Duration::from_millis(500),
                        token,
                    ))
                    .await
            }
        }
    };
    let what = format!("{} {}", r.service.name(), r.instance);
    // The remote's own deadline for its part comes first, so its 504 names what it waited for.
    let patience = match cmd {
        Command::Piggyback(_) => timeout + Duration::from_secs(1),
        _ => timeout,
    };
    match tokio::time::timeout(patience, call).await {
        Err(_) => failed(504, format!("{what} did not answer within {timeout:?}")),
        Ok(Err(s)) => {
            let status = match s.code() {
                tonic::Code::DeadlineExceeded => 504,
                tonic::Code::InvalidArgument => 400,
                tonic::Code::NotFound => 404,
                tonic::Code::Unauthenticated => 401,
                tonic::Code::PermissionDenied => 403,
                tonic::Code::FailedPrecondition => 409,
                _ => 503,
            };
            failed(status, format!("{what}: {}", crate::grpc::describe(&s)))
        }
        Ok(Ok(reply)) => {
            let DevopsReply { answers } = reply.into_inner();
            answers
                .into_iter()
                .find(|a| a.service == r.service.name() && a.instance == r.instance)
                .unwrap_or_else(|| failed(503, format!("{what} answered for another instance")))
        }
    }
}
