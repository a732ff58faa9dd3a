//! Resolving a parsed template against a token's claims, with Ditto's semantics: a value is
//! either unresolved or one or more strings (an array claim is many); each function works on
//! every string of its input; the parts of a template combine as a cartesian product, so an
//! unresolved part leaves the whole entry with no subject at all.

use super::parse::{Claim, Param, Part, Pipeline, Stage, Template};
use serde_json::Value;

/// A value flowing through a pipeline: Ditto's `PipelineElement` without `deleted` (which
/// has no use for subjects).
#[derive(Debug, Clone, PartialEq)]
enum Element {
    Unresolved,
    /// Never empty.
    Resolved(Vec<String>),
}

impl Element {
    fn of(values: Vec<String>) -> Element {
        if values.is_empty() {
            Element::Unresolved
        } else {
            Element::Resolved(values)
        }
    }

    fn one(v: impl Into<String>) -> Element {
        Element::Resolved(vec![v.into()])
    }

    fn values(&self) -> &[String] {
        match self {
            Element::Unresolved => &[],
            Element::Resolved(v) => v,
        }
    }

    fn into_values(self) -> Vec<String> {
        match self {
            Element::Unresolved => Vec::new(),
            Element::Resolved(v) => v,
        }
    }

    fn first(&self) -> Option<&str> {
        self.values().first().map(String::as_str)
    }

    /// Each string through `f`; what `f` leaves unresolved drops out.
    fn each(self, mut f: impl FnMut(String) -> Element) -> Element {
        match self {
            Element::Unresolved => Element::Unresolved,
            Element::Resolved(vs) => {
                Element::of(vs.into_iter().flat_map(|v| f(v).into_values()).collect())
            }
        }
    }
}

impl Template {
    /// Every string this template resolves to for `claims` (none when a part is unresolved),
    /// at most `limit` of them: the product of array claims can grow fast.
    pub fn resolve(&self, claims: &Value, limit: usize) -> Result<Vec<String>, usize> {
        let mut results = vec![String::new()];
        for part in &self.parts {
            let next = match part {
                Part::Literal(l) => vec![l.clone()],
                Part::Expr(p) => p.eval(claims).into_values(),
            };
            let size = results.len().saturating_mul(next.len());
            if size > limit {
                return Err(size);
            }
            results = results
                .iter()
                .flat_map(|r| next.iter().map(move |n| format!("{r}{n}")))
                .collect();
            if results.is_empty() {
                break;
            }
        }
        Ok(results)
    }
}

impl Pipeline {
    fn eval(&self, claims: &Value) -> Element {
        let input = match &self.source {
            Some(c) => lookup(claims, c),
            None => Element::Unresolved,
        };
        self.stages
            .iter()
            .fold(input, |el, stage| apply(stage, el, claims))
    }
}

/// A claim by JSON pointer: an array gives one string per element, a string itself, any
/// other JSON value its JSON text (Ditto's `formatAsString`).
fn lookup(claims: &Value, claim: &Claim) -> Element {
    let pointer = if claim.pointer.starts_with('/') {
        claim.pointer.clone()
    } else {
        format!("/{}", claim.pointer)
    };
    match claims.pointer(&pointer) {
        None => Element::Unresolved,
        Some(Value::Array(items)) => Element::of(items.iter().map(as_string).collect()),
        Some(v) => Element::one(as_string(v)),
    }
}

fn as_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn param(p: &Param, claims: &Value) -> Element {
    match p {
        Param::Const(c) => Element::one(c.as_str()),
        Param::Claim(c) => lookup(claims, c),
    }
}

fn apply(stage: &Stage, el: Element, claims: &Value) -> Element {
    match stage {
        Stage::Default(p) => match el {
            Element::Unresolved => param(p, claims),
            resolved => resolved,
        },
        Stage::SubstringBefore(s) => el.each(|v| match v.find(s.as_str()) {
            Some(i) => Element::one(&v[..i]),
            None => Element::Unresolved,
        }),
        Stage::SubstringAfter(s) => el.each(|v| match v.find(s.as_str()) {
            Some(i) => Element::one(&v[i + s.len()..]),
            None => Element::Unresolved,
        }),
        Stage::Lower => el.each(|v| Element::one(v.to_lowercase())),
        Stage::Upper => el.each(|v| Element::one(v.to_uppercase())),
        Stage::Replace(from, to) => {
            let from = param(from, claims).first().unwrap_or_default().to_string();
            // Ditto fails the expression when `to` resolves to nothing: no subject from it.
            match param(to, claims).first() {
                Some(to) => {
                    let to = to.to_string();
                    el.each(|v| Element::one(v.replace(&from, &to)))
                }
                None => Element::Unresolved,
            }
        }
        Stage::Split(sep) => Element::of(
            el.values()
                .iter()
                .flat_map(|v| java_split(v, sep))
                .collect(),
        ),
        Stage::Join(sep) => match el {
            Element::Unresolved => Element::Unresolved,
            Element::Resolved(vs) => Element::one(vs.join(sep)),
        },
        Stage::Filter(params) => filter(params, el, claims),
    }
}

