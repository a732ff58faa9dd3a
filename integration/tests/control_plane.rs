//! A 3- and 5-member control plane on 127.0.0.1, every Raft link through the harness's
//! proxies: writes through any member, failover, catch-up by snapshot, a partitioned leader,
//! membership changes, members down.

use anyhow::{anyhow, Result};
use tonic::Code;
use tributary_integration::entities::{stream, well};
use tributary_integration::{wait, Cluster, LinkId, Server::Member};
use tributary_proto::v1::{EntityKind, MemberRequest, StatusRequest};

async fn control_plane(members: u64) -> Result<Cluster> {
    Cluster::builder("cp")
        .members(members)
        .data_nodes(0)
        .start()
        .await
}

/// Every running member's catalogue, exported; equal vectors mean equal catalogues.
fn exports(c: &Cluster) -> Result<Vec<(u64, Vec<u8>)>> {
    c.running_members()
        .into_iter()
        .map(|id| Ok((id, c.member(id)?.node.catalogue.export()?)))
        .collect()
}

fn applied(c: &Cluster, id: u64) -> Result<u64> {
    Ok(c.member(id)?.node.catalogue.applied_index())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_any_member_reach_every_member() -> Result<()> {
    let c = control_plane(3).await?;
    let leader = c.wait_leader().await?;
    let mut last = 0;
    for id in c.member_ids() {
        let r = c
            .catalog(id)?
            .create(well(&format!("acme:w{id}"), &[&format!("t{id}")]))
            .await?
            .into_inner();
        assert!(
            r.revision > last,
            "revision must grow: {} after {last}",
            r.revision
        );
        last = r.revision;
    }
    for id in c.member_ids() {
        assert_eq!(
            c.names(id, EntityKind::Well).await?,
            vec!["acme:w1", "acme:w2", "acme:w3"],
            "member {id}"
        );
    }
    // Tags were created with cluster-wide ids, the same on every member.
    let tags = c.names(leader, EntityKind::Tag).await?;
    assert_eq!(tags, vec!["t1", "t2", "t3"]);
    c.wait_applied(applied(&c, leader)?).await?;
    let exports = exports(&c)?;
    assert!(
        exports.windows(2).all(|w| w[0].1 == w[1].1),
        "catalogues differ between members"
    );
    // The leader and its followers really talked through the proxies, both ways.
    for id in c.member_ids().into_iter().filter(|id| *id != leader) {
        for link in [LinkId::raft(leader, id), LinkId::raft(id, leader)] {
            assert!(c.net().bytes(link)? > 0, "nothing crossed {link:?}");
        }
    }
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_loss_keeps_acknowledged_writes_and_restart_catches_up_by_snapshot() -> Result<()> {
    let mut c = Cluster::builder("cp")
        .members(3)
        .data_nodes(0)
        .tune_members(|cfg| cfg.raft.snapshot_entries = 20)
        .start()
        .await?;
    let leader = c.wait_leader().await?;
    let follower = c
        .member_ids()
        .into_iter()
        .find(|id| *id != leader)
        .ok_or_else(|| anyhow!("no follower"))?;
    let mut acked = Vec::new();
    for i in 0..10 {
        let name = format!("s{i}");
        c.catalog(follower)?
            .create(stream(&name, &[&format!("a{i}.>")]))
            .await?;
        acked.push(format!("default:{name}"));
    }
    c.kill(Member(leader)).await?;
    let new_leader = c.wait_leader().await?;
    assert_ne!(new_leader, leader);
    // Writes are accepted again, and enough of them to compact the log past the old leader.
    for i in 10..60 {
        let name = format!("s{i}");
        c.catalog(new_leader)?
            .create(stream(&name, &[&format!("a{i}.>")]))
            .await?;
        acked.push(format!("default:{name}"));
    }
    acked.sort();
    // Back on another port: its peers reach it through the same proxies.
    c.start(Member(leader)).await?;
    c.wait_applied(applied(&c, new_leader)?).await?;
    let mut got = c.names(leader, EntityKind::Stream).await?;
    got.sort();
    assert_eq!(got, acked, "the restarted member lost or invented writes");
    let first = c.member(new_leader)?.node.log_first_index();
    assert!(
        first > 11,
        "the log should have been compacted (first index {first})"
    );
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_takes_no_writes_a_new_one_does_and_the_old_one_catches_up() -> Result<()>
{
    let c = Cluster::builder("cp")
        .members(3)
        .data_nodes(0)
        .tune_members(|cfg| cfg.request_timeout_ms = 1_500)
        .start()
        .await?;
    let old = c.wait_leader().await?;
    c.isolate(Member(old))?;
    let majority: Vec<u64> = c.member_ids().into_iter().filter(|i| *i != old).collect();
    let new = c.wait_leader_among(&majority).await?;
    let err = c
        .catalog(old)?
        .create(well("acme:lost", &[]))
        .await
        .expect_err("minority accepted a write");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    for i in 0..5 {
        c.catalog(new)?
            .create(well(&format!("acme:kept{i}"), &[]))
            .await?;
    }
    c.heal_all()?;
    c.wait_applied(applied(&c, new)?).await?;
    let kept: Vec<String> = (0..5).map(|i| format!("acme:kept{i}")).collect();
    for id in c.member_ids() {
        assert_eq!(c.names(id, EntityKind::Well).await?, kept, "member {id}");
    }
    // One leader again, which every member follows.
    c.wait_leader().await?;
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_added_and_removed_at_runtime() -> Result<()> {
    let mut c = control_plane(3).await?;
    let leader = c.wait_leader().await?;
    c.catalog(leader)?.create(well("acme:before", &[])).await?;
    let addr = c.start_joiner(4).await?;
    let r = c
        .cluster(1)?
        .add_member(MemberRequest {
            id: 4,
            addr,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(r.members.iter().any(|m| m.id == 4));
    // The new member gets the catalogue (by snapshot: it has no log of the bootstrap).
    wait::until("member 4 sees the catalogue", wait::WAIT, || async {
        c.member(4)
            .ok()?
            .node
            .catalogue
            .get(EntityKind::Well, "acme:before")
            .ok()
            .flatten()
    })
    .await?;
    c.cluster(2)?
        .remove_member(MemberRequest {
            id: 4,
            ..Default::default()
        })
        .await?;
    wait::until("member 4 removed", wait::WAIT, || async {
        (c.member(leader).ok()?.node.state().voters.len() == 3).then_some(())
    })
    .await?;
    c.kill(Member(4)).await?;
    // With one of three down, removing another live member would leave no quorum.
    let leader = c.wait_leader().await?;
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|i| *i != leader).collect();
    c.kill(Member(others[0])).await?;
    wait::until(
        "the leader to see the stopped member unreachable",
        wait::WAIT,
        || async {
            let m = c.member(leader).ok()?;
            (!m.node.peers.is_reachable(others[0])).then_some(())
        },
    )
    .await?;
    let err = c
        .cluster(leader)?
        .remove_member(MemberRequest {
            id: others[1],
            ..Default::default()
        })
        .await
        .expect_err("removal leaving no quorum was accepted");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_members_keep_working_with_two_down() -> Result<()> {
    let mut c = control_plane(5).await?;
    let leader = c.wait_leader().await?;
    let down: Vec<u64> = c
        .member_ids()
        .into_iter()
        .filter(|i| *i != leader)
        .take(2)
        .collect();
    for id in &down {
        c.kill(Member(*id)).await?;
    }
    let up = c.running_members();
    for (i, id) in up.iter().enumerate() {
        c.catalog(*id)?
            .create(stream(&format!("five{i}"), &[&format!("five{i}")]))
            .await?;
    }
    assert_eq!(c.names(up[0], EntityKind::Stream).await?.len(), 3);
    let status = c
        .cluster(up[1])?
        .status(StatusRequest {})
        .await?
        .into_inner();
    assert_eq!(status.members.len(), 5);
    assert_eq!(status.members.iter().filter(|m| !m.reachable).count(), 2);
    assert_eq!(
        status.members.iter().filter(|m| m.role == "leader").count(),
        1
    );
    c.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_processes_elect_restart_on_a_new_port_and_catch_up() -> Result<()> {
    let mut c = Cluster::builder("cp")
        .members(3)
        .data_nodes(0)
        .member_processes()
        .start()
        .await?;
    let leader = c.wait_leader().await?;
    c.catalog(leader)?.create(well("acme:one", &[])).await?;
    // kill -9 the leader: the others elect a new one and take writes.
    c.kill(Member(leader)).await?;
    let survivors: Vec<u64> = c.running_members();
    let new = c.wait_leader_among(&survivors).await?;
    c.catalog(new)?.create(well("acme:two", &[])).await?;
    let before = c.cp_addr(new)?;
    c.start(Member(leader)).await?;
    let rejoined = c.wait_leader().await?;
    let target = c.member_state(rejoined).await?.applied;
    c.wait_applied(target).await?;
    assert_eq!(
        c.names(leader, EntityKind::Well).await?,
        vec!["acme:one", "acme:two"]
    );
    assert_eq!(c.cp_addr(new)?, before, "a running member kept its port");
    c.shutdown().await;
    Ok(())
}
