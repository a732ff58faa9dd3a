//! Who a client is, as Eclipse Ditto's gateway decides it: an OIDC JWT (subjects from the
//! provider's `auth_subjects` placeholders), the pre-authentication header of a trusted
//! reverse proxy, a TLS client certificate (`tls:CN`), a named ingest secret
//! (`ingest:NAME`), or the devops credentials of the admin API (`devops:USER`).
//!
//! A server fills [`Credentials`] from a request and asks the [`Authenticator`] (built once
//! from [`config::AuthConfig`]): `Ok(None)` is an anonymous caller, `Ok(Some(principal))`
//! names its subjects for the policies, `Err` says why the credentials given are wrong.

mod authenticator;
pub mod config;
mod credentials;
mod devops;
mod error;
mod ingest;
mod jwks;
mod jwt;
pub mod placeholders;
mod principal;
mod proxy;
#[cfg(any(test, feature = "test-issuer"))]
pub mod test_issuer;
#[cfg(test)]
mod tests;
mod verified;

pub use authenticator::Authenticator;
pub use config::AuthConfig;
pub use credentials::{Credentials, PRE_AUTHENTICATED_HEADER};
pub use error::AuthError;
pub use ingest::ingest_principal;
pub use principal::{AuthMethod, Principal};
pub use proxy::ProxyList;
