//! What a request carries that may identify its sender, as the servers extract it.

use std::fmt;
use std::net::SocketAddr;
use tonic::metadata::MetadataMap;

/// Metadata key (HTTP header) a trusted reverse proxy sets to `issuer:subject`: Ditto's
/// `x-ditto-pre-authenticated` under our name.
pub const PRE_AUTHENTICATED_HEADER: &str = "x-tributary-pre-authenticated";

/// What a request carries that may say who sent it. The caller extracts the CN of a client
/// certificate only once TLS has verified that certificate.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The `authorization` header: `Bearer <JWT>` (or, for the admin API, `Basic …` or
    /// `Bearer <devops token>`).
    pub authorization: Option<String>,
    /// The `x-tributary-pre-authenticated` header.
    pub pre_authenticated: Option<String>,
    /// The CN of the peer's verified TLS client certificate.
    pub client_cert_cn: Option<String>,
    /// The connection's source address.
    pub remote_addr: Option<SocketAddr>,
}

impl Credentials {
    /// From gRPC metadata plus what the transport knows. A header that is not visible ASCII
    /// is kept (lossily) so that it is refused as malformed rather than taken as absent.
    pub fn from_metadata(
        metadata: &MetadataMap,
        client_cert_cn: Option<String>,
        remote_addr: Option<SocketAddr>,
    ) -> Credentials {
        let text = |key: &str| {
            metadata.get(key).map(|v| match v.to_str() {
                Ok(s) => s.to_string(),
                Err(_) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
            })
        };
        Credentials {
            authorization: text("authorization"),
            pre_authenticated: text(PRE_AUTHENTICATED_HEADER),
            client_cert_cn,
            remote_addr,
        }
    }

    /// From HTTP headers (the admin listener).
    pub fn from_headers(
        headers: &tonic::codegen::http::HeaderMap,
        client_cert_cn: Option<String>,
        remote_addr: Option<SocketAddr>,
    ) -> Credentials {
        Credentials::from_metadata(
            &MetadataMap::from_headers(headers.clone()),
            client_cert_cn,
            remote_addr,
        )
    }
}

/// Never prints the authorization header: logs must not carry tokens or passwords.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field(
                "authorization",
                &self
                    .authorization
                    .as_ref()
                    .map(|_| crate::secrets::REDACTED),
            )
            .field("pre_authenticated", &self.pre_authenticated)
            .field("client_cert_cn", &self.client_cert_cn)
            .field("remote_addr", &self.remote_addr)
            .finish()
    }
}
