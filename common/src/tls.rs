//! TLS for every listener and link (rustls with ring): a server side whose certificate and
//! client CA are reloaded from their files when they change (rotation without restart), an
//! accept loop that handshakes off the accept path, client configs for channels, and the
//! names a peer's certificate carries (its CN and DNS names, which identities are made of).

use crate::conn::{Admission, Conn};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpListener;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

/// How often a handshake may look at the files for a newer certificate.
const RELOAD_CHECK: Duration = Duration::from_secs(2);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A server's or client's TLS files (PEM). Empty paths: not configured.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct TlsFiles {
    /// This process's certificate chain.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The cluster CA: what peers' and clients' certificates must be signed by.
    pub ca_file: PathBuf,
}

impl TlsFiles {
    pub fn has_identity(&self) -> bool {
        !self.cert_file.as_os_str().is_empty() && !self.key_file.as_os_str().is_empty()
    }

    pub fn has_ca(&self) -> bool {
        !self.ca_file.as_os_str().is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("key `{key}`: {path}: {reason}")]
    File {
        key: &'static str,
        path: String,
        reason: String,
    },
    #[error("TLS: {0}")]
    Config(String),
}

fn file_err(key: &'static str, path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        key,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn read_certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| file_err(key, path, e))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(key, path, e))?;
    if certs.is_empty() {
        return Err(file_err(key, path, "holds no PEM certificate"));
    }
    Ok(certs)
}

fn read_key(key: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| file_err(key, path, e))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| file_err(key, path, e))
}

/// The CA file as trust roots.
pub fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in read_certs("tls.ca_file", path)? {
        roots.add(c).map_err(|e| file_err("tls.ca_file", path, e))?;
    }
    Ok(roots)
}

/// Whether a server asks for client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificates (the CA may be absent).
    Off,
    /// A client may present one from the CA (it then counts as `tls:CN`); others use tokens.
    Optional,
    /// Every client must present one from the CA (the members' peer listener).
    Required,
}

struct Loaded {
    key: Arc<CertifiedKey>,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    stamps: Vec<Option<SystemTime>>,
}

/// The certificate and client verifier of a server, reloaded from the files when they change.
pub struct ReloadingServer {
    files: TlsFiles,
    auth: ClientAuth,
    current: RwLock<Arc<Loaded>>,
    checked: Mutex<Instant>,
}

impl std::fmt::Debug for ReloadingServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReloadingServer({:?})", self.files.cert_file)
    }
}

fn stamps(files: &TlsFiles) -> Vec<Option<SystemTime>> {
    [&files.cert_file, &files.key_file, &files.ca_file]
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

fn load(files: &TlsFiles, auth: ClientAuth) -> Result<Loaded, TlsError> {
    let stamps = stamps(files);
    let chain = read_certs("tls.cert_file", &files.cert_file)?;
    let key = read_key("tls.key_file", &files.key_file)?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| file_err("tls.key_file", &files.key_file, e))?;
    let verifier = match auth {
        ClientAuth::Off => None,
        ClientAuth::Optional | ClientAuth::Required => {
            if !files.has_ca() {
                return Err(TlsError::Config(
                    "key `tls.ca_file` is needed to verify client certificates".into(),
                ));
            }
            let roots = Arc::new(read_roots(&files.ca_file)?);
            let b = WebPkiClientVerifier::builder_with_provider(roots, Arc::new(provider));
            let b = if auth == ClientAuth::Optional {
                b.allow_unauthenticated()
            } else {
                b
            };
            Some(b.build().map_err(|e| TlsError::Config(e.to_string()))?)
        }
    };
    Ok(Loaded {
        key: Arc::new(CertifiedKey::new(chain, signing)),
        verifier,
        stamps,
    })
}

impl ReloadingServer {
    pub fn new(files: TlsFiles, auth: ClientAuth) -> Result<Arc<Self>, TlsError> {
        let loaded = load(&files, auth)?;
        Ok(Arc::new(ReloadingServer {
            files,
            auth,
            current: RwLock::new(Arc::new(loaded)),
            checked: Mutex::new(Instant::now()),
        }))
    }

    /// The current material, reloaded first if a file changed (looked at once per
    /// [`RELOAD_CHECK`]). A file that fails to load keeps the old material in use.
    fn current(&self) -> Arc<Loaded> {
        let due = crate::sync::lock(&self.checked).elapsed() >= RELOAD_CHECK;
        if due {
            *crate::sync::lock(&self.checked) = Instant::now();
            let now = stamps(&self.files);
            if now != crate::sync::read(&self.current).stamps {
                match load(&self.files, self.auth) {
                    Ok(l) => {
                        tracing::info!(cert = %self.files.cert_file.display(), "TLS certificate reloaded");
                        *crate::sync::write(&self.current) = Arc::new(l);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "TLS files changed but do not load; keeping the old ones")
                    }
                }
            }
        }
        crate::sync::read(&self.current).clone()
    }

    /// A rustls server config over this material (HTTP/2 and HTTP/1.1 offered).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match self.auth {
            ClientAuth::Off => builder.with_no_client_auth(),
            _ => builder.with_client_cert_verifier(Arc::new(ReloadingVerifier(self.clone()))),
        };
        let mut cfg = builder.with_cert_resolver(self.clone());
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

