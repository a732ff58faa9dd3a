//! Stream flags for the catalogue commands.

use crate::catalog_cmds::EntityArgs;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
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
    /// 1, 3 or 5: a replicated stream is a Raft group of that many data nodes.
    #[arg(long)]
    replicas: Option<u32>,
    /// Placement tag every replica's data node must carry (repeatable), as `nats --tag`.
    #[arg(long = "tag")]
    placement_tags: Vec<String>,
    /// Tag prefix whose values must all differ across the replicas' nodes (e.g. `az:`).
    #[arg(long)]
    unique_tag: Option<String>,
    /// Origin stream to mirror.
    #[arg(long)]
    mirror: Option<String>,
    /// Origin stream to source from (repeatable). The per-origin flags below (ORIGIN=VALUE)
    /// given once apply to every source of that origin; given once per `--source ORIGIN`, they
    /// go to those sources in order, so `--source O --source O --filter O=O.a --filter O=O.b`
    /// sources O twice, filtered on O.a and on O.b. Other counts, an ORIGIN that is not a
    /// source or mirror of the stream, and two identical sources are errors.
    #[arg(long = "source")]
    sources: Vec<String>,
    /// ORIGIN=N: start sequence for an origin.
    #[arg(long = "start-seq")]
    start_seq: Vec<String>,
    /// ORIGIN=TIME: start time (RFC 3339 or unix ns) for an origin.
    #[arg(long = "start-time")]
    start_time: Vec<String>,
    /// ORIGIN=SUBJECT: filter subject for an origin (an origin sourced twice: one --filter per
    /// --source of it, in order; see --source).
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

/// One per-origin flag's `ORIGIN=VALUE`s, in the order given.
type OriginValues = Vec<(String, String)>;

fn per_origin(flag: &str, raw: &[String]) -> Result<OriginValues> {
    raw.iter()
        .map(|r| {
            r.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("--{flag} {r:?}: want ORIGIN=VALUE"))
        })
        .collect()
}

/// An origin's name as the catalogue spells it (`ORDERS` is `default:ORDERS`), so a flag
/// matches whichever way it is typed.
fn canonical(name: &str) -> String {
    EntityName::canonical(name).unwrap_or_else(|_| name.to_string())
}

/// The value of one per-origin flag for the `nth` (from 0) of the `count` origins named
/// `origin`: one value goes to all of them, `count` values go to them in order.
fn pick(
    flag: &str,
    values: &[(String, String)],
    origin: &str,
    nth: usize,
    count: usize,
) -> Result<Option<String>> {
    let want = canonical(origin);
    let mine: Vec<&String> = values
        .iter()
        .filter(|(k, _)| canonical(k) == want)
        .map(|(_, v)| v)
        .collect();
    match mine.len() {
        0 => Ok(None),
        1 => Ok(Some(mine[0].clone())),
        n if n == count => Ok(Some(mine[nth].clone())),
        n => bail!(
            "--{flag}: {n} values for {origin}, which this stream copies from {count} time(s): \
             give one (for every {origin} origin) or one per --source {origin}, in order"
        ),
    }
}

impl StreamArgs {
    /// The per-origin flags, by flag name.
    fn origin_flags(&self) -> Result<Vec<(&'static str, OriginValues)>> {
        [
            ("start-seq", &self.start_seq),
            ("start-time", &self.start_time),
            ("filter", &self.filter),
            ("external", &self.external),
            ("external-ca", &self.external_ca),
            ("external-credentials", &self.external_credentials),
        ]
        .into_iter()
        .map(|(flag, raw)| Ok((flag, per_origin(flag, raw)?)))
        .collect()
    }

