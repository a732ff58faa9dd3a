//! `bench -- mirror` and `bench -- sources`: fill ORDERS (and RETURNS), then time a mirror (a
//! filtered mirror, a stream sourcing both) until it holds everything; and the mirror's lag
//! behind a publisher going at full speed. File storage, one data node on loopback: the
//! copies read their origins straight from the node's storage. Each copy figure is the median
//! of `--rounds` copies (3 by default, as the reference figures are), each into a new stream.

use crate::replicated::leader_of;
use anyhow::{anyhow, Result};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;
use tributary_integration::streams::{self, file_stream as stream};
use tributary_integration::Cluster;
use tributary_proto::v1::{entity::Kind, Entity, PublishRequest, Stream, StreamSource};

/// One member, one data node, direct links (the figures measure the servers, not proxies).
async fn bench_cluster() -> Result<Cluster> {
    Cluster::builder("bench").insecure().direct().start().await
}

pub(crate) fn origin(name: &str, filter: &str) -> StreamSource {
    StreamSource {
        stream: name.into(),
        filter_subject: filter.into(),
        ..Default::default()
    }
}

/// Publishes `reqs` pipelined; returns how many were acknowledged (an error ack fails).
async fn publish_all(
    c: &mut tributary_proto::v1::streams_client::StreamsClient<tonic::transport::Channel>,
    reqs: impl futures::Stream<Item = PublishRequest> + Send + 'static,
) -> Result<u64> {
    let mut acks = tributary_common::publish::pipelined(c, reqs).await?;
    let mut got = 0u64;
    while let Some(a) = acks.next().await {
        let a = a?;
        if !a.error.is_empty() {
            return Err(anyhow!("publish: {}", a.error));
        }
        got += 1;
    }
    Ok(got)
}

