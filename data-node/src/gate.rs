//! Who may call the data node's RPCs (the table in the README), decided from the node's own
//! catalogue view with no round trip: the cluster's own nodes (by certificate, or the cluster
//! token when `insecure`), the shared secrets of Gravwell and the earlier releases (an ingest
//! secret for `Ingest.Write`, a stream secret for `Streams`), or a user whose subjects the
//! cluster's policy or the entity's own grant the RPC's permission.

use crate::error::{Error, Result};
use crate::node::Node;
use std::sync::Arc;
use tonic::Request;
use tributary_common::access::{Access, Caller, ParsedPolicies, Policies, Refusal};
use tributary_common::grpc::{INGEST_SECRET_HEADER, STREAM_SECRET_HEADER};
use tributary_common::policy::{Permission, Policy};
use tributary_common::secrets::matches_any;

/// How a call got in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pass {
    /// A node of this cluster, or this node itself (its ditto stats entries).
    Node,
    /// A shared secret: the ingest secret on `Ingest.Write`, a stream secret on `Streams`.
    Secret,
    /// Anyone else: the policies decide each resource it touches.
    Caller(Caller),
}

/// The policies in the node's catalogue view, parsed once per version.
struct ViewPolicies {
    node: Arc<Node>,
    parsed: ParsedPolicies,
}

impl Policies for ViewPolicies {
    fn policy(&self, name: &str) -> Option<Arc<Policy>> {
        let p = self.node.with_catalog(|c| c.policies.get(name).cloned())?;
        self.parsed.parse(name, &p)
    }
}

pub struct Gate {
    access: Access,
    policies: ViewPolicies,
    ingest_secrets: Vec<String>,
    stream_secrets: Vec<String>,
}

impl Gate {
    pub fn new(
        access: Access,
        node: Arc<Node>,
        ingest_secrets: Vec<String>,
        stream_secrets: Vec<String>,
    ) -> Gate {
        Gate {
            access,
            policies: ViewPolicies {
                node,
                parsed: ParsedPolicies::default(),
            },
            ingest_secrets,
            stream_secrets,
        }
    }

    async fn pass<T>(
        &self,
        req: &Request<T>,
        secrets: &[String],
        header: &str,
        what: &str,
    ) -> Result<Pass> {
        if let Some(v) = req.metadata().get(header) {
            if !secrets.is_empty() && !v.is_empty() && matches_any(secrets, v.as_bytes()) {
                return Ok(Pass::Secret);
            }
            let why = if v.is_empty() { "missing" } else { "bad" };
            return Err(Error::Unauthenticated(format!(
                "{why} {what} (metadata {header})"
            )));
        }
        let caller = self.access.caller(req).await?;
        Ok(match caller {
            Caller::DataNode(_) | Caller::Member(_) => Pass::Node,
            // With secrets configured, a caller with nothing at all is told what is missing.
            Caller::Anonymous if !secrets.is_empty() => {
                return Err(Error::Unauthenticated(format!(
                    "missing {what} (metadata {header}), and no other credentials"
                )))
            }
            Caller::Anonymous => {
                self.access.authenticated(&Caller::Anonymous, what)?;
                Pass::Caller(Caller::Anonymous)
            }
            other => Pass::Caller(other),
        })
    }

    /// `Ingest.Write`: the ingest secret, or credentials the policies will judge per well.
    pub async fn ingest<T>(&self, req: &Request<T>) -> Result<Pass> {
        self.pass(
            req,
            &self.ingest_secrets,
            INGEST_SECRET_HEADER,
            "ingest secret",
        )
        .await
    }

    /// `Streams.*`: a stream secret, or credentials the policies will judge per stream.
    pub async fn streams<T>(&self, req: &Request<T>) -> Result<Pass> {
        self.pass(
            req,
            &self.stream_secrets,
            STREAM_SECRET_HEADER,
            "stream secret",
        )
        .await
    }

    /// Who sent `req`, by its credentials alone (for RPCs only the cluster's nodes call).
    pub async fn caller<T>(&self, req: &Request<T>) -> Result<Caller> {
        Ok(self.access.caller(req).await?)
    }

    /// Any other RPC: the caller itself.
    pub async fn other<T>(&self, req: &Request<T>, what: &str) -> Result<Pass> {
        Ok(match self.access.caller(req).await? {
            Caller::DataNode(_) | Caller::Member(_) => Pass::Node,
            other => {
                // Every call of a data node needs credentials of some kind.
                self.access.authenticated(&other, what)?;
                Pass::Caller(other)
            }
        })
    }

    /// `permission` on `resource` (governed by `policy`, its entity's, if any).
    pub fn require(
        &self,
        pass: &Pass,
        permission: Permission,
        resource: &str,
        policy: &str,
    ) -> std::result::Result<(), Refusal> {
        match pass {
            Pass::Node | Pass::Secret => Ok(()),
            Pass::Caller(c) => {
                self.access
                    .require(c, permission, resource, Some(policy), &self.policies)
            }
        }
    }
}

/// Devops calls (the `Admin` service and the admin listener's `/devops` routes): the devops
/// credentials, `ADMIN` on `cluster:/`, or a member of the cluster (fanning out).
impl tributary_common::devops::Operators for Gate {
    fn access(&self) -> &Access {
        &self.access
    }

    fn may_operate(&self, caller: &Caller) -> std::result::Result<(), Refusal> {
        tributary_common::devops::operator(&self.access, caller, &self.policies)
    }
}
