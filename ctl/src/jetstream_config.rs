//! `stream create --config FILE`: a JetStream stream config (the JSON `nats stream add
//! --config` takes and `nats stream info --json` prints) as a Tributary stream. Flags given
//! beside `--config` win over the file.
//!
//! JetStream encodes "unlimited" as -1 and durations in nanoseconds; `external` is read from
//! `external.api` (a Tributary control-plane address), the one part with no JetStream
//! equivalent.

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::path::Path;
use tributary_common::duration;
use tributary_proto::v1::{DiscardPolicy, StorageType, Stream, StreamSource};

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsExternal {
    api: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsSource {
    name: String,
    opt_start_seq: u64,
    opt_start_time: Option<String>,
    filter_subject: String,
    external: Option<JsExternal>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsStream {
    name: String,
    subjects: Vec<String>,
    storage: Option<String>,
    retention: Option<String>,
    max_msgs: Option<i64>,
    max_bytes: Option<i64>,
    max_age: Option<i64>,
    max_msg_size: Option<i32>,
    max_msgs_per_subject: Option<i64>,
    discard: Option<String>,
    duplicate_window: Option<i64>,
    num_replicas: Option<u32>,
    placement: Option<JsPlacement>,
    deny_delete: Option<bool>,
    deny_purge: Option<bool>,
    allow_rollup_hdrs: Option<bool>,
    mirror: Option<JsSource>,
    sources: Vec<JsSource>,
}

/// JetStream's `placement` (its `cluster` has no meaning inside one Tributary cluster);
/// `unique_tag` is a server setting in NATS and a stream's here.
#[derive(Deserialize, Default)]
#[serde(default)]
struct JsPlacement {
    tags: Vec<String>,
    unique_tag: String,
}

fn source(s: JsSource) -> Result<StreamSource> {
    let start_time_ns = match s.opt_start_time.as_deref() {
        Some(t) if !t.is_empty() => {
            duration::parse_time_ns(t).map_err(|e| anyhow!("opt_start_time {t:?}: {e}"))?
        }
        _ => 0,
    };
    Ok(StreamSource {
        stream: s.name,
        start_seq: s.opt_start_seq,
        start_time_ns,
        filter_subject: s.filter_subject,
        external: s.external.map(|e| e.api).unwrap_or_default(),
        // TLS CA and credentials come from --external-ca / --external-credentials.
        ..Default::default()
    })
}

/// JetStream's -1 (unlimited) is our 0.
fn limit(v: i64) -> i64 {
    v.max(0)
}

/// Fills `s` from the JetStream config in `path` (the name is the command line's).
pub fn apply(path: &Path, s: &mut Stream) -> Result<()> {
    let raw =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let js: JsStream =
        serde_json::from_str(&raw).with_context(|| format!("parsing {}", path.display()))?;
    if !js.name.is_empty() && js.name != s.name && !s.name.ends_with(&format!(":{}", js.name)) {
        bail!(
            "{} names stream {:?}, not {:?}",
            path.display(),
            js.name,
            s.name
        );
    }
    if let Some(r) = js.retention.as_deref() {
        if r != "limits" {
            bail!("retention {r:?}: only \"limits\" is supported");
        }
    }
    s.subjects = js.subjects;
    if let Some(st) = js.storage {
        s.storage = match st.as_str() {
            "file" => StorageType::File,
            "memory" => StorageType::Memory,
            other => bail!("storage {other:?}: want file or memory"),
        } as i32;
    }
    if let Some(d) = js.discard {
        s.discard = match d.as_str() {
            "old" => DiscardPolicy::DiscardOld,
            "new" => DiscardPolicy::DiscardNew,
            other => bail!("discard {other:?}: want old or new"),
        } as i32;
    }
    let ns_to_ms = |v: i64| u64::try_from(v).unwrap_or(0) / 1_000_000;
    s.max_msgs = js.max_msgs.map_or(s.max_msgs, limit);
    s.max_bytes = js.max_bytes.map_or(s.max_bytes, limit);
    s.max_msgs_per_subject = js
        .max_msgs_per_subject
        .map_or(s.max_msgs_per_subject, limit);
    s.max_msg_size = js.max_msg_size.map_or(s.max_msg_size, |v| v.max(0));
    s.max_age_ms = js.max_age.map_or(s.max_age_ms, ns_to_ms);
    s.duplicate_window_ms = js.duplicate_window.map_or(s.duplicate_window_ms, ns_to_ms);
    s.replicas = js.num_replicas.unwrap_or(s.replicas);
    if let Some(p) = js.placement {
        s.placement = Some(tributary_proto::v1::Placement {
            tags: p.tags,
            unique_tag: p.unique_tag,
        });
    }
    s.deny_delete = js.deny_delete.unwrap_or(s.deny_delete);
    s.deny_purge = js.deny_purge.unwrap_or(s.deny_purge);
    s.allow_rollup = js.allow_rollup_hdrs.unwrap_or(s.allow_rollup);
    s.mirror = js.mirror.map(source).transpose()?;
    s.sources = js.sources.into_iter().map(source).collect::<Result<_>>()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_nats_stream_config() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("archive.json");
        std::fs::write(
            &p,
            r#"{"name":"ARCHIVE","subjects":[],"retention":"limits","max_consumers":-1,
                "max_msgs":-1,"max_bytes":-1,"max_age":86400000000000,"max_msg_size":-1,
                "storage":"file","discard":"old","num_replicas":1,"duplicate_window":120000000000,
                "sources":[{"name":"ORDERS","opt_start_seq":5},
                           {"name":"RETURNS","filter_subject":"RETURNS.eu",
                            "external":{"api":"10.0.0.9:7100"}}]}"#,
        )
        .unwrap();
        let mut s = Stream {
            name: "ARCHIVE".into(),
            ..Default::default()
        };
        apply(&p, &mut s).unwrap();
        assert_eq!((s.max_msgs, s.max_bytes, s.max_msg_size), (0, 0, 0));
        assert_eq!((s.max_age_ms, s.duplicate_window_ms), (86_400_000, 120_000));
        assert_eq!(s.storage, StorageType::File as i32);
        assert_eq!(s.sources.len(), 2);
        assert_eq!(s.sources[0].start_seq, 5);
        assert_eq!(s.sources[1].filter_subject, "RETURNS.eu");
        assert_eq!(s.sources[1].external, "10.0.0.9:7100");
        assert!(s.mirror.is_none());

        let mut other = Stream {
            name: "REPORT".into(),
            ..Default::default()
        };
        assert!(
            apply(&p, &mut other).is_err(),
            "a config for another stream"
        );
    }
}
