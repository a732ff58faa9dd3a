//! One OIDC provider: which `iss` values it accepts, where its keys come from, how a token
//! of it is checked (signature, `exp`, `nbf`, `aud` with a leeway) and which subjects it
//! yields.

use super::config::OidcProviderConfig;
use super::error::AuthError;
use super::jwks::{parse_jwks_bytes, Family, KeyCache, KeySource, Timing};
use super::placeholders::Template;
use super::principal::{AuthMethod, Principal};
use crate::config::ConfigError;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Header, Validation};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// A token yielding more subjects than this is refused (array claims multiply).
pub(super) const MAX_SUBJECTS: usize = 256;
/// A bearer token longer than this is not a JWT anyone issues.
pub(super) const MAX_TOKEN_BYTES: usize = 16 << 10;

/// JWT segments are unpadded base64url; tolerate padding all the same.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(super) struct Provider {
    pub name: String,
    /// Accepted issuers without `https://`, each with its key cache (all share one with a
    /// JWKS file).
    issuers: Vec<(String, Arc<KeyCache>)>,
    audiences: Vec<String>,
    templates: Vec<Template>,
    leeway_secs: u64,
}

/// `iss` as compared: Ditto accepts a configured issuer with or without `https://`.
pub(super) fn bare_issuer(iss: &str) -> &str {
    iss.strip_prefix("https://").unwrap_or(iss)
}

impl Provider {
    pub fn new(name: &str, cfg: &OidcProviderConfig) -> Result<Provider, ConfigError> {
        let key = |k: &str| format!("oidc.{name}.{k}");
        let bad = |k: &str, msg: String| ConfigError(format!("key `{}`: {msg}", key(k)));
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(ConfigError(format!(
                "key `oidc.{name}`: a provider's key prefixes its subjects, so it takes \
                 letters, digits, `-`, `_` and `.` only"
            )));
        }
        let issuers = cfg.issuer_list();
        if issuers.is_empty() {
            return Err(bad("issuer", "missing: set `issuer` or `issuers`".into()));
        }
        for iss in &issuers {
            if iss.starts_with("http://") {
                return Err(bad(
                    "issuers",
                    format!("{iss:?}: keys are fetched over HTTPS only"),
                ));
            }
            if bare_issuer(iss).trim().is_empty() {
                return Err(bad("issuers", "an empty issuer".into()));
            }
        }
        let templates = cfg
            .subject_templates()
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Template::parse(t).map_err(|e| bad(&format!("auth_subjects.{i}"), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let timing = || Timing {
            timeout: Duration::from_millis(cfg.jwks_timeout_ms.max(1)),
            min_refresh_interval: Duration::from_millis(cfg.jwks_min_refresh_interval_ms),
            max_age: Duration::from_secs(cfg.jwks_max_age_secs),
        };
        let issuers = match (cfg.jwks_file.is_empty(), cfg.ca_file.is_empty()) {
            (false, false) => {
                return Err(bad(
                    "jwks_file",
                    "set `jwks_file` or `ca_file` (for discovery), not both".into(),
                ))
            }
            (false, true) => {
                let bytes = std::fs::read(&cfg.jwks_file)
                    .map_err(|e| bad("jwks_file", format!("{}: {e}", cfg.jwks_file)))?;
                let keys = parse_jwks_bytes(&bytes)
                    .map_err(|e| bad("jwks_file", format!("{}: {e}", cfg.jwks_file)))?;
                let source = KeySource::File {
                    path: cfg.jwks_file.clone(),
                };
                let cache = Arc::new(KeyCache::new(name, source, timing(), Some(keys)));
                issuers
                    .iter()
                    .map(|i| (bare_issuer(i).to_string(), cache.clone()))
                    .collect()
            }
            (true, true) => {
                return Err(bad(
                    "ca_file",
                    "required to fetch the issuer's keys over HTTPS (this build trusts no \
                     system roots); or set `jwks_file`"
                        .into(),
                ))
            }
            (true, false) => {
                let client = https_client(&cfg.ca_file, timing().timeout)
                    .map_err(|e| bad("ca_file", format!("{}: {e}", cfg.ca_file)))?;
                issuers
                    .iter()
                    .map(|i| {
                        let bare = bare_issuer(i).trim_end_matches('/');
                        let source = KeySource::Discovery {
                            url: format!("https://{bare}/.well-known/openid-configuration"),
                            client: client.clone(),
                        };
                        let cache = KeyCache::new(name, source, timing(), None);
                        (bare_issuer(i).to_string(), Arc::new(cache))
                    })
                    .collect()
            }
        };
        Ok(Provider {
            name: name.to_string(),
            issuers,
            audiences: cfg.audiences.clone(),
            templates,
            leeway_secs: cfg.leeway_secs,
        })
    }

    /// The key cache for a token's `iss`, when this provider accepts it.
    pub fn keys_for_issuer(&self, iss: &str) -> Option<&Arc<KeyCache>> {
        let iss = bare_issuer(iss);
        self.issuers
            .iter()
            .find(|(accepted, _)| accepted == iss)
            .map(|(_, cache)| cache)
    }

    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.issuers.iter().map(|(i, _)| i.as_str())
    }

