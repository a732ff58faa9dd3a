//! Subject ids (`issuer:subject`) and the `*` / `?` wildcards that policy subjects and
//! entity-creation rules may use.

/// Longest subject id a policy takes.
pub const MAX_SUBJECT_LEN: usize = 256;

/// Checks `issuer:subject`: both parts non-empty, no whitespace or control characters, at
/// most [`MAX_SUBJECT_LEN`] bytes. Only the first `:` splits, so `integration:conn:1` is
/// issuer `integration`, subject `conn:1`. Wildcards are ordinary characters here.
pub fn validate(id: &str) -> Result<(), String> {
    if id.len() > MAX_SUBJECT_LEN {
        return Err(format!(
            "is {} bytes, over the limit of {MAX_SUBJECT_LEN}",
            id.len()
        ));
    }
    if let Some(c) = id.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("contains {c:?}"));
    }
    match id.split_once(':') {
        Some((issuer, subject)) if !issuer.is_empty() && !subject.is_empty() => Ok(()),
        _ => Err("is not issuer:subject (such as myprovider:alice or pre:admin)".into()),
    }
}

/// Whether `pattern` holds a wildcard character.
pub fn is_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// Whether `text` matches `pattern` in full, where `*` matches any number of characters
/// and `?` exactly one (as Ditto's entity-creation wildcards).
pub fn wildcard_matches(pattern: &str, text: &str) -> bool {
    let (mut p, mut t) = (pattern, text);
    // Where the last `*` was, to retry with it swallowing one more character.
    let mut star: Option<(&str, &str)> = None;
    loop {
        let mut pc = p.chars();
        let mut tc = t.chars();
        let (next_p, next_t) = (pc.next(), tc.next());
        match (next_p, next_t) {
            (Some('*'), _) => {
                p = pc.as_str();
                star = Some((p, t));
            }
            (Some(a), Some(b)) if a == '?' || a == b => {
                p = pc.as_str();
                t = tc.as_str();
            }
            (None, None) => return true,
            _ => {
                let Some((after_star, from)) = star else {
                    return false;
                };
                let mut rest = from.chars();
                if rest.next().is_none() {
                    return false;
                }
                p = after_star;
                t = rest.as_str();
                star = Some((after_star, t));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn subject_ids_need_an_issuer_and_a_subject() {
        for ok in [
            "pre:admin",
            "myprovider:*",
            "integration:conn:1",
            "tls:node-1",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
        for bad in ["admin", ":admin", "pre:", "pre:a b", ""] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        assert!(validate(&format!("x:{}", "a".repeat(300)))
            .unwrap_err()
            .contains("over the limit"));
    }

    #[test]
    fn star_and_question_mark() {
        for (p, t, want) in [
            ("pre:*", "pre:admin", true),
            ("pre:*", "pre:", true),
            ("pre:*", "oidc:admin", false),
            ("*", "", true),
            ("org.eclipse.ditto*", "org.eclipse.ditto.x", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a?c", "aéc", true),
            ("*:admin", "pre:admin", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(wildcard_matches(p, t), want, "{p} ~ {t}");
        }
    }

    proptest! {
        #[test]
        fn a_pattern_without_wildcards_matches_only_itself(a in "[a-z:]{0,8}", b in "[a-z:]{0,8}") {
            prop_assert_eq!(wildcard_matches(&a, &b), a == b);
            prop_assert!(wildcard_matches("*", &b));
            let star_suffix = format!("{a}*");
            prop_assert_eq!(wildcard_matches(&star_suffix, &b), b.starts_with(&a));
        }
    }
}
