//! Ditto's own examples, from its placeholder page and its function tests, with `jwt:`
//! claims standing in for the headers and thing ids they use.

use super::eval::like;
use super::Template;
use serde_json::{json, Value};

fn resolve(template: &str, claims: &Value) -> Vec<String> {
    let t = Template::parse(template).unwrap_or_else(|e| panic!("{template}: {e}"));
    t.resolve(claims, 1_000)
        .unwrap_or_else(|n| panic!("{template}: {n} results"))
}

fn one(template: &str, claims: &Value) -> Option<String> {
    let mut all = resolve(template, claims);
    assert!(all.len() <= 1, "{template}: {all:?}");
    all.pop()
}

/// The JWT of Ditto's "Scope: OpenID Connect configuration" example.
fn ditto_jwt() -> Value {
    json!({
        "sub": "u123456789",
        "iss": "https://<the-issuer-domain>/",
        "exp": 1490922820,
        "iat": 1490886820,
        "email": "john.doe@eclipse.org",
        "aud": "client-id-0815",
        "scopes": "openid email",
        "extra": { "roles": ["administrator", "super-moderator", "moderator"] }
    })
}

#[test]
fn the_five_examples_of_dittos_placeholder_page() {
    let jwt = ditto_jwt();
    assert_eq!(resolve("{{ jwt:sub }}", &jwt), ["u123456789"]);
    assert_eq!(
        resolve("{{ jwt:sub }}@{{ jwt:aud }}", &jwt),
        ["u123456789@client-id-0815"]
    );
    assert_eq!(
        resolve("{{ jwt:extra/roles }}", &jwt),
        ["administrator", "super-moderator", "moderator"]
    );
    assert_eq!(
        resolve("{{ jwt:scopes | fn:split(' ') }}", &jwt),
        ["openid", "email"]
    );
    assert_eq!(
        resolve(
            "{{ jwt:extra/roles | fn:filter('like','*moderator') }}@{{ jwt:aud }}",
            &jwt
        ),
        ["super-moderator@client-id-0815", "moderator@client-id-0815"]
    );
}

#[test]
fn two_array_placeholders_give_their_product_and_an_unresolved_one_gives_nothing() {
    // Ditto's `ExpressionResolver.substitute` combines parts as a cartesian product.
    let jwt = json!({ "a": ["1", "2"], "b": ["x", "y"], "n": 7, "t": true, "o": {"k": 1} });
    assert_eq!(
        resolve("{{ jwt:a }}-{{ jwt:b }}", &jwt),
        ["1-x", "1-y", "2-x", "2-y"]
    );
    assert!(resolve("{{ jwt:a }}-{{ jwt:missing }}", &jwt).is_empty());
    assert!(resolve("{{ jwt:empty }}", &json!({ "empty": [] })).is_empty());
    // Non-string claims read as their JSON text, as Ditto's `formatAsString`.
    assert_eq!(
        resolve("{{ jwt:n }}/{{ jwt:t }}/{{ jwt:o }}", &jwt),
        ["7/true/{\"k\":1}"]
    );
    assert_eq!(
        resolve("{{jwt:/n}}", &jwt),
        ["7"],
        "leading slash, no spaces"
    );
    assert_eq!(resolve("constant", &jwt), ["constant"]);
    let too_many = Template::parse("{{ jwt:a }}{{ jwt:a }}{{ jwt:a }}").expect("parses");
    assert_eq!(too_many.resolve(&jwt, 4), Err(8));
}

#[test]
fn fn_default() {
    let jwt = json!({ "sub": "u1", "name": "header-val" });
    assert_eq!(
        one("{{ jwt:nonexistent | fn:default('fallback-val') }}", &jwt),
        Some("fallback-val".into())
    );
    assert_eq!(
        one("{{ jwt:nonexistent | fn:default(\"fallback-val\") }}", &jwt),
        Some("fallback-val".into())
    );
    assert_eq!(
        one("{{ jwt:nonexistent | fn:default(jwt:name) }}", &jwt),
        Some("header-val".into())
    );
    assert_eq!(
        one("{{ jwt:nonexistent | fn:default(jwt:alsoNotThere) }}", &jwt),
        None
    );
    assert_eq!(
        one("{{ jwt:sub | fn:default('x') }}", &jwt),
        Some("u1".into())
    );
    // A pipeline may start with a function; its input is empty.
    assert_eq!(
        one("{{ fn:default(jwt:name) | fn:upper() }}", &jwt),
        Some("HEADER-VAL".into())
    );
}