/// Publishes `n` messages pipelined, alternating `subjects`; returns msgs/s.
pub(crate) async fn fill(addr: &str, subjects: &[&str], n: u64, payload: usize) -> Result<f64> {
    let mut c = tributary_proto::v1::streams_client::StreamsClient::new(
        tributary_integration::tls::channel(addr)?,
    );
    let data = bytes::Bytes::from(vec![b'x'; payload]);
    let subjects: Vec<String> = subjects.iter().map(|s| s.to_string()).collect();
    let reqs = futures::stream::iter((0..n).map(move |i| PublishRequest {
        subject: subjects[(i % subjects.len() as u64) as usize].clone(),
        data: data.clone(),
        id: i,
        ..Default::default()
    }));
    let start = Instant::now();
    let got = publish_all(&mut c, reqs).await?;
    if got != n {
        return Err(anyhow!("{got} acks for {n}"));
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Waits until `stream` holds `n` messages; returns the time from `start`.
pub(crate) async fn until_count(
    addr: &str,
    name: &str,
    n: u64,
    start: Instant,
) -> Result<Duration> {
    loop {
        let i = streams::info(addr, name).await?;
        if i.state.is_some_and(|s| s.messages >= n) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > Duration::from_secs(600) {
            return Err(anyhow!("{name} did not reach {n} messages in 10 minutes"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub(crate) fn line(what: &str, n: u64, payload: usize, t: Duration) {
    let s = t.as_secs_f64();
    println!(
        "{what:<34} {n:>9} msgs in {s:>6.2} s  {:>10.0} msgs/s  {:>7.1} MB/s",
        n as f64 / s,
        (n as f64 * payload as f64) / s / 1e6
    );
}

/// Creates `s` (on data node `owner` for R1; placed by the control plane when replicated)
/// and waits until its leader holds `n` messages; the time from the create.
async fn timed_copy(c: &Cluster, s: Stream, owner: u64, n: u64) -> Result<Duration> {
    let name = s.name.clone();
    let start = Instant::now();
    let node = if s.replicas > 1 {
        c.create(Entity {
            kind: Some(Kind::Stream(s)),
        })
        .await?;
        leader_of(c, &format!("default:{name}")).await?
    } else {
        c.create_stream(s, owner).await?;
        owner
    };
    until_count(&c.data_addr(node)?, &name, n, start).await
}

/// Times `rounds` copies, each into a new stream made by `make(round)`, until it holds `n`
/// messages; prints every round and then the median under `what` (the reference figures are
/// medians of 3 runs), and returns the median rate.
pub(crate) async fn median_of(
    c: &Cluster,
    what: &str,
    (n, payload, rounds): (u64, usize, u32),
    owner: u64,
    make: impl Fn(u32) -> Stream,
) -> Result<f64> {
    let mut times = Vec::new();
    for r in 1..=rounds.max(1) {
        let t = timed_copy(c, make(r), owner, n).await?;
        line(&format!("  {what}, round {r}"), n, payload, t);
        times.push(t);
    }
    times.sort();
    let t = times[times.len() / 2];
    line(what, n, payload, t);
    Ok(n as f64 / t.as_secs_f64())
}

pub async fn mirror(
    messages: u64,
    payload: usize,
    rounds: u32,
    lag_secs: u64,
    lag_rate: u64,
) -> Result<()> {
    let c = bench_cluster().await?;
    let addr = c.data_addr(1)?;
    c.create_stream(stream("ORDERS", &["ORDERS.>"]), 1).await?;
    let rate = fill(&addr, &["ORDERS.a", "ORDERS.b"], messages, payload).await?;
    println!("filled ORDERS with {messages} x {payload} B at {rate:.0} msgs/s");

    let mirror = |filter: &'static str, name: &'static str| {
        move |r: u32| {
            let mut m = stream(&format!("{name}{r}"), &[]);
            m.mirror = Some(origin("ORDERS", filter));
            m
        }
    };
    let args = (messages, payload, rounds);
    median_of(&c, "mirror", args, 1, mirror("", "MIRROR")).await?;
    let half = (messages.div_ceil(2), payload, rounds);
    let what = "filtered mirror (stored, 1 in 2)";
    median_of(&c, what, half, 1, mirror("ORDERS.a", "FILTERED")).await?;

    lag(&c, &addr, payload, lag_secs, lag_rate).await
}

pub async fn sources(messages: u64, payload: usize, rounds: u32) -> Result<()> {
    let c = bench_cluster().await?;
    let addr = c.data_addr(1)?;
    c.create_stream(stream("ORDERS", &["ORDERS.>"]), 1).await?;
    c.create_stream(stream("RETURNS", &["RETURNS.>"]), 1)
        .await?;
    fill(&addr, &["ORDERS.new"], messages, payload).await?;
    fill(&addr, &["RETURNS.new"], messages, payload).await?;
    println!("filled ORDERS and RETURNS with {messages} x {payload} B each");
    let archive = |r: u32| {
        let mut s = stream(&format!("ARCHIVE{r}"), &[]);
        s.sources = vec![origin("ORDERS", ""), origin("RETURNS", "")];
        s
    };
    let args = (2 * messages, payload, rounds);
    median_of(&c, "sources (2 origins)", args, 1, archive)
        .await
        .map(|_| ())
}

/// Publishes to `subject` on one pipelined stream until `stop`, at `rate` msgs/s (0 = as fast
/// as acks allow); returns the rate reached.
async fn publish_until(
    addr: &str,
    subject: &str,
    payload: usize,
    rate: u64,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<f64> {
    let mut c = tributary_proto::v1::streams_client::StreamsClient::new(
        tributary_integration::tls::channel(addr)?,
    );
    let data = bytes::Bytes::from(vec![b'x'; payload]);
    let subject = subject.to_string();
    let start = tokio::time::Instant::now();
    let reqs = futures::stream::unfold(0u64, move |i| {
        let (data, subject, stop) = (data.clone(), subject.clone(), stop.clone());
        async move {
            if *stop.borrow() {
                return None;
            }
            // Paced in steps of 100 messages: message i is due at start + i / rate.
            if rate > 0 && i % 100 == 0 {
                let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                tokio::time::sleep_until(due).await;
            }
            let r = PublishRequest {
                subject,
                data,
                id: i,
                ..Default::default()
            };
            Some((r, i + 1))
        }
    });
    let got = publish_all(&mut c, reqs).await?;
    Ok(got as f64 / start.elapsed().as_secs_f64())
}

/// A mirror of LIVE while one pipelined publisher goes at full speed (or `rate`): lag sampled
/// every 10 ms.
async fn lag(c: &Cluster, addr: &str, payload: usize, secs: u64, rate: u64) -> Result<()> {
    c.create_stream(stream("LIVE", &["LIVE.>"]), 1).await?;
    let mut m = stream("LIVE_MIRROR", &[]);
    m.mirror = Some(origin("LIVE", ""));
    c.create_stream(m, 1).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let publisher = tokio::spawn({
        let addr = addr.to_string();
        async move { publish_until(&addr, "LIVE.x", payload, rate, stop_rx).await }
    });
    let mut h = Histogram::<u64>::new(3)?;
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        let o = streams::info(addr, "LIVE").await?;
        let m = streams::info(addr, "LIVE_MIRROR").await?;
        let (o, m) = (
            o.state.map_or(0, |s| s.last_seq),
            m.state.map_or(0, |s| s.last_seq),
        );
        h.record(o.saturating_sub(m))?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(true);
    let rate = publisher.await??;
    println!(
        "mirror lag behind a {rate:.0} msgs/s publisher ({secs} s, {} samples): p50 {} p99 {} max {} messages",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.max()
    );
    Ok(())
}
