//! The member's part in the devops API: who else answers (the other members over the peer
//! links, the data nodes at the addresses the catalogue holds, each reached with this
//! member's own identity), and the health it reports (`NOT_SERVING` while there is no leader).

use crate::config::ControlPlaneConfig;
use crate::node::{Halt, Node};
use std::sync::Arc;
use std::time::Duration;
use tributary_common::devops::{Directory, Fanout, LocalAdmin, Remote, Scope, Service};
use tributary_common::health::{service_name, Health};
use tributary_common::tls::{self, TlsFiles};
use tributary_proto::v1::{entity::Kind, DataNode, EntityKind};

pub struct ClusterDirectory {
    node: Node,
    /// This member's certificate (None: `insecure`, where the cluster token is shown).
    tls: Option<TlsFiles>,
    cluster_token: String,
}

/// The member's devops: itself and, through it, the cluster.
pub fn fanout(node: &Node, config: &ControlPlaneConfig) -> Fanout {
    let (tls, cluster_token) = identity(config);
    let directory = ClusterDirectory {
        node: node.clone(),
        tls,
        cluster_token,
    };
    Fanout {
        local: Arc::new(LocalAdmin::new(Service::ControlPlane, config.id, config)),
        directory: Arc::new(directory),
        timeout: Duration::from_millis(config.request_timeout_ms.max(100)),
    }
}

#[tonic::async_trait]
impl Directory for ClusterDirectory {
    async fn others(&self, scope: &Scope) -> Vec<Remote> {
        let mut out = Vec::new();
        let mut members: Vec<u64> = self.node.peers.all().into_keys().collect();
        members.sort_unstable();
        for id in members.into_iter().filter(|id| *id != self.node.id) {
            if !scope.includes(Service::ControlPlane, &id.to_string()) {
                continue;
            }
            // The peer listener: members only, the same link Raft uses.
            out.push(Remote {
                service: Service::ControlPlane,
                instance: id.to_string(),
                channel: self.node.peers.channel(id).await,
                cluster_token: String::new(),
            });
        }
        let nodes = self
            .node
            .catalogue
            .list(EntityKind::DataNode, "")
            .unwrap_or_default();
        for e in nodes {
            let Some(Kind::DataNode(d)) = e.kind else {
                continue;
            };
            if !scope.includes(Service::DataNode, &d.id.to_string()) {
                continue;
            }
            out.push(Remote {
                service: Service::DataNode,
                instance: d.id.to_string(),
                channel: data_node_channel(&d, self.tls.as_ref()),
                cluster_token: self.cluster_token.clone(),
            });
        }
        out
    }
}

/// How this member shows itself to data nodes: its certificate, or (`insecure`) no TLS and
/// the cluster token.
pub fn identity(config: &ControlPlaneConfig) -> (Option<TlsFiles>, String) {
    match config.insecure {
        true => (None, config.cluster_secret.clone()),
        false => (Some(config.tls.clone()), String::new()),
    }
}

/// A channel to data node `d` at its catalogue address, as this member (its certificate, the
/// data node's name expected on the other end), or cleartext when `insecure`.
pub fn data_node_channel(
    d: &DataNode,
    tls: Option<&TlsFiles>,
) -> Result<tributary_common::trace_context::TracedChannel, String> {
    let name = tributary_common::certs::data_node_name(d.id);
    tls::channel(&d.addr, tls, Some(&name))
        .map_err(|e| format!("data-node {} at {}: {e}", d.id, d.addr))
}

/// The services of the client listener that need a leader to serve.
pub fn leader_bound() -> Vec<String> {
    vec![service_name("Catalog")]
}

/// Every service a member serves (reflection lists them).
pub fn all_services(peer: bool) -> Vec<String> {
    let names: &[&str] = match peer {
        true => &["Raft", "Cluster", "Admin"],
        false => &["Raft", "Catalog", "Cluster", "Admin"],
    };
    names.iter().map(|n| service_name(n)).collect()
}

/// Keeps the health statuses current: the catalogue and the overall status serve only while
/// a leader is known; once the Raft loop has stopped (a panic, a storage error) nothing this
/// member serves is healthy, as `/ready` and `/health` say too.
pub async fn report_health(node: Node, health: Health) {
    for s in ["Cluster", "Raft", "Admin"] {
        health.set_one(&service_name(s), true).await;
    }
    let mut states = node.state_changes();
    let mut halts = node.halts();
    let mut last = None;
    loop {
        if *halts.borrow_and_update() != Halt::Running {
            break;
        }
        let has_leader = states.borrow_and_update().leader != 0;
        if last != Some(has_leader) {
            health.set(&leader_bound(), has_leader).await;
            last = Some(has_leader);
        }
        let changed = tokio::select! {
            r = states.changed() => r,
            r = halts.changed() => r,
        };
        if changed.is_err() {
            break;
        }
    }
    let mut every = all_services(false);
    every.extend(all_services(true));
    health.set(&every, false).await;
}
