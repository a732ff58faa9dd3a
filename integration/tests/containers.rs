//! The compose cluster of `deploy/compose` in real containers (3 members, 3 data nodes, TLS
//! from the `certs` service, Prometheus), driven from the host with `tribctl` and gRPC on the
//! published ports. They need a Docker engine and the images: `scripts/container-tests.sh`
//! builds those and runs these (ignored by a plain `cargo test`).

use anyhow::{anyhow, bail, ensure, Context, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tributary_integration::compose::{ComposeCluster, Env, DATA_NODES};
use tributary_integration::{streams, wait};
use tributary_proto::v1::PublishRequest;

/// The data node that owns `kind` `name` (`well` or `stream`), from the catalogue.
fn owner(c: &ComposeCluster, kind: &str, name: &str) -> Result<u64> {
    let e = c.tribctl_json(&[kind, "get", name])?;
    find_u64(&e, "owner_node")
        .filter(|n| *n != 0)
        .ok_or_else(|| anyhow!("{kind} {name} is not placed: {e}"))
}

fn find_u64(v: &serde_json::Value, key: &str) -> Option<u64> {
    match v {
        serde_json::Value::Object(m) => m
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .or_else(|| m.values().find_map(|v| find_u64(v, key))),
        serde_json::Value::Array(a) => a.iter().find_map(|v| find_u64(v, key)),
        _ => None,
    }
}

/// Publishes `m-1`, `m-2`, … (each its own `Msg-Id`) to the data node at `addr` until `stop`,
/// retrying each message until acknowledged, as a client of a cluster being restarted does.
/// Returns every acknowledged message id with the seq its ack named.
async fn publish_until(
    addr: String,
    subject: String,
    first: u64,
    stop: Arc<AtomicBool>,
) -> Result<Vec<(String, u64)>> {
    let mut client = streams::client(&addr)?;
    let mut acked = Vec::new();
    let mut i = first;
    while !stop.load(Ordering::Relaxed) {
        let id = format!("m-{i}");
        let give_up = Instant::now() + Duration::from_secs(120);
        loop {
            let req = PublishRequest {
                subject: subject.clone(),
                headers: HashMap::from([("Msg-Id".to_string(), id.clone())]),
                data: id.clone().into_bytes().into(),
                ..Default::default()
            };
            match tokio::time::timeout(Duration::from_secs(5), client.publish(req)).await {
                Ok(Ok(ack)) => {
                    acked.push((id.clone(), ack.into_inner().seq));
                    break;
                }
                Ok(Err(e)) if Instant::now() > give_up => bail!("publish {id}: {e}"),
                Err(_) if Instant::now() > give_up => bail!("publish {id}: no answer"),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        i += 1;
        // A steady load, not a flood: the 2-core machine also runs the six servers.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(acked)
}

/// Every acknowledged message is in the stream once, at the seq its ack named, and nothing
/// else is there.
async fn check_acked_once(addr: &str, stream: &str, acked: &[(String, u64)]) -> Result<()> {
    let stored = streams::messages(addr, stream).await?;
    let mut seen: HashMap<String, Vec<u64>> = HashMap::new();
    for m in &stored {
        seen.entry(String::from_utf8_lossy(&m.data).into_owned())
            .or_default()
            .push(m.seq);
    }
    for (id, seq) in acked {
        match seen.get(id).map(Vec::as_slice) {
            Some([s]) if s == seq => {}
            Some(seqs) => bail!("{id} acked at seq {seq} is stored at {seqs:?}"),
            None => bail!("{id}, acked at seq {seq}, is lost"),
        }
    }
    ensure!(
        stored.len() == acked.len(),
        "{} messages stored for {} acknowledged",
        stored.len(),
        acked.len()
    );
    Ok(())
}

/// Runs `test` on a fresh cluster; on failure the report carries the containers' last logs.
async fn with_cluster<F, Fut>(project: &str, prefix: u16, test: F) -> Result<()>
where
    F: FnOnce(Arc<ComposeCluster>) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let env = Env::from_env()?;
    let c = Arc::new(ComposeCluster::new(&env, project, prefix)?);
    let took = c.up().await.with_context(|| c.logs())?;
    println!("{project}: compose up → a cluster taking writes in {took:.1?}");
    test(c.clone()).await.with_context(|| c.logs())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker and the images: scripts/container-tests.sh runs it"]
async fn compose_cluster_runs_the_reference_scenario_from_the_host() -> Result<()> {
    with_cluster("tribref", 2, |c| async move {
        for s in ["member-1", "member-2", "member-3"].into_iter().chain([
            "data-node-1",
            "data-node-2",
            "data-node-3",
        ]) {
            c.wait_healthy(s).await?;
            let uid = c.docker(&["exec", &c.container(s)?, "id", "-u"])?;
            ensure!(uid.trim() == "10001", "{s} runs as uid {uid}");
        }
        ensure!(c.tribctl(&["auth", "whoami"])?.contains("tls:admin"));
        c.tribctl(&[
            "well",
            "create",
            "acme:orders",
            "--tags",
            "orders,payments",
            "--shard-duration",
            "36h",
        ])?;
        c.tribctl_stdin(&["well", "ingest", "acme:orders"], "hello\nworld\n")?;
        let q = c.tribctl(&[
            "well",
            "query",
            "acme:orders",
            "--from",
            "2026-01-01T00:00:00Z",
        ])?;
        ensure!(q.contains("hello") && q.contains("world"), "query: {q}");
        c.tribctl(&[
            "stream",
            "create",
            "ORDERS",
            "--subjects",
            "ORDERS.>",
            "--storage",
            "file",
            "--max-age",
            "24h",
        ])?;
        c.tribctl(&[
            "stream",
            "publish",
            "ORDERS.new",
            "ORDER {{Count}}",
            "--count",
            "100",
        ])?;
        let sub = c.tribctl(&[
            "stream",
            "sub",
            "ORDERS",
            "--start-seq",
            "90",
            "--count",
            "11",
        ])?;
        ensure!(
            sub.contains("ORDER 90") && sub.contains("ORDER 100"),
            "sub: {sub}"
        );
        let info = c.tribctl_json(&["stream", "info", "ORDERS"])?;
        ensure!(find_u64(&info, "messages") == Some(100), "info: {info}");

        // Prometheus scrapes all six servers over TLS.
        let url = format!("http://{}/api/v1/targets", c.prometheus_addr());
        wait::until(
            "Prometheus scraping 6 targets",
            Duration::from_secs(60),
            || {
                let url = url.clone();
                async move {
                    let text = reqwest::get(&url).await.ok()?.text().await.ok()?;
                    let body: serde_json::Value = serde_json::from_str(&text).ok()?;
                    let targets = body["data"]["activeTargets"].as_array()?;
                    let up = targets.iter().filter(|t| t["health"] == "up").count();
                    (up == 6).then_some(())
                }
            },
        )
        .await
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker and the images: scripts/container-tests.sh runs it"]
async fn killing_the_leader_and_a_data_node_loses_nothing_acknowledged() -> Result<()> {
    with_cluster("tribkill", 2, |c| async move {
        c.tribctl(&[
            "stream",
            "create",
            "KILL",
            "--subjects",
            "KILL.>",
            "--duplicate-window",
            "10m",
        ])?;
        let node = owner(&c, "stream", "KILL")?;
        let addr = c.data_node_addr(node);
        let stop = Arc::new(AtomicBool::new(false));
        let load = tokio::spawn(publish_until(
            addr.clone(),
            "KILL.a".into(),
            1,
            stop.clone(),
        ));
        wait::until("some acks", Duration::from_secs(30), || async {
            (streams::info(&addr, "KILL")
                .await
                .ok()
                .map(|i| streams::count(&i))?
                >= 50)
                .then_some(())
        })
        .await?;

        let leader = c.leader()?;
        ensure!(leader != 0, "no leader");
        let (member, data_node) = (format!("member-{leader}"), format!("data-node-{node}"));
        c.docker(&["kill", &c.container(&member)?])?;
        c.docker(&["kill", &c.container(&data_node)?])?;
        // The other two members elect a leader and take catalogue writes.
        wait::until(
            "a catalogue write without the old leader",
            wait::WAIT,
            || async { c.tribctl(&["well", "create", "after-kill"]).ok() },
        )
        .await?;
        let new_leader = c.leader()?;
        ensure!(
            new_leader != leader && new_leader != 0,
            "leader {new_leader}"
        );
        // The killed ones come back (as an operator or the restart policy brings them).
        c.docker(&["start", &c.container(&member)?])?;
        c.docker(&["start", &c.container(&data_node)?])?;
        c.wait_healthy(&data_node).await?;
        c.wait_writable().await?;
        // Writes to the stream resume: the publisher, retrying, gets acks again.
        let resumed_from = streams::info(&addr, "KILL")
            .await
            .map(|i| streams::count(&i))?;
        wait::until("publishes resumed", Duration::from_secs(60), || async {
            (streams::info(&addr, "KILL")
                .await
                .ok()
                .map(|i| streams::count(&i))?
                >= resumed_from + 50)
                .then_some(())
        })
        .await?;
        stop.store(true, Ordering::Relaxed);
        let acked = load.await??;
        check_acked_once(&addr, "KILL", &acked).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker and the images: scripts/container-tests.sh runs it"]
async fn a_member_cut_off_refuses_writes_and_rejoins() -> Result<()> {
    with_cluster("tribcut", 2, |c| async move {
        let leader = c.leader()?;
        let cut = (1..=3).find(|i| *i != leader).context("a follower")?;
        let service = format!("member-{cut}");
        let container = c.container(&service)?;
        let net = c.network();
        c.docker(&["network", "disconnect", &net, &container])?;
        // The cut-off member, asked on its own listener, refuses: it is a minority of one.
        let refused = c.tribctl_inside(&service, &["well", "create", "from-the-minority"]);
        let err = refused.err().context("a write taken by a member cut off")?;
        println!("the member cut off refused: {err}");
        // UNAVAILABLE when it knows no leader; DEADLINE_EXCEEDED (grpc.request_timeout) when it
        // still forwards to the leader it knew, which it cannot reach.
        let err = err.to_string();
        ensure!(
            err.contains("UNAVAILABLE") || err.contains("DEADLINE_EXCEEDED"),
            "the refusal says why: {err}"
        );
        // The majority goes on.
        c.tribctl(&["well", "create", "while-cut"])?;
        c.docker(&["network", "connect", "--alias", &service, &net, &container])?;
        // It rejoins: a write through it succeeds, and it knows what was written meanwhile.
        wait::until("the member rejoined", Duration::from_secs(60), || async {
            c.tribctl_inside(&service, &["well", "create", "after-rejoin"])
                .ok()
        })
        .await?;
        c.tribctl_inside(&service, &["well", "get", "while-cut"])?;
        // Refused, the write is never applied: one forwarded to the leader and held up by the
        // cut reaches it after its request timed out, and the leader refuses it then.
        ensure!(
            c.tribctl(&["well", "get", "from-the-minority"]).is_err(),
            "a write refused by the member cut off ({err}) was applied after it rejoined"
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker and the images: scripts/container-tests.sh runs it"]
async fn a_rolling_restart_under_publish_load_keeps_every_acked_message_once() -> Result<()> {
    with_cluster("tribroll", 2, |c| async move {
        c.tribctl(&[
            "stream",
            "create",
            "ROLL",
            "--subjects",
            "ROLL.>",
            "--duplicate-window",
            "10m",
        ])?;
        let node = owner(&c, "stream", "ROLL")?;
        let addr = c.data_node_addr(node);
        let stop = Arc::new(AtomicBool::new(false));
        let load = tokio::spawn(publish_until(
            addr.clone(),
            "ROLL.x".into(),
            1,
            stop.clone(),
        ));
        let services = ["member-1", "member-2", "member-3"]
            .map(String::from)
            .into_iter()
            .chain(DATA_NODES.map(|i| format!("data-node-{i}")));
        for s in services {
            let before = streams::info(&addr, "ROLL")
                .await
                .map(|i| streams::count(&i))
                .unwrap_or(0);
            c.docker(&["restart", "-t", "20", &c.container(&s)?])?;
            c.wait_healthy(&s).await?;
            c.wait_writable().await?;
            // The load goes on before the next one goes down.
            wait::until(
                &format!("publishes after restarting {s}"),
                Duration::from_secs(60),
                || async {
                    (streams::info(&addr, "ROLL")
                        .await
                        .ok()
                        .map(|i| streams::count(&i))?
                        >= before + 20)
                        .then_some(())
                },
            )
            .await?;
        }
        stop.store(true, Ordering::Relaxed);
        let acked = load.await??;
        println!("rolling restart: {} messages acknowledged", acked.len());
        check_acked_once(&addr, "ROLL", &acked).await
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker and the images: scripts/container-tests.sh runs it"]
async fn ditto_copies_a_well_into_a_second_compose_cluster() -> Result<()> {
    let env = Env::from_env()?;
    // The target cluster's data nodes are also reached from the source cluster's network as
    // remote-data-node-N, a name their certificates carry too.
    let remote: Vec<String> = DATA_NODES
        .iter()
        .map(|i| format!("remote-data-node-{i}"))
        .collect();
    let dst = ComposeCluster::new(&env, "tribdst", 3)?
        .with_var("TRIBUTARY_INGEST_SECRETS", "[\"ditto-secret\"]")
        .with_var("TRIBUTARY_CERT_HOSTS", &remote.join(","));
    let src = ComposeCluster::new(&env, "tribsrc", 2)?;
    dst.up().await.with_context(|| dst.logs())?;
    src.up().await.with_context(|| src.logs())?;
    let run = async {
        for (i, name) in DATA_NODES.iter().zip(&remote) {
            let container = dst.container(&format!("data-node-{i}"))?;
            dst.docker(&[
                "network",
                "connect",
                "--alias",
                name,
                &src.network(),
                &container,
            ])?;
        }
        dst.tribctl(&["well", "create", "acme:orders", "--tags", "orders"])?;
        let node = owner(&dst, "well", "acme:orders")?;
        let ca = dst.client_files().ca_file.display().to_string();
        src.tribctl(&[
            "target",
            "create",
            "dst",
            "--encrypted-endpoint",
            &format!("remote-data-node-{node}:7200"),
            "--ingest-secret",
            "ditto-secret",
            "--ca-file",
            &ca,
            "--start-time",
            "2026-01-01T00:00:00Z",
        ])?;
        src.tribctl(&[
            "well",
            "create",
            "acme:orders",
            "--tags",
            "orders",
            "--ditto-target",
            "dst",
        ])?;
        // `well create` returned once the well's data node served it: an ingest right after
        // finds its tag routed.
        let lines: String = (1..=100).map(|i| format!("order {i}\n")).collect();
        src.tribctl_stdin(&["well", "ingest", "acme:orders"], &lines)?;
        wait::until(
            "100 entries in the target cluster",
            Duration::from_secs(90),
            || async {
                let out = dst
                    .tribctl(&[
                        "well",
                        "query",
                        "acme:orders",
                        "--from",
                        "2026-01-01T00:00:00Z",
                    ])
                    .ok()?;
                // Table cells: `│ order 7 │`.
                let got = (1..=100)
                    .filter(|i| out.contains(&format!(" order {i} ")))
                    .count();
                (got == 100).then_some(())
            },
        )
        .await
    };
    run.await
        .with_context(|| format!("{}\n{}", src.logs(), dst.logs()))
}