impl ResolvesServerCert for ReloadingServer {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().key.clone())
    }
}

/// Delegates to the current client verifier (reloaded with the CA file).
#[derive(Debug)]
struct ReloadingVerifier(Arc<ReloadingServer>);

impl ReloadingVerifier {
    fn inner(&self) -> Result<Arc<dyn ClientCertVerifier>, rustls::Error> {
        self.0
            .current()
            .verifier
            .clone()
            .ok_or_else(|| rustls::Error::General("no client verifier".into()))
    }
}

impl ClientCertVerifier for ReloadingVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.0.auth == ClientAuth::Required
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints are optional; clients with a certificate send it anyway.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner()?
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner()?.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Accepted TLS connections that `admission` lets in (counted from accept, before the
/// handshake), each handshaken in its own task (a slow or silent client never holds up the
/// accept loop), Nagle off as on cleartext listeners. Failed handshakes are logged and dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    admission: Admission,
) -> ReceiverStream<Result<TlsStream<Conn>, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (conn, peer) = tokio::select! {
                c = crate::conn::accept(&listener, &admission) => c,
                _ = tx.closed() => return,
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(conn)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// The names a certificate is issued to: its subject CN first, then its DNS names.
pub fn cert_names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_string))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                if !names.iter().any(|x| x == d) {
                    names.push(d.to_string());
                }
            }
        }
    }
    names
}

/// The CN of the first certificate a peer presented (what `tls:CN` subjects are made of).
pub fn peer_cn(certs: &[CertificateDer<'_>]) -> Option<String> {
    certs.first().and_then(|c| cert_names(c).into_iter().next())
}

/// Whether `name` matches a pattern with `*` (any run of characters) and `?` (one character).
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A client TLS config for tonic channels: trusting the CA file, presenting `files`' identity
/// when it has one. `None` files: cleartext.
pub fn client_config(files: &TlsFiles) -> Result<tonic::transport::ClientTlsConfig, TlsError> {
    let read = |key: &'static str, p: &Path| std::fs::read(p).map_err(|e| file_err(key, p, e));
    let mut cfg = tonic::transport::ClientTlsConfig::new();
    if files.has_ca() {
        cfg = cfg.ca_certificate(tonic::transport::Certificate::from_pem(read(
            "tls.ca_file",
            &files.ca_file,
        )?));
    }
    if files.has_identity() {
        cfg = cfg.identity(tonic::transport::Identity::from_pem(
            read("tls.cert_file", &files.cert_file)?,
            read("tls.key_file", &files.key_file)?,
        ));
    }
    Ok(cfg)
}

/// An endpoint to `addr` (with or without a scheme): cleartext when `files` is `None`, else
/// TLS trusting the CA in `files` and showing its certificate when it has one. The server's
/// certificate must be valid for `expect_name` when given (pinning who we mean, e.g.
/// `member-2`, whatever address it answers at), else for the address's host.
pub fn endpoint(
    addr: &str,
    files: Option<&TlsFiles>,
    expect_name: Option<&str>,
) -> Result<tonic::transport::Endpoint, TlsError> {
    let Some(files) = files else {
        return crate::grpc::endpoint(addr, None).map_err(|e| TlsError::Config(e.to_string()));
    };
    let hostport = addr
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let ep = tonic::transport::Endpoint::from_shared(format!("https://{hostport}"))
        .map_err(|e| TlsError::Config(format!("{addr}: {e}")))?;
    let host = ep
        .uri()
        .host()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    let cfg = client_config(files)?.domain_name(expect_name.map_or(host, str::to_string));
    ep.connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .initial_stream_window_size(crate::grpc::STREAM_WINDOW)
        .initial_connection_window_size(crate::grpc::CONNECTION_WINDOW)
        .tls_config(cfg)
        .map_err(|e| TlsError::Config(e.to_string()))
}

/// A lazily connecting channel to `addr` as [`endpoint`] makes it, every call carrying the
/// caller's trace context: the channel every server opens to another.
pub fn channel(
    addr: &str,
    files: Option<&TlsFiles>,
    expect_name: Option<&str>,
) -> Result<crate::trace_context::TracedChannel, TlsError> {
    Ok(crate::trace_context::traced(
        endpoint(addr, files, expect_name)?.connect_lazy(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("member-*", "member-1"));
        assert!(wildcard_match("member-?", "member-2"));
        assert!(!wildcard_match("member-?", "member-10"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*c", "axxbyyc"));
        assert!(!wildcard_match("a*b*c", "axxbyy"));
        assert!(!wildcard_match("data-node-*", "member-1"));
    }
}
