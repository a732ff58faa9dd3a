//! The gRPC `Admin` service: decode, let the caller in, execute, reply.

use super::{Command, Devops, Operators, Scope};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tributary_proto::v1::admin_server::Admin;
use tributary_proto::v1::{
    ChangeLogLevelRequest, DevopsReply, DevopsScope, RetrieveConfigRequest,
    RetrieveLoggerConfigRequest,
};

pub struct AdminService {
    pub devops: Arc<dyn Devops>,
    pub operators: Arc<dyn Operators>,
    /// Served on a member's peer listener, which lets only members in (its interceptor).
    pub peer: bool,
}

impl AdminService {
    async fn run<T>(
        &self,
        req: &Request<T>,
        scope: Option<&DevopsScope>,
        cmd: Command,
    ) -> Result<Response<DevopsReply>, Status> {
        if !self.peer {
            let caller = self.operators.access().devops_caller(req).await?;
            self.operators.may_operate(&caller)?;
        }
        let scope = Scope::from_proto(scope)?;
        let answers = self.devops.execute(&scope, &cmd).await?;
        Ok(Response::new(DevopsReply { answers }))
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn retrieve_logger_config(
        &self,
        req: Request<RetrieveLoggerConfigRequest>,
    ) -> Result<Response<DevopsReply>, Status> {
        let scope = req.get_ref().scope.clone();
        self.run(&req, scope.as_ref(), Command::RetrieveLoggerConfig)
            .await
    }

    async fn change_log_level(
        &self,
        req: Request<ChangeLogLevelRequest>,
    ) -> Result<Response<DevopsReply>, Status> {
        let m = req.get_ref().clone();
        let cmd = Command::ChangeLogLevel {
            logger: m.logger,
            level: m.level,
        };
        self.run(&req, m.scope.as_ref(), cmd).await
    }

    async fn retrieve_config(
        &self,
        req: Request<RetrieveConfigRequest>,
    ) -> Result<Response<DevopsReply>, Status> {
        let m = req.get_ref().clone();
        let cmd = Command::RetrieveConfig { path: m.path };
        self.run(&req, m.scope.as_ref(), cmd).await
    }
}
