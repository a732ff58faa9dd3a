//! Why a client's credentials were refused, one variant per reason a client or an operator
//! needs to tell apart, mapped once to a gRPC status.

use tonic::Status;

/// Credentials were given but do not authenticate anyone. Every message names what is wrong
/// and never echoes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("malformed credentials: {0}")]
    Malformed(String),
    #[error("the token's issuer {issuer:?} is not a configured OIDC provider")]
    UnknownIssuer { issuer: String },
    #[error("the token has expired (provider {provider}; leeway {leeway_secs} s)")]
    Expired { provider: String, leeway_secs: u64 },
    #[error("the token is not valid yet (`nbf` in the future; provider {provider})")]
    NotYetValid { provider: String },
    #[error("the token's audience is not one of {expected:?} (provider {provider})")]
    WrongAudience {
        provider: String,
        expected: Vec<String>,
    },
    #[error("the token's signature does not verify with the key {kid:?} of provider {provider}")]
    BadSignature { provider: String, kid: String },
    #[error("no key {kid:?} in the JWKS of provider {provider}, even after a refresh")]
    UnknownKid { provider: String, kid: String },
    #[error("token algorithm {alg} is not accepted here ({reason}; provider {provider})")]
    UnsupportedAlgorithm {
        provider: String,
        alg: String,
        reason: String,
    },
    #[error("the keys of provider {provider} cannot be fetched: {reason}")]
    KeysUnavailable { provider: String, reason: String },
    #[error("the token is valid but none of provider {provider}'s auth_subjects resolves for it")]
    NoSubjects { provider: String },
    #[error("pre-authentication is disabled on this server (header {header})")]
    PreAuthDisabled { header: &'static str },
    #[error("header {header} is only accepted from a configured pre-authentication proxy, not from {peer}")]
    PreAuthNotFromProxy { header: &'static str, peer: String },
    #[error("header {header} must be `issuer:subject`: {reason}")]
    PreAuthMalformed {
        header: &'static str,
        reason: String,
    },
    #[error("{scheme} credentials are accepted by the admin API only")]
    WrongScheme { scheme: String },
    #[error("bad devops credentials")]
    BadDevopsCredentials,
    #[error("devops {what} is not configured on this server")]
    DevopsDisabled { what: &'static str },
}

impl AuthError {
    /// The one mapping to gRPC: a provider whose keys cannot be fetched is the server's
    /// problem (`UNAVAILABLE`, worth a retry); everything else is the client's
    /// (`UNAUTHENTICATED`).
    pub fn to_status(&self) -> Status {
        match self {
            AuthError::KeysUnavailable { .. } => Status::unavailable(self.to_string()),
            _ => Status::unauthenticated(self.to_string()),
        }
    }
}

impl From<AuthError> for Status {
    fn from(e: AuthError) -> Self {
        e.to_status()
    }
}
