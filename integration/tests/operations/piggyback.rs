//! Eclipse Ditto's piggyback commands on real processes of a TLS cluster: a member fans
//! `/devops/piggyback` out to the data nodes' ditto and mirror supervisors; retrieveHealth
//! lists the workers, modifyConfig stops and starts a supervisor, shutdown restarts it, and
//! what a supervisor copies goes on from its saved progress. Bad targets and commands are
//! refused naming them.

use super::http::call;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use tributary_integration::admin_http::Admin;
use tributary_integration::cluster::Cluster;
use tributary_integration::net::Server;
use tributary_integration::streams::count;
use tributary_integration::wait;
use tributary_proto::v1::{StorageType, Stream, StreamSource};

pub const TOKEN: &str = "devops-token-of-the-piggyback-test";
const MIRROR: &str = "/user/mirrorSupervisor";
const DITTO: &str = "/user/dittoSupervisor";

pub async fn piggyback(
    admin: &Admin<'_>,
    path: &str,
    target: &str,
    command: Value,
) -> Result<(u16, Value)> {
    let body = json!({"targetActorSelection": target, "headers": {}, "piggybackCommand": command});
    call(admin, "POST", path, Some(TOKEN), Some(&body)).await
}

fn stream(name: &str, subjects: &[&str]) -> Stream {
    Stream {
        name: name.into(),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        storage: StorageType::File as i32,
        ..Default::default()
    }
}

