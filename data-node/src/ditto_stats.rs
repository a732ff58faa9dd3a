//! `Ditto.Stats`: this node's ditto workers and copy slots, as the workers report them.
//! Who: READ on `cluster:/`.

use crate::gate::Gate;
use crate::node::ditto_status::{CopySlots, DittoBoard};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tributary_common::policy::Permission;
use tributary_proto::v1::{ditto_server::Ditto, DittoStatsReply, DittoStatsRequest};

pub struct DittoStatsService {
    pub gate: Arc<Gate>,
    pub node_id: u64,
    pub board: Arc<DittoBoard>,
    pub slots: Arc<CopySlots>,
}

#[tonic::async_trait]
impl Ditto for DittoStatsService {
    #[tracing::instrument(name = "Ditto.Stats", skip_all)]
    async fn stats(
        &self,
        req: Request<DittoStatsRequest>,
    ) -> Result<Response<DittoStatsReply>, Status> {
        let pass = self.gate.other(&req, "Ditto.Stats").await?;
        self.gate
            .require(&pass, Permission::Read, "cluster:/", "")
            .map_err(Status::from)?;
        Ok(Response::new(DittoStatsReply {
            node_id: self.node_id,
            workers: self.board.snapshot(),
            max_workers: self.slots.max(),
            copying: self.slots.copying(),
            copying_peak: self.slots.peak(),
        }))
    }
}
