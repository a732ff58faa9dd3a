//! The catalogue's rules, checked when a command is applied (so every member decides alike).
//! Each error names the field that is wrong.

use super::entity::{is_namespaced, kind_label, kind_of, name_of, REDACTED};
use super::Txn;
use crate::error::CatalogError;
use std::collections::HashSet;
use tributary_common::names::{validate_part, EntityName};
use tributary_proto::v1::{
    entity::Kind, Entity, EntityKind, Permission, Policy, Stream, StreamSource, Target, Well,
};

/// 2^17 s, Gravwell's default shard width.
const RESOURCE_TYPES: [&str; 6] = [
    "well:/",
    "stream:/",
    "target:/",
    "policy:/",
    "cluster:/",
    "namespace:/",
];

fn invalid(field: &str, reason: impl Into<String>) -> CatalogError {
    CatalogError::invalid(field, reason)
}

/// The canonical name of an entity of `kind`.
pub fn name(kind: EntityKind, raw: &str) -> Result<String, CatalogError> {
    if is_namespaced(kind) {
        return EntityName::canonical(raw).map_err(|e| invalid("name", e.to_string()));
    }
    match kind {
        EntityKind::DataNode => match raw.parse::<u64>() {
            Ok(id) if id > 0 => Ok(id.to_string()),
            _ => Err(invalid(
                "name",
                format!("data node id {raw:?} is not a positive number"),
            )),
        },
        EntityKind::Unspecified => Err(invalid("kind", "entity kind is missing")),
        _ => validate_part(raw)
            .map(|_| raw.to_string())
            .map_err(|r| invalid("name", format!("{raw:?} {r}"))),
    }
}

/// Checks and normalizes `e` (canonical names, defaults); `old` is the stored version on update.
pub fn entity(txn: &mut Txn<'_>, e: &mut Entity, old: Option<&Entity>) -> Result<(), CatalogError> {
    let kind = kind_of(e);
    let canonical = name(kind, &name_of(e))?;
    match &mut e.kind {
        Some(Kind::Well(w)) => {
            w.name = canonical;
            well(txn, w)
        }
        Some(Kind::Target(t)) => {
            t.name = canonical;
            let old_secret = match old.and_then(|o| o.kind.as_ref()) {
                Some(Kind::Target(o)) => Some(o.ingest_secret.clone()),
                _ => None,
            };
            target(txn, t, old_secret)
        }
        Some(Kind::Stream(s)) => {
            s.name = canonical;
            let old = match old.and_then(|o| o.kind.as_ref()) {
                Some(Kind::Stream(o)) => Some(o),
                _ => None,
            };
            stream(txn, s, old)
        }
        Some(Kind::Policy(p)) => {
            p.name = canonical;
            policy(p)
        }
        Some(Kind::Namespace(n)) => {
            n.name = canonical;
            Ok(())
        }
        Some(Kind::Tag(t)) => {
            t.name = canonical;
            Ok(())
        }
        Some(Kind::DataNode(_)) => Err(invalid("kind", "data nodes are added by registering")),
        None => Err(invalid("kind", "entity kind is missing")),
    }
}

fn policy_ref(txn: &Txn<'_>, field: &str, raw: &mut String) -> Result<(), CatalogError> {
    if raw.is_empty() {
        return Ok(());
    }
    *raw = EntityName::canonical(raw).map_err(|e| invalid(field, e.to_string()))?;
    if !txn.exists(EntityKind::Policy, raw)? {
        return Err(CatalogError::NotFound {
            kind: "policy",
            name: raw.clone(),
        });
    }
    Ok(())
}