    /// Checks a token of this provider (its `iss` already matched to `cache`) and resolves
    /// its subjects; also the unix second from which it is expired (`exp` plus leeway).
    pub async fn verify(
        &self,
        token: &str,
        header: &Header,
        cache: &KeyCache,
    ) -> Result<(Principal, u64), AuthError> {
        let alg = header.alg;
        let unsupported = |reason: &str| AuthError::UnsupportedAlgorithm {
            provider: self.name.clone(),
            alg: format!("{alg:?}"),
            reason: reason.to_string(),
        };
        let Some(family) = Family::of(alg) else {
            return Err(unsupported(
                "a symmetric algorithm cannot be checked with public keys",
            ));
        };
        let kid = header.kid.as_deref();
        let keys = cache.keys_for(kid).await?;
        let fitting: Vec<_> = keys
            .iter()
            .filter(|k| k.family == family && k.alg.is_none_or(|a| a == alg))
            .collect();
        if fitting.is_empty() {
            return Err(match kid {
                Some(_) => unsupported("the key it names is of another type or algorithm"),
                None => AuthError::UnknownKid {
                    provider: self.name.clone(),
                    kid: "<none>".into(),
                },
            });
        }
        let mut validation = Validation::new(alg);
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        if self.audiences.is_empty() {
            validation.set_required_spec_claims(&["exp"]);
            validation.validate_aud = false;
        } else {
            // Without `aud` required, jsonwebtoken lets a token with no audience through.
            validation.set_required_spec_claims(&["exp", "aud"]);
            validation.set_audience(&self.audiences);
        }
        let mut refusal = None;
        for key in fitting {
            match jsonwebtoken::decode::<Value>(token, &key.decoding, &validation) {
                Ok(data) => {
                    let exp = data.claims.get("exp").and_then(Value::as_u64);
                    let until = exp.map_or(0, |e| e.saturating_add(self.leeway_secs));
                    return Ok((self.principal(&data.claims)?, until));
                }
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => {
                    refusal = Some(AuthError::BadSignature {
                        provider: self.name.clone(),
                        kid: kid.unwrap_or("<none>").to_string(),
                    });
                }
                Err(e) => return Err(self.refusal(e.kind(), alg)),
            }
        }
        Err(refusal.unwrap_or_else(|| unsupported("no key verifies it")))
    }

    fn refusal(&self, kind: &ErrorKind, alg: jsonwebtoken::Algorithm) -> AuthError {
        let provider = self.name.clone();
        match kind {
            ErrorKind::ExpiredSignature => AuthError::Expired {
                provider,
                leeway_secs: self.leeway_secs,
            },
            ErrorKind::ImmatureSignature => AuthError::NotYetValid { provider },
            ErrorKind::InvalidAudience => AuthError::WrongAudience {
                provider,
                expected: self.audiences.clone(),
            },
            ErrorKind::MissingRequiredClaim(c) if c == "aud" => AuthError::WrongAudience {
                provider,
                expected: self.audiences.clone(),
            },
            ErrorKind::MissingRequiredClaim(c) => {
                AuthError::Malformed(format!("the token has no `{c}` claim"))
            }
            ErrorKind::InvalidAlgorithm => AuthError::UnsupportedAlgorithm {
                provider,
                alg: format!("{alg:?}"),
                reason: "it does not fit the key".into(),
            },
            other => AuthError::Malformed(format!("bad token: {other:?}")),
        }
    }

    /// Each `auth_subjects` template against the claims, prefixed `provider:`; an entry
    /// that does not resolve is left out, as in Ditto.
    fn principal(&self, claims: &Value) -> Result<Principal, AuthError> {
        let mut subjects: Vec<String> = Vec::new();
        for t in &self.templates {
            let values = t.resolve(claims, MAX_SUBJECTS).map_err(|n| {
                AuthError::Malformed(format!(
                    "the token yields {n} subjects, more than {MAX_SUBJECTS}"
                ))
            })?;
            for v in values.into_iter().filter(|v| !v.is_empty()) {
                let s = format!("{}:{v}", self.name);
                if !subjects.contains(&s) {
                    subjects.push(s);
                }
            }
            if subjects.len() > MAX_SUBJECTS {
                return Err(AuthError::Malformed(format!(
                    "the token yields more than {MAX_SUBJECTS} subjects"
                )));
            }
        }
        if subjects.is_empty() {
            return Err(AuthError::NoSubjects {
                provider: self.name.clone(),
            });
        }
        Ok(Principal {
            subjects,
            method: AuthMethod::Jwt {
                provider: self.name.clone(),
            },
        })
    }
}

/// The `iss` of a token before its signature is checked: it only picks the provider whose
/// keys then check everything.
pub(super) fn unverified_issuer(token: &str) -> Result<String, AuthError> {
    let malformed = |why: &str| AuthError::Malformed(format!("not a JWT: {why}"));
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("a JWT has three dot-separated parts"));
    };
    let bytes = B64URL
        .decode(payload)
        .map_err(|_| malformed("the payload is not base64url"))?;
    let claims: Value =
        serde_json::from_slice(&bytes).map_err(|_| malformed("the payload is not JSON"))?;
    match claims.get("iss").and_then(Value::as_str) {
        Some(iss) => Ok(iss.to_string()),
        None => Err(AuthError::Malformed("the token has no `iss` claim".into())),
    }
}

/// A client for discovery and JWKS: HTTPS only, trusting the CA file's certificates only.
fn https_client(ca_file: &str, timeout: Duration) -> Result<reqwest::Client, String> {
    let pem = std::fs::read(ca_file).map_err(|e| e.to_string())?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .https_only(true)
        // The whole discovery + JWKS fetch runs under the provider's timeout (`KeyCache`).
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::limited(3));
    for cert in certs {
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(|e| e.to_string())
}
