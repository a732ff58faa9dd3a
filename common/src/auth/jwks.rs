//! An OIDC issuer's signing keys, cached: fetched by discovery over HTTPS (or read from a
//! JWKS file) on first use, refetched when a token names an unknown `kid` or the keys grow
//! old — at most once per interval, so a stream of junk `kid`s cannot make us hammer the
//! issuer — and kept when a refetch fails.

use super::error::AuthError;
use crate::sync::{read, write};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// A discovery document or a JWKS larger than this is refused.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// The kind of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    Rsa,
    Ec,
    Okp,
}

impl Family {
    /// The family of an asymmetric algorithm; `None` for HMAC, which a public key set must
    /// never verify (the classic confusion attack).
    pub fn of(alg: Algorithm) -> Option<Family> {
        use Algorithm::*;
        match alg {
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Some(Family::Rsa),
            ES256 | ES384 => Some(Family::Ec),
            EdDSA => Some(Family::Okp),
            HS256 | HS384 | HS512 => None,
        }
    }
}

/// One verification key of the set.
pub(super) struct Key {
    pub kid: Option<String>,
    /// The `alg` the key is restricted to, when the JWK says.
    pub alg: Option<Algorithm>,
    pub family: Family,
    pub decoding: DecodingKey,
}

/// Where the keys come from.
pub(super) enum KeySource {
    Discovery {
        /// `https://{issuer}/.well-known/openid-configuration`.
        url: String,
        client: reqwest::Client,
    },
    File {
        path: String,
    },
}

struct KeySet {
    keys: Vec<Arc<Key>>,
    /// When the keys were fetched; `None` before the first fetch.
    fetched: Option<Instant>,
    /// Bumped by every successful fetch, so a caller that waited for another's refresh
    /// sees it happened and does not fetch again.
    generation: u64,
}

pub(super) struct KeyCache {
    provider: String,
    source: KeySource,
    timeout: Duration,
    min_refresh_interval: Duration,
    max_age: Duration,
    set: RwLock<Arc<KeySet>>,
    /// Serialises fetches and holds the time of the last attempt.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
}

pub(super) struct Timing {
    pub timeout: Duration,
    pub min_refresh_interval: Duration,
    pub max_age: Duration,
}

enum Refresh {
    Done,
    RateLimited,
    Failed(String),
}

impl KeyCache {
    /// A cache starting with `initial` keys (from a JWKS file read at config load) or empty.
    pub fn new(
        provider: &str,
        source: KeySource,
        timing: Timing,
        initial: Option<Vec<Arc<Key>>>,
    ) -> KeyCache {
        let fetched = initial.as_ref().map(|_| Instant::now());
        KeyCache {
            provider: provider.to_string(),
            source,
            timeout: timing.timeout,
            min_refresh_interval: timing.min_refresh_interval,
            max_age: timing.max_age,
            set: RwLock::new(Arc::new(KeySet {
                keys: initial.unwrap_or_default(),
                fetched,
                generation: 0,
            })),
            last_attempt: tokio::sync::Mutex::new(None),
        }
    }

    fn current(&self) -> Arc<KeySet> {
        read(&self.set).clone()
    }

    /// The generation of the keys, while they are fetched and younger than their max age
    /// (what a token verified against them may be trusted on).
    pub fn fresh_generation(&self) -> Option<u64> {
        let set = self.current();
        let at = set.fetched?;
        (at.elapsed() < self.max_age).then_some(set.generation)
    }

    /// The keys a token with this `kid` may be signed with (every key when it names none):
    /// from the cache, else after one refetch. Errors: the `kid` is still unknown, or the
    /// keys could not be fetched and none is cached for it.
    pub async fn keys_for(&self, kid: Option<&str>) -> Result<Vec<Arc<Key>>, AuthError> {
        let mut set = self.current();
        match set.fetched {
            None => {
                if let Refresh::Failed(reason) = self.refresh(set.generation, true).await {
                    return Err(self.unavailable(reason));
                }
                set = self.current();
            }
            Some(at) if at.elapsed() >= self.max_age => {
                // Old keys still serve while another request refetches them.
                if let Refresh::Failed(reason) = self.refresh(set.generation, false).await {
                    tracing::warn!(provider = %self.provider, %reason, "JWKS refetch failed; keeping the cached keys");
                }
                set = self.current();
            }
            Some(_) => {}
        }
        let found = matching(&set, kid);
        if !found.is_empty() {
            return Ok(found);
        }
        let outcome = self.refresh(set.generation, true).await;
        let set = self.current();
        let found = matching(&set, kid);
        match outcome {
            _ if !found.is_empty() => Ok(found),
            Refresh::Failed(reason) => Err(self.unavailable(reason)),
            Refresh::RateLimited if set.fetched.is_none() => Err(self.unavailable(format!(
                "not fetched yet; the last attempt failed less than {} ms ago",
                self.min_refresh_interval.as_millis()
            ))),
            Refresh::Done | Refresh::RateLimited => Err(AuthError::UnknownKid {
                provider: self.provider.clone(),
                kid: kid.unwrap_or("<none>").to_string(),
            }),
        }
    }

