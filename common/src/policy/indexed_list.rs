//! Config lists that may also arrive as maps keyed `"0"`, `"1"`, …: figment's environment
//! provider turns `TRIBUTARY_ENTITY_CREATION__GRANT__0__AUTH_SUBJECTS__0=pre:admin` into
//! `{entity_creation: {grant: {"0": {auth_subjects: {"0": "pre:admin"}}}}}`, the way Ditto's
//! system properties `-Dditto.entity-creation.grant.0.auth-subjects.0=pre:admin` index lists.
//! Use with `#[serde(deserialize_with = "indexed_list::list")]` (or `strings`).

use serde::de::{Error, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// A list, from a sequence or from a map of list indexes (taken in index order, so gaps
/// are allowed: `0`, `1`, `5` gives three items).
pub fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_any(ListVisitor(PhantomData))
}

/// [`list`] of strings where a value the environment made a number or a boolean
/// (a namespace `2024`) is taken as its text.
pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let items: Vec<Text> = list(d)?;
    Ok(items.into_iter().map(|t| t.0).collect())
}

struct ListVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list, or a map with list indexes 0, 1, … as keys")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element()? {
            out.push(item);
        }
        Ok(out)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut items = BTreeMap::new();
        while let Some(key) = map.next_key::<Text>()? {
            let index: usize = key.0.parse().map_err(|_| {
                A::Error::custom(format!("key {:?} is not a list index (0, 1, …)", key.0))
            })?;
            if items.insert(index, map.next_value()?).is_some() {
                return Err(A::Error::custom(format!(
                    "list index {index} is given twice"
                )));
            }
        }
        Ok(items.into_values().collect())
    }
}

/// A string, or a number or boolean taken as its text.
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl Visitor<'_> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(TextVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        #[serde(deserialize_with = "strings")]
        items: Vec<String>,
    }

    #[test]
    fn a_list_or_an_indexed_map() {
        let seq: Holder = serde_json::from_str(r#"{"items": ["a", "b"]}"#).unwrap();
        assert_eq!(seq.items, ["a", "b"]);
        let map: Holder =
            serde_json::from_str(r#"{"items": {"1": "b", "0": "a", "10": 2024}}"#).unwrap();
        assert_eq!(map.items, ["a", "b", "2024"]);
        let bad = serde_json::from_str::<Holder>(r#"{"items": {"x": "a"}}"#);
        assert!(bad
            .err()
            .unwrap()
            .to_string()
            .contains("\"x\" is not a list index"));
        let twice = serde_json::from_str::<Holder>(r#"{"items": {"0": "a", "00": "b"}}"#);
        assert!(twice.err().unwrap().to_string().contains("given twice"));
    }
}
