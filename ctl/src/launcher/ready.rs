//! Waiting until a local cluster can take work: a leader, and every planned data node
//! registered (and, for real processes, heard from).

use crate::client::ControlPlane;
use anyhow::{bail, Result};
use std::time::{Duration, Instant};
use tributary_proto::v1::{StatusReply, StatusRequest};

/// How far a data node must have come.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum DataNodes {
    /// In the catalogue: the control plane places entities on it.
    Registered,
    /// Registered and heartbeating to the leader.
    Up,
}

/// What is still missing from `status`, or `None` when the cluster is ready.
pub fn missing(status: &StatusReply, data_nodes: usize, want: DataNodes) -> Option<String> {
    if status.leader == 0 {
        return Some("waiting for a leader".into());
    }
    let registered = status.data_nodes.len();
    if registered < data_nodes {
        return Some(format!(
            "{registered} of {data_nodes} data nodes registered"
        ));
    }
    let up = status.data_nodes.iter().filter(|d| d.up).count();
    if want == DataNodes::Up && up < data_nodes {
        return Some(format!("{up} of {data_nodes} data nodes up"));
    }
    None
}

/// Polls the cluster status until nothing is missing; `progress` hears each new state, and
/// `check` can end the wait early (a server process that exited). Fails at `timeout`
/// naming what was still missing.
pub async fn wait(
    cp: &ControlPlane,
    data_nodes: usize,
    want: DataNodes,
    timeout: Duration,
    mut progress: impl FnMut(&str),
    mut check: impl FnMut() -> Result<()>,
) -> Result<StatusReply> {
    let deadline = Instant::now() + timeout;
    loop {
        check()?;
        let last = match cp
            .cluster(|mut c| async move { c.status(StatusRequest {}).await })
            .await
        {
            Ok(status) => match missing(&status, data_nodes, want) {
                None => return Ok(status),
                Some(m) => m,
            },
            Err(s) => format!("waiting for the control plane: {}", s.message()),
        };
        progress(&last);
        if Instant::now() >= deadline {
            bail!("the cluster was not ready within {timeout:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
