//! Logging as Eclipse Ditto operates it: to stdout by default (off with
//! `TRIBUTARY_LOGGING_DISABLE_SYSOUT_LOG=true`), to rotated files on request (the five knobs of
//! Ditto's file appender), files written as Logstash JSON lines, and levels per logger that
//! change at runtime ([`levels`], `/devops/logging`).
//!
//! The `[logging]` TOML section; every key is also `TRIBUTARY_LOGGING_<KEY>` (Ditto's
//! spelling, `TRIBUTARY_LOGGING_FILE_APPENDER=true`) or `TRIBUTARY_LOGGING__<KEY>`. `RUST_LOG`,
//! when set, still gives the levels at start.
//!
//! Traces ([`otlp`], `[tracing]`) go out through a layer of the same subscriber, so the
//! spans the logs show are the spans a trace is made of.

mod files;
mod levels;
mod logstash;
mod otlp;
mod sampler;

pub use files::parse_size;
pub use levels::{levels, parse_level, parse_logger, LevelError, LogLevels, LEVELS, ROOT};
pub use logstash::Logstash;
pub use otlp::{TracingConfig, TracingError};
pub use sampler::AdaptiveSampler;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, Layer, Registry};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LoggingConfig {
    /// The level of every logger without one of its own (Ditto's `ROOT`).
    pub level: String,
    /// Levels per logger (module path): `tributary_data_node::ditto = "debug"`.
    pub loggers: BTreeMap<String, String>,
    /// No log lines on stdout (`DITTO_LOGGING_DISABLE_SYSOUT_LOG`).
    pub disable_sysout_log: bool,
    /// stdout as `human` text (the default) or `json` (Logstash lines, as the files).
    pub sysout_format: String,
    /// Also write log files (`DITTO_LOGGING_FILE_APPENDER`).
    pub file_appender: bool,
    /// Only this level and above goes to the files.
    pub file_appender_threshold: String,
    /// logback's file name pattern: `%d{yyyy-MM-dd}` rolls daily (`HH` hourly, `mm` every
    /// minute), `%i` numbers files rolled by `max_log_file_size`; `.gz` gzips rolled files.
    /// Empty: `/var/log/tributary/<service>.log.%d{yyyy-MM-dd}.gz`.
    pub file_name_pattern: String,
    /// Rolled files kept.
    pub max_log_file_history: u64,
    /// The most all the files may take (`1GB`, `500MB`); the oldest rolled ones go first.
    pub total_log_file_size: String,
    /// With `%i`: roll the file past this size.
    pub max_log_file_size: String,
    /// Apply the history and size limits at start too.
    pub clean_history_on_start: bool,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".into(),
            loggers: BTreeMap::new(),
            disable_sysout_log: false,
            sysout_format: "human".into(),
            file_appender: false,
            file_appender_threshold: "info".into(),
            file_name_pattern: String::new(),
            max_log_file_history: 10,
            total_log_file_size: "1GB".into(),
            max_log_file_size: "100MB".into(),
            clean_history_on_start: false,
        }
    }
}

/// A bad `[logging]` setting: the key (and its environment variable) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `{key}` ({env}): {reason}")]
pub struct LoggingError {
    pub key: String,
    pub env: String,
    pub reason: String,
}

fn bad(key: &str, reason: impl ToString) -> LoggingError {
    let short = key.trim_start_matches("logging.");
    let env = match short {
        "RUST_LOG" => "RUST_LOG".to_string(),
        s if s.starts_with("loggers.") => "TRIBUTARY_LOGGING__LOGGERS__…".to_string(),
        s => format!("TRIBUTARY_LOGGING_{}", s.to_ascii_uppercase()),
    };
    LoggingError {
        key: if short == "RUST_LOG" {
            short.into()
        } else {
            format!("logging.{short}")
        },
        env,
        reason: reason.to_string(),
    }
}

/// Keeps the file writer's thread and the span exporter; dropping it flushes what is queued
/// (log lines to the files, spans to the collector).
pub struct LogGuard {
    _file: Option<tracing_appender::non_blocking::WorkerGuard>,
    exporter: Option<otlp::Exporter>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(e) = self.exporter.take() {
            e.shutdown();
        }
    }
}

