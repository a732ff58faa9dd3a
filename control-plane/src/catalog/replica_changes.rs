//! Changing where a live replicated stream's replicas are: one replica moved to another data
//! node (`tribctl stream move NAME --from N [--to M]`, as `nats stream cluster peer-remove`)
//! and a change of `replicas` (1 → 3 → 1, as `nats stream edit --replicas`). The catalogue
//! records where the replicas are to be (`replica_nodes`) at once; the stream's group leader
//! then gets there one member at a time (a new replica joins as a learner, catches up by log
//! or snapshot, becomes a voter; then an old one is removed), so every message is kept.
//! `group_founders` keeps the group's first configuration: a replica that is not a founder
//! joins empty and waits for the leader.

use super::apply::Txn;
use super::placement;
use crate::error::CatalogError;
use tributary_proto::v1::Stream;

/// Moves the replica on `from` to `to` (0: the least loaded live node holding none).
pub(super) fn move_replica(
    txn: &Txn<'_>,
    s: &mut Stream,
    from: u64,
    to: u64,
    live: &[u64],
) -> Result<(), CatalogError> {
    let Some(at) = s.replica_nodes.iter().position(|n| *n == from) else {
        return Err(CatalogError::invalid(
            "from_node",
            format!(
                "stream {} has no replica on data node {from}; its replicas are on {:?}",
                s.name, s.replica_nodes
            ),
        ));
    };
    let to = match to {
        0 => {
            let kept: Vec<u64> = s
                .replica_nodes
                .iter()
                .copied()
                .filter(|n| *n != from)
                .collect();
            let replicas = s.replica_nodes.len() as u32;
            let chosen = placement::place_more(
                txn,
                live,
                replicas,
                s.placement.as_ref(),
                &kept,
                &s.replica_nodes,
            )?;
            chosen.first().copied().ok_or_else(|| {
                CatalogError::FailedPrecondition(format!(
                    "no data node to move stream {}'s replica to",
                    s.name
                ))
            })?
        }
        to if s.replica_nodes.contains(&to) => {
            return Err(CatalogError::invalid(
                "node_id",
                format!(
                    "data node {to} holds a replica of stream {} already",
                    s.name
                ),
            ))
        }
        to => to,
    };
    s.replica_nodes[at] = to;
    s.owner_node = s.replica_nodes[0];
    Ok(())
}

/// `s` (the update, with the stored placement) goes from `old.replicas` to `s.replicas`. A
/// stream of one replica becomes a group whose founder is its owner (its data is what the new
/// replicas get as their first snapshot). Shrinking keeps the replicas the update names in
/// `requested` when they are that many of the current ones (`tribctl stream edit` names the
/// leader), else the first ones.
pub(super) fn change_replicas(
    txn: &Txn<'_>,
    old: &Stream,
    s: &mut Stream,
    requested: &[u64],
    live: &[u64],
    next_revision: u64,
) -> Result<(), CatalogError> {
    let current = if old.replica_nodes.is_empty() {
        if old.owner_node == 0 {
            return Err(CatalogError::FailedPrecondition(format!(
                "stream {} is not placed on a data node yet",
                old.name
            )));
        }
        s.group_id = next_revision;
        s.group_founders = vec![old.owner_node];
        vec![old.owner_node]
    } else {
        old.replica_nodes.clone()
    };
    let want = s.replicas as usize;
    s.replica_nodes = if want >= current.len() {
        let more = placement::place_more(
            txn,
            live,
            s.replicas,
            s.placement.as_ref(),
            &current,
            &current,
        )?;
        current.iter().copied().chain(more).collect()
    } else if requested.len() == want && requested.iter().all(|n| current.contains(n)) {
        requested.to_vec()
    } else {
        current[..want].to_vec()
    };
    s.owner_node = s.replica_nodes[0];
    Ok(())
}
