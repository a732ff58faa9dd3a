//! Tokens of every kind against a provider fetching its keys by discovery over HTTPS.

use super::{bearer, check, Setup, TestResult};
use crate::auth::config::OidcProviderConfig;
use crate::auth::test_issuer::{unix_now, KeyKind};
use crate::auth::{AuthError, AuthMethod, Authenticator};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;

#[tokio::test]
async fn valid_tokens_of_both_algorithms_are_accepted() -> TestResult {
    let s = Setup::new().await?;
    let rsa = s.issuer.add_key(KeyKind::Rs256)?;
    let ec = s.issuer.add_key(KeyKind::Es256)?;
    let a = s.authenticator(s.provider())?;
    for kid in [&rsa, &ec] {
        let token = s
            .issuer
            .sign(kid, &s.issuer.claims("alice", "tributary", 300))?;
        let p = check(&a, &token).await?;
        assert_eq!(p.subjects, ["myprovider:alice"], "{kid}");
        assert_eq!(
            p.method,
            AuthMethod::Jwt {
                provider: "myprovider".into()
            }
        );
    }
    // A token naming no key is checked against every key of the set.
    let no_kid = s
        .issuer
        .sign_as(&ec, None, &s.issuer.claims("bob", "tributary", 300))?;
    assert_eq!(check(&a, &no_kid).await?.subjects, ["myprovider:bob"]);
    // `aud` as an array with ours among others.
    let mut claims = s.issuer.claims("carol", "x", 300);
    claims["aud"] = json!(["other", "tributary"]);
    assert!(check(&a, &s.issuer.sign(&rsa, &claims)?).await.is_ok());
    // No audiences configured: `aud` is not checked.
    let any_aud = s.authenticator(OidcProviderConfig {
        audiences: vec![],
        ..s.provider()
    })?;
    let token = s
        .issuer
        .sign(&rsa, &s.issuer.claims("dave", "whatever", 300))?;
    assert!(check(&any_aud, &token).await.is_ok());
    assert_eq!(s.issuer.jwks_fetches(), 2, "one fetch per authenticator");
    Ok(())
}

/// `r` is the refusal `ok` wants, and maps to `UNAUTHENTICATED`.
fn expect<T: std::fmt::Debug>(
    what: &str,
    r: Result<T, AuthError>,
    ok: impl Fn(&AuthError) -> bool,
) -> Result<(), String> {
    match r {
        Err(e) if ok(&e) => {
            assert_eq!(e.to_status().code(), tonic::Code::Unauthenticated, "{what}");
            Ok(())
        }
        other => Err(format!("{what}: {other:?}")),
    }
}

