//! The one place a request's credentials become a principal. Order, as in Ditto's gateway:
//! the pre-authentication header (from a trusted proxy), then `authorization`, then the TLS
//! client certificate; the first one present decides, and a wrong one is an error rather
//! than a fall-through to the next (a client that sent a bad token must hear so).

use super::config::AuthConfig;
use super::credentials::{Credentials, PRE_AUTHENTICATED_HEADER};
use super::devops::Devops;
use super::error::AuthError;
use super::jwt::{unverified_issuer, Provider, MAX_TOKEN_BYTES};
use super::principal::{AuthMethod, Principal};
use super::proxy::ProxyList;
use super::verified::VerifiedTokens;
use crate::config::ConfigError;

pub struct Authenticator {
    providers: Vec<Provider>,
    pre_authentication: bool,
    proxies: ProxyList,
    devops: Devops,
    verified: VerifiedTokens,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field(
                "providers",
                &self.providers.iter().map(|p| &p.name).collect::<Vec<_>>(),
            )
            .field("pre_authentication", &self.pre_authentication)
            .field("proxies", &self.proxies)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Checks the config whole (providers, templates, key sources, proxies, devops
    /// credentials) and reads its files; the error names the bad key. Fetches nothing: an
    /// issuer's keys are fetched on first use, so a server starts while its IdP is down.
    pub fn new(config: &AuthConfig) -> Result<Authenticator, ConfigError> {
        let config = config.clone().with_secret_files()?;
        let providers = config
            .oidc
            .iter()
            .map(|(name, p)| Provider::new(name, p))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, a) in providers.iter().enumerate() {
            for b in &providers[i + 1..] {
                if let Some(iss) = a.issuers().find(|iss| b.issuers().any(|o| o == *iss)) {
                    return Err(ConfigError(format!(
                        "key `oidc.{}.issuer`: issuer {iss:?} is also provider {}'s; a token \
                         must name one provider",
                        b.name, a.name
                    )));
                }
            }
        }
        let proxies = ProxyList::parse(&config.pre_authentication_proxies)?;
        if config.enable_pre_authentication && proxies.is_empty() {
            return Err(ConfigError(
                "key `pre_authentication_proxies`: required when `enable_pre_authentication` \
                 is true (the proxies' addresses or certificate CNs: anyone else could set \
                 the header)"
                    .into(),
            ));
        }
        Ok(Authenticator {
            providers,
            pre_authentication: config.enable_pre_authentication,
            proxies,
            devops: Devops::from_config(&config)?,
            verified: VerifiedTokens::default(),
        })
    }

    /// Who sent a request to the client API: `Ok(None)` when it carries no credentials at
    /// all. Basic auth and the devops token belong to the admin API
    /// ([`Authenticator::authenticate_devops`]).
    pub async fn authenticate(&self, c: &Credentials) -> Result<Option<Principal>, AuthError> {
        if let Some(header) = &c.pre_authenticated {
            return self.pre_authenticated(header, c).map(Some);
        }
        if let Some(auth) = &c.authorization {
            let (scheme, value) = split_scheme(auth)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(AuthError::WrongScheme {
                    scheme: scheme.to_string(),
                });
            }
            return self.jwt(value).await.map(Some);
        }
        if let Some(cn) = &c.client_cert_cn {
            return client_certificate(cn).map(Some);
        }
        Ok(None)
    }

    /// Who sent a request to the admin API: the devops user (basic auth) or token (bearer),
    /// else whatever [`Authenticator::authenticate`] finds (an operator's JWT, say).
    pub async fn authenticate_devops(
        &self,
        c: &Credentials,
    ) -> Result<Option<Principal>, AuthError> {
        if c.pre_authenticated.is_none() {
            if let Some(auth) = &c.authorization {
                let (scheme, value) = split_scheme(auth)?;
                if scheme.eq_ignore_ascii_case("basic") {
                    return self.devops.check_basic(value).map(Some);
                }
                if scheme.eq_ignore_ascii_case("bearer") {
                    if self.devops.token_matches(value) {
                        return Ok(Some(Devops::token_principal()));
                    }
                    // Not the token and not a JWT either: a wrong devops token.
                    if self.devops.has_token() && value.split('.').count() != 3 {
                        return Err(AuthError::BadDevopsCredentials);
                    }
                }
            }
        }
        self.authenticate(c).await
    }

    fn pre_authenticated(&self, header: &str, c: &Credentials) -> Result<Principal, AuthError> {
        let h = PRE_AUTHENTICATED_HEADER;
        if !self.pre_authentication {
            return Err(AuthError::PreAuthDisabled { header: h });
        }
        let remote = c.remote_addr.map(|a| a.ip());
        if !self.proxies.admits(c.client_cert_cn.as_deref(), remote) {
            let peer = match (&c.client_cert_cn, c.remote_addr) {
                (Some(cn), Some(a)) => format!("{a} (certificate CN {cn:?})"),
                (None, Some(a)) => a.to_string(),
                (Some(cn), None) => format!("certificate CN {cn:?}"),
                (None, None) => "an unknown peer".to_string(),
            };
            return Err(AuthError::PreAuthNotFromProxy { header: h, peer });
        }
        let malformed = |reason: &str| AuthError::PreAuthMalformed {
            header: h,
            reason: reason.to_string(),
        };
        let value = header.trim();
        match value.split_once(':') {
            Some((issuer, subject)) if !issuer.is_empty() && !subject.is_empty() => {
                if value.chars().any(char::is_control) {
                    return Err(malformed("control characters"));
                }
                Ok(Principal {
                    subjects: vec![value.to_string()],
                    method: AuthMethod::PreAuthenticated,
                })
            }
            Some(_) => Err(malformed("the issuer and the subject must not be empty")),
            None => Err(malformed("no `:`")),
        }
    }

    async fn jwt(&self, token: &str) -> Result<Principal, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed(format!(
                "the bearer token is longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        if let Some(p) = self.verified.get(token) {
            return Ok(p);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::Malformed(format!("not a JWT: {e}")))?;
        let iss = unverified_issuer(token)?;
        for provider in &self.providers {
            if let Some(cache) = provider.keys_for_issuer(&iss) {
                let generation = cache.fresh_generation();
                let (principal, expires_at) = provider.verify(token, &header, cache).await?;
                if let Some(g) = generation {
                    self.verified
                        .insert(token, &principal, cache, g, expires_at);
                }
                return Ok(principal);
            }
        }
        Err(AuthError::UnknownIssuer { issuer: iss })
    }
}

/// `Scheme value` of an `authorization` header.
fn split_scheme(auth: &str) -> Result<(&str, &str), AuthError> {
    match auth.trim().split_once(' ') {
        Some((scheme, value)) if !value.trim().is_empty() => Ok((scheme, value.trim())),
        _ => Err(AuthError::Malformed(
            "the authorization header must be `Bearer <token>`".into(),
        )),
    }
}

fn client_certificate(cn: &str) -> Result<Principal, AuthError> {
    if cn.trim().is_empty() || cn.chars().any(char::is_control) {
        return Err(AuthError::Malformed(
            "the client certificate's CN is empty or has control characters".into(),
        ));
    }
    Ok(Principal {
        subjects: vec![format!("tls:{cn}")],
        method: AuthMethod::ClientCertificate,
    })
}
