//! A data node gone for good: once the leader has not heard from it for `[replicas]
//! replace_after` (default 10 min; `TRIBUTARY_REPLICAS__REPLACE_AFTER`), each replicated
//! stream with a replica on it is moved off it, as `tribctl stream move NAME --from NODE`
//! would (the control plane places the new replica, which catches up by snapshot). Liveness
//! is the leader's soft state, so a node a new leader never heard from counts as silent from
//! when that leader took over. One move per stream per round: its group makes one change at
//! a time anyway.

use crate::error::CatalogError;
use crate::node::Node;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tributary_proto::v1::command::Op;
use tributary_proto::v1::{entity::Kind, Command, EntityKind, MoveRequest};

/// The `[replicas]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplicasConfig {
    /// How long a data node may be silent before its replicas are placed elsewhere.
    #[serde(with = "tributary_common::duration::human")]
    pub replace_after: Duration,
}

impl Default for ReplicasConfig {
    fn default() -> Self {
        ReplicasConfig {
            replace_after: Duration::from_secs(600),
        }
    }
}

/// Runs on every member; acts while it leads.
pub async fn replace_gone_nodes(node: Node, after: Duration) {
    let every = (after / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leading_since: Option<Instant> = None;
    loop {
        tick.tick().await;
        if !node.is_leader() {
            leading_since = None;
            continue;
        }
        let since = *leading_since.get_or_insert_with(Instant::now);
        if let Err(e) = round(&node, after, since).await {
            tracing::warn!(error = %e, "replicas of silent data nodes not re-placed; trying again");
        }
    }
}

async fn round(node: &Node, after: Duration, since: Instant) -> Result<(), CatalogError> {
    let silent = |id: u64| {
        node.liveness
            .get(id)
            .map_or(since.elapsed(), |b| b.at.elapsed())
            > after
    };
    for e in node.catalogue.list(EntityKind::Stream, "")? {
        let Some(Kind::Stream(s)) = e.kind else {
            continue;
        };
        let Some(gone) = s.replica_nodes.iter().copied().find(|n| silent(*n)) else {
            continue;
        };
        tracing::warn!(stream = %s.name, node = gone, ?after, "data node silent: its replica is placed elsewhere");
        let cmd = Command {
            op: Some(Op::Move(MoveRequest {
                kind: EntityKind::Stream as i32,
                name: s.name.clone(),
                node_id: 0,
                from_node: gone,
            })),
            live_nodes: Vec::new(),
            erasure: false,
        };
        if let Err(e) = node.write(cmd).await {
            tracing::warn!(stream = %s.name, node = gone, error = %e, "replica not re-placed");
        }
    }
    Ok(())
}
