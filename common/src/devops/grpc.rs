//! The gRPC `Admin` service: decode, let the caller in, execute, reply.

use super::{Command, Devops, Operators, Piggyback, Scope};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tributary_proto::v1::admin_server::Admin;
use tributary_proto::v1::{
    ChangeLogLevelRequest, DevopsReply, DevopsScope, PiggybackRequest, RetrieveConfigRequest,
    RetrieveLoggerConfigRequest,
};

pub struct AdminService {
    pub devops: Arc<dyn Devops>,
    pub operators: Arc<dyn Operators>,
    /// Served on a member's peer listener, which lets only members in (its interceptor).
    pub peer: bool,
}

impl AdminService {
    /// The devops user or token, `ADMIN` on `cluster:/`, or (on the peer listener, whose
    /// interceptor checked it) a member.
    async fn let_in<T>(&self, req: &Request<T>) -> Result<(), Status> {
        if !self.peer {
            let caller = self.operators.access().devops_caller(req).await?;
            self.operators.may_operate(&caller)?;
        }
        Ok(())
    }

    async fn run<T>(
        &self,
        req: &Request<T>,
        scope: Option<&DevopsScope>,
        cmd: Command,
    ) -> Result<Response<DevopsReply>, Status> {
        self.let_in(req).await?;
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

    async fn piggyback(
        &self,
        req: Request<PiggybackRequest>,
    ) -> Result<Response<DevopsReply>, Status> {
        self.let_in(&req).await?;
        let m = req.get_ref();
        let cmd = Command::Piggyback(Piggyback::from_proto(m)?);
        let scope = Scope::from_proto(m.scope.as_ref())?;
        cmd.check_scope(&scope)?;
        let answers = self.devops.execute(&scope, &cmd).await?;
        Ok(Response::new(DevopsReply { answers }))
    }
}
