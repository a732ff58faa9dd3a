//! Who may call the control plane's RPCs (the table in the README): the caller of each
//! request, checked against the permission the RPC names on the resource it touches, with the
//! policies stored in the catalogue and the entity-creation rules of the config.

use crate::catalog::entity::{kind_label, kind_of, name_of};
use crate::catalog::Catalogue;
use crate::error::CatalogError;
use std::sync::Arc;
use tonic::Request;
use tributary_common::access::{
    entity_resource, Access, Caller, ParsedPolicies, Policies, Refusal, STREAM_SECRET_SUBJECT,
};
use tributary_common::auth::AuthMethod;
use tributary_common::names::EntityName;
use tributary_common::policy::{
    EntityCreationConfig, EntityType, Permission, Policy, PolicyEntry, Resource, ResourceRule,
    Subject,
};
use tributary_proto::v1::{entity::Kind, Entity, EntityKind};

pub struct Guard {
    access: Access,
    creation: EntityCreationConfig,
    policies: StoredPolicies,
}

/// The catalogue's policies, parsed once per stored version.
struct StoredPolicies {
    catalogue: Catalogue,
    parsed: ParsedPolicies,
}

impl Policies for StoredPolicies {
    fn policy(&self, name: &str) -> Option<Arc<Policy>> {
        let stored = self.catalogue.get(EntityKind::Policy, name).ok()??;
        let Some(Kind::Policy(p)) = stored.kind else {
            return None;
        };
        self.parsed.parse(name, &p)
    }
}

impl From<Refusal> for CatalogError {
    fn from(r: Refusal) -> CatalogError {
        match r {
            Refusal::Unauthenticated(m) => CatalogError::Unauthenticated(m),
            r @ Refusal::Denied { .. } => CatalogError::Denied(r.to_string()),
        }
    }
}

/// The resource an entity is checked as, and the policy it names.
pub fn resource_of(e: &Entity) -> (String, String) {
    let kind = kind_label(kind_of(e));
    let name = EntityName::canonical(&name_of(e)).unwrap_or_else(|_| name_of(e));
    let policy = match &e.kind {
        Some(Kind::Well(w)) => w.policy.clone(),
        Some(Kind::Stream(s)) => s.policy.clone(),
        Some(Kind::Target(t)) => t.policy.clone(),
        // A policy governs itself.
        Some(Kind::Policy(_)) => name.clone(),
        _ => String::new(),
    };
    let resource = match kind_of(e) {
        EntityKind::Namespace => entity_resource("namespace", &name_of(e)),
        _ => entity_resource(kind, &name),
    };
    (resource, policy)
}

fn entity_type(k: EntityKind) -> Option<EntityType> {
    Some(match k {
        EntityKind::Well => EntityType::Well,
        EntityKind::Stream => EntityType::Stream,
        EntityKind::Target => EntityType::Target,
        EntityKind::Policy => EntityType::Policy,
        EntityKind::Namespace => EntityType::Namespace,
        EntityKind::Tag => EntityType::Tag,
        _ => return None,
    })
}

impl Guard {
    pub fn new(access: Access, creation: EntityCreationConfig, catalogue: Catalogue) -> Guard {
        Guard {
            access,
            creation,
            policies: StoredPolicies {
                catalogue,
                parsed: ParsedPolicies::default(),
            },
        }
    }

    pub fn access(&self) -> &Access {
        &self.access
    }

    pub async fn caller<T>(&self, req: &Request<T>) -> Result<Caller, CatalogError> {
        Ok(self.access.caller(req).await?)
    }

    /// `permission` on `resource`, from the cluster's policy or the entity's own.
    pub fn require(
        &self,
        caller: &Caller,
        permission: Permission,
        resource: &str,
        entity_policy: &str,
    ) -> Result<(), CatalogError> {
        Ok(self.access.require(
            caller,
            permission,
            resource,
            Some(entity_policy),
            &self.policies,
        )?)
    }

    /// An operator's call (membership, encryption migration): the devops credentials, or
    /// ADMIN on `cluster:/`.
    pub fn operator(&self, caller: &Caller) -> Result<(), CatalogError> {
        if let Caller::User(p) = caller {
            if p.method == AuthMethod::Devops {
                return Ok(());
            }
        }
        self.require(caller, Permission::Admin, "cluster:/", "")
    }

