//! Where a stream's replicas live and who leads them, as natscli shows it: the Cluster
//! Information block of `stream info`, the Cluster column of `stream report` (the leader
//! starred), JetStream's ClusterInfo JSON, and `stream step-down`.

use crate::client::ControlPlane;
use crate::{locate, output};
use anyhow::Result;
use serde::Serialize;
use tributary_proto::v1::{
    entity::Kind, streams_client::StreamsClient, ClusterInfo, Entity, StepDownRequest, Stream,
    StreamInfoRequest,
};

/// JetStream's ClusterInfo.
#[derive(Debug, Serialize)]
pub struct JsClusterInfo {
    pub leader: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_since: Option<String>,
    pub replicas: Vec<JsPeerInfo>,
}

/// JetStream's PeerInfo; `active` in nanoseconds as JetStream's Go duration.
#[derive(Debug, Serialize)]
pub struct JsPeerInfo {
    pub name: String,
    pub current: bool,
    pub offline: bool,
    pub active: u64,
    pub lag: u64,
}

pub fn to_jetstream(c: &ClusterInfo) -> JsClusterInfo {
    JsClusterInfo {
        leader: c.leader.clone(),
        leader_since: (c.leader_since_ns > 0).then(|| {
            let t = std::time::UNIX_EPOCH
                + std::time::Duration::from_nanos(c.leader_since_ns.unsigned_abs());
            humantime::format_rfc3339_millis(t).to_string()
        }),
        replicas: c
            .replicas
            .iter()
            .map(|r| JsPeerInfo {
                name: r.name.clone(),
                current: r.current,
                offline: r.offline,
                active: r.active_ms.saturating_mul(1_000_000),
                lag: r.lag,
            })
            .collect(),
    }
}

/// The Cluster column: every replica, the leader starred (`node-1, node-2*, node-3`); one
/// replica: its node.
pub fn column(s: &Stream, c: Option<&ClusterInfo>) -> String {
    if s.replica_nodes.is_empty() {
        return format!("node-{}", s.owner_node);
    }
    let leader = c.map_or("", |c| c.leader.as_str());
    s.replica_nodes
        .iter()
        .map(|n| {
            let name = format!("node-{n}");
            if name == leader {
                format!("{name}*")
            } else {
                name
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn seen(ms: u64) -> String {
    if ms == u64::MAX {
        "never seen".into()
    } else {
        format!("seen {:.2}s ago", ms as f64 / 1000.0)
    }
}

/// The Cluster Information block of `stream info`.
pub fn print_block(c: &ClusterInfo) {
    println!("Cluster Information:\n");
    println!("{:>21}: {}", "Leader", c.leader);
    for r in &c.replicas {
        let mut line = format!(
            "{}, {}, {}",
            r.name,
            if r.current { "current" } else { "outdated" },
            seen(r.active_ms)
        );
        if r.offline {
            line.push_str(", offline");
        }
        if r.lag > 0 {
            line.push_str(&format!(", {} operations behind", r.lag));
        }
        println!("{:>21}: {line}", "Replica");
    }
    println!();
}

/// `tribctl stream step-down NAME`: the leader hands over to its most current replica.
pub async fn step_down(name: String, cp: &ControlPlane, json: bool) -> Result<()> {
    let (s, ch) = locate::stream_node(cp, &name).await?;
    let r = StreamsClient::new(ch)
        .step_down(StepDownRequest {
            stream: s.name.clone(),
        })
        .await?
        .into_inner();
    if json {
        return output::json(&serde_json::json!({ "stream": s.name, "leader": r.leader }));
    }
    println!("New leader elected for {}: {}", s.name, r.leader);
    Ok(())
}

/// `tribctl stream edit NAME --replicas N` (as `nats stream edit --replicas`): the control
/// plane places new replicas, and the stream's group adds them (caught up by log or snapshot)
/// or drops replicas. Shrinking keeps the leader's copy: the leader is named first.
pub async fn edit(name: String, replicas: u32, cp: &ControlPlane, json: bool) -> Result<()> {
    let (mut s, ch) = locate::stream_node(cp, &name).await?;
    if replicas < s.replicas && !s.replica_nodes.is_empty() {
        let info = StreamsClient::new(ch)
            .info(StreamInfoRequest {
                stream: s.name.clone(),
            })
            .await?
            .into_inner();
        let leader = info.cluster.and_then(|c| {
            c.leader
                .strip_prefix("node-")
                .and_then(|n| n.parse::<u64>().ok())
        });
        if let Some(l) = leader {
            s.replica_nodes.retain(|n| *n != l);
            s.replica_nodes.insert(0, l);
        }
        s.replica_nodes.truncate(replicas as usize);
    }
    s.replicas = replicas;
    let e = Entity {
        kind: Some(Kind::Stream(s)),
    };
    let r = cp
        .catalog(|mut c| {
            let e = e.clone();
            async move { c.update(e).await }
        })
        .await?;
    let placed = match r.entity.and_then(|e| e.kind) {
        Some(Kind::Stream(s)) => s.replica_nodes,
        _ => Vec::new(),
    };
    if json {
        return output::json(&serde_json::json!({
            "stream": name, "replicas": replicas, "placement": placed, "revision": r.revision
        }));
    }
    println!(
        "Stream {name} goes to {replicas} replica(s) on data nodes {placed:?}; its leader moves the group there one member at a time (stream info shows the replicas as they catch up)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_proto::v1::ClusterReplica;

    #[test]
    fn the_column_stars_the_leader_and_json_is_jetstreams() {
        let s = Stream {
            owner_node: 1,
            replica_nodes: vec![1, 2, 3],
            ..Default::default()
        };
        let c = ClusterInfo {
            leader: "node-2".into(),
            leader_since_ns: 1_700_000_000_000_000_000,
            replicas: vec![ClusterReplica {
                name: "node-3".into(),
                current: false,
                offline: true,
                active_ms: 1500,
                lag: 7,
            }],
            term: 4,
        };
        assert_eq!(column(&s, Some(&c)), "node-1, node-2*, node-3");
        assert_eq!(column(&s, None), "node-1, node-2, node-3");
        let one = Stream {
            owner_node: 4,
            ..Default::default()
        };
        assert_eq!(column(&one, None), "node-4");
        let js = serde_json::to_value(to_jetstream(&c)).expect("json");
        assert_eq!(js["leader"], "node-2");
        assert_eq!(js["leader_since"], "2023-11-14T22:13:20.000Z");
        assert_eq!(js["replicas"][0]["active"], 1_500_000_000u64);
        assert_eq!(js["replicas"][0]["lag"], 7);
        assert_eq!(js["replicas"][0]["offline"], true);
    }
}
