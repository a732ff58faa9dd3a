//! The data nodes' RPCs in the access table (Ingest, Wells, Streams, StreamGroups, Ditto) and
//! Admin's, which both servers serve; the table's shape and the members' RPCs are in `calls`.

use crate::calls::{done, first, Outcome, Rpc, GUARDED, GUARDED_PAST, NODES_ONLY};
use crate::setup::Caller;
use tonic::Code;
use tributary_proto::v1::{
    admin_client::AdminClient, ditto_client::DittoClient, ingest_client::IngestClient,
    stream_groups_client::StreamGroupsClient, streams_client::StreamsClient,
    wells_client::WellsClient, ChangeLogLevelRequest, DeleteMessageRequest, DittoStatsRequest,
    GetMessageRequest, GroupBatch, IngestBatch, PiggybackRequest, PublishBatch, PublishRequest,
    PurgeRequest, RetrieveConfigRequest, RetrieveLoggerConfigRequest, ShardsRequest,
    SnapshotRequest, StepDownRequest, StreamInfoRequest, SubscribeRequest, WellEntry,
};

/// The data nodes' RPCs, and Admin's on both servers.
pub const DATA_NODE_RPCS: &[Rpc] = &[
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
