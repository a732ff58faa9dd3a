//! Stream flags for the catalogue commands.

use crate::catalog_cmds::EntityArgs;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use std::collections::HashMap;
use tributary_common::duration;
use tributary_common::names::EntityName;
use tributary_proto::v1::{
    entity::Kind, DiscardPolicy, Entity, EntityKind, StorageType, Stream, StreamSource,
};

#[derive(Args, Clone, Default)]
pub struct StreamArgs {
    /// Subjects the stream takes (`*` and `>` wildcards; repeat or comma-separate).
    #[arg(long = "subjects", alias = "subject")]
    subjects: Vec<String>,
    /// `file` (RocksDB) or `memory`.
    #[arg(long)]
    storage: Option<String>,
    #[arg(long)]
    max_msgs: Option<i64>,
    #[arg(long)]
    max_bytes: Option<i64>,
    /// e.g. `24h`.
    #[arg(long)]
    max_age: Option<String>,
    #[arg(long)]
    max_msg_size: Option<i32>,
    #[arg(long)]
    max_msgs_per_subject: Option<i64>,
    /// `old` or `new`.
    #[arg(long)]
    discard: Option<String>,
    /// e.g. `2m`.
    #[arg(long)]
    duplicate_window: Option<String>,
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    deny_delete: Option<bool>,
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    deny_purge: Option<bool>,
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    allow_rollup: Option<bool>,
    #[arg(long)]
    replicas: Option<u32>,
    /// Origin stream to mirror.
    #[arg(long)]
    mirror: Option<String>,
    /// Origin stream to source from (repeatable).
    #[arg(long = "source")]
    sources: Vec<String>,
    /// ORIGIN=N: start sequence for an origin.
    #[arg(long = "start-seq")]
    start_seq: Vec<String>,
    /// ORIGIN=TIME: start time (RFC 3339 or unix ns) for an origin.
    #[arg(long = "start-time")]
    start_time: Vec<String>,
    /// ORIGIN=SUBJECT: filter subject for an origin.
    #[arg(long = "filter")]
    filter: Vec<String>,
    /// ORIGIN=HOST:PORT: the origin lives in another cluster (`https://HOST:PORT`: over TLS).
    #[arg(long = "external")]
    external: Vec<String>,
    /// ORIGIN=FILE: PEM CA to trust for TLS to the origin's cluster (turns TLS on).
    #[arg(long = "external-ca")]
    external_ca: Vec<String>,
    /// ORIGIN=SECRET: the stream secret of the origin's cluster (write-only: shown redacted).
    #[arg(long = "external-credentials")]
    external_credentials: Vec<String>,
    #[arg(long)]
    policy: Option<String>,
    /// A JetStream stream config (JSON, as `nats stream add --config`); flags override it.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
}

fn per_origin(flag: &str, raw: &[String]) -> Result<HashMap<String, String>> {
    raw.iter()
        .map(|r| {
            r.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("--{flag} {r:?}: want ORIGIN=VALUE"))
        })
        .collect()
}

/// The value a per-origin flag gives `stream`: by the name as typed or as the catalogue
/// spells it (`ORDERS` is `default:ORDERS`).
fn for_origin(flag: &str, raw: &[String], stream: &str) -> Result<Option<String>> {
    let canonical = |n: &str| EntityName::canonical(n).unwrap_or_else(|_| n.to_string());
    let want = canonical(stream);
    Ok(per_origin(flag, raw)?
        .into_iter()
        .find(|(k, _)| k == stream || canonical(k) == want)
        .map(|(_, v)| v))
}

impl StreamArgs {
    /// Sets what the per-origin flags say about `o`; the others keep their values, so
    /// `stream update` can change one origin's credentials alone.
    fn tune(&self, o: &mut StreamSource) -> Result<()> {
        let stream = o.stream.clone();
        if let Some(v) = for_origin("start-seq", &self.start_seq, &stream)? {
            o.start_seq = v
                .parse()
                .map_err(|_| anyhow!("--start-seq {stream}={v}: not a number"))?;
        }
        if let Some(v) = for_origin("start-time", &self.start_time, &stream)? {
            o.start_time_ns =
                duration::parse_time_ns(&v).map_err(|e| anyhow!("--start-time: {e}"))?;
        }
        if let Some(v) = for_origin("filter", &self.filter, &stream)? {
            o.filter_subject = v;
        }
        if let Some(v) = for_origin("external", &self.external, &stream)? {
            o.external = v;
        }
        if let Some(f) = for_origin("external-ca", &self.external_ca, &stream)? {
            o.external_ca_pem = std::fs::read_to_string(&f)
                .with_context(|| format!("--external-ca {stream}={f}"))?;
        }
        if let Some(v) = for_origin("external-credentials", &self.external_credentials, &stream)? {
            o.external_credentials = v;
        }
        Ok(())
    }