#[test]
fn fn_substring_before_and_after() {
    let jwt = json!({ "colon": "value:with:colon", "name": "header-val" });
    assert_eq!(
        one(
            "{{ jwt:colon }}:{{jwt:colon| fn:substring-before(':') }}",
            &jwt
        ),
        Some("value:with:colon:value".into())
    );
    assert_eq!(
        one(
            "{{ jwt:name }}:{{jwt:name | fn:substring-before('_') | fn:default(jwt:name)}}",
            &jwt
        ),
        Some("header-val:header-val".into())
    );
    assert_eq!(
        one(
            "{{ jwt:colon | fn:substring-after(':') | fn:upper() }}",
            &jwt
        ),
        Some("WITH:COLON".into())
    );
    assert_eq!(
        one("{{ jwt:name | fn:substring-after(\":\") }}", &jwt),
        None
    );
    assert_eq!(
        one("{{ jwt:name | fn:substring-before(\":\") }}", &jwt),
        None
    );
}

#[test]
fn fn_lower_upper_replace() {
    let jwt = json!({ "sub": "CamelCase-ID", "groups": ["Ops", "Dev"] });
    assert_eq!(
        one("{{ jwt:sub | fn:lower() }}", &jwt),
        Some("camelcase-id".into())
    );
    assert_eq!(
        one("{{ jwt:sub | fn:upper() }}", &jwt),
        Some("CAMELCASE-ID".into())
    );
    assert_eq!(
        resolve("{{ jwt:groups | fn:lower() }}", &jwt),
        ["ops", "dev"]
    );
    assert_eq!(
        one("{{ jwt:sub | fn:replace('Case', 'Back') }}", &jwt),
        Some("CamelBack-ID".into())
    );
    // Java's `String.replace`: every occurrence.
    let jwt = json!({ "s": "foo-foo" });
    assert_eq!(
        one("{{ jwt:s | fn:replace('foo', 'bar') }}", &jwt),
        Some("bar-bar".into())
    );
}

#[test]
fn fn_split_and_join() {
    let jwt =
        json!({ "scope": "foo bar baz", "one": "unsplittable", "list": ["foo", "bar", "baz"] });
    assert_eq!(
        resolve("{{ jwt:scope | fn:split(' ') }}", &jwt),
        ["foo", "bar", "baz"]
    );
    assert_eq!(
        resolve("{{ jwt:one | fn:split(' ') }}", &jwt),
        ["unsplittable"]
    );
    assert!(resolve("{{ jwt:missing | fn:split(' ') }}", &jwt).is_empty());
    assert_eq!(
        resolve("{{ jwt:list | fn:join(':') }}", &jwt),
        ["foo:bar:baz"]
    );
    assert_eq!(
        resolve("{{ jwt:one | fn:join(':') }}", &jwt),
        ["unsplittable"]
    );
    assert!(resolve("{{ jwt:missing | fn:join(':') }}", &jwt).is_empty());
    assert_eq!(
        resolve("{{ jwt:scope | fn:split(' ') | fn:join(',') }}", &jwt),
        ["foo,bar,baz"]
    );
    // Java drops trailing empty strings.
    let jwt = json!({ "s": "a,b,," });
    assert_eq!(resolve("{{ jwt:s | fn:split(',') }}", &jwt), ["a", "b"]);
}

