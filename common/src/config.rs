//! Config loading, the same for every server: defaults, then the TOML file, then
//! `TRIBUTARY_<SECTION>__<KEY>` environment variables, then command-line flags.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// Loads `T` from its defaults, an optional TOML file, the environment and `flags`
/// (a serializable struct whose `None` fields are skipped). The error names the bad key.
pub fn load<T, F>(file: Option<&Path>, flags: &F) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
    F: Serialize,
{
    let mut fig = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        if !file.exists() {
            return Err(ConfigError(format!(
                "config file {} does not exist",
                file.display()
            )));
        }
        fig = fig.merge(Toml::file(file));
    }
    fig = fig
        .merge(Env::prefixed("TRIBUTARY_").split("__"))
        .merge(logging_env())
        .merge(tracing_env())
        .merge(otlp_endpoint_env())
        .merge(Serialized::defaults(flags));
    fig.extract().map_err(|e| {
        let key = e.path.join(".");
        let msg = e.kind.to_string();
        if key.is_empty() {
            ConfigError(msg)
        } else {
            ConfigError(format!("key `{key}`: {msg}"))
        }
    })
}

/// Eclipse Ditto's spelling of the `[logging]` keys, `TRIBUTARY_LOGGING_<KEY>`
/// (`TRIBUTARY_LOGGING_DISABLE_SYSOUT_LOG=true` as `DITTO_LOGGING_DISABLE_SYSOUT_LOG`), beside
/// the nested `TRIBUTARY_LOGGING__<KEY>` every section has.
fn logging_env() -> Env {
    Env::prefixed("TRIBUTARY_LOGGING_")
        .filter(|k| !k.as_str().starts_with('_'))
        .map(|k| format!("logging.{k}").into())
}

/// The `[tracing]` keys by Eclipse Ditto's names, `TRIBUTARY_TRACING_<KEY>`
/// (`TRIBUTARY_TRACING_SAMPLER=adaptive`), and the collector by OpenTelemetry's own
/// `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn tracing_env() -> Env {
    Env::prefixed("TRIBUTARY_TRACING_")
        .filter(|k| !k.as_str().starts_with('_'))
        .map(|k| format!("tracing.{k}").into())
}

fn otlp_endpoint_env() -> Env {
    Env::raw()
        .only(&["OTEL_EXPORTER_OTLP_ENDPOINT"])
        .map(|_| "tracing.otlp_endpoint".into())
}

#[cfg(test)]
// figment's `Jail` fixes the closure's error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default)]
    struct Cfg {
        id: u64,
        listen: String,
        raft: Raft,
    }

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default)]
    struct Raft {
        tick_ms: u64,
    }

    #[derive(Serialize)]
    struct Flags {
        #[serde(skip_serializing_if = "Option::is_none")]
        listen: Option<String>,
    }

    #[test]
    fn defaults_then_file_then_env_then_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "id = 2\nlisten = \"file:1\"\n[raft]\ntick_ms = 7\n",
            )?;
            jail.set_env("TRIBUTARY_RAFT__TICK_MS", "9");
            let none = Flags { listen: None };
            let c: Cfg = load(Some(Path::new("c.toml")), &none).map_err(|e| e.to_string())?;
            assert_eq!((c.id, c.listen.as_str(), c.raft.tick_ms), (2, "file:1", 9));
            let flag = Flags {
                listen: Some("flag:1".into()),
            };
            let c: Cfg = load(Some(Path::new("c.toml")), &flag).map_err(|e| e.to_string())?;
            assert_eq!(c.listen, "flag:1");
            Ok(())
        });
    }

    #[test]
    fn logging_keys_take_dittos_environment_names() {
        #[derive(Debug, Default, Serialize, Deserialize)]
        #[serde(default)]
        struct WithLogging {
            logging: crate::logging::LoggingConfig,
        }
        figment::Jail::expect_with(|jail| {
            jail.set_env("TRIBUTARY_LOGGING_DISABLE_SYSOUT_LOG", "true");
            jail.set_env("TRIBUTARY_LOGGING_MAX_LOG_FILE_HISTORY", "3");
            jail.set_env("TRIBUTARY_LOGGING__FILE_APPENDER", "true");
            let c: WithLogging = load(None, &Flags { listen: None }).map_err(|e| e.to_string())?;
            assert!(c.logging.disable_sysout_log && c.logging.file_appender);
            assert_eq!(c.logging.max_log_file_history, 3);
            jail.set_env("TRIBUTARY_LOGGING_MAX_LOG_FILE_HISTORY", "many");
            let err = load::<WithLogging, _>(None, &Flags { listen: None }).unwrap_err();
            assert!(
                err.to_string().contains("logging.max_log_file_history"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn tracing_keys_take_dittos_and_opentelemetrys_environment_names() {
        #[derive(Debug, Default, Serialize, Deserialize)]
        #[serde(default)]
        struct WithTracing {
            tracing: crate::logging::TracingConfig,
        }
        figment::Jail::expect_with(|jail| {
            let c: WithTracing = load(None, &Flags { listen: None }).map_err(|e| e.to_string())?;
            assert!(!c.tracing.enabled);
            assert_eq!(c.tracing.otlp_endpoint, "http://localhost:4317");
            jail.set_env("TRIBUTARY_TRACING_ENABLED", "true");
            jail.set_env("TRIBUTARY_TRACING_SAMPLER", "adaptive");
            jail.set_env("TRIBUTARY_TRACING_ADAPTIVE_SAMPLER_THROUGHPUT", "2.5");
            jail.set_env("TRIBUTARY_TRACING__RANDOM_SAMPLER_PROBABILITY", "0.5");
            jail.set_env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317");
            let c: WithTracing = load(None, &Flags { listen: None }).map_err(|e| e.to_string())?;
            assert!(c.tracing.enabled);
            assert_eq!(c.tracing.sampler, "adaptive");
            assert_eq!(c.tracing.adaptive_sampler_throughput, 2.5);
            assert_eq!(c.tracing.random_sampler_probability, 0.5);
            assert_eq!(c.tracing.otlp_endpoint, "http://collector:4317");
            jail.set_env("TRIBUTARY_TRACING_RANDOM_SAMPLER_PROBABILITY", "half");
            let err = load::<WithTracing, _>(None, &Flags { listen: None }).unwrap_err();
            assert!(
                err.to_string()
                    .contains("tracing.random_sampler_probability"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_names_its_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("TRIBUTARY_RAFT__TICK_MS", "soon");
            let err =
                load::<Cfg, _>(None, &Flags { listen: None }).expect_err("bad value accepted");
            assert!(err.to_string().contains("raft.tick_ms"), "{err}");
            let missing = load::<Cfg, _>(Some(Path::new("nope.toml")), &Flags { listen: None });
            assert!(missing
                .expect_err("missing file accepted")
                .to_string()
                .contains("nope.toml"));
            Ok(())
        });
    }
}
