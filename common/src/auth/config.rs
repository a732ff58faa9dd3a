//! How clients authenticate, as Ditto's gateway configures it: OIDC providers by key, the
//! pre-authentication header and its proxies, and the devops credentials of the admin API.
//!
//! The keys sit at the top level of a server's config file and are overridable like every
//! key (`TRIBUTARY_ENABLE_PRE_AUTHENTICATION=true`,
//! `TRIBUTARY_OIDC__MYPROVIDER__ISSUER=idp.example.com`,
//! `TRIBUTARY_OIDC__MYPROVIDER__AUTH_SUBJECTS='["{{ jwt:sub }}"]'`); Ditto's plain
//! `ENABLE_PRE_AUTHENTICATION` is honoured too, below the `TRIBUTARY_` form. A list may also
//! be given by index, as Ditto's `-D…auth-subjects.0=`:
//! `TRIBUTARY_OIDC__MYPROVIDER__AUTH_SUBJECTS__0='{{ jwt:sub }}'`. Every secret has a
//! `*_file` form, read at load.

use crate::config::ConfigError;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Secrets are never serialized (a config dump, such as `/devops/config`, shows none) nor
/// printed by `Debug`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// OIDC providers by key; the key prefixes every subject a provider's tokens yield
    /// (`myprovider:u123`).
    pub oidc: BTreeMap<String, OidcProviderConfig>,
    /// Accept `x-tributary-pre-authenticated: issuer:subject`, from the proxies below only.
    pub enable_pre_authentication: bool,
    /// Who may set that header: IP addresses or CIDRs (`10.0.0.7`, `10.1.0.0/16`) of the
    /// connection's source, or anything else as the CN of the proxy's TLS client certificate.
    #[serde(deserialize_with = "list")]
    pub pre_authentication_proxies: Vec<String>,
    /// Basic-auth credentials of the admin (devops) API.
    pub devops_user: String,
    pub devops_user_file: String,
    #[serde(skip_serializing)]
    pub devops_password: String,
    pub devops_password_file: String,
    /// Bearer token of the admin (devops) API.
    #[serde(skip_serializing)]
    pub devops_token: String,
    pub devops_token_file: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OidcProviderConfig {
    /// The token's `iss`, with or without `https://`.
    pub issuer: String,
    /// Several accepted `iss` values; when set, `issuer` is ignored (as in Ditto).
    #[serde(deserialize_with = "list")]
    pub issuers: Vec<String>,
    /// Accepted `aud` values; empty: `aud` is not checked.
    #[serde(deserialize_with = "list")]
    pub audiences: Vec<String>,
    /// PEM CA(s) trusted for discovery and JWKS over HTTPS. This build has no system roots,
    /// so fetching keys needs it.
    pub ca_file: String,
    /// A JWKS file used instead of discovery (re-read when a token names an unknown key).
    pub jwks_file: String,
    /// Ditto placeholder templates, one subject (or more, for arrays) each.
    #[serde(deserialize_with = "list")]
    pub auth_subjects: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_secs: u64,
    /// Timeout of one discovery + JWKS fetch.
    pub jwks_timeout_ms: u64,
    /// At most one refetch per this interval, however many unknown `kid`s arrive.
    pub jwks_min_refresh_interval_ms: u64,
    /// Keys older than this are refetched on next use (a withdrawn key stops working).
    pub jwks_max_age_secs: u64,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &str| {
            if s.is_empty() {
                ""
            } else {
                crate::secrets::REDACTED
            }
        };
        f.debug_struct("AuthConfig")
            .field("oidc", &self.oidc)
            .field("enable_pre_authentication", &self.enable_pre_authentication)
            .field(
                "pre_authentication_proxies",
                &self.pre_authentication_proxies,
            )
            .field("devops_user", &self.devops_user)
            .field("devops_user_file", &self.devops_user_file)
            .field("devops_password", &hidden(&self.devops_password))
            .field("devops_password_file", &self.devops_password_file)
            .field("devops_token", &hidden(&self.devops_token))
            .field("devops_token_file", &self.devops_token_file)
            .finish()
    }
}

