//! `tribctl policy …`: the catalogue commands, and `policy check`, which asks a stored policy
//! what it decides for a subject, as the servers would, and which entry decided.

use crate::catalog_cmds::{self, Crud};
use crate::client::ControlPlane;
use crate::policy_args::PolicyArgs;
use crate::{locate, output};
use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use tonic::{Code, Status};
use tributary_common::policy::{self, Permission, Policy, Resource, BOOTSTRAP_POLICY};
use tributary_proto::v1::{entity::Kind, EntityKind};

#[derive(Subcommand)]
pub enum PolicyCmd {
    #[command(flatten)]
    Catalog(Box<Crud<PolicyArgs>>),
    /// Whether SUBJECT holds PERMISSION on RESOURCE under a stored policy, and the entry that
    /// decided. Exits 0 when granted, 1 when not.
    Check(CheckArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// The caller's subject, `issuer:subject` (`tls:admin`, `myprovider:alice`); several,
    /// comma-separated, for a caller with several subjects.
    subject: String,
    /// `cluster:/`, `namespace:/NS`, `well:/NS:NAME`, `stream:/…`, `target:/…`, `policy:/…`.
    resource: String,
    /// READ, WRITE or ADMIN.
    permission: String,
    /// The policy to ask (default: the cluster's, `default:cluster-admin`).
    #[arg(long)]
    policy: Option<String>,
}

/// A check that was answered "no": reported already, so only the exit code is left to set.
#[derive(Debug, thiserror::Error)]
#[error("denied")]
pub struct Denied;

pub async fn run(cmd: PolicyCmd, cp: &ControlPlane, json: bool) -> Result<()> {
    match cmd {
        PolicyCmd::Catalog(c) => match *c {
            Crud::Get { name, seq: None } if !json => show_ditto(&name, cp).await,
            c => catalog_cmds::run(c, cp, json).await,
        },
        PolicyCmd::Check(a) => check(a, cp, json).await,
    }
}

/// `policy get` for people: Ditto's policy JSON, which `policy create|update --file` takes.
async fn show_ditto(name: &str, cp: &ControlPlane) -> Result<()> {
    let Some(Kind::Policy(p)) = locate::entity(cp, EntityKind::Policy, name).await?.kind else {
        bail!("{name} is not a policy");
    };
    let policy = Policy::from_proto(&p).map_err(|e| anyhow!("policy {name} as stored: {e}"))?;
    println!("{}", policy.to_json());
    Ok(())
}

async fn check(a: CheckArgs, cp: &ControlPlane, json: bool) -> Result<()> {
    let permission = Permission::parse(&a.permission).map_err(|e| anyhow!("PERMISSION: {e}"))?;
    let resource =
        Resource::parse(&a.resource).map_err(|e| anyhow!("RESOURCE {:?}: {e}", a.resource))?;
    let subjects: Vec<String> = a
        .subject
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if subjects.is_empty() {
        bail!("SUBJECT: give an issuer:subject such as tls:admin");
    }
    for s in &subjects {
        policy::subject_id::validate(s).map_err(|e| anyhow!("SUBJECT {s:?} {e}"))?;
    }
    let name = a.policy.as_deref().unwrap_or(BOOTSTRAP_POLICY);
    let stored = match locate::entity(cp, EntityKind::Policy, name).await {
        Ok(e) => e,
        Err(e) => return Err(not_found_hint(e, name, a.policy.is_none())),
    };
    let Some(Kind::Policy(p)) = stored.kind else {
        bail!("{name} is not a policy");
    };
    let policy = Policy::from_proto(&p).map_err(|e| anyhow!("policy {name} as stored: {e}"))?;
    let d = policy::check_resource(&policy, &subjects, &resource, permission);
    if json {
        output::json(&serde_json::json!({
            "policy": policy.name(),
            "subjects": subjects,
            "resource": resource.to_string(),
            "permission": permission.as_str(),
            "allowed": d.allowed,
            "decided_by": d.decided_by,
            "reason": d.reason,
        }))?;
    } else {
        let (entry, on, effect, matched) = match &d.decided_by {
            Some(by) => (
                by.label.clone(),
                by.resource.clone(),
                by.effect.to_string(),
                by.subject.clone(),
            ),
            None => ("(none)".into(), "-".into(), "-".into(), "-".into()),
        };
        let row = |k: &str, v: String| vec![k.to_string(), v];
        let rows = vec![
            row(
                "decision",
                if d.allowed { "GRANTED" } else { "DENIED" }.into(),
            ),
            row("policy", policy.name().to_string()),
            row("entry", entry),
            row("entry's resource", on),
            row("effect", effect),
            row("matched subject", matched),
            row("reason", d.reason.clone()),
        ];
        println!("{}", output::table(&["field", "value"], rows));
    }
    if d.allowed {
        Ok(())
    } else {
        Err(Denied.into())
    }
}

/// The cluster's policy is not stored until someone stores it: the members' `admin_subjects`
/// grant from their config, which no client can read.
fn not_found_hint(e: anyhow::Error, name: &str, defaulted: bool) -> anyhow::Error {
    let missing = e
        .downcast_ref::<Status>()
        .is_some_and(|s| s.code() == Code::NotFound);
    match (missing, defaulted) {
        (true, true) => anyhow!(
            "policy {name} is not in the catalogue: the servers' admin_subjects grant from their \
             config, which tribctl cannot see. Name a stored policy with --policy, or store the \
             cluster's with `tribctl policy create {name} --file …`"
        ),
        (true, false) => anyhow!("policy {name} is not in the catalogue"),
        _ => e,
    }
}
