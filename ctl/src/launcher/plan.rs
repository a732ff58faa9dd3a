//! The plan of a local cluster: `members` control-plane members and `data_nodes` data nodes on
//! 127.0.0.1, each with its id, name, addresses and data dir under one directory.

use std::net::SocketAddr;
use std::path::Path;
use tributary_control_plane::ControlPlaneConfig;
use tributary_data_node::DataNodeConfig;

/// Local data nodes heartbeat this often, so they show up within a fraction of a second.
pub const HEARTBEAT_MS: u64 = 200;
/// A server's admin HTTP listener is this far above its gRPC port, away from both ranges.
pub const ADMIN_OFFSET: u16 = 1000;
const HOST: &str = "127.0.0.1";

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("--members {0}: want 1 to 9 (an odd number keeps a majority after a failure)")]
    Members(u16),
    #[error("--data-nodes {0}: want 0 to 32")]
    DataNodes(u16),
    #[error(
        "--base-port {base}: the cluster needs ports {base} to {last} and their admin ports \
         {ADMIN_OFFSET} above, which passes 65535; pick a lower --base-port"
    )]
    Ports { base: u16, last: u32 },
    #[error("--base-port {0}: ports below 1024 need root; pick 1024 or more")]
    Privileged(u16),
}

/// Where each server listens.
#[derive(Debug, Clone)]
pub struct Ports {
    members: Vec<String>,
    data_nodes: Vec<String>,
    /// Admin HTTP listeners of the members and of the data nodes; `None`: none.
    admin: Option<(Vec<String>, Vec<String>)>,
}

impl Ports {
    /// Fixed ports: members from `base`, data nodes right after them, each admin listener
    /// `ADMIN_OFFSET` above its server.
    pub fn from_base(base: u16, members: u16, data_nodes: u16) -> Result<Self, PlanError> {
        if members == 0 || members > 9 {
            return Err(PlanError::Members(members));
        }
        if data_nodes > 32 {
            return Err(PlanError::DataNodes(data_nodes));
        }
        if base < 1024 {
            return Err(PlanError::Privileged(base));
        }
        let count = u32::from(members) + u32::from(data_nodes);
        let last = u32::from(base) + count - 1;
        if last + u32::from(ADMIN_OFFSET) > u32::from(u16::MAX) {
            return Err(PlanError::Ports { base, last });
        }
        let addr = |p: u32| format!("{HOST}:{p}");
        let grpc: Vec<u32> = (u32::from(base)..=last).collect();
        let (m, d) = grpc.split_at(usize::from(members));
        let admin = |ports: &[u32]| -> Vec<String> {
            ports
                .iter()
                .map(|p| addr(p + u32::from(ADMIN_OFFSET)))
                .collect()
        };
        Ok(Self {
            members: m.iter().copied().map(addr).collect(),
            data_nodes: d.iter().copied().map(addr).collect(),
            admin: Some((admin(m), admin(d))),
        })
    }

    /// Members on listeners already bound (their addresses go into the peers string), data
    /// nodes on ports the OS picks, no admin listeners: in one process they would share one
    /// metrics recorder.
    pub fn bound(members: &[SocketAddr], data_nodes: usize) -> Self {
        Self {
            members: members.iter().map(SocketAddr::to_string).collect(),
            data_nodes: vec![format!("{HOST}:0"); data_nodes],
            admin: None,
        }
    }
}

/// One control-plane member: `config` is what it runs with.
#[derive(Debug, Clone)]
pub struct MemberPlan {
    pub name: String,
    pub config: ControlPlaneConfig,
}

/// One data node: `config` is what it runs with.
#[derive(Debug, Clone)]
pub struct DataNodePlan {
    pub name: String,
    pub config: DataNodeConfig,
}

/// What a local cluster takes a caller with no credentials for: its admin.
pub const LOCAL_ANONYMOUS: &str = "local:anonymous";

#[derive(Debug, Clone)]
pub struct ClusterPlan {
    pub members: Vec<MemberPlan>,
    pub data_nodes: Vec<DataNodePlan>,
}

