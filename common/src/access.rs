//! Who may call what, the same on every server: a request's caller (a member or data node of
//! this cluster by its certificate, a user or service by its credentials, or anonymous), and
//! the check every RPC makes — a named permission on a named resource, granted by the
//! cluster's policy (the config's `admin_subjects` plus the stored `default:cluster-admin`) or
//! by the policy the entity itself names. Either may grant; a refusal names the subjects, the
//! resource and the permission.

use crate::auth::{AuthConfig, AuthError, Authenticator, Credentials, Principal};
use crate::certs;
use crate::policy::{self, Permission, Policy, BOOTSTRAP_POLICY};
use crate::sync::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tonic::{Request, Status};

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No credentials at all.
    Anonymous,
    /// A user or service: what the authenticator resolved.
    User(Principal),
    /// A data node of this cluster: its certificate (`data-node-ID`, `Some(id)`), or the
    /// cluster token on an `insecure` cluster (`None`: the token says which cluster, not which
    /// node).
    DataNode(Option<u64>),
    /// A member of this cluster (`member-ID` certificate).
    Member(u64),
}

impl Caller {
    /// The subjects policies match: a user's, and `tls:CN` for a node of the cluster.
    pub fn subjects(&self) -> Vec<String> {
        match self {
            Caller::User(p) => p.subjects.clone(),
            Caller::DataNode(Some(id)) => vec![format!("tls:{}", certs::data_node_name(*id))],
            Caller::DataNode(None) => vec!["cluster:data-node".into()],
            Caller::Member(id) => vec![format!("tls:{}", certs::member_name(*id))],
            Caller::Anonymous => Vec::new(),
        }
    }

    /// The cluster's own parts: members and data nodes.
    pub fn is_node(&self) -> bool {
        matches!(self, Caller::DataNode(_) | Caller::Member(_))
    }

    /// How the caller reads in errors and logs.
    pub fn describe(&self) -> String {
        match self {
            Caller::Anonymous => "an anonymous caller".into(),
            Caller::User(p) => format!("{} ({})", p.subjects.join(", "), p.method),
            Caller::DataNode(Some(id)) => format!("data node {id}"),
            Caller::DataNode(None) => "a data node (cluster token)".into(),
            Caller::Member(id) => format!("member {id}"),
        }
    }
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Credentials needed, or the ones given are wrong.
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{who} may not {permission} {resource}{why}")]
    Denied {
        who: String,
        permission: &'static str,
        resource: String,
        /// What decided, for the operator reading the error.
        why: String,
    },
}

impl From<Refusal> for Status {
    fn from(r: Refusal) -> Status {
        match r {
            r @ Refusal::Unauthenticated(_) => Status::unauthenticated(r.to_string()),
            r @ Refusal::Denied { .. } => Status::permission_denied(r.to_string()),
        }
    }
}

/// Where a server finds policies by name (the control plane's catalogue, a data node's view).
pub trait Policies: Send + Sync {
    fn policy(&self, name: &str) -> Option<Arc<Policy>>;
}

/// Stored policies, each parsed once per stored version (its encoding), for [`Policies`].
#[derive(Default)]
pub struct ParsedPolicies(Mutex<HashMap<String, Parsed>>);

/// A stored policy's encoding and what it parsed to.
type Parsed = (Vec<u8>, Arc<Policy>);

impl ParsedPolicies {
    /// `stored` parsed, from the cache when unchanged. A stored policy the engine refuses
    /// (written under older, looser rules) grants nothing.
    pub fn parse(&self, name: &str, stored: &tributary_proto::v1::Policy) -> Option<Arc<Policy>> {
        use prost::Message as _;
        let bytes = stored.encode_to_vec();
        if let Some((b, parsed)) = lock(&self.0).get(name) {
            if *b == bytes {
                return Some(parsed.clone());
            }
        }
        let parsed = Arc::new(Policy::from_proto(stored).ok()?);
        lock(&self.0).insert(name.to_string(), (bytes, parsed.clone()));
        Some(parsed)
    }
}