fn well(txn: &mut Txn<'_>, w: &mut Well) -> Result<(), CatalogError> {
    if w.shard_duration_secs == 0 {
        w.shard_duration_secs = tributary_common::model::DEFAULT_SHARD_SECS;
    }
    if !w.cold_location.is_empty() && w.hot_duration_secs == 0 {
        return Err(invalid(
            "hot_duration",
            "is required when cold_location is set",
        ));
    }
    if w.cold_duration_secs != 0
        && w.hot_duration_secs != 0
        && w.cold_duration_secs <= w.hot_duration_secs
    {
        return Err(invalid("cold_duration", "must be longer than hot_duration"));
    }
    for t in &w.tags {
        validate_part(t).map_err(|r| invalid("tags", format!("tag {t:?} {r}")))?;
    }
    let mine: HashSet<&String> = w.tags.iter().collect();
    txn.visit(EntityKind::Well, |other| {
        let Some(Kind::Well(o)) = &other.kind else {
            return Ok(());
        };
        if o.name == w.name {
            return Ok(());
        }
        if let Some(t) = o.tags.iter().find(|t| mine.contains(t)) {
            return Err(invalid(
                "tags",
                format!("tag {t:?} is already routed to well {}", o.name),
            ));
        }
        if w.default_well && o.default_well {
            return Err(invalid(
                "default_well",
                format!("well {} is already the default well", o.name),
            ));
        }
        Ok(())
    })?;
    for t in &mut w.ditto_targets {
        *t = EntityName::canonical(t).map_err(|e| invalid("ditto_targets", e.to_string()))?;
        if !txn.exists(EntityKind::Target, t)? {
            return Err(CatalogError::NotFound {
                kind: "target",
                name: t.clone(),
            });
        }
    }
    policy_ref(txn, "policy", &mut w.policy)?;
    for t in w.tags.clone() {
        txn.ensure_tag(&t)?;
    }
    Ok(())
}

/// `HOST:PORT` with a numeric port.
pub fn endpoint(field: &str, raw: &str) -> Result<(), CatalogError> {
    let bad = || invalid(field, format!("{raw:?} is not HOST:PORT"));
    let (host, port) = raw.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(())
}

fn target(
    txn: &mut Txn<'_>,
    t: &mut Target,
    old_secret: Option<String>,
) -> Result<(), CatalogError> {
    if t.encrypted_endpoints.is_empty() && t.cleartext_endpoints.is_empty() {
        return Err(invalid(
            "endpoints",
            "give at least one encrypted or cleartext endpoint",
        ));
    }
    for e in &t.encrypted_endpoints {
        endpoint("encrypted_endpoints", e)?;
    }
    for e in &t.cleartext_endpoints {
        endpoint("cleartext_endpoints", e)?;
    }
    if t.ingest_secret.is_empty() || t.ingest_secret == REDACTED {
        // On update an absent or redacted secret keeps the stored one (secrets are write-only).
        t.ingest_secret = old_secret.ok_or_else(|| invalid("ingest_secret", "is required"))?;
    }
    if t.start_time_ns < 0 {
        return Err(invalid("start_time", "is before 1970"));
    }
    if !t.unresolvable_tag_destination.is_empty() {
        let d = t.unresolvable_tag_destination.clone();
        validate_part(&d)
            .map_err(|r| invalid("unresolvable_tag_destination", format!("{d:?} {r}")))?;
        txn.ensure_tag(&d)?;
    }
    policy_ref(txn, "policy", &mut t.policy)
}

/// A NATS subject or filter (the one grammar, in `common::subject`).
pub fn subject(field: &str, s: &str) -> Result<(), CatalogError> {
    tributary_common::subject::validate_filter(s).map_err(|e| invalid(field, e.to_string()))
}

