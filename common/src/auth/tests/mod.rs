//! The authenticator against a real local OIDC issuer (HTTPS on loopback), and its config.

mod config;
mod oidc;
mod proxies_and_devops;
mod rotation;

use super::config::{AuthConfig, OidcProviderConfig};
use super::test_issuer::{TestIssuer, TestIssuerError};
use super::{AuthError, Authenticator, Credentials, Principal};
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub(super) type TestResult = Result<(), TestIssuerError>;

/// An issuer, a temp dir holding its CA, and its provider config (`myprovider`, audience
/// `tributary`).
pub(super) struct Setup {
    pub issuer: TestIssuer,
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
}

impl Setup {
    pub async fn new() -> Result<Setup, TestIssuerError> {
        let issuer = TestIssuer::start().await?;
        let dir = tempfile::tempdir()?;
        let ca = issuer.write_ca(dir.path())?;
        Ok(Setup { issuer, dir, ca })
    }

    pub fn provider(&self) -> OidcProviderConfig {
        OidcProviderConfig {
            audiences: vec!["tributary".into()],
            ..self.issuer.provider_config(&self.ca)
        }
    }

    pub fn authenticator(
        &self,
        provider: OidcProviderConfig,
    ) -> Result<Authenticator, TestIssuerError> {
        let config = AuthConfig {
            oidc: [("myprovider".to_string(), provider)].into(),
            ..AuthConfig::default()
        };
        Ok(Authenticator::new(&config)?)
    }
}

pub(super) fn bearer(token: &str) -> Credentials {
    Credentials {
        authorization: Some(format!("Bearer {token}")),
        ..Credentials::default()
    }
}

/// The principal, or the reason for refusing it.
pub(super) async fn check(a: &Authenticator, token: &str) -> Result<Principal, AuthError> {
    match a.authenticate(&bearer(token)).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(AuthError::Malformed("treated as anonymous".into())),
        Err(e) => Err(e),
    }
}

/// Polls `probe` until it returns `Some`, failing after `deadline`.
pub(super) async fn until<T, F, Fut>(
    what: &str,
    deadline: Duration,
    mut probe: F,
) -> Result<T, TestIssuerError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return Ok(v);
        }
        if start.elapsed() > deadline {
            return Err(format!("timed out after {deadline:?} waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
