//! Gravwell's ingest secrets, kept for its ingesters: a presented secret names the caller
//! `ingest:NAME` when it equals one of the named secrets.

use super::principal::{AuthMethod, Principal};
use crate::secrets::ct_eq;

/// The principal of an ingester presenting `presented`, when it is one of `named`'s
/// secrets (`(name, secret)` pairs). Every secret is compared in constant time, without
/// stopping at a match, so timing tells nothing; an empty secret, given or configured,
/// matches nothing.
pub fn ingest_principal<N, S>(
    named: impl IntoIterator<Item = (N, S)>,
    presented: &[u8],
) -> Option<Principal>
where
    N: AsRef<str>,
    S: AsRef<[u8]>,
{
    let mut found: Option<String> = None;
    for (name, secret) in named {
        let secret = secret.as_ref();
        let hit = !secret.is_empty() & !presented.is_empty() & ct_eq(secret, presented);
        if hit && found.is_none() {
            found = Some(name.as_ref().to_string());
        }
    }
    found.map(|name| Principal {
        subjects: vec![format!("ingest:{name}")],
        method: AuthMethod::IngestSecret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_named_secret_yields_its_name() {
        let named = BTreeMap::from([
            ("gravwell-east".to_string(), "s3cret-east".to_string()),
            ("gravwell-west".to_string(), "s3cret-west".to_string()),
            ("unset".to_string(), String::new()),
        ]);
        let p = ingest_principal(&named, b"s3cret-west").expect("known secret refused");
        assert_eq!(p.subjects, vec!["ingest:gravwell-west"]);
        assert_eq!(p.method, AuthMethod::IngestSecret);
        assert_eq!(ingest_principal(&named, b"s3cret-wes"), None);
        assert_eq!(ingest_principal(&named, b"s3cret-west!"), None);
        assert_eq!(
            ingest_principal(&named, b""),
            None,
            "empty matches the unset one"
        );
    }
}