/// A server's gate: how it authenticates, and the cluster's policy from its config.
pub struct Access {
    authenticator: Authenticator,
    /// `admin_subjects`: READ/WRITE/ADMIN on `cluster:/` whatever the catalogue says.
    admins: Option<Policy>,
    /// Data nodes of an `insecure` cluster show this (`x-tributary-cluster-token`).
    cluster_token: String,
    /// What a caller with no credentials is taken for (empty: refused). Only for local
    /// trials (the demo, `tribctl dev`), where whoever reaches the port is trusted.
    anonymous: Vec<String>,
    /// The cluster's stream secrets, on a member: a caller showing one is
    /// [`STREAM_SECRET_SUBJECT`], which may find where a stream is served (a mirror of
    /// another cluster locating its origin with the credentials that cluster gave it).
    stream_secrets: Vec<String>,
}

/// Who a caller showing a stream secret to a member is.
pub const STREAM_SECRET_SUBJECT: &str = "secret:stream";

impl Access {
    /// From a server's config keys: `auth` (secret files read here), `admin_subjects`, the
    /// cluster token and `anonymous_subjects`; errors name the key.
    pub fn from_config(
        auth: &AuthConfig,
        admin_subjects: &[String],
        cluster_token: &str,
        anonymous_subjects: &[String],
    ) -> Result<Access, String> {
        let auth = auth
            .clone()
            .with_secret_files()
            .map_err(|e| e.to_string())?;
        let authenticator = Authenticator::new(&auth).map_err(|e| e.to_string())?;
        if !anonymous_subjects.is_empty() {
            tracing::warn!(subjects = ?anonymous_subjects, "anonymous_subjects: callers with no credentials are taken for these subjects");
        }
        if admin_subjects.is_empty() {
            tracing::warn!(
                "no admin_subjects configured: only the policies in the catalogue grant anything"
            );
        }
        Access::new(
            authenticator,
            admin_subjects,
            cluster_token.to_string(),
            anonymous_subjects,
        )
        .map_err(|e| format!("key `admin_subjects`: {e}"))
    }

    /// Callers showing one of `secrets` (`x-tributary-stream-secret`) are
    /// [`STREAM_SECRET_SUBJECT`].
    pub fn with_stream_secrets(mut self, secrets: &[String]) -> Access {
        self.stream_secrets = secrets.iter().filter(|s| !s.is_empty()).cloned().collect();
        self
    }

    pub fn new(
        authenticator: Authenticator,
        admin_subjects: &[String],
        cluster_token: String,
        anonymous_subjects: &[String],
    ) -> Result<Access, String> {
        let admins = match admin_subjects.is_empty() {
            true => None,
            false => Some(policy::bootstrap_policy(admin_subjects).map_err(|e| e.to_string())?),
        };
        Ok(Access {
            authenticator,
            admins,
            cluster_token,
            anonymous: anonymous_subjects.to_vec(),
            stream_secrets: Vec::new(),
        })
    }

    /// Who sent `req`: a node of this cluster by its verified certificate (or, insecure, the
    /// cluster token), else whatever the credentials say. Wrong credentials are refused here.
    pub async fn caller<T>(&self, req: &Request<T>) -> Result<Caller, Refusal> {
        let cn = req
            .peer_certs()
            .and_then(|certs| crate::tls::peer_cn(&certs));
        self.resolve(req.metadata(), cn, req.remote_addr(), false)
            .await
    }

    /// Who sent a request to the devops API (the `Admin` service): as [`Access::caller`],
    /// and the devops user (basic auth) or token (bearer) are recognised too.
    pub async fn devops_caller<T>(&self, req: &Request<T>) -> Result<Caller, Refusal> {
        let cn = req
            .peer_certs()
            .and_then(|certs| crate::tls::peer_cn(&certs));
        self.resolve(req.metadata(), cn, req.remote_addr(), true)
            .await
    }

