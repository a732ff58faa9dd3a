//! The admin API's own credentials, as Ditto's devops user: a basic-auth user and password,
//! or a bearer token. Compared in constant time, user and password both, so timing tells
//! nothing about which one was wrong.

use super::config::AuthConfig;
use super::error::AuthError;
use super::principal::{AuthMethod, Principal};
use crate::config::ConfigError;
use crate::secrets::ct_eq;
use base64::Engine;

#[derive(Clone, Default)]
pub(super) struct Devops {
    user: String,
    password: String,
    token: String,
}

impl Devops {
    pub fn from_config(cfg: &AuthConfig) -> Result<Devops, ConfigError> {
        match (cfg.devops_user.is_empty(), cfg.devops_password.is_empty()) {
            (false, true) => Err(ConfigError(
                "key `devops_password`: missing (`devops_user` is set)".into(),
            )),
            (true, false) => Err(ConfigError(
                "key `devops_user`: missing (`devops_password` is set)".into(),
            )),
            _ => Ok(Devops {
                user: cfg.devops_user.clone(),
                password: cfg.devops_password.clone(),
                token: cfg.devops_token.clone(),
            }),
        }
    }

    /// `Basic base64(user:password)` credentials (the part after `Basic `).
    pub fn check_basic(&self, encoded: &str) -> Result<Principal, AuthError> {
        if self.user.is_empty() {
            return Err(AuthError::DevopsDisabled { what: "user" });
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| AuthError::Malformed("basic credentials are not base64".into()))?;
        let text = String::from_utf8(decoded)
            .map_err(|_| AuthError::Malformed("basic credentials are not UTF-8".into()))?;
        let Some((user, password)) = text.split_once(':') else {
            return Err(AuthError::Malformed(
                "basic credentials must be `user:password`".into(),
            ));
        };
        let user_ok = ct_eq(user.as_bytes(), self.user.as_bytes());
        let password_ok = ct_eq(password.as_bytes(), self.password.as_bytes());
        if user_ok & password_ok {
            Ok(Principal {
                subjects: vec![format!("devops:{}", self.user)],
                method: AuthMethod::Devops,
            })
        } else {
            Err(AuthError::BadDevopsCredentials)
        }
    }

    /// Whether a bearer token is the devops token.
    pub fn token_matches(&self, token: &str) -> bool {
        !self.token.is_empty() && ct_eq(token.as_bytes(), self.token.as_bytes())
    }

    pub fn has_token(&self) -> bool {
        !self.token.is_empty()
    }

    pub fn token_principal() -> Principal {
        Principal {
            subjects: vec!["devops:token".to_string()],
            method: AuthMethod::Devops,
        }
    }
}