fn stream(txn: &mut Txn<'_>, s: &mut Stream, old: Option<&Stream>) -> Result<(), CatalogError> {
    if s.mirror.is_some() && !s.sources.is_empty() {
        return Err(invalid(
            "mirror",
            "a stream has one mirror or any sources, not both",
        ));
    }
    if s.mirror.is_some() && !s.subjects.is_empty() {
        return Err(invalid("subjects", "a mirror takes no subjects of its own"));
    }
    if s.mirror.is_none() && s.sources.is_empty() && s.subjects.is_empty() {
        // As JetStream: a plain stream with no subjects takes its own name.
        s.subjects.push(
            s.name
                .split_once(':')
                .map_or(s.name.as_str(), |(_, n)| n)
                .to_string(),
        );
    }
    for subj in &s.subjects {
        subject("subjects", subj)?;
    }
    for (field, v) in [
        ("max_msgs", s.max_msgs),
        ("max_bytes", s.max_bytes),
        ("max_msgs_per_subject", s.max_msgs_per_subject),
    ] {
        if v < -1 {
            return Err(invalid(field, format!("{v} is negative")));
        }
    }
    if s.max_msg_size < -1 {
        return Err(invalid(
            "max_msg_size",
            format!("{} is negative", s.max_msg_size),
        ));
    }
    if s.replicas == 0 {
        s.replicas = 1;
    }
    if s.replicas > 5 {
        return Err(invalid("replicas", "at most 5"));
    }
    txn.visit(EntityKind::Stream, |other| {
        let Some(Kind::Stream(o)) = &other.kind else {
            return Ok(());
        };
        if o.name == s.name {
            return Ok(());
        }
        for mine in &s.subjects {
            if let Some(theirs) = o
                .subjects
                .iter()
                .find(|t| tributary_common::subject::overlap(mine, t))
            {
                return Err(invalid(
                    "subjects",
                    format!("subject {mine:?} overlaps {theirs:?} of stream {}", o.name),
                ));
            }
        }
        Ok(())
    })?;
    let mut origins = Vec::new();
    if let Some(m) = &mut s.mirror {
        origins.push(("mirror", m));
    }
    for src in &mut s.sources {
        origins.push(("sources", src));
    }
    for (field, o) in origins {
        o.stream = EntityName::canonical(&o.stream).map_err(|e| invalid(field, e.to_string()))?;
        if o.start_seq != 0 && o.start_time_ns != 0 {
            return Err(invalid(
                field,
                format!(
                    "{}: give a start sequence or a start time, not both",
                    o.stream
                ),
            ));
        }
        if !o.filter_subject.is_empty() {
            subject(&format!("{field}.filter_subject"), &o.filter_subject)?;
        }
        if o.external.is_empty() && !txn.exists(EntityKind::Stream, &o.stream)? {
            return Err(CatalogError::NotFound {
                kind: "stream",
                name: o.stream.clone(),
            });
        }
        if o.external.is_empty() && o.stream == s.name {
            return Err(invalid(field, "a stream cannot copy from itself"));
        }
        external_access(field, o, old)?;
    }
    no_cycle(txn, s)?;
    policy_ref(txn, "policy", &mut s.policy)
}

/// The TLS CA and credentials of an origin in another cluster. Credentials are write-only:
/// an update that echoes the redacted marker keeps those stored for the same origin (same
/// stream in the same cluster), never hands them to another.
fn external_access(
    field: &str,
    o: &mut StreamSource,
    old: Option<&Stream>,
) -> Result<(), CatalogError> {
    let (ca_field, creds_field) = (
        format!("{field}.external_ca_pem"),
        format!("{field}.external_credentials"),
    );
    if o.external.is_empty() {
        if !o.external_ca_pem.is_empty() {
            return Err(invalid(&ca_field, "is only for an external origin"));
        }
        if !o.external_credentials.is_empty() {
            return Err(invalid(&creds_field, "are only for an external origin"));
        }
        return Ok(());
    }
    if !o.external_ca_pem.is_empty() && !o.external_ca_pem.contains("-----BEGIN") {
        return Err(invalid(&ca_field, "is not a PEM certificate"));
    }
    if o.external_credentials == REDACTED {
        let stored = old
            .into_iter()
            .flat_map(|s| s.mirror.iter().chain(s.sources.iter()))
            .find(|p| p.stream == o.stream && p.external == o.external)
            .map(|p| p.external_credentials.clone());
        o.external_credentials = stored.ok_or_else(|| {
            invalid(
                &creds_field,
                format!(
                    "{}: redacted, and none are stored for this origin",
                    o.stream
                ),
            )
        })?;
    }
    if !o
        .external_credentials
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b))
    {
        return Err(invalid(
            &creds_field,
            "must be printable ASCII (they travel as a gRPC header)",
        ));
    }
    Ok(())
}

/// Local origins of a stream (mirror and sources in this cluster).
fn origins_of(s: &Stream) -> Vec<String> {
    s.mirror
        .iter()
        .chain(s.sources.iter())
        .filter(|o| o.external.is_empty())
        .map(|o| o.stream.clone())
        .collect()
}

