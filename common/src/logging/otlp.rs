//! Traces out by OTLP over gRPC, as Eclipse Ditto operates them: off unless
//! `TRIBUTARY_TRACING_ENABLED=true`; a sampler (`always`, `never`, `random` with a
//! probability, `adaptive` with a throughput goal); the collector at
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (default `http://localhost:4317`). Spans are the process's
//! `tracing` spans, through a `tracing-opentelemetry` layer beside the log layers; their
//! trace context crosses gRPC hops by `crate::trace_context`.
//!
//! The `[tracing]` TOML section; every key is also `TRIBUTARY_TRACING_<KEY>` (Ditto's
//! spelling) or `TRIBUTARY_TRACING__<KEY>`, and `otlp_endpoint` is OpenTelemetry's own
//! `OTEL_EXPORTER_OTLP_ENDPOINT`.

use super::sampler::AdaptiveSampler;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct TracingConfig {
    /// Export spans (`DITTO_TRACING_ENABLED`).
    pub enabled: bool,
    /// Which new traces are kept: `always`, `never` (the default, as Ditto's), `random`
    /// (`random_sampler_probability`) or `adaptive` (`adaptive_sampler_throughput`). A trace
    /// continued from a caller keeps the caller's decision, except under `never`.
    pub sampler: String,
    /// `random`: the share of new traces kept, 0 to 1.
    pub random_sampler_probability: f64,
    /// `adaptive`: new traces kept per second, whatever the load.
    pub adaptive_sampler_throughput: f64,
    /// The OTLP/gRPC collector (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub otlp_endpoint: String,
    /// `service.instance.id` of this process's spans (`service.name` is `control-plane` or
    /// `data-node`). Empty: the server's own, `member-<id>` or `data-node-<id>`.
    pub service_instance: String,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            enabled: false,
            sampler: "never".into(),
            random_sampler_probability: 0.01,
            adaptive_sampler_throughput: 10.0,
            otlp_endpoint: "http://localhost:4317".into(),
            service_instance: String::new(),
        }
    }
}

/// A bad `[tracing]` setting: the key, its environment variable, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `tracing.{key}` ({env}): {reason}")]
pub struct TracingError {
    pub key: &'static str,
    pub env: String,
    pub reason: String,
}

fn bad(key: &'static str, reason: impl ToString) -> TracingError {
    let env = match key {
        "otlp_endpoint" => "OTEL_EXPORTER_OTLP_ENDPOINT".to_string(),
        k => format!("TRIBUTARY_TRACING_{}", k.to_ascii_uppercase()),
    };
    TracingError {
        key,
        env,
        reason: reason.to_string(),
    }
}

impl TracingConfig {
    /// The sampler of new traces; the error names the key at fault.
    pub fn sampler(&self) -> Result<Sampler, TracingError> {
        let root = match self.sampler.trim().to_ascii_lowercase().as_str() {
            "always" => Sampler::AlwaysOn,
            // Nothing at all, even under a caller that sampled (Ditto: "don't report any trace").
            "never" => return Ok(Sampler::AlwaysOff),
            "random" => {
                let p = self.random_sampler_probability;
                if !(0.0..=1.0).contains(&p) {
                    return Err(bad(
                        "random_sampler_probability",
                        format!("{p} is not a probability from 0 to 1"),
                    ));
                }
                Sampler::TraceIdRatioBased(p)
            }
            "adaptive" => {
                let goal = self.adaptive_sampler_throughput;
                if !goal.is_finite() || goal <= 0.0 {
                    return Err(bad(
                        "adaptive_sampler_throughput",
                        format!("{goal} is not a number of traces per second above 0"),
                    ));
                }
                Sampler::ParentBased(Box::new(AdaptiveSampler::new(goal)))
            }
            other => {
                return Err(bad(
                    "sampler",
                    format!("{other:?}: use always, never, random or adaptive"),
                ))
            }
        };
        Ok(match root {
            Sampler::ParentBased(_) => root,
            r => Sampler::ParentBased(Box::new(r)),
        })
    }

    /// Checks every key, whether or not tracing is on (a typo waits for no restart).
    pub fn validate(&self) -> Result<(), TracingError> {
        self.sampler()?;
        let e = self.otlp_endpoint.trim();
        let uri: Option<http::Uri> = e.parse().ok();
        let ok = uri.is_some_and(|u| {
            matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
        });
        if !ok {
            return Err(bad(
                "otlp_endpoint",
                format!("{e:?} is not an http:// or https:// URL such as http://localhost:4317"),
            ));
        }
        Ok(())
    }
}

/// The provider spans go out through; [`Exporter::shutdown`] flushes what is queued.
pub(super) struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// Builds the exporter (within a tokio runtime: its channel lives there) and the layer
    /// that makes the process's spans OpenTelemetry spans.
    pub(super) fn start(
        config: &TracingConfig,
        service: &str,
        instance: &str,
    ) -> Result<(Exporter, opentelemetry_sdk::trace::Tracer), TracingError> {
        config.validate()?;
        let sampler = config.sampler()?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(config.otlp_endpoint.trim())
            .build()
            .map_err(|e| bad("otlp_endpoint", e))?;
        let instance = if config.service_instance.is_empty() {
            instance
        } else {
            config.service_instance.as_str()
        };
        let resource = Resource::builder_empty()
            .with_service_name(service.to_string())
            .with_attribute(KeyValue::new("service.instance.id", instance.to_string()))
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(sampler)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("tributary");
        Ok((Exporter { provider }, tracer))
    }

    /// Sends what is queued and stops.
    pub(super) fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("tracing: flushing spans at shutdown failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_name_their_key_and_variable() {
        assert!(TracingConfig::default().validate().is_ok());
        let with = |f: fn(&mut TracingConfig)| {
            let mut c = TracingConfig::default();
            f(&mut c);
            c.validate().expect_err("refused")
        };
        let e = with(|c| c.sampler = "sometimes".into());
        assert_eq!(
            (e.key, e.env.as_str()),
            ("sampler", "TRIBUTARY_TRACING_SAMPLER")
        );
        let e = with(|c| {
            c.sampler = "random".into();
            c.random_sampler_probability = 1.5;
        });
        assert_eq!(e.key, "random_sampler_probability");
        assert!(e
            .to_string()
            .contains("TRIBUTARY_TRACING_RANDOM_SAMPLER_PROBABILITY"));
        let e = with(|c| {
            c.sampler = "adaptive".into();
            c.adaptive_sampler_throughput = 0.0;
        });
        assert_eq!(e.key, "adaptive_sampler_throughput");
        let e = with(|c| c.otlp_endpoint = "localhost:4317".into());
        assert_eq!(e.env, "OTEL_EXPORTER_OTLP_ENDPOINT");
        for s in ["always", "Never", "random", "adaptive"] {
            let c = TracingConfig {
                sampler: s.into(),
                ..Default::default()
            };
            assert!(c.validate().is_ok(), "{s}");
        }
    }
}