/// Why the subscriber was not installed: a `[logging]` or a `[tracing]` key.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(transparent)]
    Logging(#[from] LoggingError),
    #[error(transparent)]
    Tracing(#[from] TracingError),
}

impl LoggingConfig {
    /// The file name pattern in force for `service`.
    pub fn pattern(&self, service: &str) -> String {
        if self.file_name_pattern.is_empty() {
            format!("/var/log/tributary/{service}.log.%d{{yyyy-MM-dd}}.gz")
        } else {
            self.file_name_pattern.clone()
        }
    }
}

type Base = tracing_subscriber::layer::Layered<
    reload::Layer<tracing_subscriber::EnvFilter, Registry>,
    Registry,
>;
type Boxed = Box<dyn Layer<Base> + Send + Sync>;

/// Installs the process's subscriber from `config` (`service` names the default log file).
/// Once per process: a second call (several servers in one test) changes nothing and
/// returns an empty guard. Invalid settings are refused with the key named.
pub fn init(config: &LoggingConfig, service: &str) -> Result<LogGuard, LoggingError> {
    match init_with_tracing(config, &TracingConfig::default(), service, service) {
        Ok(g) => Ok(g),
        Err(TelemetryError::Logging(e)) => Err(e),
        // Tracing off: its defaults are valid and nothing of it is built.
        Err(TelemetryError::Tracing(e)) => Err(LoggingError {
            key: format!("tracing.{}", e.key),
            env: e.env,
            reason: e.reason,
        }),
    }
}

/// [`init`], with spans exported by OTLP when `tracing.enabled` (`service` is their
/// `service.name`, `instance` their `service.instance.id` unless the config names one).
/// Within a tokio runtime: the exporter's channel lives there.
pub fn init_with_tracing(
    config: &LoggingConfig,
    tracing: &TracingConfig,
    service: &str,
    instance: &str,
) -> Result<LogGuard, TelemetryError> {
    tracing.validate()?;
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let filter = levels()
        .configure(&config.level, &config.loggers, rust_log.as_deref())
        .map_err(|(key, e)| bad(&key, e))?;
    let mut layers: Vec<Boxed> = Vec::new();
    if !config.disable_sysout_log {
        let stdout = tracing_subscriber::fmt::layer().with_ansi(std::io::stdout().is_terminal());
        layers.push(match config.sysout_format.as_str() {
            "human" | "" => stdout.boxed(),
            "json" => stdout
                .event_format(Logstash)
                .fmt_fields(JsonFields::new())
                .boxed(),
            other => {
                return Err(bad("sysout_format", format!("{other:?}: use human or json")).into())
            }
        });
    }
    let mut guard = LogGuard {
        _file: None,
        exporter: None,
    };
    if config.file_appender {
        let threshold = parse_level(&config.file_appender_threshold)
            .map_err(|e| bad("file_appender_threshold", e))?;
        let plan = files::plan(&config.pattern(service), &config.max_log_file_size)
            .map_err(|files::Bad(k, why)| bad(k, why))?;
        let total = parse_size(&config.total_log_file_size).ok_or_else(|| {
            bad(
                "total_log_file_size",
                format!("{:?} is not a size such as 1GB", config.total_log_file_size),
            )
        })?;
        let retention = files::Retention {
            max_history: config.max_log_file_history,
            total_size: total,
        };
        if config.clean_history_on_start {
            plan.sweep(retention);
        }
        let roller = plan
            .roller(config.max_log_file_history)
            .map_err(|files::Bad(k, why)| bad(k, why))?;
        let (writer, file_guard) =
            tracing_appender::non_blocking(files::Swept::new(roller, plan, retention));
        guard._file = Some(file_guard);
        layers.push(
            tracing_subscriber::fmt::layer()
                .event_format(Logstash)
                .fmt_fields(JsonFields::new())
                .with_ansi(false)
                .with_writer(writer)
                .with_filter(threshold)
                .boxed(),
        );
    }
    if tracing.enabled {
        let (exporter, tracer) = otlp::Exporter::start(tracing, service, instance)?;
        guard.exporter = Some(exporter);
        layers.push(tracing_opentelemetry::layer().with_tracer(tracer).boxed());
    }
    let (filter, handle) = reload::Layer::new(filter);
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(layers)
        .try_init();
    if installed.is_ok() {
        levels().attach(Box::new(move |f| {
            handle.reload(f).map_err(|e| e.to_string())
        }));
        if guard.exporter.is_some() {
            crate::trace_context::enable();
        }
        Ok(guard)
    } else {
        // Dropping the guard stops an exporter that no subscriber feeds.
        Ok(LogGuard {
            _file: None,
            exporter: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_name_their_key_and_variable() {
        let e = bad("file_name_pattern", "no %d");
        assert_eq!(e.key, "logging.file_name_pattern");
        assert_eq!(e.env, "TRIBUTARY_LOGGING_FILE_NAME_PATTERN");
        assert!(e.to_string().contains("logging.file_name_pattern"));
        let c = LoggingConfig {
            file_appender: true,
            total_log_file_size: "huge".into(),
            file_name_pattern: "/tmp/x.log.%d".into(),
            ..Default::default()
        };
        let e = init(&c, "data-node").err().expect("refused");
        assert_eq!(e.key, "logging.total_log_file_size");
        let c = LoggingConfig {
            sysout_format: "xml".into(),
            ..Default::default()
        };
        assert_eq!(
            init(&c, "x").err().expect("refused").key,
            "logging.sysout_format"
        );
        assert_eq!(
            LoggingConfig::default().pattern("control-plane"),
            "/var/log/tributary/control-plane.log.%d{yyyy-MM-dd}.gz"
        );
    }
}
