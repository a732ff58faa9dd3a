//! Pre-authentication through a proxy, client certificates, anonymous callers and the
//! admin API's devops credentials.

use super::TestResult;
use crate::auth::{
    AuthConfig, AuthError, AuthMethod, Authenticator, Credentials, PRE_AUTHENTICATED_HEADER,
};
use base64::Engine;
use std::net::SocketAddr;
use tonic::metadata::{MetadataMap, MetadataValue};

fn from(addr: &str, header: &'static str, cn: Option<&str>) -> Result<Credentials, String> {
    let mut md = MetadataMap::new();
    md.insert(PRE_AUTHENTICATED_HEADER, MetadataValue::from_static(header));
    let remote: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    Ok(Credentials::from_metadata(
        &md,
        cn.map(str::to_string),
        Some(remote),
    ))
}

fn with_proxies(enabled: bool) -> Result<Authenticator, crate::config::ConfigError> {
    Authenticator::new(&AuthConfig {
        enable_pre_authentication: enabled,
        pre_authentication_proxies: vec!["10.0.0.0/8".into(), "nginx-proxy".into()],
        ..AuthConfig::default()
    })
}

#[tokio::test]
async fn pre_authentication_is_accepted_from_the_proxy_only() -> TestResult {
    let a = with_proxies(true)?;
    let p = a
        .authenticate(&from("10.1.2.3:5000", "nginx:alice", None)?)
        .await?
        .ok_or("anonymous")?;
    assert_eq!(p.subjects, ["nginx:alice"]);
    assert_eq!(p.method, AuthMethod::PreAuthenticated);
    // By the proxy's client certificate, from any address; the proxy's own CN is not
    // added to the user's subjects.
    let p = a
        .authenticate(&from("203.0.113.9:5000", "nginx:bob", Some("nginx-proxy"))?)
        .await?
        .ok_or("anonymous")?;
    assert_eq!(p.subjects, ["nginx:bob"]);

    let elsewhere = a
        .authenticate(&from("192.0.2.1:5000", "nginx:admin", Some("laptop"))?)
        .await;
    match elsewhere {
        Err(e @ AuthError::PreAuthNotFromProxy { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("192.0.2.1") && msg.contains(PRE_AUTHENTICATED_HEADER),
                "{msg}"
            );
            assert_eq!(e.to_status().code(), tonic::Code::Unauthenticated);
        }
        other => return Err(format!("from elsewhere: {other:?}").into()),
    }
    for bad in ["alice", ":alice", "nginx:"] {
        let r = a.authenticate(&from("10.0.0.1:1", bad, None)?).await;
        assert!(
            matches!(r, Err(AuthError::PreAuthMalformed { .. })),
            "{bad}: {r:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn pre_authentication_is_refused_when_disabled() -> TestResult {
    let a = with_proxies(false)?;
    let r = a
        .authenticate(&from("10.1.2.3:5000", "nginx:alice", None)?)
        .await;
    assert!(matches!(r, Err(AuthError::PreAuthDisabled { .. })), "{r:?}");
    let default = Authenticator::new(&AuthConfig::default())?;
    let r = default
        .authenticate(&from("10.1.2.3:5000", "nginx:alice", None)?)
        .await;
    assert!(
        matches!(r, Err(AuthError::PreAuthDisabled { .. })),
        "off by default: {r:?}"
    );
    // Enabled with nobody allowed to send it: a config error, not a silent refusal of all.
    let err = Authenticator::new(&AuthConfig {
        enable_pre_authentication: true,
        ..AuthConfig::default()
    })
    .expect_err("pre-auth without proxies accepted");
    assert!(
        err.to_string().contains("pre_authentication_proxies"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn client_certificates_and_anonymous_callers() -> TestResult {
    let a = Authenticator::new(&AuthConfig::default())?;
    let cert = Credentials {
        client_cert_cn: Some("node-7".into()),
        remote_addr: Some("127.0.0.1:4000".parse()?),
        ..Credentials::default()
    };
    let p = a.authenticate(&cert).await?.ok_or("anonymous")?;
    assert_eq!(p.subjects, ["tls:node-7"]);
    assert_eq!(p.method, AuthMethod::ClientCertificate);
    assert_eq!(a.authenticate(&Credentials::default()).await?, None);
    let empty = Credentials::from_metadata(&MetadataMap::new(), None, None);
    assert_eq!(a.authenticate(&empty).await?, None);
    // A token beside a certificate decides (and here it is wrong).
    let both = Credentials {
        authorization: Some("Bearer not-a-jwt".into()),
        ..cert
    };
    assert!(matches!(
        a.authenticate(&both).await,
        Err(AuthError::Malformed(_))
    ));
    assert!(
        !format!("{both:?}").contains("not-a-jwt"),
        "Debug must not print the token"
    );
    Ok(())
}

fn basic(user: &str, password: &str) -> Credentials {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    Credentials {
        authorization: Some(format!("Basic {encoded}")),
        ..Credentials::default()
    }
}

fn bearer(token: &str) -> Credentials {
    super::bearer(token)
}

#[tokio::test]
async fn devops_user_and_token_on_the_admin_api_only() -> TestResult {
    let a = Authenticator::new(&AuthConfig {
        devops_user: "devops".into(),
        devops_password: "foobar".into(),
        devops_token: "tok-123".into(),
        ..AuthConfig::default()
    })?;
    let p = a
        .authenticate_devops(&basic("devops", "foobar"))
        .await?
        .ok_or("anonymous")?;
    assert_eq!(p.subjects, ["devops:devops"]);
    assert_eq!(p.method, AuthMethod::Devops);
    for (user, password) in [("devops", "foobaz"), ("devop", "foobar"), ("devops", "")] {
        let r = a.authenticate_devops(&basic(user, password)).await;
        assert_eq!(r, Err(AuthError::BadDevopsCredentials), "{user}:{password}");
    }
    let p = a
        .authenticate_devops(&bearer("tok-123"))
        .await?
        .ok_or("anonymous")?;
    assert_eq!(p.subjects, ["devops:token"]);
    assert_eq!(
        a.authenticate_devops(&bearer("tok-124")).await,
        Err(AuthError::BadDevopsCredentials)
    );
    // Not on the client API.
    assert!(matches!(
        a.authenticate(&basic("devops", "foobar")).await,
        Err(AuthError::WrongScheme { .. })
    ));
    assert!(matches!(
        a.authenticate(&bearer("tok-123")).await,
        Err(AuthError::Malformed(_))
    ));

    let unset = Authenticator::new(&AuthConfig::default())?;
    assert_eq!(
        unset.authenticate_devops(&basic("devops", "foobar")).await,
        Err(AuthError::DevopsDisabled { what: "user" })
    );
    let half = Authenticator::new(&AuthConfig {
        devops_user: "devops".into(),
        ..AuthConfig::default()
    });
    assert!(half
        .expect_err("a user without a password accepted")
        .to_string()
        .contains("devops_password"));
    Ok(())
}

#[tokio::test]
async fn one_authenticator_serves_many_tasks() -> TestResult {
    // As gRPC handlers use it: shared behind an `Arc`, awaited on spawned tasks.
    let a = std::sync::Arc::new(Authenticator::new(&AuthConfig::default())?);
    let tasks: Vec<_> = (0..4)
        .map(|n| {
            let a = a.clone();
            tokio::spawn(async move {
                let c = Credentials {
                    client_cert_cn: Some(format!("node-{n}")),
                    ..Credentials::default()
                };
                a.authenticate(&c).await
            })
        })
        .collect();
    for (n, t) in tasks.into_iter().enumerate() {
        let p = t.await??.ok_or("anonymous")?;
        assert_eq!(p.subjects, [format!("tls:node-{n}")]);
    }
    Ok(())
}