/// The mirror workers data node 2 reports.
async fn mirror_workers(admin: &Admin<'_>) -> Result<Vec<Value>> {
    let (status, health) = piggyback(
        admin,
        "/devops/piggyback/data-node/2",
        MIRROR,
        json!({"type": "status.commands:retrieveHealth"}),
    )
    .await?;
    anyhow::ensure!(status == 200, "{health}");
    Ok(health["statusInfo"]["details"][0]["INFO"]["workers"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_member_sends_piggyback_commands_to_the_supervisors() -> Result<()> {
    let secrets = tempfile::tempdir()?;
    let token_file = secrets.path().join("devops-token");
    std::fs::write(&token_file, TOKEN)?;
    let (tf, tf2) = (
        token_file.display().to_string(),
        token_file.display().to_string(),
    );
    let mut c = Cluster::builder("pig")
        .members(3)
        .data_nodes(2)
        .member_processes()
        .data_node_processes()
        .tune_members(move |m| {
            m.admin_listen = "127.0.0.1:0".into();
            m.auth.devops_token_file = tf.clone();
        })
        .tune_data_nodes(move |d| {
            d.admin_listen = "127.0.0.1:0".into();
            d.auth.devops_token_file = tf2.clone();
        })
        .start()
        .await?;
    c.wait_leader().await?;
    let ca = c.ca_pem();
    let admin = Admin {
        addr: c
            .addrs(Server::Member(3))?
            .admin
            .context("member 3 admin")?,
        ca_pem: Some(&ca),
    };
    c.create_stream(stream("ORDERS", &["ORDERS.>"]), 1).await?;
    let mut copy = stream("COPY", &[]);
    copy.mirror = Some(StreamSource {
        stream: "ORDERS".into(),
        ..Default::default()
    });
    c.create_stream(copy, 2).await?;
    c.publish_n(1, "ORDERS.new", "ORDER", 10).await?;
    c.wait_caught_up(2, "COPY", 10).await?;

    // retrieveHealth from every data node (the supervisors run there only), Ditto's shape.
    let (status, all) = piggyback(
        &admin,
        "/devops/piggyback?timeout=5s",
        MIRROR,
        json!({"type": "status.commands:retrieveHealth"}),
    )
    .await?;
    assert_eq!(status, 200, "{all}");
    assert!(
        all.get("control-plane").is_none(),
        "members run no mirrors: {all}"
    );
    for id in ["1", "2"] {
        let a = &all["data-node"][id];
        assert_eq!(a["type"], "status.responses:retrieveHealth", "{all}");
        assert_eq!(a["status"], 200, "{all}");
        assert_eq!(a["statusInfo"]["status"], "UP", "{all}");
        assert_eq!(
            a["statusInfo"]["details"][0]["INFO"]["state"], "RUNNING",
            "{a}"
        );
    }
    let workers = &all["data-node"]["2"]["statusInfo"]["details"][0]["INFO"]["workers"];
    assert_eq!(workers[0]["stream"], "default:COPY", "{all}");
    assert_eq!(workers[0]["origin"], "default:ORDERS", "{all}");
    assert_eq!(workers[0]["kind"], "mirror", "{all}");

    // The ditto supervisor's config, as the data node was started (aggregate false: one answer).
    let body = json!({"targetActorSelection": DITTO, "headers": {"aggregate": false},
                      "piggybackCommand": {"type": "common.commands:retrieveConfig"}});
    let (status, one) = call(
        &admin,
        "POST",
        "/devops/piggyback/data-node",
        Some(TOKEN),
        Some(&body),
    )
    .await?;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["type"], "common.responses:retrieveConfig", "{one}");
    assert_eq!(one["config"]["max-workers"], 1, "{one}");
    assert_eq!(one["config"]["enabled"], true, "{one}");

    // modifyConfig enabled=false stops data node 2's mirror: nothing more is copied …
    let (status, changed) = piggyback(
        &admin,
        "/devops/piggyback/data-node/2",
        MIRROR,
        json!({"type": "common.commands:modifyConfig", "config": {"enabled": false}}),
    )
    .await?;
    assert_eq!(
        (status, &changed["config"]["enabled"]),
        (200, &json!(false)),
        "{changed}"
    );
    assert_eq!(
        changed["type"], "common.responses:modifyConfig",
        "{changed}"
    );
    wait::until(
        "data node 2's mirror workers stopped",
        wait::WAIT,
        || async { mirror_workers(&admin).await.ok().filter(Vec::is_empty) },
    )
    .await?;
    c.publish_n(1, "ORDERS.new", "ORDER", 5).await?;
    assert_eq!(count(&c.info(1, "ORDERS").await?), 15);
    assert_eq!(
        count(&c.info(2, "COPY").await?),
        10,
        "a stopped mirror copied"
    );
    // … until it is enabled again, when it goes on from its saved progress.
    let (status, changed) = piggyback(
        &admin,
        "/devops/piggyback/data-node/2",
        MIRROR,
        json!({"type": "common.commands:modifyConfig", "config": {"enabled": true}}),
    )
    .await?;
    assert_eq!(status, 200, "{changed}");
    c.wait_caught_up(2, "COPY", 15).await?;

    // shutdown restarts the supervisor: its workers start again and keep copying.
    let (status, restarted) = piggyback(
        &admin,
        "/devops/piggyback/data-node/2",
        MIRROR,
        json!({"type": "common.commands:shutdown"}),
    )
    .await?;
    assert_eq!(
        (status, &restarted["restarted"]),
        (200, &json!(true)),
        "{restarted}"
    );
    let (_, health) = piggyback(
        &admin,
        "/devops/piggyback/data-node/2",
        MIRROR,
        json!({"type": "status.commands:retrieveHealth"}),
    )
    .await?;
    assert_eq!(
        health["statusInfo"]["details"][0]["INFO"]["restarts"], 1,
        "{health}"
    );
    c.publish_n(1, "ORDERS.new", "ORDER", 5).await?;
    let copied = c.wait_caught_up(2, "COPY", 20).await?;
    assert_eq!(count(&copied), 20, "nothing copied twice");

    // Refusals name what is wrong; no credentials, no answer.
    let (status, bad) = piggyback(
        &admin,
        "/devops/piggyback",
        "/user/gatewayRoot",
        json!({"type": "status.commands:retrieveHealth"}),
    )
    .await?;
    assert!(
        status == 400
            && bad["message"]
                .as_str()
                .unwrap_or("")
                .contains("/user/gatewayRoot"),
        "{bad}"
    );
    let (status, bad) = piggyback(
        &admin,
        "/devops/piggyback",
        DITTO,
        json!({"type": "common.commands:explode"}),
    )
    .await?;
    assert!(
        status == 400
            && bad["message"]
                .as_str()
                .unwrap_or("")
                .contains("common.commands:explode"),
        "{bad}"
    );
    let (status, bad) = piggyback(
        &admin,
        "/devops/piggyback/control-plane",
        DITTO,
        json!({"type": "status.commands:retrieveHealth"}),
    )
    .await?;
    assert!(
        status == 400 && bad["message"].as_str().unwrap_or("").contains("data-node"),
        "{bad}"
    );
    let (status, bad) = piggyback(
        &admin,
        "/devops/piggyback/data-node/1",
        DITTO,
        json!({"type": "common.commands:modifyConfig", "config": {"max-workers": 4}}),
    )
    .await?;
    assert!(
        status == 400
            && bad["message"]
                .as_str()
                .unwrap_or("")
                .contains("max-workers"),
        "{bad}"
    );
    let body = json!({"targetActorSelection": DITTO, "piggybackCommand": {"type": "status.commands:retrieveHealth"}});
    let (status, _) = call(&admin, "POST", "/devops/piggyback", None, Some(&body)).await?;
    assert_eq!(status, 401);
    let (status, bad) = call(&admin, "GET", "/devops/piggyback", Some(TOKEN), None).await?;
    assert_eq!(status, 405, "{bad}");

    // A data node down shows with its error; the other answers.
    c.kill(Server::DataNode(1)).await?;
    let (status, all) = piggyback(
        &admin,
        "/devops/piggyback/data-node?timeout=2s",
        DITTO,
        json!({"type": "status.commands:retrieveHealth"}),
    )
    .await?;
    assert_eq!(status, 200, "{all}");
    assert!(
        matches!(all["1"]["status"].as_u64(), Some(503 | 504)),
        "{all}"
    );
    assert_eq!(all["2"]["status"], 200, "{all}");
    c.shutdown().await;
    Ok(())
}
