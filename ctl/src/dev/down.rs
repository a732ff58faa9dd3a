//! `tribctl dev down`: stop what `up` recorded (data nodes first, so they do not spend their
//! last seconds reconnecting to stopped members), and with --purge remove what it left.

use super::args::{duration_arg, DownArgs};
use super::record::{Record, Role, FILE};
use crate::launcher::pid::{self, Stopped};
use crate::output;
use anyhow::{bail, Context, Result};
use std::path::Path;

pub async fn run(args: DownArgs, json: bool) -> Result<()> {
    let dir = args.dir.resolve();
    let grace = duration_arg("timeout", &args.timeout)?;
    let record = Record::require(&dir)?;
    let mut report = Vec::new();
    for role in [Role::DataNode, Role::Member] {
        let group: Vec<_> = record.processes.iter().filter(|p| p.role == role).collect();
        let pids: Vec<_> = group.iter().map(|p| p.pid).collect();
        let ends = pid::stop_all(&pids, grace).await;
        report.extend(group.into_iter().zip(ends));
    }
    let stuck: Vec<String> = report
        .iter()
        .filter(|(_, e)| *e == Stopped::Stuck)
        .map(|(p, _)| format!("{} (pid {})", p.name, p.pid.pid))
        .collect();
    if !stuck.is_empty() {
        bail!("still running after SIGKILL: {}", stuck.join(", "));
    }
    if args.purge {
        purge(&dir, &record)?;
    }
    if json {
        let v: Vec<_> = report
            .iter()
            .map(|(p, e)| serde_json::json!({ "name": p.name, "pid": p.pid.pid, "ended": format!("{e:?}").to_lowercase() }))
            .collect();
        return output::json(
            &serde_json::json!({ "dir": dir, "stopped": v, "purged": args.purge }),
        );
    }
    for (p, e) in &report {
        match e {
            Stopped::Terminated => println!("stopped {} (pid {})", p.name, p.pid.pid),
            Stopped::Killed => println!(
                "killed {} (pid {}): still running {grace:?} after SIGTERM",
                p.name, p.pid.pid
            ),
            Stopped::NotRunning => println!("{} (pid {}) was not running", p.name, p.pid.pid),
            Stopped::Stuck => {}
        }
    }
    if args.purge {
        println!("the dev cluster in {} is down and removed", dir.display());
    } else {
        println!(
            "the dev cluster in {} is down; its data is kept (`tribctl dev up --dir {0}` starts \
             it again, `tribctl dev down --purge --dir {0}` removes it)",
            dir.display()
        );
    }
    Ok(())
}

/// Removes only what the cluster made: each server's data dir and log, then dev.json, then
/// `dir` if nothing else is in it.
fn purge(dir: &Path, record: &Record) -> Result<()> {
    for p in &record.processes {
        if p.data_dir.starts_with(dir) && p.data_dir.exists() {
            std::fs::remove_dir_all(&p.data_dir)
                .with_context(|| format!("removing {}", p.data_dir.display()))?;
        }
        if p.log.starts_with(dir) && p.log.exists() {
            std::fs::remove_file(&p.log)
                .with_context(|| format!("removing {}", p.log.display()))?;
        }
    }
    let file = dir.join(FILE);
    std::fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
    // Only an empty directory goes: anything else in it is not ours.
    let _ = std::fs::remove_dir(dir);
    Ok(())
}
