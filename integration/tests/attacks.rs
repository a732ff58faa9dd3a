//! The security audit's attacks on membership and identity (`acceptance/audit/probe_members.py`,
//! `fake_node.py`), replayed against a 3-member TLS cluster with two data nodes: each is
//! refused, nothing changes, and the cluster keeps its quorum and its data nodes.

use anyhow::{ensure, Context, Result};
use tonic::transport::Channel;
use tonic::Code;
use tributary_common::tls::{endpoint, TlsFiles};
use tributary_integration::entities::well;
use tributary_integration::tls::anonymous_channel;
use tributary_integration::{wait, Cluster, Server};
use tributary_proto::v1::{
    cluster_client::ClusterClient, DataNode, HeartbeatRequest, MemberRequest, RegisterRequest,
    StatusReply, StatusRequest,
};

fn as_holder_of(addr: &str, files: &TlsFiles) -> Result<Channel> {
    Ok(endpoint(addr, Some(files), None)?.connect_lazy())
}

async fn status(c: &Cluster) -> Result<StatusReply> {
    Ok(c.cluster(1)?.status(StatusRequest {}).await?.into_inner())
}

fn node(st: &StatusReply, id: u64) -> Result<(String, bool)> {
    st.data_nodes
        .iter()
        .find(|d| d.id == id)
        .map(|d| (d.addr.clone(), d.up))
        .with_context(|| format!("data node {id} is not listed"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impostors_strangers_and_membership_changes_are_refused_and_quorum_holds() -> Result<()> {
    let mut c = Cluster::builder("attacks")
        .members(3)
        .data_nodes(2)
        .start()
        .await?;
    c.wait_leader().await?;
    let before = status(&c).await?;
    let (addr_1, up_1) = node(&before, 1)?;
    ensure!(up_1, "data node 1 is down before any attack");

    // Data node 2, taken over by an attacker, claims to be data node 1 at its own address,
    // and reports node 1 unhealthy: its certificate names node 2, so both are refused.
    let tls = c.tls().context("the harness cluster speaks TLS")?;
    let impostor = ClusterClient::new(as_holder_of(&c.cp_addr(1)?, &tls.data_node(2)?)?);
    let taken_over = DataNode {
        id: 1,
        addr: "127.0.0.1:9".into(),
        capacity: 1_000_000,
        tags: vec![],
    };
    let err = impostor
        .clone()
        .register(RegisterRequest {
            node: Some(taken_over),
        })
        .await
        .expect_err("registering as another node");
    ensure!(err.code() == Code::PermissionDenied, "{err:?}");
    ensure!(
        err.message().contains("only as itself"),
        "{}",
        err.message()
    );
    let err = impostor
        .clone()
        .heartbeat(HeartbeatRequest {
            node_id: 1,
            healthy: false,
            stats: vec![],
        })
        .await
        .expect_err("a heartbeat for another node");
    ensure!(err.code() == Code::PermissionDenied, "{err:?}");

    // A stranger (TLS, no certificate) changes membership: refused; so is a client
    // certificate of the cluster CA on the peer listener, which takes members only.
    let stranger = ClusterClient::new(anonymous_channel(&c.cp_addr(1)?)?);
    let err = stranger
        .clone()
        .remove_member(MemberRequest {
            id: 3,
            ..Default::default()
        })
        .await
        .expect_err("RemoveMember(3)");
    ensure!(err.code() == Code::Unauthenticated, "RemoveMember: {err:?}");
    let err = stranger
        .clone()
        .add_member(MemberRequest {
            id: 9,
            addr: "127.0.0.1:29999".into(),
            peer_addr: String::new(),
        })
        .await
        .expect_err("AddMember(9)");
    ensure!(err.code() == Code::Unauthenticated, "AddMember: {err:?}");
    let peer_addr = c
        .addrs(Server::Member(1))?
        .peer
        .context("member 1's peer port")?;
    let not_a_member = as_holder_of(&peer_addr.to_string(), &tls.client())?;
    let err = ClusterClient::new(not_a_member)
        .remove_member(MemberRequest {
            id: 3,
            ..Default::default()
        })
        .await
        .expect_err("a client certificate on the peer port");
    ensure!(
        matches!(err.code(), Code::PermissionDenied | Code::Unavailable),
        "{err:?}"
    );

    // Nothing changed: three voters, node 1 where it was and up.
    let after = status(&c).await?;
    ensure!(after.members.len() == 3, "members now {:?}", after.members);
    ensure!(
        node(&after, 1)? == (addr_1.clone(), true),
        "node 1 now {:?}",
        node(&after, 1)?
    );

    // And one real member may crash: the two others are a quorum and take writes.
    let leader = c.wait_leader().await?;
    let victim = if leader == 3 { 2 } else { 3 };
    c.kill(Server::Member(victim)).await?;
    wait::until("a write with one member down", wait::WAIT, || async {
        c.create(well("after-the-attacks", &[])).await.ok()
    })
    .await?;
    c.shutdown().await;
    Ok(())
}
