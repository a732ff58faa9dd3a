//! `tribctl cluster status|add-member|remove-member`.

use crate::client::ControlPlane;
use crate::launcher::ready::{self, DataNodes};
use crate::output;
use anyhow::{anyhow, Result};
use clap::Subcommand;
use tributary_common::duration;
use tributary_proto::v1::{EntityKind, MemberRequest, MemberStatus, StatusReply, StatusRequest};

#[derive(Subcommand)]
pub enum ClusterCmd {
    /// Members (role, term, commit, applied) and data nodes (up/down, what they own).
    Status,
    /// Add a voter: ID and its HOST:PORT. Start that member first with --peers naming the others.
    AddMember { id: u64, addr: String },
    /// Remove a voter (refused if the rest could not form a quorum).
    RemoveMember { id: u64 },
    /// Wait until a leader is elected and --data-nodes data nodes are up, then show the
    /// status (for scripts that start a cluster).
    Wait {
        /// How many data nodes must be registered and heartbeating.
        #[arg(long, default_value_t = 0)]
        data_nodes: usize,
        /// Give up after this long (`30s`, `2m`).
        #[arg(long, default_value = "30s")]
        timeout: String,
    },
}

pub async fn run(cmd: ClusterCmd, cp: &ControlPlane, json: bool) -> Result<()> {
    match cmd {
        ClusterCmd::Status => {
            let s = cp
                .cluster(|mut c| async move { c.status(StatusRequest {}).await })
                .await?;
            if json {
                return output::json(&s);
            }
            print_status(&s);
        }
        ClusterCmd::AddMember { id, addr } => {
            let req = MemberRequest {
                id,
                addr,
                ..Default::default()
            };
            let r = cp
                .cluster(|mut c| {
                    let q = req.clone();
                    async move { c.add_member(q).await }
                })
                .await?;
            print_members(json, &r.members)?;
        }
        ClusterCmd::Wait {
            data_nodes,
            timeout,
        } => {
            let timeout = duration::parse(&timeout).map_err(|e| anyhow!("--timeout: {e}"))?;
            let s = ready::wait(cp, data_nodes, DataNodes::Up, timeout, |_| {}, || Ok(())).await?;
            if json {
                return output::json(&s);
            }
            print_status(&s);
        }
        ClusterCmd::RemoveMember { id } => {
            let req = MemberRequest {
                id,
                ..Default::default()
            };
            let r = cp
                .cluster(|mut c| {
                    let q = req.clone();
                    async move { c.remove_member(q).await }
                })
                .await?;
            print_members(json, &r.members)?;
        }
    }
    Ok(())
}

fn print_members(json: bool, members: &[MemberStatus]) -> Result<()> {
    if json {
        return output::json(&serde_json::json!({ "members": members }));
    }
    println!("{}", members_table(members));
    Ok(())
}

fn members_table(members: &[MemberStatus]) -> comfy_table::Table {
    output::table(
        &[
            "member",
            "address",
            "role",
            "term",
            "commit",
            "applied",
            "reachable",
        ],
        members
            .iter()
            .map(|m| {
                vec![
                    m.id.to_string(),
                    m.addr.clone(),
                    m.role.clone(),
                    m.term.to_string(),
                    m.commit.to_string(),
                    m.applied.to_string(),
                    if m.reachable { "yes" } else { "no" }.into(),
                ]
            })
            .collect(),
    )
}

pub fn print_status(s: &StatusReply) {
    println!(
        "leader {}  term {}  revision {}",
        s.leader, s.term, s.revision
    );
    println!("{}", members_table(&s.members));
    if s.data_nodes.is_empty() {
        println!("no data nodes registered");
        return;
    }
    let rows = s
        .data_nodes
        .iter()
        .map(|d| {
            vec![
                d.id.to_string(),
                d.addr.clone(),
                if d.up { "up" } else { "down" }.into(),
                if d.last_heartbeat_ms_ago == u64::MAX {
                    "never".into()
                } else {
                    format!("{} ms ago", d.last_heartbeat_ms_ago)
                },
                d.wells.join(","),
                d.streams.join(","),
            ]
        })
        .collect();
    println!(
        "{}",
        output::table(
            &[
                "data node",
                "address",
                "state",
                "heartbeat",
                "wells",
                "streams"
            ],
            rows
        )
    );
    // What a node owns but cannot serve (an entity it cannot open, say), as it reports it.
    for d in &s.data_nodes {
        for st in d.stats.iter().filter(|st| !st.error.is_empty()) {
            let kind = match EntityKind::try_from(st.kind) {
                Ok(EntityKind::Well) => "well",
                Ok(EntityKind::Stream) => "stream",
                _ => "entity",
            };
            println!("data node {}: {kind} {}: {}", d.id, st.name, st.error);
        }
    }
}
