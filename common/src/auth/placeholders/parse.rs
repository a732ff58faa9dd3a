//! Ditto's placeholder templates (`{{ jwt:sub | fn:lower() }}@x`), parsed once when the config
//! loads so that a bad template stops the server naming what is wrong, instead of silently
//! yielding no subject on every request.

use std::fmt;

/// Ditto's limit on the functions in one pipeline.
pub const MAX_FUNCTIONS: usize = 10;

/// A parsed `auth_subjects` entry: literal text and `{{ … }}` expressions.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub(super) parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Part {
    Literal(String),
    Expr(Pipeline),
}

/// `source | fn:a() | fn:b()`; a pipeline may also start with a function (its input is then
/// empty, as in Ditto's `{{ fn:default('x') }}`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pipeline {
    pub source: Option<Claim>,
    pub stages: Vec<Stage>,
}

/// `jwt:<claim-pointer>`: a JSON pointer into the token's claims, leading `/` optional.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Claim {
    pub pointer: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Param {
    Const(String),
    Claim(Claim),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Stage {
    /// Two or three parameters, as Ditto's `fn:filter`.
    Filter(Vec<Param>),
    Default(Param),
    SubstringBefore(String),
    SubstringAfter(String),
    Lower,
    Upper,
    Replace(Param, Param),
    Split(String),
    Join(String),
}

/// The filter functions `fn:filter` knows.
pub(super) const RQL_FUNCTIONS: [&str; 4] = ["eq", "ne", "exists", "like"];

const FUNCTIONS: &str = "filter, default, substring-before, substring-after, lower, upper, \
                         replace, split, join";

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(String);

fn err<T>(msg: impl fmt::Display) -> Result<T, TemplateError> {
    Err(TemplateError(msg.to_string()))
}

impl Template {
    /// Parses an `auth_subjects` entry.
    pub fn parse(raw: &str) -> Result<Template, TemplateError> {
        if raw.trim().is_empty() {
            return err("an empty template yields an empty subject");
        }
        let mut parts = Vec::new();
        let mut rest = raw;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                return err(format!("`{{{{` without a closing `}}}}` in {raw:?}"));
            };
            parts.push(Part::Expr(parse_pipeline(after[..end].trim())?));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Template { parts })
    }
}

fn parse_pipeline(expr: &str) -> Result<Pipeline, TemplateError> {
    let stages = split_outside_quotes(expr, '|')?;
    let mut stages = stages.iter().map(|s| s.trim());
    let first = stages.next().unwrap_or_default();
    if first.is_empty() {
        return err(format!("empty expression in `{{{{ {expr} }}}}`"));
    }
    let (source, mut functions) = if first.starts_with("fn:") {
        (None, vec![parse_function(first)?])
    } else {
        (Some(parse_claim(first)?), Vec::new())
    };
    for stage in stages {
        if stage.is_empty() {
            return err(format!("empty pipeline stage in `{{{{ {expr} }}}}`"));
        }
        functions.push(parse_function(stage)?);
    }
    if functions.len() > MAX_FUNCTIONS {
        return err(format!(
            "more than {MAX_FUNCTIONS} functions in `{{{{ {expr} }}}}`"
        ));
    }
    Ok(Pipeline {
        source,
        stages: functions,
    })
}

fn parse_claim(raw: &str) -> Result<Claim, TemplateError> {
    let Some((prefix, name)) = raw.split_once(':') else {
        return err(format!(
            "`{raw}` is neither a placeholder (`jwt:<claim>`) nor a function (`fn:…`)"
        ));
    };
    if prefix.trim() != "jwt" {
        return err(format!(
            "unknown placeholder `{raw}`: auth_subjects know `jwt:<claim>` only"
        ));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return err(format!("`{raw}` names no claim"));
    }
    Ok(Claim {
        pointer: name.to_string(),
    })
}

enum RawParam {
    Const(String),
    Claim(Claim),
}

impl RawParam {
    fn into_param(self) -> Param {
        match self {
            RawParam::Const(c) => Param::Const(c),
            RawParam::Claim(c) => Param::Claim(c),
        }
    }
}

