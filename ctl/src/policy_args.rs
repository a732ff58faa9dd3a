//! Policy flags for the catalogue commands: a JSON file or a one-entry shorthand.

use crate::catalog_cmds::EntityArgs;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use std::path::Path;
use tributary_proto::v1::{
    entity::Kind, Entity, EntityKind, Permission, Policy, PolicyEntry, PolicyResource,
};

#[derive(Args, Clone, Default)]
pub struct PolicyArgs {
    /// Eclipse Ditto's policy JSON: `{"entries": {"LABEL": {"subjects": {"issuer:sub":
    /// {"type": "…"}}, "resources": {"well:/ns:name": {"grant": ["READ"], "revoke": []}}}}}`
    /// (`policyId`, if given, must be the policy's name). The older tribctl shape, with
    /// `entries` a list of `{label, subjects, resources: [{resource, grant, revoke}]}`, is
    /// still read. The file replaces every entry.
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

/// The older tribctl policy file (entries a list, permissions by name).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    entries: Vec<PolicyFileEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFileEntry {
    #[serde(default)]
    label: String,
    #[serde(default)]
    subjects: Vec<String>,
    #[serde(default)]
    resources: Vec<PolicyFileResource>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
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

/// The entries of a policy file for policy `name`: Ditto's JSON (entries an object), else
/// the older tribctl shape (entries a list).
fn read_file(path: &Path, name: &str) -> Result<Vec<PolicyEntry>> {
    let at = || format!("--file {}", path.display());
    let text = std::fs::read_to_string(path).with_context(at)?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", at()))?;
    if doc.get("entries").is_some_and(serde_json::Value::is_array) {
        let parsed: PolicyFile =
            serde_json::from_value(doc).with_context(|| format!("{}: not a policy", at()))?;
        return parsed.entries.into_iter().map(old_entry).collect();
    }
    let named = (!name.is_empty()).then_some(name);
    let policy = tributary_common::policy::Policy::from_json(&text, named)
        .map_err(|e| anyhow!("{}: not a Ditto policy: {e}", at()))?;
    Ok(policy.to_proto().entries)
}

fn old_entry(e: PolicyFileEntry) -> Result<PolicyEntry> {
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
            p.entries = read_file(f, &p.name)?;
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
        // Checked here as the server will, so a mistake is named before anything is sent.
        tributary_common::policy::Policy::from_proto(p)
            .map_err(|e| anyhow!("policy {}: {e}", p.name))?;
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
