//! Placement: which data nodes a new well or stream lives on. One replica goes to the least
//! loaded live node; a replicated stream (3 or 5) to that many distinct live nodes, least
//! loaded first, carrying every placement tag it asks for and, with a `unique_tag` such as
//! `az:`, on nodes whose values of that tag all differ (JetStream's `placement {tags}` and
//! `unique_tag`). A placement that cannot be met is refused naming why: nothing is created.

use super::apply::Txn;
use crate::error::CatalogError;
use std::collections::{BTreeMap, HashSet};
use tributary_proto::v1::{entity::Kind, DataNode, Entity, EntityKind, Placement};

/// The nodes placement chooses from: the registered ones the leader knows live, or every
/// registered one when it knows none live yet (a control plane just elected has heard no
/// heartbeat), with how many wells and stream replicas each holds.
fn candidates(txn: &Txn<'_>, live: &[u64]) -> Result<Vec<(DataNode, usize)>, CatalogError> {
    let mut nodes = Vec::new();
    txn.visit(EntityKind::DataNode, |e| {
        if let Some(Kind::DataNode(n)) = &e.kind {
            nodes.push(n.clone());
        }
        Ok(())
    })?;
    if nodes.iter().any(|n| live.contains(&n.id)) {
        nodes.retain(|n| live.contains(&n.id));
    }
    let mut load: BTreeMap<u64, usize> = nodes.iter().map(|n| (n.id, 0)).collect();
    for kind in [EntityKind::Well, EntityKind::Stream] {
        txn.visit(kind, |e| {
            for holder in holders(e) {
                if let Some(n) = load.get_mut(&holder) {
                    *n += 1;
                }
            }
            Ok(())
        })?;
    }
    let mut out: Vec<(DataNode, usize)> = nodes
        .into_iter()
        .map(|n| {
            let l = load.get(&n.id).copied().unwrap_or(0);
            (n, l)
        })
        .collect();
    out.sort_by_key(|(n, l)| (*l, n.id));
    Ok(out)
}

/// The data nodes holding a well or stream (its owner, or its replicas).
pub(super) fn holders(e: &Entity) -> Vec<u64> {
    match &e.kind {
        Some(Kind::Well(w)) if w.owner_node != 0 => vec![w.owner_node],
        Some(Kind::Stream(s)) if !s.replica_nodes.is_empty() => s.replica_nodes.clone(),
        Some(Kind::Stream(s)) if s.owner_node != 0 => vec![s.owner_node],
        _ => Vec::new(),
    }
}

/// The least loaded candidate (ties: lowest id); 0 (unplaced) if no node is registered.
pub(super) fn place_one(txn: &Txn<'_>, live: &[u64]) -> Result<u64, CatalogError> {
    Ok(candidates(txn, live)?.first().map_or(0, |(n, _)| n.id))
}

/// `replicas` distinct nodes for a replicated stream, least loaded first.
pub(super) fn place_replicas(
    txn: &Txn<'_>,
    live: &[u64],
    replicas: u32,
    placement: Option<&Placement>,
) -> Result<Vec<u64>, CatalogError> {
    place_more(txn, live, replicas, placement, &[], &[])
}

/// The nodes to add so a stream with replicas on `kept` has `replicas` of them: none of
/// `excluded` (which holds `kept`), and with a `unique_tag`, none in a zone `kept` uses.
pub(super) fn place_more(
    txn: &Txn<'_>,
    live: &[u64],
    replicas: u32,
    placement: Option<&Placement>,
    kept: &[u64],
    excluded: &[u64],
) -> Result<Vec<u64>, CatalogError> {
    let want = (replicas as usize).saturating_sub(kept.len());
    if want == 0 {
        return Ok(Vec::new());
    }
    let all = candidates(txn, live)?;
    let tags: &[String] = placement.map_or(&[], |p| p.tags.as_slice());
    let unique = placement.map_or("", |p| p.unique_tag.as_str());
    let mut zones_used = HashSet::new();
    for k in kept {
        if let Some(Kind::DataNode(n)) = txn
            .get(EntityKind::DataNode, &k.to_string())?
            .and_then(|e| e.kind)
        {
            zones_used.extend(
                n.tags
                    .iter()
                    .filter(|t| !unique.is_empty() && t.starts_with(unique))
                    .cloned(),
            );
        }
    }
    let tagged: Vec<&DataNode> = all
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !excluded.contains(&n.id))
        .filter(|n| tags.iter().all(|t| n.tags.contains(t)))
        .collect();
    let mut chosen = Vec::new();
    for n in &tagged {
        if !unique.is_empty() {
            let Some(zone) = n.tags.iter().find(|t| t.starts_with(unique)) else {
                continue;
            };
            if !zones_used.insert(zone.clone()) {
                continue;
            }
        }
        chosen.push(n.id);
        if chosen.len() == want {
            return Ok(chosen);
        }
    }
    let mut why = format!(
        "{replicas} replicas need {replicas} distinct live data nodes; {} {} registered and live",
        all.len(),
        if all.len() == 1 { "is" } else { "are" }
    );
    if !excluded.is_empty() {
        why.push_str(&format!(
            ", and data nodes {excluded:?} hold or leave a replica already"
        ));
    }
    if !tags.is_empty() {
        why.push_str(&format!(
            ", {} of them with tags {}",
            tagged.len(),
            tags.join(", ")
        ));
    }
    if !unique.is_empty() {
        why.push_str(&format!(
            ", spanning {} distinct {unique:?} tag values (unique_tag)",
            zones_used.len()
        ));
    }
    Err(CatalogError::FailedPrecondition(format!(
        "cannot place the stream: {why}"
    )))
}