#[tokio::test]
async fn each_bad_token_is_refused_with_its_reason() -> TestResult {
    let s = Setup::new().await?;
    let kid = s.issuer.add_key(KeyKind::Es256)?;
    let rsa = s.issuer.add_key(KeyKind::Rs256)?;
    let stranger = s.issuer.add_unpublished_key(KeyKind::Es256)?;
    let a = s.authenticator(s.provider())?;
    let i = &s.issuer;

    let expired = i.sign(&kid, &i.claims("alice", "tributary", -120))?;
    expect("expired", check(&a, &expired).await, |e| {
        matches!(e, AuthError::Expired { .. })
    })?;
    // Within the 30 s leeway an expired token still passes (clock skew).
    let just_expired = i.sign(&kid, &i.claims("alice", "tributary", -5))?;
    assert!(check(&a, &just_expired).await.is_ok());

    let mut future = i.claims("alice", "tributary", 600);
    future["nbf"] = json!(unix_now() + 300);
    let not_yet = i.sign(&kid, &future)?;
    expect("not yet valid", check(&a, &not_yet).await, |e| {
        matches!(e, AuthError::NotYetValid { .. })
    })?;

    let wrong_aud = i.sign(&kid, &i.claims("alice", "someone-else", 300))?;
    expect("wrong audience", check(&a, &wrong_aud).await, |e| {
        matches!(e, AuthError::WrongAudience { .. })
    })?;
    let mut no_aud = i.claims("alice", "x", 300);
    no_aud.as_object_mut().map(|c| c.remove("aud"));
    expect(
        "no audience",
        check(&a, &i.sign(&kid, &no_aud)?).await,
        |e| matches!(e, AuthError::WrongAudience { .. }),
    )?;

    let mut foreign = i.claims("alice", "tributary", 300);
    foreign["iss"] = json!("https://idp.elsewhere.example");
    expect(
        "foreign issuer",
        check(&a, &i.sign(&kid, &foreign)?).await,
        |e| matches!(e, AuthError::UnknownIssuer { issuer } if issuer == "https://idp.elsewhere.example"),
    )?;

    // Signed by a key the issuer does not publish, but naming one it does.
    let forged = i.sign_as(&stranger, Some(&kid), &i.claims("alice", "tributary", 300))?;
    expect("bad signature", check(&a, &forged).await, |e| {
        matches!(e, AuthError::BadSignature { .. })
    })?;
    // A genuine token whose claims were changed afterwards.
    let genuine = i.sign(&rsa, &i.claims("alice", "tributary", 300))?;
    let parts: Vec<&str> = genuine.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(i.claims("admin", "tributary", 300).to_string());
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    expect("tampered claims", check(&a, &tampered).await, |e| {
        matches!(e, AuthError::BadSignature { .. })
    })?;

    let fetches = i.jwks_fetches();
    let unknown = i.sign(&stranger, &i.claims("alice", "tributary", 300))?;
    expect(
        "unknown kid",
        check(&a, &unknown).await,
        |e| matches!(e, AuthError::UnknownKid { kid, .. } if kid == &stranger),
    )?;
    assert!(
        i.jwks_fetches() <= fetches + 1,
        "at most one refetch for it"
    );

    // HS256 with a public key as the secret: the algorithm-confusion attack.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.clone());
    let hs = jsonwebtoken::encode(
        &header,
        &i.claims("alice", "tributary", 300),
        &jsonwebtoken::EncodingKey::from_secret(b"public key bytes"),
    )?;
    expect("HS256", check(&a, &hs).await, |e| {
        matches!(e, AuthError::UnsupportedAlgorithm { .. })
    })?;

    let mut no_exp = i.claims("alice", "tributary", 300);
    no_exp.as_object_mut().map(|c| c.remove("exp"));
    expect(
        "no exp",
        check(&a, &i.sign(&kid, &no_exp)?).await,
        |e| matches!(e, AuthError::Malformed(m) if m.contains("exp")),
    )?;
    for junk in ["abc", "a.b.c", "a.b", "..", ""] {
        let r = a.authenticate(&bearer(junk)).await;
        expect(junk, r, |e| matches!(e, AuthError::Malformed(_)))?;
    }
    let basic = crate::auth::Credentials {
        authorization: Some("Basic ZGV2b3BzOmZvb2Jhcg==".into()),
        ..Default::default()
    };
    expect(
        "basic on the client API",
        a.authenticate(&basic).await,
        |e| matches!(e, AuthError::WrongScheme { .. }),
    )?;
    Ok(())
}

