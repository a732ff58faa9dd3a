//! A namespace's purge that cannot delete everything (its policy governs an entity of another
//! namespace) says what is left and why; the namespace stays blocked until unblocked.

use super::erasure::{stream, MEDIATOR};
use super::http::call;
use super::piggyback::TOKEN;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use tributary_integration::admin_http::Admin;
use tributary_integration::cluster::Cluster;
use tributary_integration::entities::entity;
use tributary_integration::net::Server;
use tributary_proto::v1::{entity::Kind, EntityKind};

/// A purge that cannot delete everything says what and why, and the namespace stays blocked
/// until unblocked, which then keeps what is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_that_cannot_delete_everything_names_what_is_left() -> Result<()> {
    use tributary_proto::v1::{Permission, Policy, PolicyEntry, PolicyResource};
    let secrets = tempfile::tempdir()?;
    let token_file = secrets.path().join("devops-token");
    std::fs::write(&token_file, TOKEN)?;
    let tf = token_file.display().to_string();
    let c = Cluster::builder("purge")
        .members(1)
        .data_nodes(1)
        .tune_members(move |m| {
            m.admin_listen = "127.0.0.1:0".into();
            m.auth.devops_token_file = tf.clone();
        })
        .start()
        .await?;
    c.wait_leader().await?;
    let ca = c.ca_pem();
    let admin = Admin {
        addr: c.addrs(Server::Member(1))?.admin.context("member admin")?,
        ca_pem: Some(&ca),
    };
    // acme's policy governs a stream of another namespace: it cannot go with acme.
    c.create(entity(Kind::Policy(Policy {
        name: "acme:shared".into(),
        entries: vec![PolicyEntry {
            label: "readers".into(),
            subjects: vec!["tls:reader".into()],
            resources: vec![PolicyResource {
                resource: "stream:/other:X".into(),
                grant: vec![Permission::Read as i32],
                revoke: vec![],
            }],
            ..Default::default()
        }],
    })))
    .await?;
    let mut x = stream("other:X", &["X.>"]);
    x.policy = "acme:shared".into();
    c.create_stream(x, 1).await?;
    c.create_stream(stream("acme:S", &["S.>"]), 1).await?;

    let body = |command: Value| json!({"targetActorSelection": MEDIATOR, "headers": {"aggregate": false}, "piggybackCommand": command});
    let block = body(json!({"type": "namespaces.commands:blockNamespace", "namespace": "acme"}));
    let (status, _) = call(
        &admin,
        "POST",
        "/devops/piggyback",
        Some(TOKEN),
        Some(&block),
    )
    .await?;
    assert_eq!(status, 200);
    let purge = body(json!({"type": "namespaces.commands:purgeNamespace", "namespace": "acme"}));
    let (status, one) = call(
        &admin,
        "POST",
        "/devops/piggyback/control-plane/1",
        Some(TOKEN),
        Some(&purge),
    )
    .await?;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["successful"], false, "{one}");
    assert_eq!(one["resourceTypes"]["stream"]["successful"], true, "{one}");
    let policy = &one["resourceTypes"]["policy"];
    assert_eq!(policy["successful"], false, "{one}");
    assert!(
        policy["errors"].to_string().contains("acme:shared"),
        "{one}"
    );
    assert_eq!(one["left"], json!(["policy acme:shared"]), "{one}");
    // Still blocked: other:X's policy is not readable through the catalogue meanwhile.
    let got = c
        .catalog(1)?
        .get(tributary_proto::v1::EntityRef {
            kind: EntityKind::Policy as i32,
            name: "acme:shared".into(),
        })
        .await;
    assert_eq!(
        got.map(|_| ()).unwrap_err().code(),
        tonic::Code::FailedPrecondition
    );
    let unblock =
        body(json!({"type": "namespaces.commands:unblockNamespace", "namespace": "acme"}));
    let (status, _) = call(
        &admin,
        "POST",
        "/devops/piggyback",
        Some(TOKEN),
        Some(&unblock),
    )
    .await?;
    assert_eq!(status, 200);
    let policies = c.names(1, EntityKind::Policy).await?;
    assert!(
        policies.contains(&"acme:shared".to_string()),
        "{policies:?}"
    );
    assert!(!c
        .names(1, EntityKind::Stream)
        .await?
        .contains(&"acme:S".to_string()));
    c.shutdown().await;
    Ok(())
}
