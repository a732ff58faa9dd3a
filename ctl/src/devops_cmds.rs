//! `tribctl devops logging get|set`, `tribctl devops config`, `tribctl devops piggyback`:
//! Eclipse Ditto's devops commands
//! through the `Admin` gRPC service of any member (the one `--server` names first that
//! answers), which asks the other members and the data nodes and gathers their answers.
//! `--json` prints what `/devops/logging`, `/devops/config` and `/devops/piggyback` answer over
//! HTTP.

use crate::client::ControlPlane;
use crate::output;
use anyhow::{anyhow, Result};
use clap::Subcommand;
use std::path::PathBuf;
use tributary_common::devops::{shape, Command, Piggyback, Scope};
use tributary_proto::v1::admin_client::AdminClient;
use tributary_proto::v1::{
    ChangeLogLevelRequest, InstanceAnswer, RetrieveConfigRequest, RetrieveLoggerConfigRequest,
};

#[derive(Subcommand)]
pub enum DevopsCmd {
    /// Log levels per logger, read and changed at runtime.
    #[command(subcommand)]
    Logging(LoggingCmd),
    /// The effective config of each process at a dotted path, secrets redacted
    /// (`tributary.info`: service, instance, version, command line, environment).
    Config {
        #[command(flatten)]
        at: Target,
        /// A dotted path (`tributary.raft.tick_ms`); empty: the whole config.
        #[arg(long, default_value = "")]
        path: String,
    },
    /// A piggyback command as Eclipse Ditto's devops API takes it, from a JSON file:
    /// {"targetActorSelection": "/user/dittoSupervisor", "headers": {"aggregate": true},
    /// "piggybackCommand": {"type": "status.commands:retrieveHealth"}}. Targets:
    /// /user/dittoSupervisor, /user/mirrorSupervisor, /user/persistenceCleanup,
    /// /system/distributedPubSubMediator (namespaces).
    Piggyback {
        /// The request as JSON ("-": standard input).
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        at: Target,
        /// How long each process may take (Ditto's ?timeout=).
        #[arg(long, default_value = "10s")]
        timeout: String,
    },
}

#[derive(Subcommand)]
pub enum LoggingCmd {
    /// Every logger with a level of its own, and ROOT, of each process.
    Get {
        #[command(flatten)]
        at: Target,
    },
    /// Sets LOGGER (a module path such as tributary_data_node::ditto, or ROOT) to LEVEL
    /// (trace, debug, info, warn, error, off) without a restart.
    Set {
        logger: String,
        level: String,
        #[command(flatten)]
        at: Target,
    },
}

/// Which processes: all of them, every one of a service, or one instance.
#[derive(clap::Args)]
pub struct Target {
    /// control-plane or data-node.
    #[arg(long)]
    service: Option<String>,
    /// The id of a member or data node (with --service).
    #[arg(long)]
    instance: Option<String>,
}

pub async fn run(cmd: DevopsCmd, cp: &ControlPlane, json: bool) -> Result<()> {
    let (at, command) = match cmd {
        DevopsCmd::Logging(LoggingCmd::Get { at }) => (at, Command::RetrieveLoggerConfig),
        DevopsCmd::Logging(LoggingCmd::Set { logger, level, at }) => {
            (at, Command::ChangeLogLevel { logger, level })
        }
        DevopsCmd::Config { at, path } => (at, Command::RetrieveConfig { path }),
        DevopsCmd::Piggyback { file, at, timeout } => {
            let body = match file.as_os_str() == "-" {
                true => std::io::read_to_string(std::io::stdin())?.into_bytes(),
                false => std::fs::read(&file)
                    .map_err(|e| anyhow!("cannot read {}: {e}", file.display()))?,
            };
            let p = Piggyback::from_body(&body, Some(&timeout))
                .map_err(|e| anyhow!("{}: {e}", file.display()))?;
            (at, Command::Piggyback(p))
        }
    };
    let scope = Scope::parse(at.service.as_deref(), at.instance.as_deref())?;
    command.validate()?;
    command.check_scope(&scope)?;
    let answers = call(cp, &scope, &command).await?;
    if json {
        output::json(&shape::response(&command, &scope, &answers).1)?;
    } else {
        print(&command, &answers)?;
    }
    let failed: Vec<String> = answers
        .iter()
        .filter(|a| a.status != 200)
        .map(|a| format!("{} {}: {}", a.service, a.instance, a.error))
        .collect();
    match failed.is_empty() {
        true => Ok(()),
        false => Err(anyhow!(
            "{} of {} instances did not answer:\n  {}",
            failed.len(),
            answers.len(),
            failed.join("\n  ")
        )),
    }
}

pub(crate) async fn call(
    cp: &ControlPlane,
    scope: &Scope,
    cmd: &Command,
) -> Result<Vec<InstanceAnswer>> {
    let scope = Some(scope.to_proto());
    let reply = cp
        .call(|ch| {
            let (scope, cmd) = (scope.clone(), cmd.clone());
            async move {
                let mut c = AdminClient::new(ch);
                let r = match cmd {
                    Command::RetrieveLoggerConfig => {
                        c.retrieve_logger_config(RetrieveLoggerConfigRequest { scope })
                            .await
                    }
                    Command::ChangeLogLevel { logger, level } => {
                        c.change_log_level(ChangeLogLevelRequest {
                            scope,
                            logger,
                            level,
                        })
                        .await
                    }
                    Command::RetrieveConfig { path } => {
                        c.retrieve_config(RetrieveConfigRequest { scope, path })
                            .await
                    }
                    Command::Piggyback(p) => {
                        c.piggyback(p.to_proto(scope.unwrap_or_default())).await
                    }
                };
                r.map(tonic::Response::into_inner)
            }
        })
        .await?;
    Ok(reply.answers)
}

fn print(cmd: &Command, answers: &[InstanceAnswer]) -> Result<()> {
    let mut rows = Vec::new();
    for a in answers {
        let who = [a.service.clone(), a.instance.clone()];
        if a.status != 200 {
            rows.push([who.to_vec(), vec![format!("{} {}", a.status, a.error)]].concat());
            continue;
        }
        match cmd {
            Command::RetrieveLoggerConfig => {
                let levels = a
                    .logger_configs
                    .iter()
                    .map(|c| format!("{} = {}", c.logger, c.level))
                    .collect::<Vec<_>>()
                    .join("\n");
                rows.push([who.to_vec(), vec![levels]].concat());
            }
            Command::ChangeLogLevel { logger, level } => {
                let done = match a.result {
                    true => format!("{logger} = {level}"),
                    false => "unchanged".into(),
                };
                rows.push([who.to_vec(), vec![done]].concat());
            }
            Command::RetrieveConfig { .. } => {
                let v: serde_json::Value =
                    serde_json::from_str(&a.config_json).unwrap_or(serde_json::Value::Null);
                rows.push([who.to_vec(), vec![serde_json::to_string_pretty(&v)?]].concat());
            }
            Command::Piggyback(_) => {
                let v: serde_json::Value =
                    serde_json::from_str(&a.response_json).unwrap_or(serde_json::Value::Null);
                rows.push([who.to_vec(), vec![serde_json::to_string_pretty(&v)?]].concat());
            }
        }
    }
    let last = match cmd {
        Command::RetrieveLoggerConfig => "loggers".to_string(),
        Command::ChangeLogLevel { .. } => "changed".to_string(),
        Command::RetrieveConfig { .. } => "config".to_string(),
        Command::Piggyback(p) => p.response_type(),
    };
    println!("{}", output::table(&["service", "instance", &last], rows));
    Ok(())
}
