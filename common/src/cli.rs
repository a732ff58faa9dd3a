//! What the servers' command lines share: the TLS flags (also the `[tls]` TOML section and
//! `TRIBUTARY_TLS__*` environment variables, through the one config loader).

use serde::Serialize;
use std::path::PathBuf;

/// `--tls-cert`, `--tls-key`, `--tls-ca`: this process's certificate and key, and the
/// cluster CA (PEM files), merged into the config's `[tls]` section.
#[derive(clap::Args, Serialize, Default, Debug)]
pub struct TlsFlags {
    /// PEM certificate chain of this process (`tribctl certs` makes them).
    #[arg(long = "tls-cert")]
    #[serde(rename = "cert_file", skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// PEM private key of that certificate.
    #[arg(long = "tls-key")]
    #[serde(rename = "key_file", skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// PEM certificate of the cluster CA: what every peer's certificate must come from.
    #[arg(long = "tls-ca")]
    #[serde(rename = "ca_file", skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

impl TlsFlags {
    pub fn is_empty(&self) -> bool {
        self.cert.is_none() && self.key.is_none() && self.ca.is_none()
    }
}