    /// Who sent a request to the admin HTTP listener's devops routes.
    pub async fn http_devops_caller(
        &self,
        headers: &tonic::codegen::http::HeaderMap,
        remote_addr: Option<std::net::SocketAddr>,
    ) -> Result<Caller, Refusal> {
        let metadata = tonic::metadata::MetadataMap::from_headers(headers.clone());
        self.resolve(&metadata, None, remote_addr, true).await
    }

    async fn resolve(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        cn: Option<String>,
        remote_addr: Option<std::net::SocketAddr>,
        devops: bool,
    ) -> Result<Caller, Refusal> {
        if let Some(cn) = &cn {
            if let Some(id) = certs::data_node_id(cn) {
                return Ok(Caller::DataNode(Some(id)));
            }
            if let Some(id) = certs::member_id(cn) {
                return Ok(Caller::Member(id));
            }
        }
        if !self.cluster_token.is_empty() {
            if let Some(v) = metadata.get(crate::grpc::CLUSTER_TOKEN_HEADER) {
                if crate::secrets::ct_eq(v.as_bytes(), self.cluster_token.as_bytes()) {
                    return Ok(Caller::DataNode(None));
                }
                return Err(Refusal::Unauthenticated(format!(
                    "bad cluster token (metadata {})",
                    crate::grpc::CLUSTER_TOKEN_HEADER
                )));
            }
        }
        if !self.stream_secrets.is_empty() {
            let header = crate::grpc::STREAM_SECRET_HEADER;
            if let Some(v) = metadata.get(header) {
                if crate::secrets::matches_any(&self.stream_secrets, v.as_bytes()) {
                    return Ok(Caller::User(Principal {
                        subjects: vec![STREAM_SECRET_SUBJECT.into()],
                        method: crate::auth::AuthMethod::StreamSecret,
                    }));
                }
                return Err(Refusal::Unauthenticated(format!(
                    "bad stream secret (metadata {header})"
                )));
            }
        }
        let creds = Credentials::from_metadata(metadata, cn, remote_addr);
        let found = match devops {
            true => self.authenticator.authenticate_devops(&creds).await,
            false => self.authenticator.authenticate(&creds).await,
        };
        match found {
            Ok(Some(p)) => Ok(Caller::User(p)),
            Ok(None) if !self.anonymous.is_empty() => Ok(Caller::User(Principal {
                subjects: self.anonymous.clone(),
                method: crate::auth::AuthMethod::Anonymous,
            })),
            Ok(None) => Ok(Caller::Anonymous),
            Err(e) => Err(unauthenticated(e)),
        }
    }

    /// Anyone but an anonymous caller.
    pub fn authenticated(&self, caller: &Caller, what: &str) -> Result<(), Refusal> {
        match caller {
            Caller::Anonymous => Err(Refusal::Unauthenticated(format!(
                "{what} needs credentials: a bearer token (OIDC), a client certificate, or the \
                 pre-authentication header of the configured proxy"
            ))),
            _ => Ok(()),
        }
    }

    /// Whether `caller` holds `permission` on `resource`: granted by the cluster's policy
    /// (config `admin_subjects`, then the stored `default:cluster-admin`) or by
    /// `entity_policy`, the policy the entity names.
    pub fn require(
        &self,
        caller: &Caller,
        permission: Permission,
        resource: &str,
        entity_policy: Option<&str>,
        policies: &dyn Policies,
    ) -> Result<(), Refusal> {
        self.authenticated(caller, &format!("{} on {resource}", permission.as_str()))?;
        let subjects = caller.subjects();
        let stored = policies.policy(BOOTSTRAP_POLICY);
        let named = entity_policy
            .filter(|n| !n.is_empty() && *n != BOOTSTRAP_POLICY)
            .and_then(|n| policies.policy(n));
        let mut last = None;
        for p in self
            .admins
            .iter()
            .chain(stored.as_deref())
            .chain(named.as_deref())
        {
            let d = policy::check(p, &subjects, resource, permission);
            if d.allowed {
                return Ok(());
            }
            if d.decided_by.is_some() || last.is_none() {
                last = Some((p.name().to_string(), d.reason));
            }
        }
        let why = match (last, entity_policy.filter(|n| !n.is_empty())) {
            (Some((name, reason)), _) => format!(" ({name}: {reason})"),
            (None, Some(n)) => format!(" (its policy {n} does not exist)"),
            (None, None) => " (no policy grants it)".into(),
        };
        Err(Refusal::Denied {
            who: caller.describe(),
            permission: permission.as_str(),
            resource: resource.to_string(),
            why,
        })
    }
}

