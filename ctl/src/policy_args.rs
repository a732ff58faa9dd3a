//! Policy flags for the catalogue commands: a JSON file or a one-entry shorthand.

use crate::catalog_cmds::EntityArgs;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use tributary_proto::v1::{
    entity::Kind, Entity, EntityKind, Permission, Policy, PolicyEntry, PolicyResource,
};

#[derive(Args, Clone, Default)]
pub struct PolicyArgs {
    /// JSON file: `{"entries": [{"label", "subjects": [..], "resources": [{"resource", "grant": ["READ"], "revoke": []}]}]}`.
    #[arg(long)]
    file: Option<std::path::PathBuf>,
    /// One-entry shorthand: `issuer:subject` (repeatable).
    #[arg(long = "subject")]
    subjects: Vec<String>,
    /// One-entry shorthand: resource such as `well:/acme:orders` (repeatable).
    #[arg(long = "resource")]
    resources: Vec<String>,
    /// READ, WRITE, ADMIN (comma-separated).
    #[arg(long)]
    grant: Option<String>,
    #[arg(long)]
    revoke: Option<String>,
}

/// A policy file as operators write it (permissions by name).
#[derive(serde::Deserialize)]
struct PolicyFile {
    entries: Vec<PolicyFileEntry>,
}

#[derive(serde::Deserialize)]
struct PolicyFileEntry {
    #[serde(default)]
    label: String,
    #[serde(default)]
    subjects: Vec<String>,
    #[serde(default)]
    resources: Vec<PolicyFileResource>,
}

#[derive(serde::Deserialize)]
struct PolicyFileResource {
    resource: String,
    #[serde(default)]
    grant: Vec<String>,
    #[serde(default)]
    revoke: Vec<String>,
}

fn perms(raw: &Option<String>) -> Result<Vec<i32>> {
    raw.iter()
        .flat_map(|r| r.split(','))
        .filter(|p| !p.trim().is_empty())
        .map(|p| match p.trim().to_ascii_uppercase().as_str() {
            "READ" => Ok(Permission::Read as i32),
            "WRITE" => Ok(Permission::Write as i32),
            "ADMIN" => Ok(Permission::Admin as i32),
            other => Err(anyhow!("permission {other:?}: want READ, WRITE or ADMIN")),
        })
        .collect()
}

impl EntityArgs for PolicyArgs {
    const KIND: EntityKind = EntityKind::Policy;
    fn empty(name: &str) -> Entity {
        Entity {
            kind: Some(Kind::Policy(Policy {
                name: name.into(),
                ..Default::default()
            })),
        }
    }
    fn apply(&self, e: &mut Entity) -> Result<()> {
        let Some(Kind::Policy(p)) = &mut e.kind else {
            bail!("not a policy")
        };
        if let Some(f) = &self.file {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("--file {}", f.display()))?;
            let parsed: PolicyFile = serde_json::from_str(&text)
                .with_context(|| format!("--file {}: not a policy", f.display()))?;
            p.entries = parsed
                .entries
                .into_iter()
                .map(|e| {
                    Ok(PolicyEntry {
                        label: e.label,
                        subjects: e.subjects,
                        resources: e
                            .resources
                            .into_iter()
                            .map(|r| {
                                Ok(PolicyResource {
                                    resource: r.resource,
                                    grant: perms(&Some(r.grant.join(",")))?,
                                    revoke: perms(&Some(r.revoke.join(",")))?,
                                })
                            })
                            .collect::<Result<_>>()?,
                        ..Default::default()
                    })
                })
                .collect::<Result<_>>()?;
        }
        if !self.subjects.is_empty() || !self.resources.is_empty() {
            let (grant, revoke) = (perms(&self.grant)?, perms(&self.revoke)?);
            p.entries.push(PolicyEntry {
                label: format!("entry{}", p.entries.len() + 1),
                subjects: self.subjects.clone(),
                resources: self
                    .resources
                    .iter()
                    .map(|r| PolicyResource {
                        resource: r.clone(),
                        grant: grant.clone(),
                        revoke: revoke.clone(),
                    })
                    .collect(),
                ..Default::default()
            });
        }
        Ok(())
    }
    fn header() -> &'static [&'static str] {
        &["policy", "entries", "subjects"]
    }
    fn row(e: &Entity) -> Vec<String> {
        let Some(Kind::Policy(p)) = &e.kind else {
            return vec![];
        };
        let subjects: Vec<String> = p.entries.iter().flat_map(|x| x.subjects.clone()).collect();
        vec![
            p.name.clone(),
            p.entries.len().to_string(),
            subjects.join(","),
        ]
    }
}
