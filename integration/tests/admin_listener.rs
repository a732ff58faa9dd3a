//! The admin HTTP listener (`/metrics`, `/health`, `/ready`) as an operator and Prometheus use
//! it: over TLS with the server's certificate unless the server is `insecure` (a scraper
//! trusts the cluster CA; cleartext gets no answer), and a member whose Raft thread stops is
//! neither ready nor healthy, saying why.

use anyhow::{anyhow, ensure, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tributary_control_plane::node::Halt;
use tributary_integration::{wait, Cluster, Server};

fn admin(c: &Cluster, s: Server) -> Result<SocketAddr> {
    c.addrs(s)?
        .admin
        .ok_or_else(|| anyhow!("{s:?} reported no admin address"))
}

fn request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
}

/// Status code and body of a cleartext GET.
async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(request(path).as_bytes()).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    parse(&raw)
}

/// Status code and body of a GET over TLS, trusting only `ca_pem`.
async fn get_tls(addr: SocketAddr, ca_pem: &str, path: &str) -> Result<(u16, String)> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from(addr.ip().to_string())?;
    let mut s = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await?;
    s.write_all(request(path).as_bytes()).await?;
    let mut raw = Vec::new();
    // A server closing without close_notify is fine once the response is in.
    let _ = s.read_to_end(&mut raw).await;
    parse(&raw)
}

fn parse(raw: &[u8]) -> Result<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let code = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("not an HTTP response: {:?}", text.get(..64)))?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((code, body.to_string()))
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
    c.shutdown().await;
    Ok(())
}