    fn origin(&self, stream: &str) -> Result<StreamSource> {
        let mut o = StreamSource {
            stream: stream.to_string(),
            ..Default::default()
        };
        self.tune(&mut o)?;
        Ok(o)
    }
}

impl EntityArgs for StreamArgs {
    const KIND: EntityKind = EntityKind::Stream;
    fn empty(name: &str) -> Entity {
        Entity {
            kind: Some(Kind::Stream(Stream {
                name: name.into(),
                ..Default::default()
            })),
        }
    }
    fn apply(&self, e: &mut Entity) -> Result<()> {
        let Some(Kind::Stream(s)) = &mut e.kind else {
            bail!("not a stream")
        };
        if let Some(path) = &self.config {
            crate::jetstream_config::apply(path, s)?;
        }
        if !self.subjects.is_empty() {
            s.subjects = self
                .subjects
                .iter()
                .flat_map(|x| x.split(','))
                .map(|x| x.trim().to_string())
                .collect();
        }
        if let Some(st) = &self.storage {
            s.storage = match st.as_str() {
                "file" => StorageType::File,
                "memory" => StorageType::Memory,
                other => bail!("--storage {other:?}: want file or memory"),
            } as i32;
        }
        if let Some(d) = &self.discard {
            s.discard = match d.as_str() {
                "old" => DiscardPolicy::DiscardOld,
                "new" => DiscardPolicy::DiscardNew,
                other => bail!("--discard {other:?}: want old or new"),
            } as i32;
        }
        let ms = |flag: &str, v: &Option<String>| -> Result<Option<u64>> {
            v.as_deref()
                .map(|r| {
                    duration::parse(r)
                        .map(|d| d.as_millis() as u64)
                        .map_err(|e| anyhow!("--{flag}: {e}"))
                })
                .transpose()
        };
        if let Some(v) = ms("max-age", &self.max_age)? {
            s.max_age_ms = v;
        }
        if let Some(v) = ms("duplicate-window", &self.duplicate_window)? {
            s.duplicate_window_ms = v;
        }
        if let Some(v) = self.max_msgs {
            s.max_msgs = v;
        }
        if let Some(v) = self.max_bytes {
            s.max_bytes = v;
        }
        if let Some(v) = self.max_msg_size {
            s.max_msg_size = v;
        }
        if let Some(v) = self.max_msgs_per_subject {
            s.max_msgs_per_subject = v;
        }
        if let Some(v) = self.deny_delete {
            s.deny_delete = v;
        }
        if let Some(v) = self.deny_purge {
            s.deny_purge = v;
        }
        if let Some(v) = self.allow_rollup {
            s.allow_rollup = v;
        }
        if let Some(v) = self.replicas {
            s.replicas = v;
        }
        if let Some(v) = &self.policy {
            s.policy = v.clone();
        }
        if let Some(m) = &self.mirror {
            s.mirror = Some(self.origin(m)?);
        }
        if !self.sources.is_empty() {
            s.sources = self
                .sources
                .iter()
                .map(|x| self.origin(x))
                .collect::<Result<_>>()?;
        } else if self.mirror.is_none() {
            // No new origins: the per-origin flags change the stream's own.
            for o in s.mirror.iter_mut().chain(s.sources.iter_mut()) {
                self.tune(o)?;
            }
        }
        Ok(())
    }
    fn header() -> &'static [&'static str] {
        &["stream", "subjects", "storage", "copies from", "node"]
    }
    fn row(e: &Entity) -> Vec<String> {
        let Some(Kind::Stream(s)) = &e.kind else {
            return vec![];
        };
        let storage = if s.storage == StorageType::Memory as i32 {
            "memory"
        } else {
            "file"
        };
        let from = match &s.mirror {
            Some(m) => format!("mirror of {}", m.stream),
            None => s
                .sources
                .iter()
                .map(|x| x.stream.clone())
                .collect::<Vec<_>>()
                .join(","),
        };
        vec![
            s.name.clone(),
            s.subjects.join(","),
            storage.into(),
            from,
            s.owner_node.to_string(),
        ]
    }
}
