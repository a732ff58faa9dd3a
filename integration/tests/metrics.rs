//! `/metrics` of a running cluster as Prometheus scrapes it: every kind of metric the issue
//! asks for has series after a little of everything (gRPC calls by service, method and code
//! with latency buckets; Raft; RocksDB; ditto and mirror links; the process), and every
//! series the servers export has its HELP line.

use anyhow::{anyhow, ensure, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use tributary_integration::admin_http::Admin;
use tributary_integration::{traffic, wait, Cluster, Server};

/// One scrape: samples as (family, labels, value), and the families with a HELP line.
struct Scrape {
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
    described: BTreeSet<String>,
}

/// The family a sample line belongs to (`x_bucket` of histogram `x`, say).
fn family(name: &str, described: &BTreeSet<String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if described.contains(base) {
                return base.to_string();
            }
        }
    }
    name.to_string()
}

fn parse(text: &str) -> Result<Scrape> {
    let mut described = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            described.insert(rest.split(' ').next().unwrap_or_default().to_string());
        }
    }
    let mut samples = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line
            .rsplit_once(' ')
            .ok_or_else(|| anyhow!("not a sample line: {line:?}"))?;
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split("\",")
            .filter(|kv| !kv.is_empty())
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        let value: f64 = value.parse().map_err(|e| anyhow!("{line:?}: {e}"))?;
        samples.push((family(name, &described), labels, value));
    }
    Ok(Scrape { samples, described })
}