fn parse_function(raw: &str) -> Result<Stage, TemplateError> {
    let Some(body) = raw.strip_prefix("fn:") else {
        return err(format!("`{raw}` is not a function (`fn:name(…)`)"));
    };
    let Some(open) = body.find('(') else {
        return err(format!("function `{raw}` has no parameter list `(…)`"));
    };
    let name = body[..open].trim();
    let params = parse_params(raw, body[open..].trim())?;
    let n = params.len();
    let count = |range: std::ops::RangeInclusive<usize>, what: &str| {
        if range.contains(&n) {
            Ok(())
        } else {
            err(format!("fn:{name} takes {what}, got {n} in `{raw}`"))
        }
    };
    let mut params = params.into_iter();
    let constant = |p: Option<RawParam>| match p {
        Some(RawParam::Const(c)) => Ok(c),
        _ => err(format!(
            "fn:{name} takes a quoted string, not a placeholder, in `{raw}`"
        )),
    };
    let stage = match name {
        "filter" => {
            count(2..=3, "2 or 3 parameters")?;
            let params: Vec<Param> = params.map(RawParam::into_param).collect();
            check_rql_constant(raw, &params)?;
            Stage::Filter(params)
        }
        "default" => {
            count(1..=1, "1 parameter")?;
            Stage::Default(
                params
                    .next()
                    .map(RawParam::into_param)
                    .ok_or_else(missing)?,
            )
        }
        "substring-before" => {
            count(1..=1, "1 parameter")?;
            Stage::SubstringBefore(constant(params.next())?)
        }
        "substring-after" => {
            count(1..=1, "1 parameter")?;
            Stage::SubstringAfter(constant(params.next())?)
        }
        "split" => {
            count(1..=1, "1 parameter")?;
            Stage::Split(constant(params.next())?)
        }
        "join" => {
            count(1..=1, "1 parameter")?;
            Stage::Join(constant(params.next())?)
        }
        "lower" => {
            count(0..=0, "no parameters")?;
            Stage::Lower
        }
        "upper" => {
            count(0..=0, "no parameters")?;
            Stage::Upper
        }
        "replace" => {
            count(2..=2, "2 parameters")?;
            let from = params
                .next()
                .map(RawParam::into_param)
                .ok_or_else(missing)?;
            let to = params
                .next()
                .map(RawParam::into_param)
                .ok_or_else(missing)?;
            Stage::Replace(from, to)
        }
        other => {
            return err(format!(
                "unknown function `fn:{other}` in `{raw}` (known: {FUNCTIONS})"
            ))
        }
    };
    Ok(stage)
}

fn missing() -> TemplateError {
    TemplateError("missing parameter".into())
}

/// A filter whose function name is a constant must name a known one: Ditto would quietly
/// drop every value instead.
fn check_rql_constant(raw: &str, params: &[Param]) -> Result<(), TemplateError> {
    let name = match params {
        [_, Param::Const(second)] if second == "exists" => return Ok(()),
        [Param::Const(first), _] => first,
        [_, Param::Const(second), _] => second,
        _ => return Ok(()),
    };
    if RQL_FUNCTIONS.contains(&name.as_str()) {
        Ok(())
    } else {
        err(format!(
            "unknown filter function {name:?} in `{raw}` (known: {})",
            RQL_FUNCTIONS.join(", ")
        ))
    }
}

/// `('a', "b", jwt:c)` → its parameters. Quoted constants keep their content as written (a
/// `\'` stays as is, as in Ditto); a bare parameter is a placeholder.
fn parse_params(raw_fn: &str, list: &str) -> Result<Vec<RawParam>, TemplateError> {
    let Some(inner) = list.strip_prefix('(').and_then(|l| l.strip_suffix(')')) else {
        return err(format!(
            "the parameters of `{raw_fn}` must be one `(…)` at its end"
        ));
    };
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    split_outside_quotes(inner, ',')?
        .into_iter()
        .map(|p| {
            let p = p.trim();
            let quoted = |q: char| p.len() >= 2 && p.starts_with(q) && p.ends_with(q);
            if quoted('\'') || quoted('"') {
                let content = &p[1..p.len() - 1];
                if has_unescaped(content, &p[..1]) {
                    return err(format!("text after a quoted parameter in `{raw_fn}`"));
                }
                Ok(RawParam::Const(content.to_string()))
            } else if p.is_empty() {
                err(format!("empty parameter in `{raw_fn}`"))
            } else if p.starts_with(['\'', '"']) {
                err(format!("text after a quoted parameter in `{raw_fn}`"))
            } else {
                parse_claim(p).map(RawParam::Claim)
            }
        })
        .collect()
}

/// Whether `quote` occurs in `s` without a backslash before it.
fn has_unescaped(s: &str, quote: &str) -> bool {
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if quote.starts_with(c) {
            return true;
        }
    }
    false
}

/// Splits on `sep` where it is not inside single or double quotes (a backslash escapes a
/// quote inside quotes).
fn split_outside_quotes(s: &str, sep: char) -> Result<Vec<&str>, TemplateError> {
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == sep => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            None => {}
        }
    }
    if quote.is_some() {
        return err(format!("unclosed quote in {s:?}"));
    }
    out.push(&s[start..]);
    Ok(out)
}
