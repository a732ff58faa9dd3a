//! Streams: subjects that overlap no other stream's, limits, and origins (a mirror or
//! sources, local or in another cluster) that exist, form no cycle and carry valid access.

use super::draft::Draft;
use super::fields::{invalid, policy_ref, subject};
use crate::catalog::entity::REDACTED;
use crate::error::CatalogError;
use std::collections::HashSet;
use tributary_common::names::EntityName;
use tributary_proto::v1::{entity::Kind, EntityKind, Stream, StreamSource};

pub(super) fn stream(
    txn: &mut dyn Draft,
    s: &mut Stream,
    old: Option<&Stream>,
) -> Result<(), CatalogError> {
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
    match s.replicas {
        1 | 3 | 5 => {}
        2 | 4 => {
            return Err(invalid(
                "replicas",
                format!(
                    "{} replicas are refused: an even count survives no more failures than one \
                     fewer (2 loses its quorum when one node fails); use 1, 3 or 5",
                    s.replicas
                ),
            ))
        }
        n => return Err(invalid("replicas", format!("{n}: use 1, 3 or 5"))),
    }
    if s.replicas > 1 && s.storage == tributary_proto::v1::StorageType::Memory as i32 {
        return Err(invalid(
            "replicas",
            "memory streams are not replicated yet: use storage file, or replicas 1",
        ));
    }
    if let Some(p) = &s.placement {
        for t in p.tags.iter().chain(std::iter::once(&p.unique_tag)) {
            if t.len() > 255 || t.chars().any(char::is_control) {
                return Err(invalid(
                    "placement",
                    format!("tag {t:?} is over 255 bytes or holds control characters"),
                ));
            }
        }
    }
    if let Some(o) = txn.subject_overlap(&s.name, &s.subjects)? {
        return Err(invalid(
            "subjects",
            format!(
                "subject {:?} overlaps {:?} of stream {}",
                o.mine, o.theirs, o.stream
            ),
        ));
    }
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
    no_duplicate_source(&s.sources)?;
    no_cycle(txn, s)?;
    policy_ref(txn, "policy", &mut s.policy)
}

/// The TLS CA and credentials of an origin in another cluster. Credentials are write-only:
/// an update that echoes the redacted marker keeps those stored for the same origin (same
/// stream in the same cluster, trusted with the same CA), never hands them to another.
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
            .find(|p| {
                p.stream == o.stream
                    && p.external == o.external
                    && p.external_ca_pem == o.external_ca_pem
            })
            .map(|p| p.external_credentials.clone());
        o.external_credentials = stored.ok_or_else(|| {
            invalid(
                &creds_field,
                format!(
                    "{}: redacted, and none are stored for this origin: give the credentials \
                     again when its external address or CA changes",
                    o.stream
                ),
            )
        })?;
    }
    printable_credentials(&creds_field, &o.external_credentials)
}

/// Credentials travel as a gRPC header. Checked again on the plaintext before it is sealed
/// (`credentials_as_written`): a sealed value is always printable.
fn printable_credentials(field: &str, creds: &str) -> Result<(), CatalogError> {
    if !creds.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(invalid(
            field,
            "must be printable ASCII (they travel as a gRPC header)",
        ));
    }
    Ok(())
}

/// The rules on a stream's origin credentials that only the plaintext shows, checked where a
/// client's write arrives, before its secrets are sealed.
pub fn credentials_as_written(s: &Stream) -> Result<(), CatalogError> {
    let named = s.mirror.iter().map(|o| ("mirror", o));
    for (field, o) in named.chain(s.sources.iter().map(|o| ("sources", o))) {
        printable_credentials(
            &format!("{field}.external_credentials"),
            &o.external_credentials,
        )?;
    }
    Ok(())
}

/// The same origin (stream, cluster) may be a source twice only with different filters, as
/// in JetStream: the same one twice would copy every message twice. Names are canonical here.
fn no_duplicate_source(sources: &[StreamSource]) -> Result<(), CatalogError> {
    for (i, src) in sources.iter().enumerate() {
        let same = |o: &StreamSource| {
            o.stream == src.stream
                && o.external == src.external
                && o.filter_subject == src.filter_subject
        };
        if let Some(j) = sources[..i].iter().position(same) {
            let origin = if src.external.is_empty() {
                format!("stream {}", src.stream)
            } else {
                format!("stream {} in {}", src.stream, src.external)
            };
            let filter = if src.filter_subject.is_empty() {
                "no filter".to_string()
            } else {
                format!("filter {:?}", src.filter_subject)
            };
            return Err(invalid(
                &format!("sources[{i}]"),
                format!(
                    "duplicates sources[{j}] ({origin}, {filter}); one origin is sourced twice only with different filters"
                ),
            ));
        }
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

/// Follows origins from `s` through the stored streams, one stream at a time (never a copy
/// of them all), looking for `s` itself.
fn no_cycle(txn: &dyn Draft, s: &Stream) -> Result<(), CatalogError> {
    let mut stack = origins_of(s);
    let mut seen = HashSet::new();
    while let Some(n) = stack.pop() {
        if n == s.name {
            return Err(invalid(
                "mirror",
                format!("stream {} would copy from itself through a cycle", s.name),
            ));
        }
        if seen.insert(n.clone()) {
            if let Some(Kind::Stream(o)) = txn.get(EntityKind::Stream, &n)?.and_then(|e| e.kind) {
                stack.extend(origins_of(&o));
            }
        }
    }
    Ok(())
}
