//! The key cache over time: rotation at the issuer, a flood of junk `kid`s, an issuer that
//! stops answering, keys that grow old.

use super::{check, until, Setup, TestResult};
use crate::auth::config::OidcProviderConfig;
use crate::auth::test_issuer::KeyKind;
use crate::auth::AuthError;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_new_key_is_fetched_and_a_withdrawn_one_refused_after_refresh() -> TestResult {
    let s = Setup::new().await?;
    let old = s.issuer.add_key(KeyKind::Rs256)?;
    let a = s.authenticator(s.provider())?;
    let old_token = s
        .issuer
        .sign(&old, &s.issuer.claims("alice", "tributary", 300))?;
    assert!(check(&a, &old_token).await.is_ok());
    assert_eq!(s.issuer.jwks_fetches(), 1);

    // Rotation, step 1: the issuer publishes a new key and signs with it.
    let new = s.issuer.add_key(KeyKind::Es256)?;
    let new_token = s
        .issuer
        .sign(&new, &s.issuer.claims("bob", "tributary", 300))?;
    let (a, new_token) = (&a, &new_token);
    let p = until("the new key to be accepted", DEADLINE, || async move {
        check(a, new_token).await.ok()
    })
    .await?;
    assert_eq!(p.subjects, ["myprovider:bob"]);
    assert_eq!(
        s.issuer.jwks_fetches(),
        2,
        "the unknown kid caused one refetch"
    );

    // Step 2: the old key is withdrawn. The cache still holds it until something makes it
    // refetch (here: a token naming a key nobody knows).
    s.issuer.withdraw(&old);
    assert!(check(a, &old_token).await.is_ok(), "cached until refreshed");
    let junk = s.issuer.add_unpublished_key(KeyKind::Es256)?;
    let junk_token = s
        .issuer
        .sign(&junk, &s.issuer.claims("eve", "tributary", 300))?;
    let (junk_token, old_token) = (&junk_token, &old_token);
    let refused = until("the withdrawn key to be refused", DEADLINE, || async move {
        let _ = check(a, junk_token).await;
        check(a, old_token).await.err()
    })
    .await?;
    assert!(
        matches!(&refused, AuthError::UnknownKid { kid, .. } if kid == &old),
        "{refused:?}"
    );
    assert!(check(a, new_token).await.is_ok(), "the new key still works");
    Ok(())
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_at_most_once_per_interval() -> TestResult {
    let s = Setup::new().await?;
    let kid = s.issuer.add_key(KeyKind::Es256)?;
    let a = s.authenticator(OidcProviderConfig {
        jwks_min_refresh_interval_ms: 60_000,
        ..s.provider()
    })?;
    let token = s
        .issuer
        .sign(&kid, &s.issuer.claims("alice", "tributary", 300))?;
    assert!(check(&a, &token).await.is_ok());
    assert_eq!(s.issuer.jwks_fetches(), 1);
    let stranger = s.issuer.add_unpublished_key(KeyKind::Es256)?;
    let claims = s.issuer.claims("eve", "tributary", 300);
    let junk: Vec<String> = (0..200)
        .map(|n| {
            s.issuer
                .sign_as(&stranger, Some(&format!("junk-{n}")), &claims)
        })
        .collect::<Result<_, _>>()?;
    // Half one after the other, half at once.
    for t in &junk[..100] {
        assert!(matches!(
            check(&a, t).await,
            Err(AuthError::UnknownKid { .. })
        ));
    }
    let all = futures::future::join_all(junk[100..].iter().map(|t| check(&a, t))).await;
    assert!(all
        .iter()
        .all(|r| matches!(r, Err(AuthError::UnknownKid { .. }))));
    assert_eq!(s.issuer.jwks_fetches(), 1, "no refetch within the interval");
    assert!(check(&a, &token).await.is_ok(), "known keys unaffected");
    Ok(())
}

#[tokio::test]
async fn a_stalled_issuer_times_out_and_the_cache_survives() -> TestResult {
    let s = Setup::new().await?;
    let kid = s.issuer.add_key(KeyKind::Rs256)?;
    let a = s.authenticator(OidcProviderConfig {
        jwks_timeout_ms: 300,
        ..s.provider()
    })?;
    let token = s
        .issuer
        .sign(&kid, &s.issuer.claims("alice", "tributary", 300))?;
    assert!(check(&a, &token).await.is_ok());

    s.issuer.set_stalled(true);
    let stranger = s.issuer.add_unpublished_key(KeyKind::Es256)?;
    let junk = s
        .issuer
        .sign(&stranger, &s.issuer.claims("eve", "tributary", 300))?;
    let (a, junk) = (&a, &junk);
    let (err, took) = until("a refetch to time out", DEADLINE, || async move {
        let start = Instant::now();
        match check(a, junk).await {
            Err(e @ AuthError::KeysUnavailable { .. }) => Some((e, start.elapsed())),
            _ => None,
        }
    })
    .await?;
    assert!(took < Duration::from_secs(2), "the fetch took {took:?}");
    assert!(err.to_string().contains("300 ms"), "{err}");
    assert_eq!(err.to_status().code(), tonic::Code::Unavailable);
    assert!(
        check(a, &token).await.is_ok(),
        "cached keys survive a failed refetch"
    );

    // Back up: a key published meanwhile is found.
    s.issuer.set_stalled(false);
    let new = s.issuer.add_key(KeyKind::Es256)?;
    let new_token = s
        .issuer
        .sign(&new, &s.issuer.claims("bob", "tributary", 300))?;
    let new_token = &new_token;
    until("the issuer to answer again", DEADLINE, || async move {
        check(a, new_token).await.ok()
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn keys_older_than_max_age_are_refetched() -> TestResult {
    let s = Setup::new().await?;
    let kid = s.issuer.add_key(KeyKind::Es256)?;
    let a = s.authenticator(OidcProviderConfig {
        jwks_max_age_secs: 1,
        ..s.provider()
    })?;
    let token = s
        .issuer
        .sign(&kid, &s.issuer.claims("alice", "tributary", 300))?;
    assert!(check(&a, &token).await.is_ok());
    s.issuer.withdraw(&kid);
    let (a, token) = (&a, &token);
    let err = until("the aged key to be refused", DEADLINE, || async move {
        check(a, token).await.err()
    })
    .await?;
    assert!(matches!(err, AuthError::UnknownKid { .. }), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn an_unreachable_issuer_on_first_use_is_unavailable_not_unauthenticated() -> TestResult {
    let s = Setup::new().await?;
    let kid = s.issuer.add_key(KeyKind::Es256)?;
    s.issuer.set_stalled(true);
    let a = s.authenticator(OidcProviderConfig {
        jwks_timeout_ms: 200,
        ..s.provider()
    })?;
    let token = s
        .issuer
        .sign(&kid, &s.issuer.claims("alice", "tributary", 300))?;
    for _ in 0..3 {
        match check(&a, &token).await {
            Err(AuthError::KeysUnavailable { .. }) => {}
            other => return Err(format!("{other:?}").into()),
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_token_checked_before_is_refused_once_it_expires() -> TestResult {
    let s = Setup::new().await?;
    let kid = s.issuer.add_key(KeyKind::Es256)?;
    let a = s.authenticator(OidcProviderConfig {
        leeway_secs: 0,
        ..s.provider()
    })?;
    let token = s
        .issuer
        .sign(&kid, &s.issuer.claims("alice", "tributary", 2))?;
    // Accepted, and again (the second from the verified tokens), then refused once expired.
    assert!(check(&a, &token).await.is_ok());
    assert!(check(&a, &token).await.is_ok());
    let (a, token) = (&a, &token);
    let err = until("the token to expire", DEADLINE, || async move {
        check(a, token).await.err()
    })
    .await?;
    assert!(matches!(err, AuthError::Expired { .. }), "{err:?}");
    Ok(())
}
