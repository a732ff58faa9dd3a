//! Adding and removing voters, on the leader.

use super::{Input, Node};
use crate::error::CatalogError;
use raft::prelude::{ConfChange, ConfChangeType};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

impl Node {
    /// Adds (`addr` = Some) or removes a voter; the leader refuses a change that would leave
    /// the new configuration without a reachable quorum.
    pub async fn change_member(&self, id: u64, addr: Option<String>) -> Result<(), CatalogError> {
        if id == 0 {
            return Err(CatalogError::invalid("id", "member ids start at 1"));
        }
        let st = self.state();
        if st.leader != self.id {
            return Err(self.not_leader());
        }
        let mut new_voters: Vec<u64> = st.voters.clone();
        let mut cc = ConfChange {
            node_id: id,
            ..Default::default()
        };
        let member = || id.to_string();
        match &addr {
            Some(a) => {
                if st.voters.contains(&id) {
                    return Err(CatalogError::AlreadyExists {
                        kind: "member",
                        name: member(),
                    });
                }
                let addrs = crate::network::MemberAddrs::parse(a);
                crate::catalog::validate_endpoint("addr", &addrs.client)?;
                if let Some(p) = &addrs.peer {
                    crate::catalog::validate_endpoint("peer_addr", p)?;
                }
                cc.set_change_type(ConfChangeType::AddNode);
                cc.context = a.clone().into_bytes().into();
                new_voters.push(id);
            }
            None => {
                if !st.voters.contains(&id) {
                    return Err(CatalogError::NotFound {
                        kind: "member",
                        name: member(),
                    });
                }
                cc.set_change_type(ConfChangeType::RemoveNode);
                new_voters.retain(|v| *v != id);
            }
        }
        let reachable = new_voters
            .iter()
            .filter(|v| **v == self.id || self.peers.is_reachable(**v))
            .count();
        let quorum = new_voters.len() / 2 + 1;
        if new_voters.is_empty() || reachable < quorum {
            return Err(CatalogError::FailedPrecondition(format!(
                "refused: the new configuration {new_voters:?} would have {reachable} reachable voter(s), fewer than its quorum of {quorum}"
            )));
        }
        let (reply, rx) = oneshot::channel();
        self.send(Input::ConfChange { cc, reply })?;
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(r)) => r?,
            _ => {
                return Err(CatalogError::Uncertain(
                    "the membership change was proposed but not seen applied in time".into(),
                ))
            }
        }
        // The reply is sent while applying; wait for the published state to show it too.
        let want_member = addr.is_some();
        let mut st = self.state.clone();
        let deadline = Instant::now() + Duration::from_secs(2);
        while st.borrow().voters.contains(&id) != want_member && Instant::now() < deadline {
            let _ = tokio::time::timeout(Duration::from_millis(100), st.changed()).await;
        }
        Ok(())
    }
}