    /// Sets what the per-origin flags say about `origins`; what they leave out keeps its
    /// value, so `stream update` can change one origin's credentials alone. A flag naming no
    /// origin of the stream is an error, not ignored.
    fn tune(&self, origins: Vec<&mut StreamSource>) -> Result<()> {
        let flags = self.origin_flags()?;
        let names: Vec<String> = origins.iter().map(|o| canonical(&o.stream)).collect();
        for (flag, values) in &flags {
            if let Some((k, v)) = values.iter().find(|(k, _)| !names.contains(&canonical(k))) {
                let known: Vec<&str> = origins.iter().map(|o| o.stream.as_str()).collect();
                bail!(
                    "--{flag} {k}={v}: {k} is not an origin of this stream (origins: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                );
            }
        }
        for (j, o) in origins.into_iter().enumerate() {
            let name = &names[j];
            let nth = names[..j].iter().filter(|n| *n == name).count();
            let count = names.iter().filter(|n| *n == name).count();
            let stream = o.stream.clone();
            let value = |i: usize| pick(flags[i].0, &flags[i].1, &stream, nth, count);
            if let Some(v) = value(0)? {
                o.start_seq = v
                    .parse()
                    .map_err(|_| anyhow!("--start-seq {stream}={v}: not a number"))?;
            }
            if let Some(v) = value(1)? {
                o.start_time_ns =
                    duration::parse_time_ns(&v).map_err(|e| anyhow!("--start-time: {e}"))?;
            }
            if let Some(v) = value(2)? {
                o.filter_subject = v;
            }
            if let Some(v) = value(3)? {
                o.external = v;
            }
            if let Some(f) = value(4)? {
                o.external_ca_pem = std::fs::read_to_string(&f)
                    .with_context(|| format!("--external-ca {stream}={f}"))?;
            }
            if let Some(v) = value(5)? {
                o.external_credentials = v;
            }
        }
        Ok(())
    }
}

/// Two sources that copy the same messages would store each one twice.
fn refuse_duplicates(sources: &[StreamSource]) -> Result<()> {
    for (i, a) in sources.iter().enumerate() {
        if sources[i + 1..].contains(a) {
            bail!(
                "two sources of {} are the same (filter {:?}): give each its own --filter \
                 (one per --source {}, in order)",
                a.stream,
                a.filter_subject,
                a.stream
            );
        }
    }
    Ok(())
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
        if !self.placement_tags.is_empty() || self.unique_tag.is_some() {
            let p = s.placement.get_or_insert_with(Default::default);
            if !self.placement_tags.is_empty() {
                p.tags.clone_from(&self.placement_tags);
            }
            if let Some(u) = &self.unique_tag {
                p.unique_tag.clone_from(u);
            }
        }
        if let Some(v) = &self.policy {
            s.policy = v.clone();
        }
        let origin = |name: &String| StreamSource {
            stream: name.clone(),
            ..Default::default()
        };
        if let Some(m) = &self.mirror {
            s.mirror = Some(origin(m));
        }
        if !self.sources.is_empty() {
            s.sources = self.sources.iter().map(origin).collect();
        }
        // The per-origin flags go to the origins given now, else to the stream's own.
        let Stream {
            mirror, sources, ..
        } = s;
        let origins: Vec<&mut StreamSource> = match (&self.mirror, self.sources.is_empty()) {
            (Some(_), true) => mirror.iter_mut().collect(),
            (None, false) => sources.iter_mut().collect(),
            _ => mirror.iter_mut().chain(sources.iter_mut()).collect(),
        };
        self.tune(origins)?;
        refuse_duplicates(&s.sources)
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        args: StreamArgs,
    }

    fn apply(flags: &str, to: Stream) -> Result<Stream> {
        let argv = std::iter::once("x").chain(flags.split_whitespace());
        let args = Flags::try_parse_from(argv)?.args;
        let mut e = Entity {
            kind: Some(Kind::Stream(to)),
        };
        args.apply(&mut e)?;
        match e.kind {
            Some(Kind::Stream(s)) => Ok(s),
            _ => bail!("not a stream"),
        }
    }

    fn filters(s: &Stream) -> Vec<(&str, &str)> {
        s.sources
            .iter()
            .map(|o| (o.stream.as_str(), o.filter_subject.as_str()))
            .collect()
    }

    #[test]
    fn one_origin_sourced_twice_takes_its_filters_in_order() -> Result<()> {
        let s = apply(
            "--source ORDERS --source RETURNS --source ORDERS --filter ORDERS=ORDERS.a \
             --filter default:ORDERS=ORDERS.b --start-seq ORDERS=5",
            Stream::default(),
        )?;
        assert_eq!(
            filters(&s),
            [
                ("ORDERS", "ORDERS.a"),
                ("RETURNS", ""),
                ("ORDERS", "ORDERS.b")
            ]
        );
        // Given once, a per-origin flag is for every source of that origin.
        assert!(s
            .sources
            .iter()
            .filter(|o| o.stream == "ORDERS")
            .all(|o| o.start_seq == 5));
        assert_eq!(s.sources[1].start_seq, 0);
        Ok(())
    }

    #[test]
    fn ambiguous_origin_flags_are_errors() {
        let err = |flags: &str| apply(flags, Stream::default()).unwrap_err().to_string();
        let e = err("--source ORDERS --source ORDERS --filter ORDERS=ORDERS.a");
        assert!(e.contains("two sources of ORDERS are the same"), "{e}");
        let e = err(
            "--source ORDERS --source ORDERS --filter ORDERS=a --filter ORDERS=b --filter ORDERS=c",
        );
        assert!(
            e.contains("--filter: 3 values for ORDERS") && e.contains("2 time(s)"),
            "{e}"
        );
        let e = err("--source ORDERS --filter ORDRES=ORDERS.a");
        assert!(
            e.contains("ORDRES is not an origin") && e.contains("ORDERS"),
            "{e}"
        );
        let e = err("--filter ORDERS=ORDERS.a");
        assert!(e.contains("(origins: none)"), "{e}");
        let e = err("--source ORDERS --source ORDERS");
        assert!(e.contains("are the same"), "{e}");
    }

    #[test]
    fn update_tunes_the_streams_own_origins_in_order() -> Result<()> {
        let origin = |f: &str| StreamSource {
            stream: "ORDERS".into(),
            filter_subject: f.into(),
            ..Default::default()
        };
        let stored = Stream {
            sources: vec![origin("ORDERS.a"), origin("ORDERS.b")],
            ..Default::default()
        };
        let s = apply("--external-credentials ORDERS=hush", stored.clone())?;
        assert_eq!(
            filters(&s),
            [("ORDERS", "ORDERS.a"), ("ORDERS", "ORDERS.b")]
        );
        assert!(s.sources.iter().all(|o| o.external_credentials == "hush"));
        let s = apply("--filter ORDERS=ORDERS.c --filter ORDERS=ORDERS.d", stored)?;
        assert_eq!(
            filters(&s),
            [("ORDERS", "ORDERS.c"), ("ORDERS", "ORDERS.d")]
        );
        Ok(())
    }
}
