//! The one fault layer: every server-to-server link of a cluster is a [`Proxy`] that a test can
//! slow down, blackhole or cut, as TiKV's transport simulator does, but at the TCP level, so
//! Raft traffic, data-node heartbeats and watches, mirror subscribes and ditto ingest are all
//! faulted the same way, in-process or between real processes.
//!
//! Which links exist:
//! * member → member (Raft, forwarding): one per directed pair, named in each member's `peers`;
//! * data node → member (register, heartbeat, watch, lookups): one per pair, the data node's
//!   `control_plane` list;
//! * anything → data node: one in front of each data node, its `advertise` address, so the
//!   other data nodes' subscribes and another cluster's ditto ingest reach it through it. A
//!   data node has one advertised address, so this link is shared by every peer calling it.

mod proxy;

pub use proxy::{Mode, Proxy};

use anyhow::{anyhow, Result};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tributary_common::addr_file::BoundAddrs;
use tributary_common::sync::lock;

/// A server of one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Server {
    /// A control-plane member, by Raft id.
    Member(u64),
    /// A data node, by node id.
    DataNode(u64),
}

/// One proxied link: from a server (or from anyone, for the link in front of a data node) to
/// a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId {
    /// `None`: shared by every caller.
    pub from: Option<Server>,
    pub to: Server,
}

impl LinkId {
    pub fn raft(from: u64, to: u64) -> Self {
        LinkId {
            from: Some(Server::Member(from)),
            to: Server::Member(to),
        }
    }

    pub fn to_member(node: u64, member: u64) -> Self {
        LinkId {
            from: Some(Server::DataNode(node)),
            to: Server::Member(member),
        }
    }

    /// The link in front of `to`, shared by every caller.
    pub fn into(to: Server) -> Self {
        LinkId { from: None, to }
    }

    /// Whether traffic between a server of `a` and one of `b` crosses this link. A shared
    /// link counts when its end is on one side and any data node (the peers that use it) is
    /// on the other: cutting it cuts every caller, not just the named ones.
    fn joins(&self, a: &[Server], b: &[Server]) -> bool {
        let crosses = |x: &[Server], y: &[Server]| match self.from {
            Some(f) => x.contains(&f) && y.contains(&self.to),
            None => y.contains(&self.to) && x.iter().any(|s| matches!(s, Server::DataNode(_))),
        };
        crosses(a, b) || crosses(b, a)
    }
}

/// The proxies of one cluster, by link.
#[derive(Clone, Default)]
pub struct Net {
    links: Arc<Mutex<BTreeMap<LinkId, Proxy>>>,
}

impl Net {
    /// The proxy for `id`, bound now if it is new; returns the address to configure.
    pub async fn link(&self, id: LinkId, upstream: Option<SocketAddr>) -> Result<SocketAddr> {
        if let Some(p) = lock(&self.links).get(&id) {
            return Ok(p.addr());
        }
        let p = Proxy::bind(upstream).await?;
        let addr = p.addr();
        lock(&self.links).entry(id).or_insert(p);
        Ok(addr)
    }

    /// The address of an existing link.
    pub fn addr(&self, id: LinkId) -> Result<SocketAddr> {
        lock(&self.links)
            .get(&id)
            .map(Proxy::addr)
            .ok_or_else(|| anyhow!("no link {id:?}"))
    }

    /// Points every link into `server` at where it serves now (`None`: it is down): a
    /// member's peer listener for the links from other members, its client listener else.
    pub fn set_upstream(&self, server: Server, addrs: Option<&BoundAddrs>) {
        for (id, p) in lock(&self.links).iter() {
            if id.to == server {
                let member_to_member = matches!(
                    (id.from, id.to),
                    (Some(Server::Member(_)), Server::Member(_))
                );
                let up = addrs.map(|a| match (member_to_member, a.peer) {
                    (true, Some(peer)) => peer,
                    _ => a.grpc,
                });
                p.set_upstream(up);
            }
        }
    }

    pub fn set(&self, id: LinkId, mode: Mode) -> Result<()> {
        lock(&self.links)
            .get(&id)
            .ok_or_else(|| anyhow!("no link {id:?}"))?
            .set_mode(mode);
        Ok(())
    }

    /// Every link into `server`, whoever calls it.
    pub fn set_into(&self, server: Server, mode: Mode) {
        for (id, p) in lock(&self.links).iter() {
            if id.to == server {
                p.set_mode(mode);
            }
        }
    }

    /// Every link between a server of `a` and one of `b`, both ways, gets `mode` (`Cut` for
    /// a partition both sides notice, `Blackhole` for a silent one).
    pub fn partition_with(&self, a: &[Server], b: &[Server], mode: Mode) {
        for (id, p) in lock(&self.links).iter() {
            if id.joins(a, b) {
                p.set_mode(mode);
            }
        }
    }

    pub fn partition(&self, a: &[Server], b: &[Server]) {
        self.partition_with(a, b, Mode::Cut);
    }

    /// Every link to and from `server`.
    pub fn isolate(&self, server: Server) {
        for (id, p) in lock(&self.links).iter() {
            if id.to == server || id.from == Some(server) {
                p.set_mode(Mode::Cut);
            }
        }
    }

    /// Every link back to [`Mode::Pass`].
    pub fn heal_all(&self) {
        for p in lock(&self.links).values() {
            p.set_mode(Mode::Pass);
        }
    }

    /// Bytes forwarded through `id` so far (both directions).
    pub fn bytes(&self, id: LinkId) -> Result<u64> {
        lock(&self.links)
            .get(&id)
            .map(Proxy::bytes)
            .ok_or_else(|| anyhow!("no link {id:?}"))
    }

    /// Every link and its mode, for a failing test's message.
    pub fn describe(&self) -> Vec<(LinkId, Mode)> {
        lock(&self.links)
            .iter()
            .map(|(id, p)| (*id, p.mode()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Server::{DataNode, Member};

    #[test]
    fn partitions_pick_the_links_between_the_sides() {
        let raft12 = LinkId::raft(1, 2);
        let raft23 = LinkId::raft(2, 3);
        let dn_to_cp = LinkId::to_member(1, 2);
        let into_dn = LinkId::into(DataNode(1));
        let (a, b) = ([Member(1)], [Member(2), Member(3)]);
        assert!(raft12.joins(&a, &b) && LinkId::raft(2, 1).joins(&a, &b));
        assert!(!raft23.joins(&a, &b));
        assert!(dn_to_cp.joins(&[DataNode(1)], &[Member(2)]));
        assert!(!dn_to_cp.joins(&[DataNode(1)], &[Member(3)]));
        // The shared link in front of data node 1 carries what other data nodes send it.
        assert!(into_dn.joins(&[DataNode(2)], &[DataNode(1)]));
        assert!(into_dn.joins(&[DataNode(1)], &[DataNode(2)]));
        assert!(!into_dn.joins(&[Member(1)], &[DataNode(1)]));
    }
}