    fn unavailable(&self, reason: String) -> AuthError {
        AuthError::KeysUnavailable {
            provider: self.provider.clone(),
            reason,
        }
    }

    /// Refetches unless someone did since `seen_generation` or the last attempt is too
    /// recent. `wait`: queue behind a fetch in progress (else skip it and use what is cached).
    async fn refresh(&self, seen_generation: u64, wait: bool) -> Refresh {
        let mut last = if wait {
            self.last_attempt.lock().await
        } else {
            match self.last_attempt.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Refresh::RateLimited,
            }
        };
        if self.current().generation != seen_generation {
            return Refresh::Done;
        }
        if last.is_some_and(|t| t.elapsed() < self.min_refresh_interval) {
            return Refresh::RateLimited;
        }
        *last = Some(Instant::now());
        let fetched = match tokio::time::timeout(self.timeout, self.fetch()).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        };
        match fetched {
            Ok(keys) => {
                let mut set = write(&self.set);
                let generation = set.generation + 1;
                tracing::info!(provider = %self.provider, keys = keys.len(), "JWKS fetched");
                *set = Arc::new(KeySet {
                    keys,
                    fetched: Some(Instant::now()),
                    generation,
                });
                Refresh::Done
            }
            Err(reason) => {
                tracing::warn!(provider = %self.provider, %reason, "JWKS fetch failed");
                Refresh::Failed(reason)
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<Arc<Key>>, String> {
        match &self.source {
            KeySource::File { path } => {
                let bytes = tokio::fs::read(path)
                    .await
                    .map_err(|e| format!("{path}: {e}"))?;
                parse_jwks_bytes(&bytes).map_err(|e| format!("{path}: {e}"))
            }
            KeySource::Discovery { url, client } => {
                let doc = get_json(client, url).await?;
                let Some(jwks_uri) = doc.get("jwks_uri").and_then(Value::as_str) else {
                    return Err(format!("the discovery document {url} has no `jwks_uri`"));
                };
                let jwks = get_json(client, jwks_uri).await?;
                parse_jwks(&jwks).map_err(|e| format!("{jwks_uri}: {e}"))
            }
        }
    }
}

fn matching(set: &KeySet, kid: Option<&str>) -> Vec<Arc<Key>> {
    set.keys
        .iter()
        .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
        .cloned()
        .collect()
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value, String> {
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", error_chain(&e)))?;
    if !resp.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("GET {url}: {}", error_chain(&e)))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("GET {url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
}

/// An error and its causes (reqwest keeps the useful part, such as an untrusted
/// certificate, in the sources).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        cause = c.source();
    }
    out
}

/// The verification keys of a JWKS file's bytes.
pub(super) fn parse_jwks_bytes(bytes: &[u8]) -> Result<Vec<Arc<Key>>, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    parse_jwks(&doc)
}

/// The verification keys of a JWKS document. Keys this server cannot use (encryption keys,
/// symmetric keys, unknown types or algorithms) are skipped, not fatal: issuers publish
/// those beside their signing keys.
fn parse_jwks(doc: &Value) -> Result<Vec<Arc<Key>>, String> {
    let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
        return Err("not a JWKS: no `keys` array".to_string());
    };
    let mut out = Vec::new();
    for raw in keys {
        match key_of(raw) {
            Ok(Some(key)) => out.push(Arc::new(key)),
            Ok(None) => {}
            Err(reason) => {
                let kid = raw.get("kid").and_then(Value::as_str).unwrap_or("<none>");
                tracing::debug!(kid, %reason, "JWKS key skipped");
            }
        }
    }
    Ok(out)
}

fn key_of(raw: &Value) -> Result<Option<Key>, String> {
    let alg = match raw.get("alg").and_then(Value::as_str) {
        None => None,
        Some(a) => match Algorithm::from_str(a) {
            Ok(alg) if Family::of(alg).is_some() => Some(alg),
            _ => return Ok(None),
        },
    };
    let jwk: Jwk = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return Ok(None);
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Family::Rsa,
        AlgorithmParameters::EllipticCurve(_) => Family::Ec,
        AlgorithmParameters::OctetKeyPair(_) => Family::Okp,
        AlgorithmParameters::OctetKey(_) => return Ok(None),
    };
    if alg.is_some_and(|a| Family::of(a) != Some(family)) {
        return Err("its `alg` does not fit its key type".to_string());
    }
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    Ok(Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        family,
        decoding,
    }))
}
