//! Every RPC of both servers, one call each as a given caller, with the answers the README's
//! table gives per column: nobody, wrong token, expired, foreign issuer, not permitted,
//! permitted (alice for what an entity's policy grants, root for what only the cluster's
//! admins may do).

use crate::setup::{Caller, World};
use crate::Expect::{self, *};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tonic::{Code, Status};
use tributary_proto::v1::{
    catalog_client::CatalogClient, cluster_client::ClusterClient, entity::Kind,
    raft_client::RaftClient, DataNode, Entity, EntityKind, EntityRef, ForwardRequest,
    HeartbeatRequest, ListRequest, MemberRequest, MigrateEncryptionRequest, MoveRequest,
    NodeStateRequest, PeerAddressRequest, RaftBatch, RegisterRequest, StatusRequest, WatchRequest,
    Well, WhoAmIRequest,
};

/// What a call came back with.
#[derive(Debug)]
pub enum Outcome {
    /// Accepted; `items`: what a listing held.
    Ok {
        items: usize,
    },
    Code(Code, String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Ok { items } => write!(f, "OK ({items})"),
            Outcome::Code(c, m) => write!(f, "{c:?}: {m}"),
        }
    }
}

pub(crate) fn done<T>(r: Result<T, Status>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok { items: 1 },
        Err(s) => Outcome::Code(s.code(), s.message().to_string()),
    }
}

type Call = for<'a> fn(&'a World, Caller) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

pub struct Rpc {
    pub name: &'static str,
    /// Nobody, wrong token, expired, foreign issuer, not permitted, permitted.
    pub expect: [Expect; 6],
    /// Who the permitted column is.
    pub permitted: Caller,
    pub call: Call,
}

/// Refused to every caller without valid credentials, and to one who holds no permission.
pub(crate) const GUARDED: [Expect; 6] = [U, U, U, U, D, O];
/// Answers anyone, whatever the credentials.
pub(crate) const PUBLIC: [Expect; 6] = [O, O, O, O, O, O];
/// Only the cluster's data nodes: no user is one.
pub(crate) const NODES_ONLY: [Expect; 6] = [U, U, U, U, D, D];
/// As GUARDED, but the permitted call fails for its own reason (past the gate).
pub(crate) const GUARDED_PAST: [Expect; 6] = [U, U, U, U, D, Past];
/// Refused on the client port to everyone, naming the peer listener.
pub(crate) const PEERS_ONLY: [Expect; 6] = [Peer, Peer, Peer, Peer, Peer, Peer];

macro_rules! rpc {
    ($name:expr, $expect:expr, $who:expr, |$w:ident, $c:ident| $body:expr) => {
        Rpc {
            name: $name,
            expect: $expect,
            permitted: $who,
            call: |$w, $c| Box::pin(async move { $body }),
        }
    };
}

pub(crate) fn well_ref(name: &str) -> EntityRef {
    EntityRef {
        kind: EntityKind::Well as i32,
        name: name.into(),
    }
}

pub(crate) fn acme_well(name: &str, tags: &[&str]) -> Entity {
    Entity {
        kind: Some(Kind::Well(Well {
            name: name.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            policy: "acme:access".into(),
            ..Default::default()
        })),
    }
}

/// `Catalog.Get` of `acme:w` as `caller`, with its status (the refusal tests read it).
pub async fn get_well_status(w: &World, c: Caller) -> Status {
    match CatalogClient::new(w.cp.clone())
        .get(w.request(c, well_ref("acme:w")))
        .await
    {
        Ok(_) => Status::ok(""),
        Err(s) => s,
    }
}

/// The first item of a server stream decides: an error, or an answer.
pub(crate) async fn first<T>(r: Result<tonic::Response<tonic::Streaming<T>>, Status>) -> Outcome {
    match r {
        Err(s) => done::<()>(Err(s)),
        Ok(resp) => {
            let mut s = resp.into_inner();
            match tokio::time::timeout(Duration::from_secs(10), s.message()).await {
                Ok(Err(st)) => done::<()>(Err(st)),
                // Accepted: an item, the end, or a live stream with nothing new yet.
                _ => Outcome::Ok { items: 1 },
            }
        }
    }
}

