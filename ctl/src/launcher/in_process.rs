//! A planned cluster started in this process (`tribctl demo`): members on listeners bound
//! before the plan is made, so the peers string holds real ports and no port is picked twice.

use super::plan::{ClusterPlan, Ports};
use anyhow::{anyhow, Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tributary_control_plane::RunningControlPlane;
use tributary_data_node::RunningDataNode;

pub struct InProcessCluster {
    pub members: Vec<RunningControlPlane>,
    pub data_nodes: Vec<RunningDataNode>,
}

/// Starts `members` members and `data_nodes` data nodes on 127.0.0.1 under `dir`, with the
/// plan changed by `tune` first; returns once the members have a leader.
pub async fn start(
    dir: &Path,
    members: usize,
    data_nodes: usize,
    tune: impl FnOnce(&mut ClusterPlan),
) -> Result<InProcessCluster> {
    let mut listeners = Vec::new();
    for _ in 0..members {
        listeners.push(TcpListener::bind("127.0.0.1:0").await?);
    }
    let addrs = listeners
        .iter()
        .map(TcpListener::local_addr)
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut plan = ClusterPlan::new(dir, &Ports::bound(&addrs, data_nodes));
    tune(&mut plan);
    let mut running = Vec::new();
    for (m, l) in plan.members.into_iter().zip(listeners) {
        let r = tributary_control_plane::start_on(m.config, l)
            .await
            .with_context(|| format!("starting member {}", m.name))?;
        running.push(r);
    }
    let first = running
        .first()
        .ok_or_else(|| anyhow!("a cluster needs at least one member"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    first
        .node
        .wait_leader(deadline)
        .await
        .ok_or_else(|| anyhow!("no leader elected within 10 s"))?;
    let mut nodes = Vec::new();
    for d in plan.data_nodes {
        let r = tributary_data_node::start(d.config)
            .await
            .with_context(|| format!("starting data node {}", d.name))?;
        nodes.push(r);
    }
    Ok(InProcessCluster {
        members: running,
        data_nodes: nodes,
    })
}

impl InProcessCluster {
    /// The members' addresses, comma-separated (`--server`).
    pub fn servers(&self) -> String {
        self.members
            .iter()
            .map(|m| m.addr.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub async fn shutdown(self) {
        for d in self.data_nodes {
            d.shutdown().await;
        }
        for m in self.members {
            m.shutdown().await;
        }
    }
}