fn no_cycle(txn: &Txn<'_>, s: &Stream) -> Result<(), CatalogError> {
    if origins_of(s).is_empty() {
        return Ok(());
    }
    let streams = txn.list(EntityKind::Stream)?;
    let edges = |name: &str| -> Vec<String> {
        if name == s.name {
            return origins_of(s);
        }
        streams
            .iter()
            .find_map(|e| match &e.kind {
                Some(Kind::Stream(o)) if o.name == name => Some(origins_of(o)),
                _ => None,
            })
            .unwrap_or_default()
    };
    let mut stack = edges(&s.name);
    let mut seen = HashSet::new();
    while let Some(n) = stack.pop() {
        if n == s.name {
            return Err(invalid(
                "mirror",
                format!("stream {} would copy from itself through a cycle", s.name),
            ));
        }
        if seen.insert(n.clone()) {
            stack.extend(edges(&n));
        }
    }
    Ok(())
}

fn policy(p: &mut Policy) -> Result<(), CatalogError> {
    if p.entries.is_empty() {
        return Err(invalid("entries", "a policy needs at least one entry"));
    }
    for (i, entry) in p.entries.iter().enumerate() {
        for subj in &entry.subjects {
            if !subj.contains(':') {
                return Err(invalid(
                    &format!("entries[{i}].subjects"),
                    format!("{subj:?} is not issuer:subject"),
                ));
            }
        }
        for r in &entry.resources {
            if !RESOURCE_TYPES.iter().any(|t| r.resource.starts_with(t)) {
                return Err(invalid(
                    &format!("entries[{i}].resources"),
                    format!(
                        "{:?} must start with one of {}",
                        r.resource,
                        RESOURCE_TYPES.join(", ")
                    ),
                ));
            }
            for perm in r.grant.iter().chain(r.revoke.iter()) {
                if !matches!(
                    Permission::try_from(*perm),
                    Ok(Permission::Read | Permission::Write | Permission::Admin)
                ) {
                    return Err(invalid(
                        &format!("entries[{i}].resources"),
                        "permissions are READ, WRITE or ADMIN",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether the entity may be deleted: nothing may still refer to it.
pub fn deletable(txn: &Txn<'_>, kind: EntityKind, name: &str) -> Result<(), CatalogError> {
    let busy = |by: String| {
        Err(CatalogError::FailedPrecondition(format!(
            "{} {name} is still used by {by}",
            kind_label(kind)
        )))
    };
    let wells = || txn.list(EntityKind::Well);
    match kind {
        EntityKind::Target => {
            for e in wells()? {
                if let Some(Kind::Well(w)) = &e.kind {
                    if w.ditto_targets.iter().any(|t| t == name) {
                        return busy(format!("well {}", w.name));
                    }
                }
            }
        }
        EntityKind::Tag => {
            for e in wells()? {
                if let Some(Kind::Well(w)) = &e.kind {
                    if w.tags.iter().any(|t| t == name) {
                        return busy(format!("well {}", w.name));
                    }
                }
            }
        }
        EntityKind::Policy => {
            for k in [EntityKind::Well, EntityKind::Stream, EntityKind::Target] {
                for e in txn.list(k)? {
                    let p = match &e.kind {
                        Some(Kind::Well(x)) => &x.policy,
                        Some(Kind::Stream(x)) => &x.policy,
                        Some(Kind::Target(x)) => &x.policy,
                        _ => continue,
                    };
                    if p == name {
                        return busy(format!("{} {}", kind_label(k), name_of(&e)));
                    }
                }
            }
        }
        EntityKind::Namespace => {
            for k in [
                EntityKind::Well,
                EntityKind::Stream,
                EntityKind::Target,
                EntityKind::Policy,
            ] {
                let prefix = format!("{name}:");
                if let Some(e) = txn
                    .list(k)?
                    .iter()
                    .find(|e| name_of(e).starts_with(&prefix))
                {
                    return busy(format!("{} {}", kind_label(k), name_of(e)));
                }
            }
        }
        EntityKind::DataNode => {
            for k in [EntityKind::Well, EntityKind::Stream] {
                for e in txn.list(k)? {
                    let owner = match &e.kind {
                        Some(Kind::Well(x)) => x.owner_node,
                        Some(Kind::Stream(x)) => x.owner_node,
                        _ => 0,
                    };
                    if owner.to_string() == name {
                        return busy(format!("{} {} (move it first)", kind_label(k), name_of(&e)));
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}