#[test]
fn fn_filter_with_dittos_cases() {
    let jwt = json!({ "v": "some value", "yes": "true", "no": "false" });
    let f = |t: &str| one(t, &jwt);
    let kept = Some("some value".to_string());
    assert_eq!(f("{{ jwt:v | fn:filter(jwt:yes,\"eq\",\"true\") }}"), kept);
    assert_eq!(f("{{ jwt:v | fn:filter(jwt:no,\"eq\",\"true\") }}"), None);
    assert_eq!(
        f("{{ jwt:v | fn:filter(jwt:unset,\"eq\",jwt:unset2) }}"),
        kept,
        "both unresolved are equal"
    );
    assert_eq!(f("{{ jwt:v | fn:filter(jwt:yes,\"eq\",jwt:unset) }}"), None);
    assert_eq!(
        f("{{ jwt:v | fn:filter(jwt:unset,\"ne\",jwt:unset2) }}"),
        None
    );
    assert_eq!(f("{{ jwt:v | fn:filter(jwt:yes,\"ne\",jwt:unset) }}"), kept);
    assert_eq!(
        f("{{ jwt:v | fn:filter(jwt:unset,\"like\",jwt:unset2) }}"),
        kept
    );
    assert_eq!(
        f("{{ jwt:yes | fn:filter(jwt:yes,'exists') }}"),
        Some("true".into())
    );
    assert_eq!(f("{{ jwt:yes | fn:filter(jwt:unset,'exists') }}"), None);
    assert_eq!(
        f("{{ jwt:yes | fn:filter(jwt:yes,'exists','true') }}"),
        Some("true".into())
    );
    assert_eq!(
        f("{{ jwt:yes | fn:filter(jwt:unset,'exists','true') }}"),
        None
    );
    assert_eq!(
        f("{{ jwt:yes | fn:filter(jwt:yes,'exists','false') }}"),
        None
    );
    assert_eq!(
        f("{{ jwt:yes | fn:filter(jwt:unset,'exists','false') }}"),
        Some("true".into())
    );
    // The two-parameter form filters the previous value itself.
    assert_eq!(f("{{ jwt:v | fn:filter('eq','some value') }}"), kept);
    assert_eq!(f("{{ jwt:v | fn:filter('ne','some value') }}"), None);
    let roles = json!({ "roles": ["allowlist1", "foobar", "other", "include"] });
    assert_eq!(
        resolve(
            "{{ jwt:roles | fn:filter('like','allowlist1|foobar|include') }}",
            &roles
        ),
        ["allowlist1", "foobar", "include"]
    );
}

#[test]
fn like_matches_as_dittos_filter_test() {
    for (arg, pattern, expected) in [
        ("x", "y", false),
        ("x", "x", true),
        ("x", "*", true),
        ("x", "?", true),
        ("*y", "xy", false),
        ("xy", "*y", true),
        ("1234567", "*2?7", false),
        ("1234567", "*5?7", true),
        ("1234567", "1?4*", false),
        ("1234567", "1?3*", true),
        ("1234567", "*?1?3?*", false),
        ("1234567", "*?3?5?*", true),
    ] {
        assert_eq!(like(arg, pattern), expected, "{arg} like {pattern}");
        let t = format!("{{{{ jwt:v | fn:filter('{arg}','like','{pattern}') }}}}");
        let kept = one(&t, &json!({ "v": "some value" })).is_some();
        assert_eq!(kept, expected, "{t}");
    }
}

#[test]
fn bad_templates_are_refused_with_the_reason() {
    for (template, reason) in [
        ("", "empty"),
        ("{{ jwt:sub", "closing"),
        ("{{ header:x }}", "jwt:"),
        ("{{ jwt:sub | fn:nope() }}", "unknown function"),
        ("{{ jwt:sub | fn:lower('x') }}", "no parameters"),
        ("{{ jwt:sub | fn:split() }}", "1 parameter"),
        ("{{ jwt:sub | fn:split(' ',',') }}", "1 parameter"),
        ("{{ jwt:sub | fn:split }}", "parameter list"),
        (
            "{{ jwt:sub | fn:substring-before(jwt:x) }}",
            "quoted string",
        ),
        (
            "{{ jwt:sub | fn:filter('na','x') }}",
            "unknown filter function",
        ),
        ("{{ jwt:sub | fn:filter('x') }}", "2 or 3"),
        ("{{ jwt:sub | fn:default('x) }}", "unclosed quote"),
        ("{{ jwt:sub | }}", "empty pipeline stage"),
        ("{{ jwt: }}", "names no claim"),
    ] {
        let err = Template::parse(template).expect_err(template).to_string();
        assert!(err.contains(reason), "{template}: {err}");
    }
    let eleven = format!("{{{{ jwt:sub{} }}}}", " | fn:lower()".repeat(11));
    assert!(Template::parse(&eleven).is_err(), "more than 10 functions");
    let ten = format!("{{{{ jwt:sub{} }}}}", " | fn:lower()".repeat(10));
    assert!(Template::parse(&ten).is_ok());
}