/// The members' RPCs (Catalog, Cluster, Raft); the data nodes' are in `data_plane`.
pub const MEMBER_RPCS: &[Rpc] = &[
    rpc!("Catalog.Create", GUARDED, Caller::Alice, |w, c| {
        let e = acme_well(&format!("acme:new-{}", c.label().replace(' ', "-")), &[]);
        done(
            CatalogClient::new(w.cp.clone())
                .create(w.request(c, e))
                .await,
        )
    }),
    rpc!("Catalog.Update", GUARDED, Caller::Alice, |w, c| {
        let e = acme_well("acme:w", &["mx"]);
        done(
            CatalogClient::new(w.cp.clone())
                .update(w.request(c, e))
                .await,
        )
    }),
    rpc!("Catalog.Get", GUARDED, Caller::Alice, |w, c| {
        let r = well_ref("acme:w");
        done(CatalogClient::new(w.cp.clone()).get(w.request(c, r)).await)
    }),
    rpc!(
        "Catalog.List",
        [U, U, U, U, Empty, O],
        Caller::Alice,
        |w, c| {
            let r = ListRequest {
                kind: EntityKind::Well as i32,
                namespace: String::new(),
            };
            match CatalogClient::new(w.cp.clone()).list(w.request(c, r)).await {
                Ok(l) => Outcome::Ok {
                    items: l.into_inner().entities.len(),
                },
                Err(s) => done::<()>(Err(s)),
            }
        }
    ),
    rpc!("Catalog.Delete", GUARDED, Caller::Alice, |w, c| {
        let r = well_ref("acme:gone");
        done(
            CatalogClient::new(w.cp.clone())
                .delete(w.request(c, r))
                .await,
        )
    }),
    rpc!("Catalog.Move", GUARDED, Caller::Root, |w, c| {
        let r = MoveRequest {
            kind: EntityKind::Well as i32,
            name: "acme:w".into(),
            node_id: 1,
            from_node: 0,
        };
        done(
            CatalogClient::new(w.cp.clone())
                .r#move(w.request(c, r))
                .await,
        )
    }),
    rpc!("Catalog.Watch", GUARDED, Caller::Root, |w, c| {
        let r = WatchRequest { from_revision: 0 };
        first(
            CatalogClient::new(w.cp.clone())
                .watch(w.request(c, r))
                .await,
        )
        .await
    }),
    rpc!("Cluster.Register", NODES_ONLY, Caller::Root, |w, c| {
        let node = DataNode {
            id: 77,
            addr: "127.0.0.1:1".into(),
            capacity: 1,
            tags: vec![],
        };
        let r = RegisterRequest { node: Some(node) };
        done(
            ClusterClient::new(w.cp.clone())
                .register(w.request(c, r))
                .await,
        )
    }),
    rpc!("Cluster.Heartbeat", NODES_ONLY, Caller::Root, |w, c| {
        let r = HeartbeatRequest {
            node_id: 1,
            healthy: false,
            stats: vec![],
        };
        done(
            ClusterClient::new(w.cp.clone())
                .heartbeat(w.request(c, r))
                .await,
        )
    }),
    rpc!("Cluster.Status", PUBLIC, Caller::Alice, |w, c| {
        done(
            ClusterClient::new(w.cp.clone())
                .status(w.request(c, StatusRequest {}))
                .await,
        )
    }),
    rpc!("Cluster.PeerAddress", PUBLIC, Caller::Alice, |w, c| {
        let r = w.request(c, PeerAddressRequest {});
        done(ClusterClient::new(w.cp.clone()).peer_address(r).await)
    }),
    rpc!(
        "Cluster.WhoAmI",
        [O, U, U, U, O, O],
        Caller::Alice,
        |w, c| {
            let r = w.request(c, WhoAmIRequest {});
            done(ClusterClient::new(w.cp.clone()).who_am_i(r).await)
        }
    ),
    rpc!(
        "Cluster.AddMember",
        [U, U, U, U, D, Past],
        Caller::Root,
        |w, c| {
            // Member 1 again: past the gate it is refused for what it is, changing nothing.
            let r = MemberRequest {
                id: 1,
                addr: "127.0.0.1:1".into(),
                peer_addr: String::new(),
            };
            done(
                ClusterClient::new(w.cp.clone())
                    .add_member(w.request(c, r))
                    .await,
            )
        }
    ),
    rpc!(
        "Cluster.RemoveMember",
        [U, U, U, U, D, Past],
        Caller::Root,
        |w, c| {
            let r = MemberRequest {
                id: 42,
                ..Default::default()
            };
            done(
                ClusterClient::new(w.cp.clone())
                    .remove_member(w.request(c, r))
                    .await,
            )
        }
    ),
    rpc!(
        "Cluster.MigrateEncryption",
        GUARDED,
        Caller::Root,
        |w, c| {
            let r = MigrateEncryptionRequest {
                status: true,
                ..Default::default()
            };
            done(
                ClusterClient::new(w.cp.clone())
                    .migrate_encryption(w.request(c, r))
                    .await,
            )
        }
    ),
    rpc!(
        "Raft.Send (client port)",
        PEERS_ONLY,
        Caller::Root,
        |w, c| {
            let r = RaftBatch {
                from: 5,
                messages: vec![],
            };
            done(RaftClient::new(w.cp.clone()).send(w.request(c, r)).await)
        }
    ),
    rpc!(
        "Raft.Forward (client port)",
        PEERS_ONLY,
        Caller::Root,
        |w, c| {
            let r = ForwardRequest::default();
            done(RaftClient::new(w.cp.clone()).forward(w.request(c, r)).await)
        }
    ),
    rpc!(
        "Raft.NodeState (client port)",
        PUBLIC,
        Caller::Root,
        |w, c| {
            let r = NodeStateRequest {};
            done(
                RaftClient::new(w.cp.clone())
                    .node_state(w.request(c, r))
                    .await,
            )
        }
    ),
];
