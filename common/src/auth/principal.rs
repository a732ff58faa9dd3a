//! An authenticated caller and how it proved who it is.

use std::fmt;

/// An authenticated caller: the subjects policies match (`issuer:subject`), and how they
/// were established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subjects: Vec<String>,
    pub method: AuthMethod,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// An OIDC JWT of the provider with this config key.
    Jwt { provider: String },
    /// The header set by a trusted proxy.
    PreAuthenticated,
    /// A verified TLS client certificate.
    ClientCertificate,
    /// A named ingest secret (Gravwell's ingesters).
    IngestSecret,
    /// A stream secret shown to a member (it may locate streams).
    StreamSecret,
    /// The devops user or token of the admin API.
    Devops,
    /// No credentials, on a server configured to give anonymous callers subjects
    /// (`anonymous_subjects`: the demo and `tribctl dev`).
    Anonymous,
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthMethod::Jwt { provider } => write!(f, "JWT of OIDC provider {provider}"),
            AuthMethod::PreAuthenticated => f.write_str("pre-authentication header"),
            AuthMethod::ClientCertificate => f.write_str("TLS client certificate"),
            AuthMethod::IngestSecret => f.write_str("ingest secret"),
            AuthMethod::StreamSecret => f.write_str("stream secret"),
            AuthMethod::Devops => f.write_str("devops credentials"),
            AuthMethod::Anonymous => f.write_str("no credentials (anonymous_subjects)"),
        }
    }
}
