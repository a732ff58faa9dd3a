//! Entity names: `namespace:name`; a bare name means namespace `default`. Validated here only.

use std::fmt;

pub const DEFAULT_NAMESPACE: &str = "default";
const MAX_PART_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid name {name:?}: {reason}")]
pub struct NameError {
    pub name: String,
    pub reason: String,
}

/// A validated `namespace:name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityName {
    pub namespace: String,
    pub name: String,
}

impl EntityName {
    /// Parses `ns:name` or `name` (namespace `default`).
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let err = |reason: &str| NameError {
            name: raw.to_string(),
            reason: reason.to_string(),
        };
        let (namespace, name) = match raw.split_once(':') {
            Some((ns, n)) => (ns, n),
            None => (DEFAULT_NAMESPACE, raw),
        };
        validate_part(namespace).map_err(|r| err(&format!("namespace {r}")))?;
        validate_part(name).map_err(|r| err(&format!("name {r}")))?;
        Ok(Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }

    /// The canonical form, always with the namespace.
    pub fn canonical(raw: &str) -> Result<String, NameError> {
        Ok(Self::parse(raw)?.to_string())
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace, self.name)
    }
}

/// Letters, digits, `_`, `-` and `.`; starts with a letter or digit; at most 128 bytes.
pub fn validate_part(part: &str) -> Result<(), String> {
    if part.is_empty() {
        return Err("is empty".into());
    }
    if part.len() > MAX_PART_LEN {
        return Err(format!("is longer than {MAX_PART_LEN} bytes"));
    }
    if !part
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
    {
        return Err("must start with a letter or digit".into());
    }
    if let Some(c) = part
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "contains {c:?} (allowed: letters, digits, '_', '-', '.')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bare_name_is_in_default_namespace() {
        assert_eq!(EntityName::canonical("orders").unwrap(), "default:orders");
        assert_eq!(EntityName::canonical("acme:orders").unwrap(), "acme:orders");
    }

    #[test]
    fn rejects_bad_names_with_reason() {
        for bad in ["", ":x", "a:", "a:b:c", "a b", "-x", "x/y"] {
            let e = EntityName::parse(bad).unwrap_err();
            assert_eq!(e.name, bad);
        }
        assert!(EntityName::parse("a:b:c")
            .unwrap_err()
            .reason
            .contains("':'"));
    }

    proptest! {
        #[test]
        fn canonical_is_idempotent(ns in "[a-z0-9][a-z0-9_.-]{0,20}", n in "[A-Za-z0-9][A-Za-z0-9_.-]{0,20}") {
            let c = EntityName::canonical(&format!("{ns}:{n}")).unwrap();
            prop_assert_eq!(EntityName::canonical(&c).unwrap(), c.clone());
            let c2 = EntityName::canonical(&n).unwrap();
            prop_assert_eq!(c2, format!("default:{n}"));
        }
    }
}
