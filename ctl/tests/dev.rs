//! `tribctl dev` as an operator runs it: real server processes come up, the printed
//! TRIBUTARY_SERVER reaches a cluster that takes a stream and a publish, a second `up` is
//! refused, and `down` leaves none of the recorded processes running.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use tributary_integration::wait;

const TRIBCTL: &str = env!("CARGO_BIN_EXE_tribctl");

fn tribctl(args: &[&str]) -> Output {
    std::process::Command::new(TRIBCTL)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env_remove("TRIBUTARY_SERVER")
        .env_remove("TRIBUTARY_STREAM_SECRET")
        .output()
        .expect("run tribctl")
}

async fn tribctl_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tribctl(&args)
    })
    .await
    .expect("join")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// Stops the cluster however the test ends, so a failure leaves no servers behind.
struct DownOnDrop(PathBuf);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        let dir = self.0.display().to_string();
        let _ = tribctl(&["dev", "down", "--dir", &dir]);
    }
}

/// Whether `pid` still runs (a zombie waiting to be reaped has exited).
fn running(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next());
        !matches!(state, Some("Z") | Some("X"))
    })
}

fn recorded_pids(dir: &Path) -> anyhow::Result<Vec<u64>> {
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("dev.json"))?)?;
    Ok(record["processes"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["pid"].as_u64()).collect())
        .unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_up_serves_streams_and_down_stops_every_process() -> anyhow::Result<()> {
    let exe_dir = Path::new(TRIBCTL)
        .parent()
        .expect("tribctl has a directory");
    for bin in ["tributary-control-plane", "tributary-data-node"] {
        anyhow::ensure!(
            exe_dir.join(bin).is_file(),
            "{bin} is not built beside tribctl (cargo build --workspace)"
        );
    }
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("dev");
    let dir_s = dir.display().to_string();
    // Below the ephemeral range, so ports other tests' servers bound at 0 do not clash;
    // per process, so parallel runs of this test do not either.
    let base = (20_000 + (std::process::id() % 1_000) * 10).to_string();
    let _down = DownOnDrop(dir.clone());

    let up = [
        "dev",
        "up",
        "--members",
        "3",
        "--data-nodes",
        "2",
        "--base-port",
        &base,
        "--dir",
        &dir_s,
    ];
    let out = tribctl(&up);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("insecure"),
        "{}",
        text(&out.stderr)
    );
    let server = stdout
        .lines()
        .find_map(|l| l.strip_prefix("export TRIBUTARY_SERVER="))
        .unwrap_or_else(|| panic!("no TRIBUTARY_SERVER line in:\n{stdout}"))
        .to_string();
    assert_eq!(server.split(',').count(), 3, "{server}");

    let again = tribctl(&up);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("already running"),
        "{}",
        text(&again.stderr)
    );

    let out = tribctl(&["--server", &server, "--json", "cluster", "status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert!(status["leader"].as_u64().is_some_and(|l| l > 0), "{status}");
    assert_eq!(status["members"].as_array().map(Vec::len), Some(3));
    let nodes = status["data_nodes"].as_array().expect("data_nodes[]");
    assert_eq!(nodes.len(), 2, "{status}");
    assert!(nodes.iter().all(|n| n["up"] == true), "{status}");

    let out = tribctl(&[
        "--server",
        &server,
        "stream",
        "create",
        "ORDERS",
        "--subjects",
        "ORDERS.>",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The owning data node learns of the stream through its catalogue watch.
    let cmd = |args: &[&str]| -> Vec<String> {
        ["--server", server.as_str()]
            .iter()
            .chain(args)
            .map(|s| s.to_string())
            .collect()
    };
    let publish = cmd(&["stream", "publish", "ORDERS.new", "hello"]);
    wait::until("a publish to ORDERS", Duration::from_secs(20), || async {
        tribctl_async(publish.clone())
            .await
            .status
            .success()
            .then_some(())
    })
    .await?;
    let out = tribctl_async(cmd(&["--json", "stream", "info", "ORDERS"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(info["state"]["messages"], 1, "{info}");

    let out = tribctl(&["--json", "dev", "status", "--dir", &dir_s]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let procs = st["processes"].as_array().expect("processes[]");
    assert_eq!(procs.len(), 5);
    assert!(procs.iter().all(|p| p["alive"] == true), "{st}");
    assert_eq!(st["server"], server.as_str());

    let pids = recorded_pids(&dir)?;
    assert_eq!(pids.len(), 5);
    assert!(pids.iter().all(|p| running(*p)));
    let out = tribctl(&["dev", "down", "--dir", &dir_s]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).matches("stopped ").count(),
        5,
        "{}",
        text(&out.stdout)
    );
    let still: Vec<u64> = pids.into_iter().filter(|p| running(*p)).collect();
    assert!(still.is_empty(), "still running after down: {still:?}");
    Ok(())
}
