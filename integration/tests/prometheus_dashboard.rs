//! The Grafana dashboard against a real Prometheus (Debian's `/usr/bin/prometheus`) scraping
//! a running cluster's admin listeners over TLS, as `deploy/prometheus` does: every
//! expression of `deploy/grafana/dashboards/tributary.json` returns series, and every metric
//! it names is one the servers describe.
//!
//! The members and data nodes run as real processes, so each scrape is one server's own
//! registry; the ditto target cluster runs in-process. Prometheus is installed with apt-get
//! when missing and this runs as root on Debian (`cargo xtask setup` does it too); the test
//! is skipped, saying why, only when it cannot be.

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tributary_integration::{traffic, wait, Cluster, Server};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/grafana/dashboards/tributary.json"
);
/// How long every expression has to return series (scrapes every second).
const EXPRESSIONS_DEADLINE: Duration = Duration::from_secs(60);

/// `/usr/bin/prometheus`, installed from Debian's packages if missing and possible.
fn prometheus_binary() -> Option<PathBuf> {
    let bin = Path::new(PROMETHEUS);
    if bin.exists() {
        return Some(bin.to_path_buf());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root || !Path::new("/usr/bin/apt-get").exists() {
        return None;
    }
    let installed = Command::new("apt-get")
        .args([
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "prometheus",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    (installed && bin.exists()).then(|| bin.to_path_buf())
}

/// A running Prometheus; dropping it kills it.
struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Prometheus on a port picked just before (it cannot report a port 0 it bound: an
/// external binary, so the one place a port is picked and released); once more on another
/// port if it exits before answering (the port was taken meanwhile).
async fn start_prometheus(bin: &Path, dir: &Path) -> Result<Prometheus> {
    let mut last = None;
    for attempt in 0..2 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(dir.join(format!("prometheus-{attempt}.log")))?;
        let child = Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join(format!("tsdb-{attempt}")).display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let mut p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let ready = wait::until("prometheus to be ready", wait::WAIT, || {
            let exited = p.child.try_wait();
            let url = format!("{}/-/ready", p.url);
            async move {
                match exited {
                    Ok(Some(status)) => Some(Err(anyhow!("prometheus exited: {status}"))),
                    Err(e) => Some(Err(anyhow!("prometheus: {e}"))),
                    Ok(None) => {
                        let r = reqwest::get(&url).await.ok()?;
                        r.status().is_success().then_some(Ok(()))
                    }
                }
            }
        })
        .await
        .and_then(|r| r);
        match ready {
            Ok(()) => return Ok(p),
            Err(e) => {
                let log = std::fs::read_to_string(dir.join(format!("prometheus-{attempt}.log")))
                    .unwrap_or_default();
                last = Some(e.context(log));
            }
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("prometheus did not start")))
}

/// `prometheus.yml` scraping every admin listener of `c` each second over TLS, trusting the
/// cluster's CA (the admin listener asks for no client certificate).
fn write_config(c: &Cluster, dir: &Path) -> Result<()> {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, c.ca_pem())?;
    let targets = |servers: Vec<Server>| -> Result<String> {
        let addrs = servers
            .into_iter()
            .map(|s| {
                let a = c
                    .addrs(s)?
                    .admin
                    .ok_or_else(|| anyhow!("{s:?} has no admin listener"))?;
                Ok(format!("\"{a}\""))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(addrs.join(", "))
    };
    let members = targets(c.member_ids().into_iter().map(Server::Member).collect())?;
    let nodes = targets(
        c.data_node_ids()
            .into_iter()
            .map(Server::DataNode)
            .collect(),
    )?;
    let ca = ca.display();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n\
             \x20 - job_name: control-plane\n    scheme: https\n    tls_config: {{ ca_file: {ca} }}\n\
             \x20   static_configs:\n      - targets: [{members}]\n\
             \x20 - job_name: data-node\n    scheme: https\n    tls_config: {{ ca_file: {ca} }}\n\
             \x20   static_configs:\n      - targets: [{nodes}]\n"
        ),
    )?;
    Ok(())
}

/// Every `expr` of the dashboard, wherever it sits (rows may nest panels).
fn expressions(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => expressions(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| expressions(x, out)),
        _ => {}
    }
}

/// The expression as Grafana sends it with the variables at their widest.
fn substituted(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__range", "1h")
        .replace("$instance", ".*")
}

/// The metric names an expression reads (histograms by their family name).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_') {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let word = &tail[..end];
        if word.starts_with("tributary_") || word.starts_with("process_") {
            out.insert(word.strip_suffix("_bucket").unwrap_or(word).to_string());
        }
        rest = &tail[end..];
    }
    out
}

