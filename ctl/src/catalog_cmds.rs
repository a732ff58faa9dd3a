//! `tribctl well|target|stream|policy create|get|list|update|delete`: one generic CRUD over
//! the catalogue; each kind only says how its flags fill the entity and how a row looks.

use crate::client::ControlPlane;
use crate::output;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use tributary_common::duration;
use tributary_proto::v1::{entity::Kind, Entity, EntityKind, EntityRef, ListRequest, MoveRequest};

#[derive(Subcommand)]
pub enum Crud<A: Args> {
    /// Create a new entity.
    Create {
        name: String,
        #[command(flatten)]
        args: A,
    },
    /// Show one entity (streams: with SEQ, the message at that sequence).
    Get { name: String, seq: Option<u64> },
    /// List entities (of one namespace with --namespace).
    List {
        #[arg(long)]
        namespace: Option<String>,
    },
    /// Change the given fields of an entity; the others keep their values.
    Update {
        name: String,
        #[command(flatten)]
        args: A,
    },
    /// Delete an entity.
    Delete { name: String },
    /// Move a well or stream to another data node; a replicated stream's replica on
    /// `--from` to `--to` (or where the control plane places it), as `nats stream cluster
    /// peer-remove`: its group adds the new replica, lets it catch up, then drops the old one.
    Move {
        name: String,
        /// The data node to move to (as `--to`).
        node: Option<u64>,
        #[arg(long, conflicts_with = "node")]
        to: Option<u64>,
        /// A replicated stream: the data node whose replica moves.
        #[arg(long)]
        from: Option<u64>,
    },
}

/// How one kind's flags map onto its entity, and how it is shown.
pub trait EntityArgs: Args {
    const KIND: EntityKind;
    fn empty(name: &str) -> Entity;
    fn apply(&self, e: &mut Entity) -> Result<()>;
    fn header() -> &'static [&'static str];
    fn row(e: &Entity) -> Vec<String>;
}