impl Scrape {
    fn has(&self, family: &str, label: &[(&str, &str)]) -> bool {
        self.samples.iter().any(|(f, l, _)| {
            f == family
                && label
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
    }

    fn value(&self, family: &str, label: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|(f, l, _)| {
                f == family
                    && label
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
    }
}

fn admin(c: &Cluster, s: Server) -> Result<SocketAddr> {
    c.addrs(s)?
        .admin
        .ok_or_else(|| anyhow!("{s:?} reported no admin address"))
}

async fn scrape(addr: SocketAddr, ca: &str) -> Result<Scrape> {
    let (code, body) = Admin {
        addr,
        ca_pem: Some(ca),
    }
    .get("/metrics")
    .await?;
    ensure!(code == 200, "/metrics answered {code}");
    parse(&body)
}

/// The families each kind must show once the traffic ran (sampled ones within seconds).
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "grpc",
        &[
            "tributary_grpc_requests_total",
            "tributary_grpc_request_duration_seconds",
        ],
    ),
    (
        "raft",
        &[
            "tributary_raft_term",
            "tributary_raft_commit_index",
            "tributary_raft_applied_index",
            "tributary_raft_is_leader",
            "tributary_raft_leader_changes_total",
            "tributary_raft_proposal_duration_seconds",
            "tributary_raft_snapshots_sent_total",
            "tributary_raft_snapshots_applied_total",
        ],
    ),
    (
        "rocksdb",
        &[
            "tributary_rocksdb_sst_files_bytes",
            "tributary_rocksdb_live_data_bytes",
            "tributary_rocksdb_pending_compaction_bytes",
            "tributary_rocksdb_memtable_bytes",
            "tributary_rocksdb_block_cache_usage_bytes",
            "tributary_rocksdb_delayed_write_rate_bytes",
            "tributary_rocksdb_write_stopped",
        ],
    ),
    (
        "ditto",
        &[
            "tributary_ditto_entries_total",
            "tributary_ditto_bytes_total",
            "tributary_ditto_entries_behind",
            "tributary_ditto_errors_total",
            "tributary_ditto_state",
        ],
    ),
    (
        "mirror",
        &[
            "tributary_mirror_messages_total",
            "tributary_mirror_bytes_total",
            "tributary_mirror_lag_messages",
            "tributary_mirror_last_active_seconds",
            "tributary_mirror_errors_total",
            "tributary_mirror_state",
        ],
    ),
    (
        "process",
        &[
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
        ],
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_metric_has_series_and_help() -> Result<()> {
    let a = Cluster::builder("metrics")
        .tune_members(|m| m.admin_listen = "127.0.0.1:0".into())
        .tune_data_nodes(|d| {
            d.admin_listen = "127.0.0.1:0".into();
            d.ditto_stats_interval_ms = 500;
        })
        .start()
        .await?;
    let b = Cluster::builder("metrics-target")
        .insecure()
        .start()
        .await?;
    a.wait_leader().await?;
    traffic::every_kind(&a, &b).await?;
    let ca = a.ca_pem();
    let dn = admin(&a, Server::DataNode(1))?;

    // The sampled gauges come within a few seconds (telemetry::SAMPLING_INTERVAL).
    let found = wait::until("every kind of metric on /metrics", wait::WAIT, || async {
        let s = scrape(dn, &ca).await.ok()?;
        missing(&s).is_empty().then_some(s)
    })
    .await;
    let s = match found {
        Ok(s) => s,
        Err(e) => {
            let last = scrape(dn, &ca).await?;
            return Err(e.context(format!("still missing: {:?}", missing(&last))));
        }
    };

    // gRPC calls by service, method and code, the failing one included, with buckets.
    let info = [("service", "tributary.v1.Streams"), ("method", "Info")];
    ensure!(
        s.has(
            "tributary_grpc_requests_total",
            &[info[0], info[1], ("code", "NotFound")]
        ),
        "the failed Streams/Info call is not counted as NotFound"
    );
    // Streaming calls are counted once they end: the ingest and the publish streams have.
    for (service, method) in [
        ("tributary.v1.Ingest", "Write"),
        ("tributary.v1.Streams", "PublishStream"),
    ] {
        let call = [("service", service), ("method", method), ("code", "OK")];
        ensure!(
            s.has("tributary_grpc_requests_total", &call),
            "no successful {service}/{method} counted in {:?}",
            s.samples
                .iter()
                .filter(|(f, _, _)| f == "tributary_grpc_requests_total")
                .collect::<Vec<_>>()
        );
    }
    ensure!(
        s.has(
            "tributary_grpc_request_duration_seconds",
            &[("le", "0.0001")]
        ) && s.has("tributary_grpc_request_duration_seconds", &[("le", "10")]),
        "the latency histogram lacks its 100 µs to 10 s buckets"
    );
    // The catalogue's group leads at term ≥ 1; the links carried the traffic.
    let term = s.value("tributary_raft_term", &[("group", "catalogue")]);
    ensure!(term.is_some_and(|t| t >= 1.0), "catalogue term {term:?}");
    // Links are labelled with canonical names (`namespace:name`).
    let (mirror, origin) = (
        format!("default:{}", traffic::MIRROR),
        format!("default:{}", traffic::STREAM),
    );
    let copied = s.value(
        "tributary_mirror_messages_total",
        &[("stream", &mirror), ("origin", &origin)],
    );
    ensure!(
        copied == Some(200.0),
        "mirror messages counted: {copied:?} in {:?}",
        s.samples
            .iter()
            .filter(|(f, _, _)| f.starts_with("tributary_mirror"))
            .collect::<Vec<_>>()
    );
    ensure!(
        s.has(
            "tributary_mirror_state",
            &[("stream", &mirror), ("state", "active")]
        ),
        "the mirror link has no state"
    );
    ensure!(
        s.has("tributary_rocksdb_sst_files_bytes", &[("cf", "streams")]),
        "no RocksDB figures for the streams column family"
    );
    let rss = s.value("process_resident_memory_bytes", &[]);
    ensure!(rss.is_some_and(|v| v > 0.0), "RSS {rss:?}");

    // Every series the servers export is described.
    let undescribed: BTreeSet<&String> = s
        .samples
        .iter()
        .map(|(f, _, _)| f)
        .filter(|f| f.starts_with("tributary_") || f.starts_with("process_"))
        .filter(|f| !s.described.contains(*f))
        .collect();
    ensure!(undescribed.is_empty(), "no HELP for {undescribed:?}");

    // The member's listener serves the same registry (one process here).
    let member = scrape(admin(&a, Server::Member(1))?, &ca).await?;
    ensure!(member.has("tributary_raft_term", &[("group", "catalogue")]));
    Ok(())
}

/// The expected families a scrape lacks, by kind.
fn missing(s: &Scrape) -> Vec<String> {
    EXPECTED
        .iter()
        .flat_map(|(kind, names)| names.iter().map(move |n| (kind, n)))
        .filter(|(_, n)| !s.has(n, &[]))
        .map(|(kind, n)| format!("{kind}: {n}"))
        .collect()
}
