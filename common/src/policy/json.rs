//! Eclipse Ditto's policy JSON, read into a [`Policy`] and printed back:
//!
//! ```json
//! {"policyId": "acme:p",
//!  "entries": {"owner": {"subjects": {"myprovider:alice": {"type": "oidc user"}},
//!                        "resources": {"well:/acme:orders": {"grant": ["READ"], "revoke": []}}}}}
//! ```
//!
//! Entries and subjects keep the order they are written in. What Ditto has and Tributary
//! does not is refused rather than ignored, because ignoring it would grant more than the
//! author meant: `imports`, a subject's `expiry` and `announcement`. Ditto's read-only fields
//! (`_revision`, `_created`, `_modified`, `_metadata`) and an entry's `importable` are ignored.

use super::entry::{PolicyEntry, ResourceRule, Subject};
use super::error::PolicyError;
use super::limits::MAX_POLICY_BYTES;
use super::model::Policy;
use super::permission::Permission;
use super::resource::Resource;
use crate::names::EntityName;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

impl Policy {
    /// Reads Ditto's policy JSON. The policy's name is `policyId` or, without it, `name`;
    /// with both, they must agree. A text over [`MAX_POLICY_BYTES`] is refused unread.
    pub fn from_json(text: &str, name: Option<&str>) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::OverLimit {
                path: ".".into(),
                what: "the policy JSON (bytes)",
                actual: text.len(),
                limit: MAX_POLICY_BYTES,
                name: "MAX_POLICY_BYTES",
            });
        }
        let json_error = |path: String, e: &dyn fmt::Display| PolicyError::Json {
            path,
            message: e.to_string(),
        };
        let mut de = serde_json::Deserializer::from_str(text);
        let doc: PolicyJson = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| json_error(e.path().to_string(), e.inner()))?;
        de.end().map_err(|e| json_error(".".into(), &e))?;
        Policy::new(
            &policy_name(doc.policy_id.as_deref(), name)?,
            doc.into_entries()?,
        )
    }

    /// Prints Ditto's policy JSON (pretty), `policyId` included when the policy has a name.
    pub fn to_json(&self) -> String {
        let doc = PolicyJson::from_policy(self);
        // Only strings, lists and maps with string keys: serializing cannot fail.
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }
}

