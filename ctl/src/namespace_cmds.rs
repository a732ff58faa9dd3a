//! `tribctl namespace block|shutdown|purge|unblock|erase NS`: Eclipse Ditto's namespace
//! erasure, each step a piggyback command to `/system/distributedPubSubMediator` through any
//! member, answered once every member and data node has it. `erase` runs the four in order
//! with a progress bar and stops at the first step an instance did not complete.

use crate::client::ControlPlane;
use crate::devops_cmds::call;
use crate::output;
use anyhow::{anyhow, Result};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use tributary_common::devops::{shape, Command, Piggyback, Scope, Target};
use tributary_proto::v1::InstanceAnswer;

#[derive(Subcommand)]
pub enum NamespaceCmd {
    /// Step 1: every request for an entity of NS is refused (FAILED_PRECONDITION) on every
    /// member and data node.
    Block(Step),
    /// Step 2: every worker of NS stops (ditto, mirrors, sources).
    Shutdown(Step),
    /// Step 3: every well, stream, target and policy of NS and all their data are deleted.
    Purge(Step),
    /// Step 4: NS can be used again, and starts empty.
    Unblock(Step),
    /// All four steps in order, with progress.
    Erase(Step),
}

#[derive(clap::Args)]
pub struct Step {
    /// The namespace.
    namespace: String,
    /// How long each member and data node may take for a step (purge deletes data: give it
    /// time).
    #[arg(long, default_value = "60s")]
    timeout: String,
}

#[derive(Clone, Copy)]
enum Kind {
    Block,
    Shutdown,
    Purge,
    Unblock,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Block => "block",
            Kind::Shutdown => "shutdown",
            Kind::Purge => "purge",
            Kind::Unblock => "unblock",
        }
    }

    /// Ditto's piggybackCommand for the step.
    fn command(self, ns: &str) -> Value {
        match self {
            Kind::Block => json!({"type": "namespaces.commands:blockNamespace", "namespace": ns}),
            Kind::Shutdown => json!({"type": "common.commands:shutdown",
                                      "reason": {"type": "purge-namespace", "details": ns}}),
            Kind::Purge => json!({"type": "namespaces.commands:purgeNamespace", "namespace": ns}),
            Kind::Unblock => {
                json!({"type": "namespaces.commands:unblockNamespace", "namespace": ns})
            }
        }
    }
}

/// What one instance's answer lacks, if it did not complete the step.
fn failure(a: &InstanceAnswer) -> Option<String> {
    if a.status != 200 {
        return Some(format!(
            "{} {}: {} {}",
            a.service, a.instance, a.status, a.error
        ));
    }
    let v: Value = serde_json::from_str(&a.response_json).unwrap_or(Value::Null);
    match v.get("successful") {
        Some(Value::Bool(false)) => Some(format!("{} {}: {v}", a.service, a.instance)),
        _ => None,
    }
}

async fn step(cp: &ControlPlane, kind: Kind, s: &Step) -> Result<(Command, Vec<InstanceAnswer>)> {
    let timeout = tributary_common::devops::piggyback::parse_timeout(&s.timeout)?;
    let p = Piggyback::parse(
        Target::Namespaces.selection(),
        kind.command(&s.namespace),
        timeout,
    )?;
    let cmd = Command::Piggyback(p);
    let answers = call(cp, &Scope::default(), &cmd).await?;
    Ok((cmd, answers))
}

fn check(kind: Kind, ns: &str, answers: &[InstanceAnswer]) -> Result<()> {
    let failed: Vec<String> = answers.iter().filter_map(failure).collect();
    match failed.is_empty() {
        true => Ok(()),
        false => Err(anyhow!(
            "namespace {ns}: {} did not complete on {} of {} instances:\n  {}",
            kind.name(),
            failed.len(),
            answers.len(),
            failed.join("\n  ")
        )),
    }
}

fn row(kind: Kind, answers: &[InstanceAnswer]) -> Vec<String> {
    let ok = answers.iter().filter(|a| failure(a).is_none()).count();
    let details: Vec<String> = answers
        .iter()
        .map(|a| match failure(a) {
            None => format!("{} {}: done", a.service, a.instance),
            Some(f) => f,
        })
        .collect();
    vec![
        kind.name().to_string(),
        format!("{ok}/{}", answers.len()),
        details.join("\n"),
    ]
}

pub async fn run(cmd: NamespaceCmd, cp: &ControlPlane, json: bool) -> Result<()> {
    let (kinds, s): (Vec<Kind>, Step) = match cmd {
        NamespaceCmd::Block(s) => (vec![Kind::Block], s),
        NamespaceCmd::Shutdown(s) => (vec![Kind::Shutdown], s),
        NamespaceCmd::Purge(s) => (vec![Kind::Purge], s),
        NamespaceCmd::Unblock(s) => (vec![Kind::Unblock], s),
        NamespaceCmd::Erase(s) => (
            vec![Kind::Block, Kind::Shutdown, Kind::Purge, Kind::Unblock],
            s,
        ),
    };
    let bar = match kinds.len() > 1 && !json {
        true => ProgressBar::new(kinds.len() as u64)
            .with_style(ProgressStyle::with_template("{bar:20} {pos}/{len} {msg}")?),
        false => ProgressBar::hidden(),
    };
    let (mut rows, mut shown) = (Vec::new(), Vec::new());
    let mut outcome = Ok(());
    for kind in kinds {
        bar.set_message(format!("{} {}", kind.name(), s.namespace));
        let (cmd, answers) = step(cp, kind, &s).await?;
        rows.push(row(kind, &answers));
        shown.push(json!({"step": kind.name(),
                          "response": shape::response(&cmd, &Scope::default(), &answers).1}));
        outcome = check(kind, &s.namespace, &answers);
        bar.inc(1);
        if outcome.is_err() {
            break;
        }
    }
    bar.finish_and_clear();
    match json {
        true => output::json(&Value::Array(shown))?,
        false => println!("{}", output::table(&["step", "instances", "answers"], rows)),
    }
    outcome
}