fn unauthenticated(e: AuthError) -> Refusal {
    Refusal::Unauthenticated(e.to_string())
}

/// The resource an entity is checked as: `well:/acme:orders`, `namespace:/acme`, …; tags
/// and data nodes belong to the cluster (`cluster:/`).
pub fn entity_resource(kind: &str, canonical_name: &str) -> String {
    match kind {
        "well" | "stream" | "target" | "policy" => format!("{kind}:/{canonical_name}"),
        "namespace" => format!("namespace:/{canonical_name}"),
        _ => "cluster:/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthMethod;
    use std::collections::HashMap;

    struct Stored(HashMap<String, Arc<Policy>>);

    impl Policies for Stored {
        fn policy(&self, name: &str) -> Option<Arc<Policy>> {
            self.0.get(name).cloned()
        }
    }

    fn user(s: &str) -> Caller {
        Caller::User(Principal {
            subjects: vec![s.into()],
            method: AuthMethod::PreAuthenticated,
        })
    }

    fn access(admins: &[&str]) -> Access {
        let admins: Vec<String> = admins.iter().map(|s| s.to_string()).collect();
        let auth = Authenticator::new(&Default::default()).expect("authenticator");
        Access::new(auth, &admins, String::new(), &[]).expect("access")
    }

    #[test]
    fn the_cluster_policy_or_the_entitys_own_may_grant() {
        let own = Policy::from_json(
            r#"{"entries": {"owner": {"subjects": {"pre:alice": {"type": "user"}},
                "resources": {"well:/acme:orders": {"grant": ["READ"], "revoke": []}}}}}"#,
            Some("acme:orders-policy"),
        )
        .expect("policy");
        let stored = Stored(HashMap::from([(own.name().to_string(), Arc::new(own))]));
        let a = access(&["pre:admin"]);
        let r = "well:/acme:orders";
        let ok = |c: &Caller, p, policy| a.require(c, p, r, policy, &stored).is_ok();
        assert!(
            ok(&user("pre:admin"), Permission::Admin, None),
            "admin_subjects"
        );
        assert!(ok(
            &user("pre:alice"),
            Permission::Read,
            Some("acme:orders-policy")
        ));
        assert!(!ok(
            &user("pre:alice"),
            Permission::Write,
            Some("acme:orders-policy")
        ));
        assert!(
            !ok(&user("pre:alice"), Permission::Read, None),
            "not without its policy"
        );
        let e = a
            .require(
                &user("pre:bob"),
                Permission::Read,
                r,
                Some("acme:orders-policy"),
                &stored,
            )
            .unwrap_err();
        assert!(matches!(e, Refusal::Denied { .. }));
        assert!(
            e.to_string().contains("pre:bob") && e.to_string().contains(r),
            "{e}"
        );
        let anon = a
            .require(&Caller::Anonymous, Permission::Read, r, None, &stored)
            .unwrap_err();
        assert!(matches!(anon, Refusal::Unauthenticated(_)), "{anon}");
    }

    #[test]
    fn entities_map_to_their_resources() {
        assert_eq!(entity_resource("well", "acme:orders"), "well:/acme:orders");
        assert_eq!(entity_resource("namespace", "acme"), "namespace:/acme");
        assert_eq!(entity_resource("tag", "web"), "cluster:/");
        assert_eq!(
            Caller::DataNode(Some(3)).subjects(),
            vec!["tls:data-node-3".to_string()]
        );
    }
}
