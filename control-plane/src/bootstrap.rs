//! The cluster's first policy: the config's `admin_subjects` stored as
//! `default:cluster-admin` once this member leads, so that the data nodes, which decide from
//! their catalogue view, grant the admins what the members grant them without a list of their
//! own. Stored only when absent: from then on it is the operator's to change
//! (`tribctl policy update`), and `admin_subjects` still grant everything on the members
//! whatever it says, so nobody is ever locked out.

use crate::catalog::entity::kind_label;
use crate::error::CatalogError;
use crate::node::Node;
use std::time::Duration;
use tributary_common::backoff::Backoff;
use tributary_common::policy::{bootstrap_policy, BOOTSTRAP_POLICY};
use tributary_proto::v1::command::Op;
use tributary_proto::v1::{entity::Kind, Command, Entity, EntityKind};

/// How often a member that does not lead looks again.
const LOOK_AGAIN: Duration = Duration::from_millis(500);

/// Runs until the policy exists; only the leader writes it.
pub async fn store_admin_policy(node: Node, admin_subjects: Vec<String>) {
    let policy = match bootstrap_policy(&admin_subjects) {
        Ok(p) => p,
        // Checked at start (`Access::from_config`); an empty list stores nothing.
        Err(_) => return,
    };
    let backoff = Backoff::new(LOOK_AGAIN, Duration::from_secs(10), 4);
    let mut failures = 0;
    loop {
        match node.catalogue.get(EntityKind::Policy, BOOTSTRAP_POLICY) {
            Ok(Some(_)) => return,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "reading {BOOTSTRAP_POLICY}"),
        }
        if node.state().leader != node.id {
            tokio::time::sleep(LOOK_AGAIN).await;
            continue;
        }
        let cmd = Command {
            op: Some(Op::Create(Entity {
                kind: Some(Kind::Policy(policy.to_proto())),
            })),
            live_nodes: Vec::new(),
            erasure: false,
        };
        match node.write(cmd).await {
            Ok(_) => {
                tracing::info!(subjects = ?admin_subjects, "stored the cluster's first policy {BOOTSTRAP_POLICY} from admin_subjects");
                return;
            }
            Err(CatalogError::AlreadyExists { .. }) => return,
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "storing {} {BOOTSTRAP_POLICY}; will retry", kind_label(EntityKind::Policy));
                tokio::time::sleep(backoff.delay(failures)).await;
            }
        }
    }
}