impl ClusterPlan {
    /// Members `cp-1`… and data nodes `dn-1`…, ids from 1, data under `dir/<name>`.
    pub fn new(dir: &Path, ports: &Ports) -> Self {
        let peers = ports
            .members
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let control_plane = ports.members.join(",");
        let admin = |list: Option<&Vec<String>>, i: usize| {
            list.and_then(|l| l.get(i).cloned()).unwrap_or_default()
        };
        let members = ports
            .members
            .iter()
            .enumerate()
            .map(|(i, listen)| {
                let id = i as u64 + 1;
                let name = format!("cp-{id}");
                MemberPlan {
                    config: ControlPlaneConfig {
                        // A local cluster on loopback: cleartext, and whoever reaches the
                        // ports is its admin, as `tribctl dev` and the demo say when they start.
                        insecure: true,
                        anonymous_subjects: vec![LOCAL_ANONYMOUS.into()],
                        admin_subjects: vec![LOCAL_ANONYMOUS.into()],
                        id,
                        listen: listen.clone(),
                        peers: peers.clone(),
                        data_dir: dir.join(&name),
                        admin_listen: admin(ports.admin.as_ref().map(|a| &a.0), i),
                        ..Default::default()
                    },
                    name,
                }
            })
            .collect();
        let data_nodes = ports
            .data_nodes
            .iter()
            .enumerate()
            .map(|(i, listen)| {
                let id = i as u64 + 1;
                let name = format!("dn-{id}");
                DataNodePlan {
                    config: DataNodeConfig {
                        insecure: true,
                        anonymous_subjects: vec![LOCAL_ANONYMOUS.into()],
                        admin_subjects: vec![LOCAL_ANONYMOUS.into()],
                        id,
                        listen: listen.clone(),
                        control_plane: control_plane.clone(),
                        data_dir: dir.join(&name),
                        admin_listen: admin(ports.admin.as_ref().map(|a| &a.1), i),
                        heartbeat_interval_ms: HEARTBEAT_MS,
                        ..Default::default()
                    },
                    name,
                }
            })
            .collect();
        let mut plan = Self {
            members,
            data_nodes,
        };
        // Cleartext links: the data nodes show this token to the members to be known as the
        // cluster's own (with TLS their certificates would say it).
        plan.set_cluster_secret(&tributary_common::secrets::random_token("local"));
        plan
    }

    /// The members' addresses, as `--server` and `TRIBUTARY_SERVER` take them.
    pub fn servers(&self) -> String {
        self.members
            .iter()
            .map(|m| m.config.listen.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The secret the members and data nodes share (must be equal on both sides).
    pub fn set_cluster_secret(&mut self, secret: &str) {
        for m in &mut self.members {
            m.config.cluster_secret = secret.into();
        }
        for d in &mut self.data_nodes {
            d.config.cluster_secret = secret.into();
        }
    }

    /// Every fixed address with the server that listens on it (port 0 left out).
    pub fn fixed_addrs(&self) -> Vec<(String, String)> {
        let member_addrs = self.members.iter().flat_map(|m| {
            [&m.config.listen, &m.config.admin_listen].map(|a| (m.name.clone(), a.clone()))
        });
        let node_addrs = self.data_nodes.iter().flat_map(|d| {
            [&d.config.listen, &d.config.admin_listen].map(|a| (d.name.clone(), a.clone()))
        });
        member_addrs
            .chain(node_addrs)
            .filter(|(_, a)| !a.is_empty() && !a.ends_with(":0"))
            .map(|(n, a)| (a, n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_ports_members_then_data_nodes_admin_above() -> Result<(), PlanError> {
        let plan = ClusterPlan::new(Path::new("/d"), &Ports::from_base(7100, 3, 2)?);
        assert_eq!(
            plan.servers(),
            "127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102"
        );
        let m = &plan.members[2].config;
        assert_eq!((m.id, m.admin_listen.as_str()), (3, "127.0.0.1:8102"));
        assert_eq!(
            m.peers,
            "1=127.0.0.1:7100,2=127.0.0.1:7101,3=127.0.0.1:7102"
        );
        assert_eq!(m.data_dir, Path::new("/d/cp-3"));
        let d = &plan.data_nodes[1];
        assert_eq!(d.name, "dn-2");
        assert_eq!(d.config.id, 2);
        assert_eq!(d.config.listen, "127.0.0.1:7104");
        assert_eq!(d.config.admin_listen, "127.0.0.1:8104");
        assert_eq!(d.config.control_plane, plan.servers());
        assert_eq!(plan.fixed_addrs().len(), 10);
        Ok(())
    }

    #[test]
    fn impossible_layouts_are_refused_naming_the_flag() {
        let err = |r: Result<Ports, PlanError>| r.unwrap_err().to_string();
        assert!(err(Ports::from_base(7100, 0, 1)).contains("--members 0"));
        assert!(err(Ports::from_base(7100, 3, 33)).contains("--data-nodes 33"));
        assert!(err(Ports::from_base(65000, 3, 3)).contains("--base-port 65000"));
        assert!(err(Ports::from_base(80, 3, 3)).contains("--base-port 80"));
    }

    #[test]
    fn bound_ports_leave_data_nodes_and_admin_to_the_os() {
        let addrs: Vec<SocketAddr> = vec!["127.0.0.1:4000".parse().unwrap()];
        let plan = ClusterPlan::new(Path::new("/d"), &Ports::bound(&addrs, 1));
        assert_eq!(plan.members[0].config.peers, "1=127.0.0.1:4000");
        assert_eq!(plan.data_nodes[0].config.listen, "127.0.0.1:0");
        assert!(plan.data_nodes[0].config.admin_listen.is_empty());
        assert!(plan
            .fixed_addrs()
            .iter()
            .all(|(a, _)| a == "127.0.0.1:4000"));
    }
}
