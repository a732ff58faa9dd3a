//! NATS subject syntax, the one grammar every part uses: dot-separated tokens; `*` matches one
//! token, `>` matches one or more trailing tokens. Streams take subjects by filter, subscribers
//! filter by subject, the catalogue refuses overlapping stream subjects.

/// A subject that breaks the grammar; the caller names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("subject {subject:?} {reason}")]
pub struct SubjectError {
    pub subject: String,
    pub reason: String,
}

/// Whether `subject` (a literal) matches `filter` (which may hold `*` and a final `>`).
pub fn matches(filter: &str, subject: &str) -> bool {
    let mut f = filter.split('.');
    let mut s = subject.split('.');
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(ft), Some(st)) if ft == st => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether `filter` is empty (matches everything) or matches `subject`.
pub fn filter_accepts(filter: &str, subject: &str) -> bool {
    filter.is_empty() || matches(filter, subject)
}

/// A subject a message may be published to: non-empty tokens, no wildcards, no whitespace.
pub fn validate_literal(subject: &str) -> Result<(), SubjectError> {
    validate(subject, false)
}

/// A filter: like a literal but `*` tokens and a final `>` are allowed.
pub fn validate_filter(filter: &str) -> Result<(), SubjectError> {
    validate(filter, true)
}

/// Whether some subject matches both filters.
pub fn overlap(a: &str, b: &str) -> bool {
    let (ta, tb): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    for i in 0..ta.len().max(tb.len()) {
        match (ta.get(i), tb.get(i)) {
            (Some(&">"), _) | (_, Some(&">")) => return true,
            (Some(x), Some(y)) if x == y || *x == "*" || *y == "*" => continue,
            _ => return false,
        }
    }
    true
}

fn validate(subject: &str, wildcards: bool) -> Result<(), SubjectError> {
    let bad = |reason: String| SubjectError {
        subject: subject.to_string(),
        reason,
    };
    if subject.is_empty() {
        return Err(bad("is empty".into()));
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    for (i, t) in tokens.iter().enumerate() {
        if t.is_empty() {
            return Err(bad("has an empty token".into()));
        }
        if t.chars().any(char::is_whitespace) {
            return Err(bad("contains whitespace".into()));
        }
        let is_wild = *t == "*" || *t == ">";
        if is_wild && !wildcards {
            return Err(bad("has a wildcard; publish to a literal subject".into()));
        }
        if *t == ">" && i + 1 != tokens.len() {
            return Err(bad("has '>' before the last token".into()));
        }
        if !is_wild && (t.contains('*') || t.contains('>')) {
            return Err(bad(format!("has a wildcard inside token {t:?}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert!(matches("orders.new", "orders.new"));
        assert!(matches("orders.*", "orders.new"));
        assert!(!matches("orders.*", "orders.new.eu"));
        assert!(matches("orders.>", "orders.new.eu"));
        assert!(!matches("orders.>", "orders"));
        assert!(matches(">", "a"));
        assert!(matches("*.new", "orders.new"));
        assert!(!matches("orders", "orders.new"));
        assert!(!matches("orders.new", "orders"));
        assert!(filter_accepts("", "anything.at.all"));
    }

    #[test]
    fn validation_names_the_subject() {
        assert!(validate_literal("a.b").is_ok());
        for bad in ["", "a..b", ".a", "a.", "a.*", "a.>", "a b", "a.b*"] {
            let e = validate_literal(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        assert!(validate_filter("a.*.>").is_ok());
        assert!(validate_filter("a.>.b").is_err());
        assert!(validate_filter("a.b*").is_err());
    }

    #[test]
    fn overlapping_filters() {
        assert!(overlap("a.*", "a.b"));
        assert!(overlap("a.>", "a.b.c"));
        assert!(overlap(">", "x"));
        assert!(!overlap("a.b", "a.c"));
        assert!(!overlap("a.*", "a.b.c"));
        assert!(!overlap("a", "a.b"));
    }

    fn tokens() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec("[a-z0-9_-]{1,6}", 1..6)
    }

    proptest! {
        #[test]
        fn a_subject_matches_itself(t in tokens()) {
            let s = t.join(".");
            prop_assert!(matches(&s, &s));
        }

        #[test]
        fn star_replaces_exactly_one_token(t in tokens(), mask in prop::collection::vec(any::<bool>(), 6)) {
            let s = t.join(".");
            let f: Vec<String> = t.iter().zip(&mask).map(|(tok, m)| if *m { "*".to_string() } else { tok.clone() }).collect();
            let f = f.join(".");
            prop_assert!(matches(&f, &s));
            // One more or one fewer token never matches a filter without '>'.
            let longer = format!("{s}.extra");
            prop_assert!(!matches(&f, &longer));
            if t.len() > 1 {
                let shorter = t[..t.len() - 1].join(".");
                prop_assert!(!matches(&f, &shorter));
            }
        }

        #[test]
        fn gt_matches_one_or_more_trailing(t in tokens(), keep in 0usize..6) {
            let keep = keep.min(t.len() - 1);
            let f = if keep == 0 { ">".to_string() } else { format!("{}.>", t[..keep].join(".")) };
            prop_assert!(matches(&f, &t.join(".")));
            if keep > 0 {
                // '>' needs at least one token after the prefix.
                prop_assert!(!matches(&f, &t[..keep].join(".")));
            }
        }

        #[test]
        fn a_changed_literal_token_does_not_match(t in tokens(), i in 0usize..6) {
            let i = i % t.len();
            let mut other = t.clone();
            other[i] = format!("{}x", other[i]);
            prop_assert!(!matches(&t.join("."), &other.join(".")));
        }
    }
}