/// The subject template used when a provider lists none: the `sub` claim.
pub const DEFAULT_AUTH_SUBJECT: &str = "{{ jwt:sub }}";

impl Default for OidcProviderConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            issuers: Vec::new(),
            audiences: Vec::new(),
            ca_file: String::new(),
            jwks_file: String::new(),
            auth_subjects: vec![DEFAULT_AUTH_SUBJECT.to_string()],
            leeway_secs: 30,
            jwks_timeout_ms: 5_000,
            jwks_min_refresh_interval_ms: 10_000,
            jwks_max_age_secs: 3_600,
        }
    }
}

impl OidcProviderConfig {
    /// The accepted issuers: `issuers` when set, else `issuer`.
    pub fn issuer_list(&self) -> Vec<String> {
        if self.issuers.is_empty() && !self.issuer.is_empty() {
            vec![self.issuer.clone()]
        } else {
            self.issuers.clone()
        }
    }

    /// The templates in force: an empty list means Ditto's default, `{{ jwt:sub }}`.
    pub fn subject_templates(&self) -> Vec<String> {
        if self.auth_subjects.is_empty() {
            vec![DEFAULT_AUTH_SUBJECT.to_string()]
        } else {
            self.auth_subjects.clone()
        }
    }
}

/// Loads the auth keys of a server's config: defaults, then the TOML file (its top-level
/// auth keys; others are ignored), then Ditto's `ENABLE_PRE_AUTHENTICATION`, then
/// `TRIBUTARY_…` variables; then reads every `*_file` secret. The error names the bad key.
pub fn load(file: Option<&Path>) -> Result<AuthConfig, ConfigError> {
    let mut fig = Figment::from(Serialized::defaults(AuthConfig::default()));
    if let Some(file) = file {
        if !file.exists() {
            return Err(ConfigError(format!(
                "config file {} does not exist",
                file.display()
            )));
        }
        fig = fig.merge(Toml::file(file));
    }
    let cfg: AuthConfig = fig
        .merge(Env::raw().only(&["ENABLE_PRE_AUTHENTICATION"]))
        .merge(Env::prefixed("TRIBUTARY_").split("__"))
        .extract()
        .map_err(|e| {
            let key = e.path.join(".");
            let msg = e.kind.to_string();
            ConfigError(if key.is_empty() {
                msg
            } else {
                format!("key `{key}`: {msg}")
            })
        })?;
    cfg.with_secret_files()
}

impl AuthConfig {
    /// Reads every `*_file` secret into its key (and clears the `_file` key, so calling this
    /// again changes nothing). Both forms set, an unreadable or an empty file: an error
    /// naming the key and the path.
    pub fn with_secret_files(mut self) -> Result<Self, ConfigError> {
        take_file(
            &mut self.devops_user,
            &mut self.devops_user_file,
            "devops_user",
        )?;
        take_file(
            &mut self.devops_password,
            &mut self.devops_password_file,
            "devops_password",
        )?;
        take_file(
            &mut self.devops_token,
            &mut self.devops_token_file,
            "devops_token",
        )?;
        Ok(self)
    }
}

fn take_file(value: &mut String, file: &mut String, key: &str) -> Result<(), ConfigError> {
    crate::secrets::take_file(value, file, key).map_err(ConfigError)
}

/// A list as an array, as one string, or by index (`{"0": …, "1": …}`, which is what
/// `…__AUTH_SUBJECTS__0=` variables make).
fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Many(Vec<String>),
        One(String),
        Indexed(BTreeMap<String, String>),
    }
    match Raw::deserialize(d)? {
        Raw::Many(v) => Ok(v),
        Raw::One(s) => Ok(vec![s]),
        Raw::Indexed(map) => {
            let mut items = map
                .into_iter()
                .map(|(k, v)| {
                    k.parse::<usize>().map(|i| (i, v)).map_err(|_| {
                        serde::de::Error::custom(format!(
                            "a list given by index needs numeric keys, not {k:?}"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            items.sort_by_key(|(i, _)| *i);
            Ok(items.into_iter().map(|(_, v)| v).collect())
        }
    }
}
