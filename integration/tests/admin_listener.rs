//! The admin HTTP listener (`/metrics`, `/health`, `/ready`) as an operator and Prometheus use
//! it: over TLS with the server's certificate unless the server is `insecure` (a scraper
//! trusts the cluster CA; cleartext gets no answer), and a member whose Raft thread stops is
//! neither ready nor healthy, saying why.

use anyhow::{anyhow, ensure, Result};
use std::net::SocketAddr;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
use tributary_control_plane::node::Halt;
use tributary_integration::admin_http::Admin;
use tributary_integration::{wait, Cluster, Server};

fn admin(c: &Cluster, s: Server) -> Result<SocketAddr> {
    c.addrs(s)?
        .admin
        .ok_or_else(|| anyhow!("{s:?} reported no admin address"))
}

/// Status code and body of a cleartext GET.
async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    Admin { addr, ca_pem: None }.get(path).await
}

/// Status code and body of a GET over TLS, trusting only `ca_pem`.
async fn get_tls(addr: SocketAddr, ca_pem: &str, path: &str) -> Result<(u16, String)> {
    Admin {
        addr,
        ca_pem: Some(ca_pem),
    }
    .get(path)
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_servers_admin_listener_speaks_https_with_its_certificate_only() -> Result<()> {
    let c = Cluster::builder("admintls")
        .tune_members(|m| m.admin_listen = "127.0.0.1:0".into())
        .tune_data_nodes(|d| d.admin_listen = "127.0.0.1:0".into())
        .start()
        .await?;
    c.wait_leader().await?;
    let ca = c.ca_pem();
    for s in [Server::Member(1), Server::DataNode(1)] {
        let addr = admin(&c, s)?;
        let (code, body) = get_tls(addr, &ca, "/health").await?;
        ensure!(
            code == 200 && body == "ok",
            "{s:?} /health: {code} {body:?}"
        );
        let (code, _) = get_tls(addr, &ca, "/ready").await?;
        ensure!(code == 200, "{s:?} /ready: {code}");
        let (code, body) = get_tls(addr, &ca, "/metrics").await?;
        ensure!(code == 200, "{s:?} /metrics: {code}");
        ensure!(body.contains("# TYPE"), "{s:?}: no metrics in {body:?}");
        // Cleartext gets no HTTP answer (the handshake fails and the connection closes).
        let plain = get(addr, "/health").await;
        ensure!(plain.is_err(), "{s:?} answered cleartext: {plain:?}");
        // Nor does a client that trusts another CA.
        let other = tributary_common::certs::Ca::new("not the cluster's CA")?;
        let stranger = get_tls(addr, &other.pem.cert, "/health").await;
        ensure!(stranger.is_err(), "{s:?} passed another CA's check");
    }
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_raft_thread_stops_is_neither_ready_nor_healthy() -> Result<()> {
    let c = Cluster::builder("adminhalt")
        .insecure()
        .data_nodes(0)
        .tune_members(|m| m.admin_listen = "127.0.0.1:0".into())
        .start()
        .await?;
    c.wait_leader().await?;
    let addr = admin(&c, Server::Member(1))?;
    ensure!(get(addr, "/ready").await?.0 == 200);
    ensure!(get(addr, "/health").await? == (200, "ok".to_string()));

    // What a raft-rs `fatal!` does: the Raft thread panics.
    let node = &c.member(1)?.node;
    node.panic_raft_for_test("injected by the test");
    wait::until("/ready to fail", wait::WAIT, || async {
        let (code, _) = get(addr, "/ready").await.ok()?;
        (code == 503).then_some(())
    })
    .await?;
    let (code, body) = get(addr, "/health").await?;
    ensure!(code == 503, "/health {code} {body:?}");
    ensure!(
        body.contains("Raft loop stopped") && body.contains("injected by the test"),
        "/health says {body:?}"
    );
    ensure!(
        matches!(node.halts().borrow().clone(), Halt::Failed(_)),
        "halt state"
    );
    ensure!(
        c.member_state(1).await?.role == "stopped",
        "the member still reports a role"
    );
    // gRPC health says so too, for the member as a whole and for its catalogue.
    let grpc = c.cp_addr(1)?;
    for service in ["", "tributary.v1.Catalog"] {
        wait::until(
            &format!("gRPC health of {service:?} to be NOT_SERVING"),
            wait::WAIT,
            || async {
                let ch = tributary_integration::tls::channel(&grpc).ok()?;
                let r = HealthClient::new(ch)
                    .check(HealthCheckRequest {
                        service: service.into(),
                    })
                    .await
                    .ok()?;
                (r.into_inner().status == ServingStatus::NotServing as i32).then_some(())
            },
        )
        .await?;
    }
    c.shutdown().await;
    Ok(())
}
