//! `tribctl dev up`: plan the cluster, check its ports, start the processes, record them, and
//! wait until it can take work. A start that fails stops what it started.

use super::args::{duration_arg, UpArgs};
use super::record::{Layout, Process, Record, Role};
use super::status;
use crate::client::ControlPlane;
use crate::launcher::pid::{self, Pid};
use crate::launcher::plan::{ClusterPlan, Ports};
use crate::launcher::processes;
use crate::launcher::ready::{self, DataNodes};
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::process::Child;
use std::time::Duration;

pub async fn run(args: UpArgs, json: bool) -> Result<()> {
    let dir = args.dir.resolve();
    let timeout = duration_arg("timeout", &args.timeout)?;
    let layout = Layout {
        members: args.members,
        data_nodes: args.data_nodes,
        base_port: args.base_port,
    };
    let plan = ClusterPlan::new(
        &dir,
        &Ports::from_base(args.base_port, args.members, args.data_nodes)?,
    );
    refuse_a_running_or_other_cluster(&dir, layout)?;
    let bins = processes::find_binaries()?;
    let mut commands = Vec::new();
    for m in &plan.members {
        let cmd = processes::member_command(&bins.control_plane, m)?;
        commands.push((m.name.clone(), Role::Member, m.config.id, cmd));
    }
    for d in &plan.data_nodes {
        let cmd = processes::data_node_command(&bins.data_node, d)?;
        commands.push((d.name.clone(), Role::DataNode, d.config.id, cmd));
    }
    check_ports(&plan)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let mut record = Record {
        layout,
        server: plan.servers(),
        processes: Vec::new(),
    };
    let mut children = Vec::new();
    let addrs = plan
        .members
        .iter()
        .map(|m| (&m.config.listen, &m.config.admin_listen, &m.config.data_dir))
        .chain(
            plan.data_nodes
                .iter()
                .map(|d| (&d.config.listen, &d.config.admin_listen, &d.config.data_dir)),
        );
    for ((name, role, id, cmd), (addr, admin, data_dir)) in commands.into_iter().zip(addrs) {
        let log = dir.join(format!("{name}.log"));
        let child = match processes::spawn(&cmd, &log) {
            Ok(c) => c,
            Err(e) => {
                stop_started(&record).await;
                return Err(e.context(format!("starting {name}")));
            }
        };
        record.processes.push(Process {
            name,
            role,
            id,
            pid: Pid::of(child.id()),
            addr: addr.clone(),
            admin: admin.clone(),
            data_dir: data_dir.clone(),
            log,
        });
        children.push(child);
        // Recorded after every start, so `down` finds whatever is running even if this fails.
        record.save(&dir)?;
    }

    let spinner = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})")?);
    spinner.enable_steady_tick(Duration::from_millis(100));
    let cp = ControlPlane::new(&record.server)?;
    let waited = ready::wait(
        &cp,
        plan.data_nodes.len(),
        DataNodes::Up,
        timeout,
        |m| spinner.set_message(m.to_string()),
        || exited(&record, &mut children),
    )
    .await;
    spinner.finish_and_clear();
    let status = match waited {
        Ok(s) => s,
        Err(e) => {
            stop_started(&record).await;
            return Err(e.context(format!(
                "the dev cluster did not come up; stopped what was started (logs in {})",
                dir.display()
            )));
        }
    };
    // The children run on after tribctl exits; dropping a Child neither waits nor kills.
    drop(children);
    eprintln!(
        "warning: this dev cluster is insecure: cleartext gRPC and no authentication, on \
         127.0.0.1 only"
    );
    if json {
        return status::print_json(&dir, &record, Some(&status));
    }
    println!(
        "started {} members and {} data nodes in {}",
        plan.members.len(),
        plan.data_nodes.len(),
        dir.display()
    );
    status::print_processes(&record);
    crate::cluster_cmds::print_status(&status);
    println!("stop it with: tribctl dev down --dir {}", dir.display());
    println!("export TRIBUTARY_SERVER={}", record.server);
    Ok(())
}

/// A running cluster in `dir` is reported, not doubled; a stopped one is started again only
/// with the layout its data was made with.
fn refuse_a_running_or_other_cluster(dir: &Path, layout: Layout) -> Result<()> {
    let Some(old) = Record::load(dir)? else {
        return Ok(());
    };
    let running = old.running();
    if !running.is_empty() {
        let list: Vec<String> = running
            .iter()
            .map(|p| format!("{} pid {}", p.name, p.pid.pid))
            .collect();
        bail!(
            "a dev cluster is already running in {} ({}); `tribctl dev status --dir {0}` shows \
             it, `tribctl dev down --dir {0}` stops it",
            dir.display(),
            list.join(", ")
        );
    }
    if old.layout != layout {
        let o = old.layout;
        bail!(
            "{} holds a stopped dev cluster of {} members and {} data nodes on base port {}: \
             start it with --members {} --data-nodes {} --base-port {}, or remove it with \
             `tribctl dev down --purge --dir {0}`",
            dir.display(),
            o.members,
            o.data_nodes,
            o.base_port,
            o.members,
            o.data_nodes,
            o.base_port
        );
    }
    Ok(())
}

/// Every planned port must be free now; the error names the port and the way out.
fn check_ports(plan: &ClusterPlan) -> Result<()> {
    for (addr, name) in plan.fixed_addrs() {
        if let Err(e) = std::net::TcpListener::bind(&addr) {
            bail!(
                "port {} ({name}) is not free on 127.0.0.1: {e}; pick other ports with \
                 --base-port",
                addr.rsplit(':').next().unwrap_or(&addr)
            );
        }
    }
    Ok(())
}

/// A server that exited while the cluster comes up ends the wait, with its log's last lines.
fn exited(record: &Record, children: &mut [Child]) -> Result<()> {
    for (p, c) in record.processes.iter().zip(children.iter_mut()) {
        if let Some(status) = c.try_wait().context("checking a server process")? {
            return Err(anyhow!(
                "{} (pid {}) exited during start-up ({status}); the end of {}:\n{}",
                p.name,
                p.pid.pid,
                p.log.display(),
                tail(&p.log, 10)
            ));
        }
    }
    Ok(())
}

fn tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

async fn stop_started(record: &Record) {
    let pids: Vec<Pid> = record.processes.iter().map(|p| p.pid).collect();
    pid::stop_all(&pids, Duration::from_secs(5)).await;
}
