//! One process's own devops answers: its log levels (the process-wide table, changed through
//! the reload layer) and its effective config at a path.

use super::{config_view, Command, Service};
use serde::Serialize;
use serde_json::Value;
use tributary_proto::v1::{InstanceAnswer, LoggerConfig};

pub struct LocalAdmin {
    service: Service,
    instance: String,
    /// The redacted config tree, made once at start (the config does not change while the
    /// process runs; log levels are read live).
    tree: Value,
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
    pub fn answer(&self, cmd: &Command) -> InstanceAnswer {
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
        }
        a
    }
}
