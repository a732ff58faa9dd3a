//! A real OIDC issuer for tests: HTTPS on 127.0.0.1 (port 0) with a certificate made by
//! `rcgen`, serving discovery and a JWKS, signing tokens with keys it holds. Keys can be
//! added, withdrawn and republished mid-test (rotation), and the issuer can stall (to test
//! timeouts). Built for this crate's tests and, with the `test-issuer` feature, the
//! servers'.

use crate::auth::config::OidcProviderConfig;
use crate::sync::lock;
use crate::task::AbortOnDrop;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub type TestIssuerError = Box<dyn std::error::Error + Send + Sync>;

/// A throwaway RSA key for tests only (ring cannot generate RSA keys).
const RSA_TEST_KEY: &str = include_str!("test_issuer_rsa.pem");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rs256,
    Es256,
}

struct SigningKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
    published: bool,
}

struct State {
    issuer: String,
    keys: Mutex<Vec<SigningKey>>,
    stalled: AtomicBool,
    jwks_fetches: AtomicUsize,
    next_kid: AtomicUsize,
}

pub struct TestIssuer {
    addr: SocketAddr,
    ca_pem: String,
    state: Arc<State>,
    _server: AbortOnDrop,
}

impl TestIssuer {
    /// Starts the issuer with no keys.
    pub async fn start() -> Result<TestIssuer, TestIssuerError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cert =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])?;
        let ca_pem = cert.cert.pem();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let state = Arc::new(State {
            issuer: format!("https://{addr}"),
            keys: Mutex::new(Vec::new()),
            stalled: AtomicBool::new(false),
            jwks_fetches: AtomicUsize::new(0),
            next_kid: AtomicUsize::new(1),
        });
        let serving = state.clone();
        let server = AbortOnDrop::spawn(async move {
            // Connections live in the set, so stopping the issuer stops them too.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                while connections.try_join_next().is_some() {}
                let (acceptor, state) = (acceptor.clone(), serving.clone());
                connections.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(respond(&state, req).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(tls);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Ok(TestIssuer {
            addr,
            ca_pem,
            state,
            _server: server,
        })
    }

    /// The `iss` of its tokens: `https://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PEM certificate to trust (self-signed, for 127.0.0.1 and localhost).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes the CA into `dir` and returns its path, for a provider's `ca_file`.
    pub fn write_ca(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = dir.join("test-issuer-ca.pem");
        std::fs::write(&path, &self.ca_pem)?;
        Ok(path)
    }

    /// A provider config for this issuer trusting `ca_file`, with timings short enough for
    /// tests (refetch at most every 200 ms, a 2 s timeout).
    pub fn provider_config(&self, ca_file: &Path) -> OidcProviderConfig {
        OidcProviderConfig {
            issuer: self.issuer().to_string(),
            ca_file: ca_file.display().to_string(),
            jwks_timeout_ms: 2_000,
            jwks_min_refresh_interval_ms: 200,
            ..OidcProviderConfig::default()
        }
    }

    /// A new published key; returns its `kid`.
    pub fn add_key(&self, kind: KeyKind) -> Result<String, TestIssuerError> {
        self.new_key(kind, true)
    }

    /// A key the JWKS does not show (tokens signed with it do not verify).
    pub fn add_unpublished_key(&self, kind: KeyKind) -> Result<String, TestIssuerError> {
        self.new_key(kind, false)
    }

    fn new_key(&self, kind: KeyKind, published: bool) -> Result<String, TestIssuerError> {
        let n = self.state.next_kid.fetch_add(1, Ordering::Relaxed);
        let kid = format!("{}-{n}", if kind == KeyKind::Rs256 { "rsa" } else { "ec" });
        let (alg, encoding, mut jwk) = match kind {
            KeyKind::Rs256 => rsa_key()?,
            KeyKind::Es256 => ec_key()?,
        };
        jwk["kid"] = json!(kid);
        lock(&self.state.keys).push(SigningKey {
            kid: kid.clone(),
            alg,
            encoding,
            jwk,
            published,
        });
        Ok(kid)
    }

    /// Takes a key out of the JWKS (it still signs).
    pub fn withdraw(&self, kid: &str) {
        self.set_published(kid, false);
    }

    pub fn publish(&self, kid: &str) {
        self.set_published(kid, true);
    }

    fn set_published(&self, kid: &str, published: bool) {
        for k in lock(&self.state.keys).iter_mut().filter(|k| k.kid == kid) {
            k.published = published;
        }
    }

    /// While stalled, requests get no answer at all.
    pub fn set_stalled(&self, stalled: bool) {
        self.state.stalled.store(stalled, Ordering::SeqCst);
    }

    /// How many times the JWKS was served.
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// The JWKS as served now (for a `jwks_file`).
    pub fn jwks(&self) -> Value {
        jwks(&self.state)
    }

    /// Claims of a token for `sub` and `aud` valid from now for `lifetime_secs` (negative:
    /// already expired), issued by this issuer.
    pub fn claims(&self, sub: &str, aud: &str, lifetime_secs: i64) -> Value {
        let now = unix_now();
        json!({
            "iss": self.issuer(),
            "sub": sub,
            "aud": aud,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_secs,
        })
    }

    /// A token with `claims` signed by key `kid`, naming it in its header.
    pub fn sign(&self, kid: &str, claims: &Value) -> Result<String, TestIssuerError> {
        self.sign_as(kid, Some(kid), claims)
    }

    /// A token signed by key `signer` whose header names `header_kid` (another key, an
    /// unknown one, or none).
    pub fn sign_as(
        &self,
        signer: &str,
        header_kid: Option<&str>,
        claims: &Value,
    ) -> Result<String, TestIssuerError> {
        let keys = lock(&self.state.keys);
        let Some(key) = keys.iter().find(|k| k.kid == signer) else {
            return Err(format!("the test issuer has no key {signer}").into());
        };
        let mut header = Header::new(key.alg);
        header.kid = header_kid.map(str::to_string);
        Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
    }
}

pub fn unix_now() -> i64 {
    crate::time::now_ns() / 1_000_000_000
}

fn jwks(state: &State) -> Value {
    let keys: Vec<Value> = lock(&state.keys)
        .iter()
        .filter(|k| k.published)
        .map(|k| k.jwk.clone())
        .collect();
    json!({ "keys": keys })
}

async fn respond(state: &State, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    if state.stalled.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    let body = match req.uri().path() {
        "/.well-known/openid-configuration" => json!({
            "issuer": state.issuer,
            "jwks_uri": format!("{}/jwks", state.issuer),
        }),
        "/jwks" => {
            state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
            jwks(state)
        }
        _ => {
            let mut not_found = Response::new(Full::new(Bytes::from_static(b"not found")));
            *not_found.status_mut() = StatusCode::NOT_FOUND;
            return not_found;
        }
    };
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

type KeyMaterial = (Algorithm, EncodingKey, Value);

fn rsa_key() -> Result<KeyMaterial, TestIssuerError> {
    let b64: String = RSA_TEST_KEY
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64)?;
    let pair = RsaKeyPair::from_pkcs8(&der).map_err(|e| format!("test RSA key: {e}"))?;
    let public: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
    let jwk = json!({
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode(&public.n),
        "e": URL_SAFE_NO_PAD.encode(&public.e),
    });
    let encoding = EncodingKey::from_rsa_pem(RSA_TEST_KEY.as_bytes())?;
    Ok((Algorithm::RS256, encoding, jwk))
}

fn ec_key() -> Result<KeyMaterial, TestIssuerError> {
    let rng = SystemRandom::new();
    let alg = &ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(|e| format!("EC key: {e}"))?;
    let pair =
        EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).map_err(|e| format!("EC key: {e}"))?;
    // An uncompressed P-256 point: 0x04, then x and y of 32 bytes each.
    let point = pair.public_key().as_ref();
    let (x, y) = point[1..].split_at(32);
    let jwk = json!({
        "kty": "EC",
        "use": "sig",
        "alg": "ES256",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(x),
        "y": URL_SAFE_NO_PAD.encode(y),
    });
    Ok((
        Algorithm::ES256,
        EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk,
    ))
}
