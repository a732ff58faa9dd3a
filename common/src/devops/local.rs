//! One process's own devops answers: its log levels (the process-wide table, changed through
//! the reload layer), its effective config at a path, and its parts' answers to piggyback
//! commands (each part registers its handler once it runs).

use super::piggyback::{PiggybackHandler, Target};
use super::{config_view, Command, DevopsError, Service};
use crate::sync::{read, write};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tributary_proto::v1::{InstanceAnswer, LoggerConfig};

pub struct LocalAdmin {
    service: Service,
    instance: String,
    /// The redacted config tree, made once at start (the config does not change while the
    /// process runs; log levels are read live).
    tree: Value,
    /// The parts that take piggyback commands, as they start.
    handlers: RwLock<HashMap<Target, Arc<dyn PiggybackHandler>>>,
}

impl LocalAdmin {
    /// `config`: the server's effective config, as loaded.
    pub fn new(service: Service, instance: u64, config: &impl Serialize) -> LocalAdmin {
        let instance = instance.to_string();
        let value = serde_json::to_value(config)
            .unwrap_or_else(|e| Value::String(format!("the config could not be shown: {e}")));
        let tree = config_view::tree(value, service.name(), &instance);
        LocalAdmin {
            service,
            instance,
            tree,
            handlers: RwLock::new(HashMap::new()),
        }
    }

    /// Registers the part that answers piggyback commands for `target` on this process.
    pub fn register(&self, target: Target, handler: Arc<dyn PiggybackHandler>) {
        write(&self.handlers).insert(target, handler);
    }

    fn handler(&self, target: Target) -> Result<Arc<dyn PiggybackHandler>, DevopsError> {
        read(&self.handlers).get(&target).cloned().ok_or_else(|| {
            DevopsError::Unavailable(format!(
                "{} does not run on {} {} (yet)",
                target.selection(),
                self.service.name(),
                self.instance
            ))
        })
    }

    /// What the process a request enters does once before it is fanned out.
    pub async fn prepare(&self, cmd: &Command) -> Result<(), DevopsError> {
        match cmd {
            Command::Piggyback(p) => {
                // A part this process does not run has nothing to prepare here.
                let handler = read(&self.handlers).get(&p.target).cloned();
                match handler {
                    Some(h) => h.prepare(&p.command, p.timeout).await,
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    pub fn service(&self) -> Service {
        self.service
    }

    pub fn instance(&self) -> String {
        self.instance.clone()
    }

    /// An answer of this process with `status` and nothing else.
    pub fn blank(service: Service, instance: &str, status: u32, error: String) -> InstanceAnswer {
        InstanceAnswer {
            service: service.name().to_string(),
            instance: instance.to_string(),
            status,
            error,
            ..Default::default()
        }
    }

    /// This process's answer to `cmd` (checked by the caller).
    pub async fn answer(&self, cmd: &Command) -> InstanceAnswer {
        let mut a = LocalAdmin::blank(self.service, &self.instance, 200, String::new());
        let levels = crate::logging::levels();
        match cmd {
            Command::RetrieveLoggerConfig => {
                a.logger_configs = levels
                    .list()
                    .into_iter()
                    .map(|(logger, level)| LoggerConfig { logger, level })
                    .collect();
            }
            Command::ChangeLogLevel { logger, level } => match levels.set(logger, level) {
                Ok(()) => a.result = true,
                Err(e) => {
                    a.status = 400;
                    a.error = e.to_string();
                }
            },
            Command::RetrieveConfig { path } => match config_view::at(&self.tree, path) {
                Ok(v) => a.config_json = v.to_string(),
                Err(e) => {
                    a.status = 400;
                    a.error = e;
                }
            },
            Command::Piggyback(p) => {
                let reply = match self.handler(p.target) {
                    Ok(h) => {
                        let what = format!("{} {}", self.service.name(), self.instance);
                        match tokio::time::timeout(p.timeout, h.answer(&p.command, p.timeout)).await
                        {
                            Ok(r) => r,
                            Err(_) => Err(DevopsError::Timeout(format!(
                                "{} on {what} did not finish within {:?}",
                                p.target.selection(),
                                p.timeout
                            ))),
                        }
                    }
                    Err(e) => Err(e),
                };
                match reply {
                    Ok(fields) => a.response_json = Value::Object(fields).to_string(),
                    Err(e) => {
                        a.status = u32::from(e.http_status());
                        a.error = e.to_string();
                    }
                }
            }
        }
        a
    }
}
