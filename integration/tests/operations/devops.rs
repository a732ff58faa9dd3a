//! The devops API on real processes of a TLS cluster: three members, two data nodes, each
//! with its admin listener; the devops token from a file, as an operator gives it.

use super::http::{call, get, put};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use tributary_integration::admin_http::Admin;
use tributary_integration::cluster::{Cluster, CLUSTER_SECRET};
use tributary_integration::net::Server;
use tributary_integration::wait;

const TOKEN: &str = "devops-token-of-the-test";

fn loggers(answer: &Value) -> Vec<(String, String)> {
    answer["loggerConfigs"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                    (s("logger"), s("level"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_member_answers_for_the_cluster_and_changes_levels_everywhere() -> Result<()> {
    let secrets = tempfile::tempdir()?;
    let token_file = secrets.path().join("devops-token");
    std::fs::write(&token_file, TOKEN)?;
    let (tf, tf2) = (
        token_file.display().to_string(),
        token_file.display().to_string(),
    );
    let mut c = Cluster::builder("ops")
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
            .addrs(Server::Member(2))?
            .admin
            .context("member 2 admin")?,
        ca_pem: Some(&ca),
    };

    // Who may call: nobody without credentials, not a wrong token; the devops token may.
    let (status, body) = call(&admin, "GET", "/devops/logging", None, None).await?;
    assert_eq!(status, 401, "{body}");
    let (status, body) = get(&admin, "/devops/logging", "not-the-token").await?;
    assert_eq!(status, 401, "{body}");

    let (status, all) = get(&admin, "/devops/logging", TOKEN).await?;
    assert_eq!(status, 200, "{all}");
    for (service, ids) in [
        ("control-plane", vec!["1", "2", "3"]),
        ("data-node", vec!["1", "2"]),
    ] {
        for id in ids {
            let a = &all[service][id];
            assert_eq!(a["type"], "devops.responses:retrieveLoggerConfig", "{all}");
            assert_eq!(
                (a["status"].as_u64(), a["serviceName"].as_str()),
                (Some(200), Some(service)),
                "{a}"
            );
            assert_eq!(loggers(a)[0], ("ROOT".into(), "info".into()), "{a}");
        }
    }

    // One PUT on one member changes the level on every data node.
    let change = json!({"logger": "tributary_data_node", "level": "debug"});
    let (status, changed) = put(&admin, "/devops/logging/data-node", TOKEN, change).await?;
    assert_eq!(status, 200, "{changed}");
    for id in ["1", "2"] {
        assert_eq!(
            changed[id]["type"], "devops.responses:changeLogLevel",
            "{changed}"
        );
        assert_eq!(changed[id]["result"], true, "{changed}");
    }
    let (_, dn) = get(&admin, "/devops/logging/data-node", TOKEN).await?;
    let want = ("tributary_data_node".to_string(), "debug".to_string());
    for id in ["1", "2"] {
        assert!(loggers(&dn[id]).contains(&want), "{dn}");
    }
    let (_, cp) = get(&admin, "/devops/logging/control-plane", TOKEN).await?;
    assert!(
        !loggers(&cp["1"]).contains(&want),
        "members unchanged: {cp}"
    );
    // …and the data nodes log at debug from then on.
    for k in [1, 2] {
        let log = c.dir().join(format!("dn-{k}.log"));
        wait::until(
            &format!("a debug line in {}", log.display()),
            wait::WAIT,
            || {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                async move {
                    text.lines()
                        .any(|l| l.contains("DEBUG") && l.contains("tributary_data_node"))
                        .then_some(())
                }
            },
        )
        .await?;
    }

    // Config by path, secrets redacted, from every process.
    let (status, info) = get(&admin, "/devops/config?path=tributary.info", TOKEN).await?;
    assert_eq!(status, 200, "{info}");
    let one = &info["control-plane"]["1"];
    assert_eq!(one["type"], "common.responses:retrieveConfig", "{info}");
    assert_eq!(one["config"]["service"]["name"], "control-plane", "{info}");
    assert_eq!(
        info["data-node"]["2"]["config"]["service"]["instance-id"], "2",
        "{info}"
    );
    let (status, secret) = get(
        &admin,
        "/devops/config/data-node/1?path=tributary.cluster_secret",
        TOKEN,
    )
    .await?;
    assert_eq!(
        (status, &secret["config"]),
        (200, &json!("<redacted>")),
        "{secret}"
    );
    let (_, whole) = get(&admin, "/devops/config", TOKEN).await?;
    assert!(
        !whole.to_string().contains(CLUSTER_SECRET),
        "a secret shows: {whole}"
    );
    assert!(!whole.to_string().contains(TOKEN), "the devops token shows");
    assert_eq!(
        whole["data-node"]["1"]["config"]["tributary"]["id"], 1,
        "{whole}"
    );

    // Bad input is refused with what was wrong.
    let (status, bad) = get(&admin, "/devops/logging/gateway", TOKEN).await?;
    assert!(
        status == 400 && bad["message"].as_str().unwrap_or("").contains("gateway"),
        "{bad}"
    );
    let loud = json!({"logger": "ROOT", "level": "loud"});
    let (status, bad) = put(&admin, "/devops/logging", TOKEN, loud).await?;
    assert!(
        status == 400 && bad["message"].as_str().unwrap_or("").contains("loud"),
        "{bad}"
    );
    let (status, bad) = get(
        &admin,
        "/devops/config/control-plane/1?path=tributary.nope",
        TOKEN,
    )
    .await?;
    assert!(
        status == 400
            && bad["message"]
                .as_str()
                .unwrap_or("")
                .contains("tributary.nope"),
        "{bad}"
    );

    // A data node's own listener answers for itself.
    let dn_admin = Admin {
        addr: c
            .addrs(Server::DataNode(1))?
            .admin
            .context("data node admin")?,
        ca_pem: Some(&ca),
    };
    let (status, own) = get(&dn_admin, "/devops/logging/data-node/1", TOKEN).await?;
    assert_eq!((status, own["instance"].as_u64()), (200, Some(1)), "{own}");

    // A data node down: it shows with its error, the rest still answer.
    c.kill(Server::DataNode(2)).await?;
    let (status, all) = get(&admin, "/devops/logging", TOKEN).await?;
    assert_eq!(status, 200, "{all}");
    let down = &all["data-node"]["2"];
    assert!(matches!(down["status"].as_u64(), Some(503 | 504)), "{all}");
    assert!(
        down["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{down}"
    );
    assert_eq!(all["data-node"]["1"]["status"], 200, "{all}");
    assert_eq!(all["control-plane"]["3"]["status"], 200, "{all}");
    c.shutdown().await;
    Ok(())
}
