//! `bench -- control-plane`: catalogue writes on a 3-member loopback cluster, and failover.

use crate::security::{Bearer, Secure, POLICY};
use anyhow::{anyhow, Result};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tributary_integration::{Cluster, Server::Member};
use tributary_proto::v1::catalog_client::CatalogClient;
use tributary_proto::v1::{entity::Kind, Entity, Well};

fn well(name: &str, hot_secs: u64) -> Entity {
    Entity {
        kind: Some(Kind::Well(Well {
            name: name.into(),
            hot_duration_secs: hot_secs,
            policy: POLICY.into(),
            ..Default::default()
        })),
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Each client owns one well and updates it in a loop: a write path with validation, Raft
/// commit on a quorum (fsync'd log) and apply, on loopback.
pub async fn run(clients: usize, duration: Duration) -> Result<()> {
    // Direct links: the figures measure the servers, not the harness's proxies.
    let mut c = Cluster::builder("bench")
        .insecure()
        .members(3)
        .data_nodes(0)
        .direct()
        .tune_members(|cfg| cfg.request_timeout_ms = 10_000)
        .start()
        .await?;
    let leader = c.wait_leader().await?;
    println!(
        "3-member control plane on 127.0.0.1, leader {leader}; {clients} clients for {duration:?}"
    );
    let members = c.member_ids();
    c.create(tributary_integration::entities::entity(Kind::Policy(
        crate::security::writer_policy()?,
    )))
    .await?;
    c.catalog(leader)?.create(well("bench:w-single", 0)).await?;

    // Single client, against the leader.
    let mut single = Histogram::<u64>::new(3)?;
    let mut cat = c.catalog(leader)?;
    for i in 0..500u64 {
        let t = Instant::now();
        cat.update(well("bench:w-single", i + 1)).await?;
        single.record(t.elapsed().as_micros() as u64)?;
    }
    println!(
        "single client: p50 {:.2} ms, p99 {:.2} ms ({} writes)",
        ms(single.value_at_quantile(0.5)),
        ms(single.value_at_quantile(0.99)),
        single.len()
    );

    // Many clients, spread over all members (followers forward to the leader).
    many_clients(&c, clients, duration, None).await?;

    // Failover: stop the leader, then write through a survivor until one succeeds.
    let survivor = members
        .iter()
        .copied()
        .find(|m| *m != leader)
        .ok_or_else(|| anyhow!("no survivor"))?;
    let mut cat = c.catalog(survivor)?;
    let t = Instant::now();
    c.kill(Member(leader)).await?;
    let mut n = 0u64;
    loop {
        n += 1;
        if cat
            .update(well("bench:w-single", 1_000_000 + n))
            .await
            .is_ok()
        {
            break;
        }
    }
    println!(
        "leader failover: first successful write {:.0} ms after the leader stopped",
        t.elapsed().as_secs_f64() * 1000.0
    );
    c.shutdown().await;
    Ok(())
}

/// `clients` clients, spread over all members (followers forward to the leader), each
/// updating its own well `bench:w{i}` (created here) in a loop for `duration`: open, or TLS
/// with the writer's token, judged by the wells' policy; writes/s.
pub async fn many_clients(
    c: &Cluster,
    clients: usize,
    duration: Duration,
    secure: Option<&Secure>,
) -> Result<f64> {
    let members = c.member_ids();
    let client = |i: usize| -> Result<CatalogClient<InterceptedService<Channel, Bearer>>> {
        let addr = c.cp_addr(members[i % members.len()])?;
        let ch = match secure {
            None => tributary_integration::tls::channel(&addr)?,
            Some(_) => tributary_integration::tls::anonymous_channel(&addr)?,
        };
        Ok(CatalogClient::with_interceptor(ch, Bearer::of(secure)))
    };
    for i in 0..clients {
        client(i)?.create(well(&format!("bench:w{i}"), 0)).await?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..clients {
        let mut cat = client(i)?;
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).map_err(|e| anyhow!("{e}"))?;
            let mut n = 1u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                cat.update(well(&format!("bench:w{i}"), n)).await?;
                h.record(t.elapsed().as_micros() as u64)?;
                n += 1;
            }
            anyhow::Ok(h)
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Histogram::<u64>::new(3)?;
    for t in tasks {
        all.add(t.await??)?;
    }
    let secs = start.elapsed().as_secs_f64();
    let rate = all.len() as f64 / secs;
    println!(
        "{clients} clients: {rate:.0} writes/s, p50 {:.2} ms, p99 {:.2} ms ({} writes in {secs:.1} s)",
        ms(all.value_at_quantile(0.5)),
        ms(all.value_at_quantile(0.99)),
        all.len()
    );
    Ok(rate)
}
