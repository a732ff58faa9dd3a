//! A member's status page as a person sees it, in headless Chromium (Debian's `chromium`;
//! `cargo xtask setup` installs it, `CHROMIUM` names another): the reference scenario's four
//! streams and a ditto edge are drawn, and an edge's lag label changes while a publisher
//! runs (the page's script refetches the SVG every 3 s). The clusters are `insecure`, so the
//! admin listener speaks cleartext and the harness's anonymous admin may look; the TLS test
//! below shows the page needs credentials where callers must authenticate.

use anyhow::{anyhow, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tributary_integration::admin_http::Admin;
use tributary_integration::{scenario, wait, Cluster, Mode, Server};

fn chromium() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser", "google-chrome"].map(|n| d.join(n)))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!("no headless Chromium: `cargo xtask setup` installs Debian's chromium, or set CHROMIUM")
        })
}

/// Runs headless Chromium on `url` with `extra` (`--dump-dom`, `--screenshot=…`), giving the
/// page's script 4 s of virtual time; its stdout.
async fn chromium_run(url: &str, profile: &Path, extra: Vec<String>) -> Result<String> {
    let out = tokio::process::Command::new(chromium()?)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1400,1000",
            "--virtual-time-budget=4000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .context("chromium did not finish within 60 s")??;
    ensure!(
        out.status.success(),
        "chromium failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The text of the lag label of the edge `from` → `to` in a dumped DOM.
fn lag_label(dom: &str, from: &str, to: &str) -> Option<String> {
    let edge = dom.find(&format!(r#"data-from="{from}" data-to="{to}""#))?;
    let rest = &dom[edge..];
    let label = &rest[rest.find(r#"class="lag""#)?..];
    let text = &label[label.find('>')? + 1..];
    Some(text[..text.find('<')?].to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_draws_the_reference_scenario_and_its_lag_moves() -> Result<()> {
    let dst = Cluster::builder("dst").insecure().start().await?;
    let src = Cluster::builder("src")
        .insecure()
        .data_nodes(2)
        .tune_members(|m| m.admin_listen = "127.0.0.1:0".into())
        .start()
        .await?;
    // ARCHIVE and REPORT on data node 2: ARCHIVE copies ORDERS through the link in front of
    // data node 1, which a slow link keeps behind a busy publisher.
    scenario::create(&src, &dst, 2, 50).await?;
    src.set_links_into(Server::DataNode(1), Mode::Throttle(30_000))?;

    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (stop, addr) = (stop.clone(), src.data_addr(1)?);
        let pad = "o".repeat(300);
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tributary_integration::streams::publish_n(&addr, "ORDERS.new", &pad, 50).await?;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            anyhow::Ok(())
        })
    };

    let admin = src
        .addrs(Server::Member(1))?
        .admin
        .ok_or_else(|| anyhow!("member 1 has no admin listener"))?;
    let url = format!("http://{admin}/");
    let profile = tempfile::tempdir()?;
    let dump = || chromium_run(&url, profile.path(), vec!["--dump-dom".to_string()]);

    let first = dump().await?;
    for name in scenario::STREAMS {
        ensure!(
            first.contains(&format!(r#"data-id="{name}""#)),
            "stream {name} is not drawn:\n{first}"
        );
    }
    let ditto = format!(
        r#"data-from="well/{}" data-to="target/{}""#,
        scenario::WELL,
        scenario::TARGET
    );
    ensure!(first.contains(&ditto), "no ditto edge drawn:\n{first}");
    ensure!(
        lag_label(
            &first,
            &format!("well/{}", scenario::WELL),
            &format!("target/{}", scenario::TARGET)
        )
        .is_some_and(|l| l.starts_with("Ditto lag")),
        "the ditto edge has no lag label:\n{first}"
    );
    // The script ran and refreshed the picture from topology.svg and topology.json.
    ensure!(
        first.contains(r#"<span id="updated">updated "#),
        "the page's script did not refresh:\n{first}"
    );
    ensure!(
        first.contains("<td>leader</td>"),
        "no leader among the members:\n{first}"
    );
    let before = lag_label(&first, "ORDERS", "ARCHIVE")
        .ok_or_else(|| anyhow!("no ORDERS → ARCHIVE lag label:\n{first}"))?;
    eprintln!("ORDERS → ARCHIVE at first: {before}");

    let after = wait::until(
        "the ORDERS → ARCHIVE lag label to change",
        Duration::from_secs(120),
        || async {
            let dom = dump().await.ok()?;
            lag_label(&dom, "ORDERS", "ARCHIVE").filter(|l| *l != before)
        },
    )
    .await?;
    eprintln!("ORDERS → ARCHIVE later: {after}");

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status_page.png");
    chromium_run(
        &url,
        profile.path(),
        vec![format!("--screenshot={}", shot.display())],
    )
    .await?;
    ensure!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 0)
            .unwrap_or(false),
        "no screenshot at {}",
        shot.display()
    );
    println!("status page screenshot: {}", shot.display());

    stop.store(true, Ordering::Relaxed);
    publisher.await??;
    src.shutdown().await;
    dst.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_tls_cluster_the_page_needs_credentials_unlike_metrics() -> Result<()> {
    const TOKEN: &str = "status-page-devops-token";
    let c = Cluster::builder("statustls")
        .tune_members(|m| {
            m.admin_listen = "127.0.0.1:0".into();
            m.auth.devops_token = TOKEN.into();
        })
        .start()
        .await?;
    c.wait_leader().await?;
    let ca = c.ca_pem();
    let admin = Admin {
        addr: c
            .addrs(Server::Member(1))?
            .admin
            .ok_or_else(|| anyhow!("member 1 has no admin listener"))?,
        ca_pem: Some(&ca),
    };
    let (code, _) = admin.get("/metrics").await?;
    ensure!(code == 200, "/metrics: {code}");
    for path in ["/", "/topology.svg", "/topology.json"] {
        let (code, body) = admin.get(path).await?;
        ensure!(code == 401, "{path} without credentials: {code} {body}");
        ensure!(body.contains("credentials"), "{path}: {body}");
        let (code, _) = admin.call("GET", path, Some("not-the-token"), None).await?;
        ensure!(
            code == 401 || code == 403,
            "{path} with a wrong token: {code}"
        );
    }
    let (code, page) = admin.call("GET", "/", Some(TOKEN), None).await?;
    ensure!(
        code == 200 && page.contains("<svg"),
        "/ as the operator: {code} {page}"
    );
    let (code, json) = admin
        .json("GET", "/topology.json", Some(TOKEN), None)
        .await?;
    ensure!(code == 200, "/topology.json: {code} {json}");
    ensure!(
        json["members"][0]["role"] == "leader" && json["vertices"].is_array(),
        "{json}"
    );
    c.shutdown().await;
    Ok(())
}
