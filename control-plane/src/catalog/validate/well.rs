//! Wells (tag routes, the default well, hot/cold ageout, ditto targets) and ditto targets
//! (endpoints, the write-only ingest secret).

use super::draft::Draft;
use super::fields::{endpoint, invalid, location, policy_ref};
use crate::catalog::entity::REDACTED;
use crate::error::CatalogError;
use std::collections::HashSet;
use tributary_common::names::{validate_part, EntityName};
use tributary_proto::v1::{entity::Kind, EntityKind, Target, Well};

pub(super) fn well(txn: &mut dyn Draft, w: &mut Well) -> Result<(), CatalogError> {
    if w.shard_duration_secs == 0 {
        w.shard_duration_secs = tributary_common::model::DEFAULT_SHARD_SECS;
    }
    location("hot_location", &w.hot_location)?;
    location("cold_location", &w.cold_location)?;
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
    txn.visit(EntityKind::Well, &mut |other| {
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

pub(super) fn target(
    txn: &mut dyn Draft,
    t: &mut Target,
    old: Option<&Target>,
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
        // On update an absent or redacted secret keeps the stored one (secrets are write-only),
        // but only for the destination it was given for: never carried to other endpoints.
        let old = old.ok_or_else(|| invalid("ingest_secret", "is required"))?;
        if !same_destination(t, old) {
            return Err(invalid(
                "ingest_secret",
                "give the ingest secret again when the endpoints or the CA change: the stored \
                 one is not sent to a new destination",
            ));
        }
        t.ingest_secret = old.ingest_secret.clone();
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

/// Whether an update sends to where the stored target did: the same endpoints (in any
/// order) trusted with the same CA. Compared as stored: where `[encryption]` seals the
/// endpoints or the CA, each write seals them anew, so every update counts as a new
/// destination and gives the secret again.
fn same_destination(t: &Target, old: &Target) -> bool {
    let set = |v: &[String]| v.iter().cloned().collect::<HashSet<String>>();
    set(&t.encrypted_endpoints) == set(&old.encrypted_endpoints)
        && set(&t.cleartext_endpoints) == set(&old.cleartext_endpoints)
        && t.ca_pem == old.ca_pem
}