/// Series an instant query returns.
async fn series(prometheus: &str, expr: &str) -> Result<usize> {
    let body = reqwest::Client::new()
        .get(format!("{prometheus}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await?
        .text()
        .await?;
    let r: Value = serde_json::from_str(&body)?;
    if r["status"] != "success" {
        bail!("{expr}: {r}");
    }
    Ok(r["data"]["result"].as_array().map_or(0, Vec::len))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_expression_returns_series_from_a_real_prometheus() -> Result<()> {
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(DASHBOARD)?)?;
    let mut exprs = Vec::new();
    expressions(&dashboard, &mut exprs);
    ensure!(
        exprs.len() >= 20,
        "only {} expressions in the dashboard",
        exprs.len()
    );
    // Every name the dashboard reads is one the servers describe.
    let known: BTreeSet<&str> = [
        tributary_common::telemetry::names::COMMON,
        tributary_control_plane::metric_names::CONTROL_PLANE,
        tributary_data_node::metric_names::DATA_NODE,
    ]
    .iter()
    .flat_map(|l| l.iter().map(|m| m.name))
    .collect();
    for e in &exprs {
        for n in metric_names(e) {
            ensure!(
                known.contains(n.as_str()),
                "the dashboard reads {n}, which no server describes ({e})"
            );
        }
    }
    let Some(bin) = prometheus_binary() else {
        eprintln!(
            "SKIPPED: {PROMETHEUS} is missing and cannot be installed here (not root, or no \
             apt-get): `apt-get install prometheus` or `cargo xtask setup` as root"
        );
        return Ok(());
    };

    let a = Cluster::builder("dash")
        .member_processes()
        .data_node_processes()
        .tune_members(|m| m.admin_listen = "127.0.0.1:0".into())
        .tune_data_nodes(|d| {
            d.admin_listen = "127.0.0.1:0".into();
            d.ditto_stats_interval_ms = 500;
        })
        .start()
        .await?;
    let b = Cluster::builder("dash-target").insecure().start().await?;
    a.wait_leader().await?;
    traffic::every_kind(&a, &b).await?;

    let dir = tempfile::tempdir()?;
    write_config(&a, dir.path())?;
    let prometheus = start_prometheus(&bin, dir.path()).await?;
    let url = prometheus.url.clone();

    // Every target is scraped (TLS with the cluster CA works) ...
    let targets = a.member_ids().len() + a.data_node_ids().len();
    wait::until(
        "every admin listener scraped and up",
        wait::WAIT,
        || async { (series(&url, "up == 1").await.ok()? == targets).then_some(()) },
    )
    .await?;
    // ... and every expression returns series.
    let pending = tokio::sync::Mutex::new(exprs.iter().map(|e| substituted(e)).collect::<Vec<_>>());
    let all = wait::until(
        "every dashboard expression to return series",
        EXPRESSIONS_DEADLINE,
        || async {
            let mut pending = pending.lock().await;
            let mut still = Vec::new();
            for e in pending.drain(..) {
                match series(&url, &e).await {
                    Ok(n) if n > 0 => {}
                    Ok(_) => still.push(e),
                    Err(err) => {
                        return Some(Err(err.context("prometheus refused a dashboard expression")))
                    }
                }
            }
            *pending = still;
            pending.is_empty().then_some(Ok(()))
        },
    )
    .await;
    if let Err(e) = all.and_then(|r| r) {
        let pending = pending.lock().await;
        bail!(
            "{e}: {} of {} expressions return no series:\n{}",
            pending.len(),
            exprs.len(),
            pending.join("\n")
        );
    }
    drop(prometheus);
    Ok(())
}

#[test]
fn metric_names_are_read_from_expressions() {
    let e = "histogram_quantile(0.99, sum by (le) (rate(tributary_grpc_request_duration_seconds_bucket{instance=~\"$instance\"}[$__rate_interval])))";
    assert_eq!(
        metric_names(e),
        BTreeSet::from(["tributary_grpc_request_duration_seconds".to_string()])
    );
    assert_eq!(substituted("rate(x[$__rate_interval])"), "rate(x[1m])");
}