pub async fn run<A: EntityArgs>(cmd: Crud<A>, cp: &ControlPlane, json: bool) -> Result<()> {
    let kind = A::KIND as i32;
    match cmd {
        Crud::Create { name, args } => {
            let mut e = A::empty(&name);
            args.apply(&mut e)?;
            let r = cp
                .catalog(|mut c| {
                    let e = e.clone();
                    async move { c.create(e).await }
                })
                .await?;
            if A::KIND == EntityKind::Well {
                crate::well_data::wait_served(&name, cp).await;
            }
            show_one::<A>(r.entity, r.revision, json, "created")
        }
        Crud::Update { name, args } => {
            let reference = EntityRef { kind, name };
            let mut e = cp
                .catalog(|mut c| {
                    let r = reference.clone();
                    async move { c.get(r).await }
                })
                .await?
                .entity
                .ok_or_else(|| anyhow!("server returned no entity"))?;
            args.apply(&mut e)?;
            let r = cp
                .catalog(|mut c| {
                    let e = e.clone();
                    async move { c.update(e).await }
                })
                .await?;
            show_one::<A>(r.entity, r.revision, json, "updated")
        }
        Crud::Get {
            name,
            seq: Some(seq),
        } if A::KIND == EntityKind::Stream => crate::stream_data::get(name, seq, cp, json).await,
        Crud::Get { seq: Some(_), .. } => Err(anyhow!("only stream get takes a sequence")),
        Crud::Get { name, seq: None } => {
            let reference = EntityRef { kind, name };
            let r = cp
                .catalog(|mut c| {
                    let r = reference.clone();
                    async move { c.get(r).await }
                })
                .await?;
            show_one::<A>(r.entity, r.revision, json, "")
        }
        Crud::Delete { name } => {
            let reference = EntityRef { kind, name };
            let r = cp
                .catalog(|mut c| {
                    let r = reference.clone();
                    async move { c.delete(r).await }
                })
                .await?;
            show_one::<A>(r.entity, r.revision, json, "deleted")
        }
        Crud::Move {
            name,
            node,
            to,
            from,
        } => {
            let node_id = node.or(to).unwrap_or(0);
            if node_id == 0 && from.is_none() {
                bail!("give the data node to move to (NODE or --to), or for a replicated stream the replica to move (--from)");
            }
            let req = MoveRequest {
                kind,
                name,
                node_id,
                from_node: from.unwrap_or(0),
            };
            let r = cp
                .catalog(|mut c| {
                    let q = req.clone();
                    async move { c.r#move(q).await }
                })
                .await?;
            show_one::<A>(r.entity, r.revision, json, "moved")
        }
        Crud::List { namespace } => {
            let req = ListRequest {
                kind,
                namespace: namespace.unwrap_or_default(),
            };
            let r = cp
                .catalog(|mut c| {
                    let q = req.clone();
                    async move { c.list(q).await }
                })
                .await?;
            if json {
                let items: Vec<serde_json::Value> =
                    r.entities.iter().map(inner_json).collect::<Result<_>>()?;
                return output::json(
                    &serde_json::json!({ "revision": r.revision, "items": items }),
                );
            }
            println!(
                "{}",
                output::table(A::header(), r.entities.iter().map(A::row).collect())
            );
            Ok(())
        }
    }
}

/// The entity's own message as JSON (without the oneof wrapper).
fn inner_json(e: &Entity) -> Result<serde_json::Value> {
    let v = serde_json::to_value(e)?;
    Ok(v.get("kind")
        .and_then(|k| k.as_object())
        .and_then(|o| o.values().next().cloned())
        .unwrap_or(v))
}

fn show_one<A: EntityArgs>(e: Option<Entity>, revision: u64, json: bool, verb: &str) -> Result<()> {
    let e = e.ok_or_else(|| anyhow!("server returned no entity"))?;
    if json {
        return output::json(
            &serde_json::json!({ "revision": revision, "entity": inner_json(&e)? }),
        );
    }
    if !verb.is_empty() {
        println!("{verb} at revision {revision}");
    }
    println!("{}", output::fields(&inner_json(&e)?)?);
    Ok(())
}

fn secs(field: &str, raw: &Option<String>) -> Result<Option<u64>> {
    raw.as_deref()
        .map(|r| {
            duration::parse(r)
                .map(|d| d.as_secs())
                .map_err(|e| anyhow!("--{field}: {e}"))
        })
        .transpose()
}

fn set<T: Clone>(dst: &mut T, v: &Option<T>) {
    if let Some(v) = v {
        *dst = v.clone();
    }
}

fn list_flag(dst: &mut Vec<String>, v: &[String]) {
    if !v.is_empty() {
        *dst = v
            .iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
}

#[derive(Args, Clone, Default)]
pub struct WellArgs {
    /// Tags routed to this well (repeat or comma-separate).
    #[arg(long = "tags", alias = "tag")]
    tags: Vec<String>,
    /// Make this the default well (takes entries of unrouted tags).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    default_well: Option<bool>,
    /// Shard width, e.g. `36h` (default 2^17 s).
    #[arg(long)]
    shard_duration: Option<String>,
    #[arg(long)]
    hot_location: Option<String>,
    #[arg(long)]
    cold_location: Option<String>,
    #[arg(long)]
    hot_duration: Option<String>,
    #[arg(long)]
    cold_duration: Option<String>,
    /// Ditto targets this well is mirrored to (repeat or comma-separate).
    #[arg(long = "ditto-target", alias = "ditto-targets")]
    ditto_targets: Vec<String>,
    #[arg(long)]
    policy: Option<String>,
}

impl EntityArgs for WellArgs {
    const KIND: EntityKind = EntityKind::Well;
    fn empty(name: &str) -> Entity {
        Entity {
            kind: Some(Kind::Well(tributary_proto::v1::Well {
                name: name.into(),
                ..Default::default()
            })),
        }
    }
    fn apply(&self, e: &mut Entity) -> Result<()> {
        let Some(Kind::Well(w)) = &mut e.kind else {
            bail!("not a well")
        };
        list_flag(&mut w.tags, &self.tags);
        set(&mut w.default_well, &self.default_well);
        set(
            &mut w.shard_duration_secs,
            &secs("shard-duration", &self.shard_duration)?,
        );
        set(&mut w.hot_location, &self.hot_location);
        set(&mut w.cold_location, &self.cold_location);
        set(
            &mut w.hot_duration_secs,
            &secs("hot-duration", &self.hot_duration)?,
        );
        set(
            &mut w.cold_duration_secs,
            &secs("cold-duration", &self.cold_duration)?,
        );
        list_flag(&mut w.ditto_targets, &self.ditto_targets);
        set(&mut w.policy, &self.policy);
        Ok(())
    }
    fn header() -> &'static [&'static str] {
        &[
            "well",
            "tags",
            "shard",
            "hot",
            "cold",
            "ditto targets",
            "node",
        ]
    }
    fn row(e: &Entity) -> Vec<String> {
        let Some(Kind::Well(w)) = &e.kind else {
            return vec![];
        };
        let d = |s: u64| {
            if s == 0 {
                "-".into()
            } else {
                humantime::format_duration(std::time::Duration::from_secs(s)).to_string()
            }
        };
        vec![
            format!(
                "{}{}",
                w.name,
                if w.default_well { " (default)" } else { "" }
            ),
            w.tags.join(","),
            d(w.shard_duration_secs),
            format!(
                "{} {}",
                if w.hot_location.is_empty() {
                    "-"
                } else {
                    &w.hot_location
                },
                d(w.hot_duration_secs)
            ),
            format!(
                "{} {}",
                if w.cold_location.is_empty() {
                    "-"
                } else {
                    &w.cold_location
                },
                d(w.cold_duration_secs)
            ),
            w.ditto_targets.join(","),
            w.owner_node.to_string(),
        ]
    }
}

#[derive(Args, Clone, Default)]
pub struct TargetArgs {
    /// TLS ingest endpoint HOST:PORT of the target cluster (repeatable).
    #[arg(long = "encrypted-endpoint")]
    encrypted_endpoints: Vec<String>,
    /// Cleartext ingest endpoint HOST:PORT (repeatable).
    #[arg(long = "cleartext-endpoint")]
    cleartext_endpoints: Vec<String>,
    /// Ingest secret of the target (write-only: shown redacted).
    #[arg(long)]
    ingest_secret: Option<String>,
    /// Shards from the one holding this time are sent: unix seconds (as Gravwell's
    /// Start-Time), RFC 3339 in UTC, or unix nanoseconds (19 digits); other numbers are refused.
    #[arg(long)]
    start_time: Option<String>,
    #[arg(long)]
    unresolvable_tag_destination: Option<String>,
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    compression: Option<bool>,
    /// Bytes per second (0 = unlimited).
    #[arg(long)]
    bandwidth_limit: Option<u64>,
    /// PEM file of the CA that signs the target's TLS certificate.
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
    #[arg(long)]
    policy: Option<String>,
}

impl EntityArgs for TargetArgs {
    const KIND: EntityKind = EntityKind::Target;
    fn empty(name: &str) -> Entity {
        Entity {
            kind: Some(Kind::Target(tributary_proto::v1::Target {
                name: name.into(),
                ..Default::default()
            })),
        }
    }
    fn apply(&self, e: &mut Entity) -> Result<()> {
        let Some(Kind::Target(t)) = &mut e.kind else {
            bail!("not a target")
        };
        list_flag(&mut t.encrypted_endpoints, &self.encrypted_endpoints);
        list_flag(&mut t.cleartext_endpoints, &self.cleartext_endpoints);
        set(&mut t.ingest_secret, &self.ingest_secret);
        if let Some(s) = &self.start_time {
            t.start_time_ns =
                crate::start_time::parse(s).map_err(|e| anyhow!("--start-time: {e}"))?;
        }
        set(
            &mut t.unresolvable_tag_destination,
            &self.unresolvable_tag_destination,
        );
        set(&mut t.enable_compression, &self.compression);
        set(&mut t.bandwidth_limit, &self.bandwidth_limit);
        if let Some(f) = &self.ca_file {
            t.ca_pem =
                std::fs::read_to_string(f).with_context(|| format!("--ca-file {}", f.display()))?;
        }
        set(&mut t.policy, &self.policy);
        Ok(())
    }
    fn header() -> &'static [&'static str] {
        &["target", "endpoints", "secret", "start time", "compression"]
    }
    fn row(e: &Entity) -> Vec<String> {
        let Some(Kind::Target(t)) = &e.kind else {
            return vec![];
        };
        let eps: Vec<String> = t
            .encrypted_endpoints
            .iter()
            .map(|e| format!("tls://{e}"))
            .chain(t.cleartext_endpoints.iter().cloned())
            .collect();
        vec![
            t.name.clone(),
            eps.join(","),
            t.ingest_secret.clone(),
            if t.start_time_ns == 0 {
                "-".into()
            } else {
                crate::well_data::rfc3339(t.start_time_ns)
            },
            t.enable_compression.to_string(),
        ]
    }
}
