//! Which fields are sealed: JSON pointers over an entity's JSON form. The first segment names
//! the entity kind (`target`, `stream`, …), the rest is RFC 6901 over that entity as serde
//! renders the proto types (field names as in the `.proto` files, as `tribctl --json` prints
//! them), with `*` for every element of an array. As in Eclipse Ditto, only string values
//! are sealed: a pointer that reaches a number, an object or nothing is skipped.

use super::keys::CryptoError;
use serde_json::Value;
use tributary_proto::v1::{entity::Kind, Entity};

/// The defaults: target ingest secrets and the external credentials of a stream's mirror and
/// of each of its sources.
pub const DEFAULT_FIELDS: [&str; 3] = [
    "/target/ingest_secret",
    "/stream/mirror/external_credentials",
    "/stream/sources/*/external_credentials",
];

/// The kind names a pointer may start with, as `Entity`'s oneof names them.
const KINDS: [&str; 7] = [
    "well",
    "tag",
    "target",
    "stream",
    "policy",
    "namespace",
    "data_node",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Name(String),
    Any,
}

/// One configured field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPointer {
    text: String,
    kind: &'static str,
    path: Vec<Segment>,
}

impl FieldPointer {
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix('/')
            .ok_or("a JSON pointer starts with `/`")?;
        let mut parts = rest.split('/').map(unescape);
        let first = parts.next().unwrap_or_default();
        let kind = KINDS
            .iter()
            .find(|k| **k == first)
            .ok_or_else(|| format!("{first:?} is not an entity kind ({})", KINDS.join(", ")))?;
        let path: Vec<Segment> = parts
            .map(|p| {
                if p == "*" {
                    Segment::Any
                } else {
                    Segment::Name(p)
                }
            })
            .collect();
        let Some(Segment::Name(field)) = path.first() else {
            return Err("name a field of the entity after its kind".into());
        };
        let fields = default_form(kind);
        if !fields.as_object().is_some_and(|o| o.contains_key(field)) {
            return Err(format!("{kind} has no field {field:?}"));
        }
        if matches!(field.as_str(), "name" | "id") {
            return Err(format!(
                "{kind}'s {field} names the entity and cannot be sealed"
            ));
        }
        Ok(FieldPointer {
            text: text.to_string(),
            kind,
            path,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The entity kind it applies to, as its first segment names it.
    pub fn kind(&self) -> &str {
        self.kind
    }
}

/// RFC 6901: `~1` is `/`, `~0` is `~`.
fn unescape(s: &str) -> String {
    s.replace("~1", "/").replace("~0", "~")
}

/// Every field of a kind, as a default entity of it renders.
fn default_form(kind: &str) -> Value {
    let e = Entity {
        kind: Some(match kind {
            "well" => Kind::Well(Default::default()),
            "tag" => Kind::Tag(Default::default()),
            "target" => Kind::Target(Default::default()),
            "stream" => Kind::Stream(Default::default()),
            "policy" => Kind::Policy(Default::default()),
            "namespace" => Kind::Namespace(Default::default()),
            _ => Kind::DataNode(Default::default()),
        }),
    };
    form(&e).unwrap_or(Value::Null)
}

/// The kind name of an entity, as pointers start.
fn kind_name(e: &Entity) -> Option<&'static str> {
    Some(match e.kind.as_ref()? {
        Kind::Well(_) => "well",
        Kind::Tag(_) => "tag",
        Kind::Target(_) => "target",
        Kind::Stream(_) => "stream",
        Kind::Policy(_) => "policy",
        Kind::Namespace(_) => "namespace",
        Kind::DataNode(_) => "data_node",
    })
}

/// The JSON form of an entity (of its kind's message, without the oneof around it).
fn form(e: &Entity) -> Result<Value, CryptoError> {
    let v = match &e.kind {
        Some(Kind::Well(x)) => serde_json::to_value(x),
        Some(Kind::Tag(x)) => serde_json::to_value(x),
        Some(Kind::Target(x)) => serde_json::to_value(x),
        Some(Kind::Stream(x)) => serde_json::to_value(x),
        Some(Kind::Policy(x)) => serde_json::to_value(x),
        Some(Kind::Namespace(x)) => serde_json::to_value(x),
        Some(Kind::DataNode(x)) => serde_json::to_value(x),
        None => Ok(Value::Null),
    };
    v.map_err(|err| CryptoError::Form(err.to_string()))
}

/// Puts a changed JSON form back into the entity.
fn unform(e: &mut Entity, v: Value) -> Result<(), CryptoError> {
    fn back<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, CryptoError> {
        serde_json::from_value(v).map_err(|err| CryptoError::Form(err.to_string()))
    }
    e.kind = match e.kind.take() {
        Some(Kind::Well(_)) => Some(Kind::Well(back(v)?)),
        Some(Kind::Tag(_)) => Some(Kind::Tag(back(v)?)),
        Some(Kind::Target(_)) => Some(Kind::Target(back(v)?)),
        Some(Kind::Stream(_)) => Some(Kind::Stream(back(v)?)),
        Some(Kind::Policy(_)) => Some(Kind::Policy(back(v)?)),
        Some(Kind::Namespace(_)) => Some(Kind::Namespace(back(v)?)),
        Some(Kind::DataNode(_)) => Some(Kind::DataNode(back(v)?)),
        None => None,
    };
    Ok(())
}

/// A field that failed, by its concrete pointer (`/stream/sources/1/external_credentials`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {pointer}: {source}")]
pub struct FieldError {
    pub pointer: String,
    pub source: CryptoError,
}

/// What [`rewrite`] calls with each value's concrete pointer and the value: a new value, or
/// `None` to leave it.
pub(super) type Rewrite<'a> = dyn FnMut(&str, &str) -> Result<Option<String>, CryptoError> + 'a;

/// Calls `f` on every string value the pointers reach in `e`, with its concrete pointer; `f`
/// returns the new value when it changes one. The entity is rebuilt only if something changed.
/// Returns how many values changed.
pub(super) fn rewrite(
    pointers: &[FieldPointer],
    e: &mut Entity,
    f: &mut Rewrite<'_>,
) -> Result<usize, FieldError> {
    let Some(kind) = kind_name(e) else {
        return Ok(0);
    };
    let mine: Vec<&FieldPointer> = pointers.iter().filter(|p| p.kind == kind).collect();
    if mine.is_empty() {
        return Ok(0);
    }
    let whole = |source| FieldError {
        pointer: format!("/{kind}"),
        source,
    };
    let mut v = form(e).map_err(whole)?;
    let mut changed = 0;
    for p in mine {
        let mut at = format!("/{kind}");
        walk(&mut v, &p.path, &mut at, &mut |at, s| {
            if let Some(new) = f(at, s)? {
                *s = new;
                changed += 1;
            }
            Ok(())
        })?;
    }
    if changed > 0 {
        unform(e, v).map_err(whole)?;
    }
    Ok(changed)
}

fn walk(
    v: &mut Value,
    path: &[Segment],
    at: &mut String,
    f: &mut dyn FnMut(&str, &mut String) -> Result<(), CryptoError>,
) -> Result<(), FieldError> {
    let Some((seg, rest)) = path.split_first() else {
        if let Value::String(s) = v {
            f(at, s).map_err(|source| FieldError {
                pointer: at.clone(),
                source,
            })?;
        }
        return Ok(());
    };
    let len = at.len();
    let mut step = |at: &mut String, name: &str, child: &mut Value| {
        at.push('/');
        at.push_str(&name.replace('~', "~0").replace('/', "~1"));
        let r = walk(child, rest, at, f);
        at.truncate(len);
        r
    };
    match (seg, v) {
        (Segment::Any, Value::Array(items)) => {
            for (i, child) in items.iter_mut().enumerate() {
                step(at, &i.to_string(), child)?;
            }
        }
        (Segment::Any, Value::Object(members)) => {
            for (name, child) in members.iter_mut() {
                step(at, name, child)?;
            }
        }
        (Segment::Name(name), Value::Object(members)) => {
            if let Some(child) = members.get_mut(name) {
                step(at, name, child)?;
            }
        }
        (Segment::Name(name), Value::Array(items)) => {
            if let Some(child) = name.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                step(at, name, child)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_proto::v1::{Stream, StreamSource, Target};

    fn stream() -> Entity {
        let origin = |creds: &str| StreamSource {
            stream: "O".into(),
            external: "b:1".into(),
            external_credentials: creds.into(),
            ..Default::default()
        };
        Entity {
            kind: Some(Kind::Stream(Stream {
                name: "S".into(),
                sources: vec![origin("one"), origin(""), origin("three")],
                ..Default::default()
            })),
        }
    }

    fn defaults() -> Vec<FieldPointer> {
        DEFAULT_FIELDS
            .iter()
            .map(|p| FieldPointer::parse(p).unwrap())
            .collect()
    }

    #[test]
    fn wildcards_reach_every_source_and_name_each_one() {
        let mut e = stream();
        let mut seen = Vec::new();
        let n = rewrite(&defaults(), &mut e, &mut |at, s| {
            seen.push(at.to_string());
            Ok((!s.is_empty()).then(|| s.to_uppercase()))
        })
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            seen,
            [0, 1, 2].map(|i| format!("/stream/sources/{i}/external_credentials"))
        );
        let Some(Kind::Stream(s)) = &e.kind else {
            panic!("not a stream")
        };
        let creds: Vec<&str> = s
            .sources
            .iter()
            .map(|o| o.external_credentials.as_str())
            .collect();
        assert_eq!(creds, ["ONE", "", "THREE"]);
        assert_eq!(s.sources[0].stream, "O", "the rest is untouched");
        assert!(s.mirror.is_none(), "a missing mirror is skipped");
    }

    #[test]
    fn an_error_names_the_concrete_field() {
        let mut e = stream();
        let err = rewrite(&defaults(), &mut e, &mut |_, s| {
            if s == "three" {
                Err(CryptoError::NotUtf8)
            } else {
                Ok(None)
            }
        })
        .unwrap_err();
        assert_eq!(err.pointer, "/stream/sources/2/external_credentials");
    }

    #[test]
    fn other_kinds_and_non_strings_are_left_alone() {
        let mut t = Entity {
            kind: Some(Kind::Target(Target {
                name: "t".into(),
                ingest_secret: "s".into(),
                start_time_ns: 5,
                ..Default::default()
            })),
        };
        let only_streams =
            vec![FieldPointer::parse("/stream/sources/*/external_credentials").unwrap()];
        let n = rewrite(&only_streams, &mut t, &mut |_, _| Ok(Some("x".into()))).unwrap();
        assert_eq!(n, 0);
        let number = vec![FieldPointer::parse("/target/start_time_ns").unwrap()];
        let n = rewrite(&number, &mut t, &mut |_, _| Ok(Some("x".into()))).unwrap();
        assert_eq!(n, 0, "a number is not sealed");
    }

    #[test]
    fn bad_pointers_say_why() {
        for (p, why) in [
            ("target/ingest_secret", "starts with `/`"),
            ("/thing/x", "not an entity kind"),
            ("/target", "name a field"),
            ("/target/ingest_secrt", "no field \"ingest_secrt\""),
            ("/target/name", "names the entity"),
            ("/data_node/id", "names the entity"),
        ] {
            let err = FieldPointer::parse(p).expect_err(p);
            assert!(err.contains(why), "{p}: {err}");
        }
        assert!(FieldPointer::parse("/target/ca_pem").is_ok());
        assert!(FieldPointer::parse("/stream/mirror/external_credentials").is_ok());
    }
}