fn policy_name(policy_id: Option<&str>, name: Option<&str>) -> Result<String, PolicyError> {
    match (policy_id, name) {
        (Some(id), Some(name)) => {
            let canonical = |raw: &str, path: &str| {
                EntityName::canonical(raw).map_err(|e| PolicyError::invalid(path, e))
            };
            if canonical(id, "policyId")? != canonical(name, "policyId")? {
                return Err(PolicyError::invalid(
                    "policyId",
                    format!("{id:?} is not the name the policy is created under ({name:?})"),
                ));
            }
            Ok(id.to_string())
        }
        (Some(only), None) | (None, Some(only)) => Ok(only.to_string()),
        (None, None) => Ok(String::new()),
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyJson {
    #[serde(rename = "policyId", default, skip_serializing_if = "Option::is_none")]
    policy_id: Option<String>,
    entries: Ordered<EntryJson>,
    #[serde(default, skip_serializing)]
    imports: Option<IgnoredAny>,
    #[serde(rename = "_revision", default, skip_serializing)]
    _revision: Option<IgnoredAny>,
    #[serde(rename = "_created", default, skip_serializing)]
    _created: Option<IgnoredAny>,
    #[serde(rename = "_modified", default, skip_serializing)]
    _modified: Option<IgnoredAny>,
    #[serde(rename = "_metadata", default, skip_serializing)]
    _metadata: Option<IgnoredAny>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryJson {
    subjects: Ordered<SubjectJson>,
    resources: Ordered<ResourceJson>,
    #[serde(rename = "importable", default, skip_serializing)]
    _importable: Option<IgnoredAny>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectJson {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default, skip_serializing)]
    expiry: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    announcement: Option<IgnoredAny>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceJson {
    #[serde(default)]
    grant: Vec<PermissionJson>,
    #[serde(default)]
    revoke: Vec<PermissionJson>,
}

struct PermissionJson(Permission);

impl Serialize for PermissionJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for PermissionJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Permission::parse(&raw)
            .map(PermissionJson)
            .map_err(serde::de::Error::custom)
    }
}

impl PolicyJson {
    fn into_entries(self) -> Result<Vec<PolicyEntry>, PolicyError> {
        if self.imports.is_some() {
            return Err(PolicyError::invalid(
                "imports",
                "policy imports are not supported: copy the imported entries in",
            ));
        }
        self.entries
            .0
            .into_iter()
            .map(|(label, e)| {
                let path = format!("entries.{label}");
                let subjects = e
                    .subjects
                    .0
                    .into_iter()
                    .map(|(id, s)| {
                        let at = |field: &str| format!("{path}.subjects.{id}.{field}");
                        if s.expiry.is_some() {
                            return Err(PolicyError::invalid(
                                at("expiry"),
                                "expiring subjects are not supported",
                            ));
                        }
                        if s.announcement.is_some() {
                            return Err(PolicyError::invalid(
                                at("announcement"),
                                "subject announcements are not supported",
                            ));
                        }
                        Ok(Subject { id, kind: s.kind })
                    })
                    .collect::<Result<_, _>>()?;
                let resources = e
                    .resources
                    .0
                    .into_iter()
                    .map(|(raw, r)| {
                        let resource = Resource::parse(&raw).map_err(|e| {
                            PolicyError::invalid(format!("{path}.resources.{raw}"), e)
                        })?;
                        Ok(ResourceRule {
                            resource,
                            grant: r.grant.into_iter().map(|p| p.0).collect(),
                            revoke: r.revoke.into_iter().map(|p| p.0).collect(),
                        })
                    })
                    .collect::<Result<_, PolicyError>>()?;
                Ok(PolicyEntry {
                    label,
                    subjects,
                    resources,
                })
            })
            .collect()
    }

    fn from_policy(p: &Policy) -> Self {
        let perms = |set: super::permission::PermissionSet| {
            set.iter().map(PermissionJson).collect::<Vec<_>>()
        };
        PolicyJson {
            policy_id: (!p.name().is_empty()).then(|| p.name().to_string()),
            entries: Ordered(
                p.entries()
                    .iter()
                    .map(|e| {
                        let entry = EntryJson {
                            subjects: Ordered(
                                e.subjects
                                    .iter()
                                    .map(|s| {
                                        let json = SubjectJson {
                                            kind: s.kind.clone(),
                                            expiry: None,
                                            announcement: None,
                                        };
                                        (s.id.clone(), json)
                                    })
                                    .collect(),
                            ),
                            resources: Ordered(
                                e.resources
                                    .iter()
                                    .map(|r| {
                                        let json = ResourceJson {
                                            grant: perms(r.grant),
                                            revoke: perms(r.revoke),
                                        };
                                        (r.resource.to_string(), json)
                                    })
                                    .collect(),
                            ),
                            _importable: None,
                        };
                        (e.label.clone(), entry)
                    })
                    .collect(),
            ),
            imports: None,
            _revision: None,
            _created: None,
            _modified: None,
            _metadata: None,
        }
    }
}

/// A JSON object read and written in document order; a key given twice is an error (a
/// `serde_json::Map` would silently keep the last).
struct Ordered<T>(Vec<(String, T)>);

impl<T: Serialize> Serialize for Ordered<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for OrderedVisitor<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, T)> = Vec::new();
                let mut seen = HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
                        return Err(serde::de::Error::custom(format!(
                            "key {key:?} is given twice"
                        )));
                    }
                    let value = map.next_value()?;
                    out.push((key, value));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(OrderedVisitor(PhantomData))
    }
}