/// Java's `String.split` for a literal separator, as Ditto's `fn:split` runs it: trailing
/// empty strings are dropped, and an empty separator splits into characters.
fn java_split(v: &str, sep: &str) -> Vec<String> {
    let mut parts: Vec<String> = if sep.is_empty() {
        v.chars().map(String::from).collect()
    } else {
        v.split(sep).map(str::to_string).collect()
    };
    while parts.last().is_some_and(String::is_empty) {
        parts.pop();
    }
    parts
}

#[derive(Debug, Clone, Copy)]
enum Rql {
    Eq,
    Ne,
    Exists,
    Like,
}

impl Rql {
    fn named(name: &str) -> Option<Rql> {
        match name {
            "eq" => Some(Rql::Eq),
            "ne" => Some(Rql::Ne),
            "exists" => Some(Rql::Exists),
            "like" => Some(Rql::Like),
            _ => None,
        }
    }

    fn test2(self, value: &str, compared: &str) -> bool {
        match self {
            Rql::Eq => value == compared,
            Rql::Ne => value != compared,
            // Java's `Boolean.parseBoolean`: "true" in any case, everything else false.
            Rql::Exists => compared.eq_ignore_ascii_case("true") != value.is_empty(),
            Rql::Like => like(value, compared),
        }
    }

    fn test1(self, value: &str) -> bool {
        matches!(self, Rql::Exists) && !value.is_empty()
    }
}

/// `fn:filter` as Ditto's `PipelineFunctionFilter`: with two parameters `(rql, compared)` it
/// keeps each input string that passes; `(value, 'exists')` and the three-parameter form
/// `(value, rql, compared)` test their own value and keep or drop the input whole.
fn filter(params: &[Param], el: Element, claims: &Value) -> Element {
    let resolved: Vec<Element> = params.iter().map(|p| param(p, claims)).collect();
    let (filter_values, rql, compared) = match resolved.as_slice() {
        [first, second] if second.first() == Some("exists") => {
            (Some(first.values().to_vec()), Some(Rql::Exists), None)
        }
        [first, second] => (
            None,
            first.first().and_then(Rql::named),
            Some(second.values().to_vec()),
        ),
        [first, second, third] => match second.first() {
            Some(name) => (
                Some(first.values().to_vec()),
                Rql::named(name),
                Some(third.values().to_vec()),
            ),
            // Ditto rejects a filter whose function resolves to nothing.
            None => return Element::Unresolved,
        },
        _ => return Element::Unresolved,
    };
    let Some(rql) = rql else {
        return el.each(|_| Element::Unresolved);
    };
    match filter_values {
        None => el.each(|v| {
            let keep = match &compared {
                Some(c) => c.iter().any(|c| rql.test2(&v, c)),
                None => rql.test1(&v),
            };
            if keep {
                Element::one(v)
            } else {
                Element::Unresolved
            }
        }),
        Some(values) => {
            let keep = keep_any(rql, &values, compared.as_deref());
            el.each(|v| {
                if keep {
                    Element::one(v)
                } else {
                    Element::Unresolved
                }
            })
        }
    }
}

/// Ditto's `applyFilter`, including how an unresolved side compares (as "").
fn keep_any(rql: Rql, values: &[String], compared: Option<&[String]>) -> bool {
    match compared {
        Some(c) if !values.is_empty() && !c.is_empty() => {
            values.iter().any(|v| c.iter().any(|c| rql.test2(v, c)))
        }
        Some([]) if values.is_empty() => rql.test2("", ""),
        Some(c) if values.is_empty() => c.iter().any(|c| rql.test2("", c)),
        Some(_) => values.iter().any(|v| rql.test2(v, "")),
        None => values.iter().any(|v| rql.test1(v)),
    }
}

/// Ditto's `like`: the whole value matches one of the `|`-separated alternatives, where `*`
/// is any run of characters and `?` exactly one.
pub(super) fn like(value: &str, pattern: &str) -> bool {
    let value: Vec<char> = value.chars().collect();
    pattern.split('|').any(|alt| {
        let alt: Vec<char> = alt.chars().collect();
        glob(&value, &alt)
    })
}

/// Iterative wildcard matching with one backtrack point: linear in practice, never
/// exponential, whatever a token or a config holds.
fn glob(value: &[char], pattern: &[char]) -> bool {
    let (mut v, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, v));
                p += 1;
            }
            Some('?') => {
                v += 1;
                p += 1;
            }
            Some(c) if *c == value[v] => {
                v += 1;
                p += 1;
            }
            _ => match star {
                Some((sp, sv)) => {
                    p = sp + 1;
                    v = sv + 1;
                    star = Some((sp, sv + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}
