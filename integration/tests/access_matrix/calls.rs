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
    admin_client::AdminClient, catalog_client::CatalogClient, cluster_client::ClusterClient,
    ditto_client::DittoClient, entity::Kind, ingest_client::IngestClient, raft_client::RaftClient,
    stream_groups_client::StreamGroupsClient, streams_client::StreamsClient,
    wells_client::WellsClient, ChangeLogLevelRequest, DataNode, DeleteMessageRequest,
    DittoStatsRequest, Entity, EntityKind, EntityRef, ForwardRequest, GetMessageRequest,
    GroupBatch, HeartbeatRequest, IngestBatch, ListRequest, MemberRequest,
    MigrateEncryptionRequest, MoveRequest, NodeStateRequest, PeerAddressRequest, PiggybackRequest,
    PublishBatch, PublishRequest, PurgeRequest, RaftBatch, RegisterRequest, RetrieveConfigRequest,
    RetrieveLoggerConfigRequest, ShardsRequest, SnapshotRequest, StatusRequest, StepDownRequest,
    StreamInfoRequest, SubscribeRequest, WatchRequest, Well, WellEntry, WhoAmIRequest,
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

fn done<T>(r: Result<T, Status>) -> Outcome {
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
const GUARDED: [Expect; 6] = [U, U, U, U, D, O];
/// Answers anyone, whatever the credentials.
const PUBLIC: [Expect; 6] = [O, O, O, O, O, O];
/// Only the cluster's data nodes: no user is one.
const NODES_ONLY: [Expect; 6] = [U, U, U, U, D, D];
/// As GUARDED, but the permitted call fails for its own reason (past the gate).
const GUARDED_PAST: [Expect; 6] = [U, U, U, U, D, Past];
/// Refused on the client port to everyone, naming the peer listener.
const PEERS_ONLY: [Expect; 6] = [Peer, Peer, Peer, Peer, Peer, Peer];

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

fn well_ref(name: &str) -> EntityRef {
    EntityRef {
        kind: EntityKind::Well as i32,
        name: name.into(),
    }
}

fn acme_well(name: &str, tags: &[&str]) -> Entity {
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
async fn first<T>(r: Result<tonic::Response<tonic::Streaming<T>>, Status>) -> Outcome {
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

pub const RPCS: &[Rpc] = &[
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
    rpc!("Ingest.Write", GUARDED, Caller::Alice, |w, c| {
        let batch = IngestBatch {
            seq: 1,
            entries: vec![WellEntry {
                timestamp_ns: tributary_common::time::now_ns(),
                tag: "mx".into(),
                data: b"by-caller".to_vec().into(),
                ..Default::default()
            }],
            batch_id: String::new(),
            traceparent: String::new(),
        };
        let r = w.request(c, tokio_stream::iter(vec![batch]));
        first(IngestClient::new(w.dn.clone()).write(r).await).await
    }),
    rpc!("Wells.Query", GUARDED, Caller::Alice, |w, c| {
        let r = tributary_proto::v1::QueryRequest {
            well: "acme:w".into(),
            ..Default::default()
        };
        first(WellsClient::new(w.dn.clone()).query(w.request(c, r)).await).await
    }),
    rpc!("Wells.Shards", GUARDED, Caller::Alice, |w, c| {
        let r = ShardsRequest {
            well: "acme:w".into(),
        };
        done(WellsClient::new(w.dn.clone()).shards(w.request(c, r)).await)
    }),
    rpc!("Streams.Publish", GUARDED, Caller::Alice, |w, c| {
        let r = PublishRequest {
            subject: "acme.by-caller".into(),
            data: b"x".to_vec().into(),
            ..Default::default()
        };
        done(
            StreamsClient::new(w.dn.clone())
                .publish(w.request(c, r))
                .await,
        )
    }),
    rpc!("Streams.PublishStream", GUARDED, Caller::Alice, |w, c| {
        let batch = PublishBatch {
            messages: vec![PublishRequest {
                subject: "acme.by-caller".into(),
                data: b"x".to_vec().into(),
                id: 1,
                ..Default::default()
            }],
        };
        let r = w.request(c, tokio_stream::iter(vec![batch]));
        match StreamsClient::new(w.dn.clone()).publish_stream(r).await {
            Err(s) => done::<()>(Err(s)),
            Ok(resp) => match resp.into_inner().message().await {
                Err(s) => done::<()>(Err(s)),
                Ok(None) => Outcome::Code(Code::Unknown, "no ack".into()),
                // A refused publish in a stream is a refused ack, as JetStream answers it.
                Ok(Some(b)) => match b.acks.iter().find(|a| !a.error.is_empty()) {
                    Some(a) if a.error.contains("may not") => {
                        Outcome::Code(Code::PermissionDenied, a.error.clone())
                    }
                    Some(a) => Outcome::Code(Code::Unknown, a.error.clone()),
                    None => Outcome::Ok {
                        items: b.acks.len(),
                    },
                },
            },
        }
    }),
    rpc!("Streams.Get", GUARDED, Caller::Alice, |w, c| {
        let r = GetMessageRequest {
            stream: "acme:S".into(),
            seq: 1,
        };
        done(StreamsClient::new(w.dn.clone()).get(w.request(c, r)).await)
    }),
    rpc!("Streams.Subscribe", GUARDED, Caller::Alice, |w, c| {
        let r = SubscribeRequest {
            stream: "acme:S".into(),
            start_seq: 1,
            ..Default::default()
        };
        first(
            StreamsClient::new(w.dn.clone())
                .subscribe(w.request(c, r))
                .await,
        )
        .await
    }),
    rpc!("Streams.Info", GUARDED, Caller::Alice, |w, c| {
        let r = StreamInfoRequest {
            stream: "acme:S".into(),
        };
        done(StreamsClient::new(w.dn.clone()).info(w.request(c, r)).await)
    }),
    rpc!("Streams.DeleteMessage", GUARDED, Caller::Alice, |w, c| {
        let r = DeleteMessageRequest {
            stream: "acme:S".into(),
            seq: 2,
        };
        done(
            StreamsClient::new(w.dn.clone())
                .delete_message(w.request(c, r))
                .await,
        )
    }),
    rpc!("Streams.Purge", GUARDED, Caller::Alice, |w, c| {
        let r = PurgeRequest {
            stream: "acme:S".into(),
            subject: String::new(),
        };
        done(
            StreamsClient::new(w.dn.clone())
                .purge(w.request(c, r))
                .await,
        )
    }),
    // acme:S has one replica: a permitted caller gets FAILED_PRECONDITION (nothing to hand).
    rpc!("Streams.StepDown", GUARDED_PAST, Caller::Alice, |w, c| {
        let r = StepDownRequest {
            stream: "acme:S".into(),
        };
        done(
            StreamsClient::new(w.dn.clone())
                .step_down(w.request(c, r))
                .await,
        )
    }),
    rpc!("StreamGroups.Send", NODES_ONLY, Caller::Root, |w, c| {
        let r = GroupBatch {
            from_node: 2,
            messages: vec![],
        };
        done(
            StreamGroupsClient::new(w.dn.clone())
                .send(w.request(c, r))
                .await,
        )
    }),
    rpc!(
        "StreamGroups.FetchSnapshot",
        NODES_ONLY,
        Caller::Root,
        |w, c| {
            let r = SnapshotRequest {
                from_node: 2,
                group: 1,
                id: 1,
            };
            done(
                StreamGroupsClient::new(w.dn.clone())
                    .fetch_snapshot(w.request(c, r))
                    .await,
            )
        }
    ),
    rpc!("Ditto.Stats", GUARDED, Caller::Root, |w, c| {
        let r = DittoStatsRequest {};
        done(DittoClient::new(w.dn.clone()).stats(w.request(c, r)).await)
    }),
    // Part of the devops API: the devops credentials or ADMIN on `cluster:/`.
    rpc!("Admin.Piggyback", GUARDED, Caller::Root, |w, c| {
        done(
            AdminClient::new(w.cp.clone())
                .piggyback(w.request(c, health()))
                .await,
        )
    }),
    rpc!(
        "Admin.Piggyback (data node)",
        GUARDED,
        Caller::Root,
        |w, c| {
            done(
                AdminClient::new(w.dn.clone())
                    .piggyback(w.request(c, health()))
                    .await,
            )
        }
    ),
    rpc!(
        "Admin.RetrieveLoggerConfig",
        GUARDED,
        Caller::Root,
        |w, c| {
            let r = RetrieveLoggerConfigRequest::default();
            done(
                AdminClient::new(w.cp.clone())
                    .retrieve_logger_config(w.request(c, r))
                    .await,
            )
        }
    ),
    rpc!("Admin.ChangeLogLevel", GUARDED, Caller::Root, |w, c| {
        // A logger nothing logs to: the change is harmless to the servers under test.
        let r = ChangeLogLevelRequest {
            logger: "access_matrix_probe".into(),
            level: "info".into(),
            ..Default::default()
        };
        done(
            AdminClient::new(w.cp.clone())
                .change_log_level(w.request(c, r))
                .await,
        )
    }),
    rpc!("Admin.RetrieveConfig", GUARDED, Caller::Root, |w, c| {
        let r = RetrieveConfigRequest {
            path: "tributary.info".into(),
            ..Default::default()
        };
        done(
            AdminClient::new(w.dn.clone())
                .retrieve_config(w.request(c, r))
                .await,
        )
    }),
];

/// The mirror supervisors' health, as a piggyback command.
fn health() -> PiggybackRequest {
    PiggybackRequest {
        target_actor_selection: "/user/mirrorSupervisor".into(),
        piggyback_command_json: r#"{"type": "status.commands:retrieveHealth"}"#.into(),
        ..Default::default()
    }
}
