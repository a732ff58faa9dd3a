//! `bench -- idle --streams 1000`: what idle replicated streams cost. Three data nodes and one
//! member run in this process; the CPU they burn (user + system time of the process, from
//! `/proc/self/stat`) is sampled over `--secs` with no traffic at all, first with no stream,
//! then with `--streams` R`--replicas` streams, each with a leader and one message; with the
//! data nodes' `[replication] hibernate` off, then on (`--hibernate`).

use crate::replicated::{leader_of, stream};
use anyhow::{anyhow, Result};
use std::time::{Duration, Instant};
use tributary_data_node::DataNodeConfig;
use tributary_integration::Cluster;

/// User + system CPU time of this process so far.
fn cpu_time() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command (in parentheses, which may hold spaces): utime and stime are
    // the 12th and 13th of them, in clock ticks.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("unreadable /proc/self/stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> {
        Ok(f.get(i)
            .ok_or_else(|| anyhow!("short /proc/self/stat"))?
            .parse()?)
    };
    // Linux reports them in USER_HZ, 100 per second on every architecture.
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// CPU used over `secs` of wall time, as a share of one core.
async fn idle_cpu(secs: u64) -> Result<f64> {
    let (t, c) = (Instant::now(), cpu_time()?);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    Ok((cpu_time()? - c).as_secs_f64() / t.elapsed().as_secs_f64() * 100.0)
}

pub async fn run(streams: u32, replicas: u32, secs: u64, hibernate: bool) -> Result<()> {
    let nodes = u64::from(replicas.max(3));
    let c = Cluster::builder("bench-idle")
        .members(1)
        .data_nodes(nodes)
        .direct()
        .insecure()
        .tune_data_nodes(move |c| {
            c.replication.hibernate = hibernate;
            // The default, not the harness's quicker beat: each carries every stream's stats.
            c.heartbeat_interval_ms = DataNodeConfig::default().heartbeat_interval_ms;
        })
        .start()
        .await?;
    let mode = if hibernate { "on" } else { "off" };
    println!("hibernate {mode}:");
    let base = idle_cpu(secs).await?;
    println!("idle, no stream: {base:.1}% of a core ({nodes} data nodes, 1 member, in process)");
    let t = Instant::now();
    for i in 0..streams {
        c.create(stream(&format!("IDLE{i}"), replicas)).await?;
    }
    for i in 0..streams {
        let leader = leader_of(&c, &format!("default:IDLE{i}")).await?;
        c.publish_n(leader, &format!("IDLE{i}.x"), "one", 1).await?;
    }
    println!(
        "{streams} R{replicas} streams created, each with a leader and a message, in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // Let elections and the first messages' traffic settle (and idle groups fall asleep,
    // which takes two election timeouts) before measuring.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let busy = idle_cpu(secs).await?;
    println!(
        "idle, {streams} R{replicas} streams: {busy:.1}% of a core; {:.2}% per 100 streams above none",
        (busy - base).max(0.0) / f64::from(streams.max(1)) * 100.0
    );
    c.shutdown().await;
    Ok(())
}
