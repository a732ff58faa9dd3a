//! Transport security as an operator relies on it: the client port serves no Raft, the peer
//! port takes members only (a certificate from the cluster CA carrying a member name, and the
//! name the batch claims), a cleartext or foreign client gets nowhere, and a rotated
//! certificate is served without a restart.

use anyhow::{anyhow, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use tonic::Code;
use tributary_common::certs::{self, Ca};
use tributary_common::tls::{self, TlsFiles};
use tributary_integration::{wait, Cluster, Server};
use tributary_proto::v1::{
    catalog_client::CatalogClient, raft_client::RaftClient, EntityKind, ListRequest,
    NodeStateRequest, RaftBatch,
};

fn peer_channel(addr: &str, files: &TlsFiles, name: &str) -> Result<tonic::transport::Channel> {
    Ok(tls::endpoint(addr, Some(files), Some(name))?.connect_lazy())
}

async fn send_as(addr: &str, files: &TlsFiles, from: u64) -> Code {
    let Ok(ch) = peer_channel(addr, files, &certs::member_name(1)) else {
        return Code::Unknown;
    };
    let batch = RaftBatch {
        from,
        messages: Vec::new(),
    };
    match RaftClient::new(ch).send(batch).await {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_members_reach_raft_and_only_on_the_peer_port() -> Result<()> {
    let c = Cluster::builder("sec")
        .members(3)
        .data_nodes(0)
        .start()
        .await?;
    c.wait_leader().await?;
    let tls = c
        .tls()
        .ok_or_else(|| anyhow!("the harness's clusters speak TLS"))?;
    let client = c.cp_addr(1)?;
    let peer = c
        .addrs(Server::Member(1))?
        .peer
        .ok_or_else(|| anyhow!("no peer address"))?
        .to_string();

    // The client port: TLS, and no Raft message taken, even from the cluster's admin; the
    // refusal says where Raft is served. The Raft state is readable, as Cluster.Status is.
    let mut on_client_port = RaftClient::new(tributary_integration::tls::channel(&client)?);
    let refused = on_client_port
        .send(RaftBatch::default())
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("peer listener"), "{refused:?}");
    let state = on_client_port
        .node_state(NodeStateRequest {})
        .await?
        .into_inner();
    assert_eq!(state.id, 1);

    // The peer port: a member of this cluster says who it is; anyone else is refused.
    assert_eq!(send_as(&peer, &tls.member(2)?, 2).await, Code::Ok);
    assert_eq!(
        send_as(&peer, &tls.member(2)?, 3).await,
        Code::PermissionDenied,
        "a member claiming to be another"
    );
    assert_eq!(
        send_as(&peer, &tls.client(), 2).await,
        Code::PermissionDenied,
        "a client certificate of the cluster CA that names no member"
    );
    let other = tempfile::tempdir()?;
    let foreign = Ca::new("someone else's CA")?;
    certs::write(other.path(), "ca", &foreign.pem)?;
    let pem = foreign.sign(&certs::member_name(2), &["127.0.0.1".into()])?;
    certs::write(other.path(), "member-2", &pem)?;
    let foreign_files = TlsFiles {
        cert_file: other.path().join("member-2.pem"),
        key_file: other.path().join("member-2-key.pem"),
        // It trusts the real CA, so only its own certificate gives it away.
        ca_file: tls.client().ca_file,
    };
    // TLS 1.3 checks the client's certificate after the client's side of the handshake:
    // the call then fails as cancelled or unavailable, never reaching Raft.
    let code = send_as(&peer, &foreign_files, 2).await;
    assert!(
        matches!(code, Code::Unavailable | Code::Cancelled | Code::Unknown),
        "a member-2 certificate from another CA fails the handshake: {code:?}"
    );
    let plain = tributary_common::grpc::channel(&peer)?;
    assert!(RaftClient::new(plain)
        .send(RaftBatch::default())
        .await
        .is_err());

    // Catalogue reads over the client port still work, over TLS.
    CatalogClient::new(tributary_integration::tls::channel(&client)?)
        .list(ListRequest {
            kind: EntityKind::Well as i32,
            namespace: String::new(),
        })
        .await?;
    c.shutdown().await;
    Ok(())
}

/// The first certificate a TLS server at `addr` shows, checked against the CA in `ca_file`.
async fn served_cert(addr: &str, ca_file: &std::path::Path) -> Result<Vec<u8>> {
    let roots = tls::read_roots(ca_file)?;
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1")?.to_owned();
    let conn = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await?;
    let (_, session) = conn.get_ref();
    let cert = session
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| anyhow!("no certificate"))?;
    Ok(cert.as_ref().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_without_a_restart() -> Result<()> {
    let c = Cluster::builder("rot").data_nodes(1).start().await?;
    let tls = c.tls().ok_or_else(|| anyhow!("TLS cluster"))?;
    let files = tls.data_node(1)?;
    let addr = c.data_addr(1)?;
    let before = served_cert(&addr, &files.ca_file).await?;
    assert_eq!(
        before,
        CertificateDer::from_pem_file(&files.cert_file)?.as_ref()
    );
    // A new certificate for the same node, written over the files (as a renewal would).
    let renewed = tls.renew(&certs::data_node_name(1))?;
    let after = wait::until("the renewed certificate served", wait::WAIT, || async {
        let got = served_cert(&addr, &files.ca_file).await.ok()?;
        (got != before).then_some(got)
    })
    .await?;
    assert_eq!(
        after,
        CertificateDer::from_pem_slice(renewed.cert.as_bytes())?.as_ref()
    );
    // And the node still serves its clients, over the new certificate.
    c.wait_registered(1).await?;
    c.shutdown().await;
    Ok(())
}
