//! `tribctl demo`: the showcase on an embedded default, all in this process on loopback.

use crate::catalog_cmds::{EntityArgs, StreamArgs, TargetArgs, WellArgs};
use crate::client::ControlPlane;
use crate::cluster_cmds::print_status;
use crate::output;
use anyhow::{anyhow, Context, Result};
use std::time::{Duration, Instant};
use tributary_control_plane::{ControlPlaneConfig, RunningControlPlane};
use tributary_proto::v1::{
    entity::Kind, Entity, EntityKind, EntityRef, ListRequest, Permission, Policy, PolicyEntry,
    PolicyResource, StatusRequest, Stream, Target, Well,
};

/// Starts an in-process control plane of `n` members on 127.0.0.1 under `dir`.
pub async fn start_control_plane(
    n: u64,
    dir: &std::path::Path,
) -> Result<Vec<RunningControlPlane>> {
    let mut listeners = Vec::new();
    for _ in 0..n {
        listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await?);
    }
    let peers = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| Ok(format!("{}={}", i + 1, l.local_addr()?)))
        .collect::<Result<Vec<_>>>()?
        .join(",");
    let mut members = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let id = i as u64 + 1;
        let config = ControlPlaneConfig {
            id,
            listen: l.local_addr()?.to_string(),
            peers: peers.clone(),
            data_dir: dir.join(format!("cp-{id}")),
            admin_listen: String::new(),
            ..Default::default()
        };
        members.push(tributary_control_plane::start_on(config, l, Default::default()).await?);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    members[0]
        .node
        .wait_leader(deadline)
        .await
        .ok_or_else(|| anyhow!("no leader elected within 10 s"))?;
    Ok(members)
}

async fn print_list<A: EntityArgs>(cp: &ControlPlane, label: &str) -> Result<()> {
    let req = ListRequest {
        kind: A::KIND as i32,
        namespace: String::new(),
    };
    let r = cp
        .catalog(|mut c| {
            let q = req.clone();
            async move { c.list(q).await }
        })
        .await?;
    println!(
        "{label}:\n{}",
        output::table(A::header(), r.entities.iter().map(A::row).collect())
    );
    Ok(())
}

fn step(title: &str) {
    println!("\n== {title}");
}

pub async fn run(json: bool) -> Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    step("starting a 3-member control plane on 127.0.0.1 (raft-rs, RocksDB)");
    let members = start_control_plane(3, dir.path()).await?;
    let addrs: Vec<String> = members.iter().map(|m| m.addr.to_string()).collect();
    println!("members: {}", addrs.join(", "));
    // Talk to a follower on purpose: it forwards writes to the leader.
    let cp = ControlPlane::new(&addrs.join(","))?;

    step("creating catalogue entries (any member accepts writes)");
    let policy = Entity {
        kind: Some(Kind::Policy(Policy {
            name: "acme:ops".into(),
            entries: vec![PolicyEntry {
                label: "operators".into(),
                subjects: vec!["oidc:ops-team".into()],
                resources: vec![PolicyResource {
                    resource: "well:/acme:*".into(),
                    grant: vec![Permission::Read as i32, Permission::Write as i32],
                    revoke: vec![],
                }],
            }],
        })),
    };
    let target = Entity {
        kind: Some(Kind::Target(Target {
            name: "acme:dr-site".into(),
            cleartext_endpoints: vec!["127.0.0.1:4023".into()],
            ingest_secret: "s3cret".into(),
            policy: "acme:ops".into(),
            ..Default::default()
        })),
    };
    let well = Entity {
        kind: Some(Kind::Well(Well {
            name: "acme:orders".into(),
            tags: vec!["orders".into(), "payments".into()],
            ditto_targets: vec!["acme:dr-site".into()],
            policy: "acme:ops".into(),
            ..Default::default()
        })),
    };
    let stream = Entity {
        kind: Some(Kind::Stream(Stream {
            name: "acme:ORDERS".into(),
            subjects: vec!["ORDERS.>".into()],
            ..Default::default()
        })),
    };
    for e in [policy, target, well, stream] {
        let r = cp
            .catalog(|mut c| {
                let e = e.clone();
                async move { c.create(e).await }
            })
            .await?;
        let name = r
            .entity
            .as_ref()
            .map(tributary_control_plane::catalog::entity::name_of)
            .unwrap_or_default();
        println!("created {name:<16} revision {}", r.revision);
    }

    step("a bad request is refused and changes nothing");
    let bad = Entity {
        kind: Some(Kind::Stream(Stream {
            name: "acme:BAD".into(),
            subjects: vec!["ORDERS.new".into()],
            ..Default::default()
        })),
    };
    match cp
        .catalog(|mut c| {
            let e = bad.clone();
            async move { c.create(e).await }
        })
        .await
    {
        Err(s) => println!("refused ({:?}): {}", s.code(), s.message()),
        Ok(_) => return Err(anyhow!("an overlapping stream was accepted")),
    }

    step("listing (secrets come back redacted)");
    print_list::<WellArgs>(&cp, "wells").await?;
    print_list::<TargetArgs>(&cp, "targets").await?;
    print_list::<StreamArgs>(&cp, "streams").await?;
    let req = ListRequest {
        kind: EntityKind::Tag as i32,
        namespace: String::new(),
    };
    let tags = cp
        .catalog(|mut c| {
            let q = req.clone();
            async move { c.list(q).await }
        })
        .await?;
    let rows = tags
        .entities
        .iter()
        .filter_map(|e| match &e.kind {
            Some(Kind::Tag(t)) => Some(vec![t.name.clone(), t.id.to_string()]),
            _ => None,
        })
        .collect();
    println!(
        "tags (cluster-wide ids):\n{}",
        output::table(&["tag", "id"], rows)
    );

    step("deleting the stream");
    let r = cp
        .catalog(|mut c| async move {
            c.delete(EntityRef {
                kind: EntityKind::Stream as i32,
                name: "acme:ORDERS".into(),
            })
            .await
        })
        .await?;
    println!("deleted acme:ORDERS at revision {}", r.revision);

    step("cluster status");
    let status = cp
        .cluster(|mut c| async move { c.status(StatusRequest {}).await })
        .await?;
    if json {
        output::json(&status)?;
    } else {
        print_status(&status);
    }
    for m in members {
        m.shutdown().await;
    }
    Ok(())
}