    /// Reads of the catalogue: data nodes read everything (with secrets sealed); users what
    /// the policies let them read. Tags and data-node addresses are for every authenticated
    /// caller (clients need them to reach the node that owns a well or stream).
    pub fn may_read(&self, caller: &Caller, e: &Entity) -> Result<(), CatalogError> {
        if caller.is_node() {
            return Ok(());
        }
        if matches!(kind_of(e), EntityKind::Tag | EntityKind::DataNode) {
            return Ok(self.access.authenticated(caller, "reading the catalogue")?);
        }
        // A stream secret finds where a stream is served (what a mirror must know).
        if kind_of(e) == EntityKind::Stream
            && caller.subjects().iter().any(|s| s == STREAM_SECRET_SUBJECT)
        {
            return Ok(());
        }
        let (resource, policy) = resource_of(e);
        self.require(caller, Permission::Read, &resource, &policy)
    }

    /// A create: data nodes make tags (for ingest) and nothing else; users as the
    /// entity-creation rules allow, then with WRITE on the new entity from the cluster's
    /// policy or the policy it names. Returns a default policy to create first when the entity
    /// names none and only it would let its creator use it (as Ditto makes one).
    pub fn may_create(&self, caller: &Caller, e: &Entity) -> Result<Option<Entity>, CatalogError> {
        let k = kind_of(e);
        if caller.is_node() {
            return match k {
                EntityKind::Tag => Ok(None),
                _ => Err(CatalogError::Denied(format!(
                    "{} may only create tags",
                    caller.describe()
                ))),
            };
        }
        self.access
            .authenticated(caller, &format!("creating a {}", kind_label(k)))?;
        let subjects = caller.subjects();
        let namespace = match k {
            EntityKind::Namespace => name_of(e),
            EntityKind::Tag => String::new(),
            _ => EntityName::parse(&name_of(e)).map_or_else(|_| String::new(), |n| n.namespace),
        };
        let Some(t) = entity_type(k) else {
            return Err(CatalogError::Denied(format!(
                "a {} is not created through the catalogue",
                kind_label(k)
            )));
        };
        let d = self.creation.check(t, &namespace, &subjects);
        if !d.allowed {
            return Err(CatalogError::Denied(d.reason));
        }
        let (resource, policy) = resource_of(e);
        match k {
            // Anyone the rules let create a tag or namespace may.
            EntityKind::Tag | EntityKind::Namespace => Ok(None),
            // A new policy must leave its creator able to change it (no lock-out), unless the
            // cluster's policy already lets them.
            EntityKind::Policy => {
                let admin = self
                    .require(caller, Permission::Write, &resource, "")
                    .is_ok();
                let Some(Kind::Policy(p)) = &e.kind else {
                    return Ok(None);
                };
                let parsed = Policy::from_proto(p).map_err(|err| {
                    CatalogError::invalid(err.path().to_string(), err.to_string())
                })?;
                let keeps = tributary_common::policy::check(
                    &parsed,
                    &subjects,
                    &resource,
                    Permission::Write,
                );
                if admin || keeps.allowed {
                    Ok(None)
                } else {
                    Err(CatalogError::Denied(format!(
                        "the new policy would not let {} write it ({}); grant yourself WRITE \
                         on {resource}",
                        caller.describe(),
                        keeps.reason
                    )))
                }
            }
            _ => {
                if self
                    .require(caller, Permission::Write, &resource, &policy)
                    .is_ok()
                {
                    return Ok(None);
                }
                if !policy.is_empty() {
                    return self
                        .require(caller, Permission::Write, &resource, &policy)
                        .map(|_| None);
                }
                Ok(Some(default_policy(e, &resource, &subjects)?))
            }
        }
    }

