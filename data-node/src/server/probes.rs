//! The data node's devops and health: it answers devops commands for itself (the Admin
//! service and the admin listener's `/devops` routes), and its services are `NOT_SERVING`
//! until it has a catalogue view (saved by an earlier run, or listed from the control plane
//! it has registered with).

use crate::config::DataNodeConfig;
use crate::gate::Gate;
use crate::node::Node;
use std::sync::Arc;
use tributary_common::devops::grpc::AdminService;
use tributary_common::devops::{Devops, LocalAdmin, LocalOnly, Operators, Service};
use tributary_common::health::{service_name, Health};
use tributary_proto::v1::admin_server::AdminServer;

/// The services that wait for the catalogue.
fn catalogue_bound() -> Vec<String> {
    ["Ingest", "Wells", "Streams", "StreamGroups", "Ditto"]
        .iter()
        .map(|n| service_name(n))
        .collect()
}

/// Every service of the listener (reflection lists them).
pub fn all_services() -> Vec<String> {
    let mut all = catalogue_bound();
    all.push(service_name("Admin"));
    all
}

pub struct Probes {
    /// This node's own devops answers; its parts register their piggyback handlers here.
    pub local: Arc<LocalAdmin>,
    pub devops: Arc<dyn Devops>,
    pub operators: Arc<dyn Operators>,
    pub health: Health,
}

impl Probes {
    pub fn new(config: &DataNodeConfig, gate: Arc<Gate>) -> Probes {
        let local = Arc::new(LocalAdmin::new(Service::DataNode, config.id, config));
        Probes {
            local: local.clone(),
            devops: Arc::new(LocalOnly(local)),
            operators: gate,
            health: Health::default(),
        }
    }

    pub fn admin(&self) -> AdminServer<AdminService> {
        AdminServer::new(AdminService {
            devops: self.devops.clone(),
            operators: self.operators.clone(),
            peer: false,
        })
    }

    pub fn routes(&self) -> axum::Router {
        tributary_common::devops::http::routes(self.devops.clone(), self.operators.clone())
    }
}

/// Keeps the health statuses current as the catalogue arrives.
pub async fn report_health(node: Arc<Node>, health: Health) {
    health.set_one(&service_name("Admin"), true).await;
    let mut changes = node.catalog_changes();
    let mut last = None;
    loop {
        changes.borrow_and_update();
        let loaded = node.catalog_loaded();
        if last != Some(loaded) {
            health.set(&catalogue_bound(), loaded).await;
            last = Some(loaded);
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}
