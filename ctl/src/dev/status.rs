//! `tribctl dev status`: the recorded processes and, while a member answers, the cluster.

use super::record::{Process, Record, Role};
use crate::client::ControlPlane;
use crate::output;
use anyhow::Result;
use std::path::Path;
use tributary_proto::v1::{StatusReply, StatusRequest};

pub async fn run(dir: &Path, json: bool) -> Result<()> {
    let record = Record::require(dir)?;
    let cluster = if record.running().iter().any(|p| p.role == Role::Member) {
        ControlPlane::new(&record.server)?
            .cluster(|mut c| async move { c.status(StatusRequest {}).await })
            .await
            .map_err(|s| s.message().to_string())
    } else {
        Err("no member is running".into())
    };
    if json {
        return print_json(dir, &record, cluster.as_ref().ok());
    }
    println!("dev cluster in {}", dir.display());
    print_processes(&record);
    match cluster {
        Ok(s) => crate::cluster_cmds::print_status(&s),
        Err(why) => println!("cluster status: {why}"),
    }
    let running = record.running().len();
    if running == record.processes.len() {
        println!("export TRIBUTARY_SERVER={}", record.server);
    } else {
        println!(
            "{running} of {} processes running; `tribctl dev down --dir {}` stops the rest",
            record.processes.len(),
            dir.display()
        );
    }
    Ok(())
}

fn role(p: &Process) -> &'static str {
    match p.role {
        Role::Member => "member",
        Role::DataNode => "data node",
    }
}

pub fn print_processes(record: &Record) {
    let rows = record
        .processes
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                role(p).into(),
                p.pid.pid.to_string(),
                if p.pid.is_alive() {
                    "running"
                } else {
                    "exited"
                }
                .into(),
                p.addr.clone(),
                p.admin.clone(),
                p.log.display().to_string(),
            ]
        })
        .collect();
    println!(
        "{}",
        output::table(
            &["name", "role", "pid", "state", "address", "admin", "log"],
            rows
        )
    );
}

pub fn print_json(dir: &Path, record: &Record, cluster: Option<&StatusReply>) -> Result<()> {
    let processes: Vec<serde_json::Value> = record
        .processes
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "role": p.role,
                "id": p.id,
                "pid": p.pid.pid,
                "alive": p.pid.is_alive(),
                "addr": p.addr,
                "admin": p.admin,
                "data_dir": p.data_dir,
                "log": p.log,
            })
        })
        .collect();
    output::json(&serde_json::json!({
        "dir": dir,
        "server": record.server,
        "processes": processes,
        "cluster": cluster,
    }))
}