    /// An update: WRITE on the entity as stored; ADMIN to change which policy governs it.
    pub fn may_update(
        &self,
        caller: &Caller,
        stored: &Entity,
        new: &Entity,
    ) -> Result<(), CatalogError> {
        if caller.is_node() {
            return Err(CatalogError::Denied(format!(
                "{} does not change the catalogue",
                caller.describe()
            )));
        }
        let (resource, policy) = resource_of(stored);
        self.require(caller, Permission::Write, &resource, &policy)?;
        let (_, new_policy) = resource_of(new);
        if new_policy != policy && kind_of(stored) != EntityKind::Policy {
            self.require(caller, Permission::Admin, &resource, &policy)?;
        }
        Ok(())
    }

    /// Placement is the control plane's (issue 11: a client-chosen owner pointed a stream at
    /// a fake node). A create names no `owner_node` unless its caller may place, as
    /// `Catalog.Move` asks (ADMIN on `cluster:/`); an update gives none or the stored one back
    /// (clients echo what they read), never another.
    pub fn may_place(
        &self,
        caller: &Caller,
        new: &Entity,
        stored: Option<&Entity>,
    ) -> Result<(), CatalogError> {
        let owner = |e: &Entity| match &e.kind {
            Some(Kind::Well(w)) => w.owner_node,
            Some(Kind::Stream(s)) => s.owner_node,
            _ => 0,
        };
        let given = owner(new);
        if given == 0 {
            return Ok(());
        }
        match stored {
            Some(old) if owner(old) == given => Ok(()),
            Some(old) => Err(CatalogError::invalid(
                "owner_node",
                format!(
                    "an update does not move a {} (stored on data node {}): leave owner_node 0 \
                     and move it with Catalog.Move (ADMIN on cluster:/)",
                    kind_label(kind_of(old)),
                    owner(old)
                ),
            )),
            None => self
                .require(caller, Permission::Admin, "cluster:/", "")
                .map_err(|_| {
                    CatalogError::invalid(
                        "owner_node",
                        "placement is the control plane's: leave it 0 (choosing the data \
                         node takes ADMIN on cluster:/, as Catalog.Move does)",
                    )
                }),
        }
    }

    /// A delete: WRITE on the entity as stored.
    pub fn may_delete(&self, caller: &Caller, stored: &Entity) -> Result<(), CatalogError> {
        if caller.is_node() {
            return Err(CatalogError::Denied(format!(
                "{} does not change the catalogue",
                caller.describe()
            )));
        }
        let (resource, policy) = resource_of(stored);
        self.require(caller, Permission::Write, &resource, &policy)
    }
}

/// Ditto's default policy for an entity created without one: named as the entity, giving
/// its creator READ, WRITE and ADMIN on it and on the policy itself.
fn default_policy(e: &Entity, resource: &str, subjects: &[String]) -> Result<Entity, CatalogError> {
    let name = EntityName::canonical(&name_of(e))
        .map_err(|err| CatalogError::invalid("name", err.to_string()))?;
    let all: tributary_common::policy::PermissionSet =
        [Permission::Read, Permission::Write, Permission::Admin]
            .into_iter()
            .collect();
    let rule = |r: &str| {
        Resource::parse(r)
            .map(|resource| ResourceRule {
                resource,
                grant: all,
                revoke: Default::default(),
            })
            .map_err(|err| CatalogError::invalid("policy", err.to_string()))
    };
    let entry = PolicyEntry {
        label: "DEFAULT".into(),
        subjects: subjects
            .iter()
            .map(|s| Subject {
                id: s.clone(),
                kind: "creator".into(),
            })
            .collect(),
        resources: vec![rule(resource)?, rule(&format!("policy:/{name}"))?],
    };
    let p = Policy::new(&name, vec![entry])
        .map_err(|err| CatalogError::invalid("policy", err.to_string()))?;
    Ok(Entity {
        kind: Some(Kind::Policy(p.to_proto())),
    })
}

/// Devops calls (the `Admin` service and the admin listener's `/devops` routes): the devops
/// credentials, `ADMIN` on `cluster:/`, or a member.
impl tributary_common::devops::Operators for Guard {
    fn access(&self) -> &Access {
        &self.access
    }

    fn may_operate(&self, caller: &Caller) -> Result<(), Refusal> {
        tributary_common::devops::operator(&self.access, caller, &self.policies)
    }

    fn may_view(&self, caller: &Caller) -> Result<(), Refusal> {
        tributary_common::devops::viewer(&self.access, caller, &self.policies)
    }
}