#[tokio::test]
async fn the_reference_pages_auth_subjects_give_the_documented_subjects() -> TestResult {
    let s = Setup::new().await?;
    let kid = s.issuer.add_key(KeyKind::Rs256)?;
    // The `myprovider` example of Ditto's operating page, word for word.
    let provider = OidcProviderConfig {
        auth_subjects: vec![
            "{{ jwt:sub }}".into(),
            "{{ jwt:sub }}/{{ jwt:scp }}".into(),
            "{{ jwt:sub }}/{{ jwt:scp }}@{{ jwt:client_id }}".into(),
            "{{ jwt:sub }}/{{ jwt:scp }}@{{ jwt:non_existing }}".into(),
            "{{ jwt:roles/support }}".into(),
        ],
        ..s.provider()
    };
    let a = s.authenticator(provider)?;
    let mut claims = s.issuer.claims("u123", "tributary", 300);
    claims["scp"] = json!("read");
    claims["client_id"] = json!("app-7");
    claims["roles"] = json!({ "support": ["agent", "lead"] });
    let p = check(&a, &s.issuer.sign(&kid, &claims)?).await?;
    assert_eq!(
        p.subjects,
        [
            "myprovider:u123",
            "myprovider:u123/read",
            "myprovider:u123/read@app-7",
            // `…@{{ jwt:non_existing }}` is ignored in full.
            "myprovider:agent",
            "myprovider:lead",
        ]
    );

    let none_resolve = s.authenticator(OidcProviderConfig {
        auth_subjects: vec!["{{ jwt:non_existing }}".into()],
        ..s.provider()
    })?;
    let token = s
        .issuer
        .sign(&kid, &s.issuer.claims("u123", "tributary", 300))?;
    assert!(matches!(
        check(&none_resolve, &token).await,
        Err(AuthError::NoSubjects { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn issuers_match_with_or_without_https_and_the_list_wins() -> TestResult {
    let s = Setup::new().await?;
    let kid = s.issuer.add_key(KeyKind::Es256)?;
    let bare = s.issuer.issuer().trim_start_matches("https://").to_string();
    // Configured as Ditto's examples write it, with no scheme.
    let a = s.authenticator(OidcProviderConfig {
        issuer: bare.clone(),
        ..s.provider()
    })?;
    for iss in [s.issuer.issuer().to_string(), bare.clone()] {
        let mut claims = s.issuer.claims("alice", "tributary", 300);
        claims["iss"] = json!(iss);
        assert!(
            check(&a, &s.issuer.sign(&kid, &claims)?).await.is_ok(),
            "iss {iss}"
        );
    }
    let listed = s.authenticator(OidcProviderConfig {
        issuer: "ignored.example".into(),
        issuers: vec!["other.example/one".into(), s.issuer.issuer().into()],
        ..s.provider()
    })?;
    let token = s
        .issuer
        .sign(&kid, &s.issuer.claims("alice", "tributary", 300))?;
    assert!(check(&listed, &token).await.is_ok());
    let mut ignored = s.issuer.claims("alice", "tributary", 300);
    ignored["iss"] = json!("ignored.example");
    assert!(matches!(
        check(&listed, &s.issuer.sign(&kid, &ignored)?).await,
        Err(AuthError::UnknownIssuer { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn keys_from_an_untrusted_issuer_or_a_jwks_file() -> TestResult {
    let s = Setup::new().await?;
    let kid = s.issuer.add_key(KeyKind::Rs256)?;
    let token = s
        .issuer
        .sign(&kid, &s.issuer.claims("alice", "tributary", 300))?;

    // A CA that did not sign the issuer's certificate: TLS refuses, the keys are unavailable.
    let other = crate::auth::test_issuer::TestIssuer::start().await?;
    let other_dir = tempfile::tempdir()?;
    let wrong_ca = other.write_ca(other_dir.path())?;
    let untrusting = s.authenticator(OidcProviderConfig {
        ca_file: wrong_ca.display().to_string(),
        ..s.provider()
    })?;
    match check(&untrusting, &token).await {
        Err(e @ AuthError::KeysUnavailable { .. }) => {
            assert_eq!(e.to_status().code(), tonic::Code::Unavailable);
            assert!(e.to_string().contains("certificate"), "{e}");
        }
        other => return Err(format!("untrusted issuer: {other:?}").into()),
    }
    assert_eq!(s.issuer.jwks_fetches(), 0);

    // The same keys from a file: nothing is fetched.
    let jwks = s.dir.path().join("jwks.json");
    std::fs::write(&jwks, s.issuer.jwks().to_string())?;
    let from_file = s.authenticator(OidcProviderConfig {
        ca_file: String::new(),
        jwks_file: jwks.display().to_string(),
        ..s.provider()
    })?;
    assert_eq!(
        check(&from_file, &token).await?.subjects,
        ["myprovider:alice"]
    );
    // A new key written to the file is picked up on its first token.
    let ec = s.issuer.add_key(KeyKind::Es256)?;
    std::fs::write(&jwks, s.issuer.jwks().to_string())?;
    let token2 = s
        .issuer
        .sign(&ec, &s.issuer.claims("bob", "tributary", 300))?;
    let from_file = &from_file;
    let p = super::until(
        "the rewritten JWKS file",
        std::time::Duration::from_secs(5),
        || {
            let token2 = token2.clone();
            async move { check(from_file, &token2).await.ok() }
        },
    )
    .await?;
    assert_eq!(p.subjects, ["myprovider:bob"]);
    assert_eq!(s.issuer.jwks_fetches(), 0);
    Ok(())
}

#[tokio::test]
async fn the_admin_api_falls_back_to_a_jwt() -> TestResult {
    let s = Setup::new().await?;
    let kid = s.issuer.add_key(KeyKind::Es256)?;
    let mut config = crate::auth::AuthConfig {
        oidc: [("myprovider".to_string(), s.provider())].into(),
        devops_token: "tok-123".into(),
        ..Default::default()
    };
    config.devops_user = "devops".into();
    config.devops_password = "foobar".into();
    let a = Authenticator::new(&config)?;
    let token = s
        .issuer
        .sign(&kid, &s.issuer.claims("ops-lead", "tributary", 300))?;
    let p = a.authenticate_devops(&bearer(&token)).await?;
    assert_eq!(
        p.map(|p| p.subjects),
        Some(vec!["myprovider:ops-lead".into()])
    );
    Ok(())
}
