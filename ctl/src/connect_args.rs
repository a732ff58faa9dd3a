//! The global flags that say where the cluster is and who tribctl is to it. Secrets come
//! inline, from the environment, or from a file (`--token-file`): a flag's value shows in `ps`.

use crate::client::ControlPlane;
use crate::links::{LinkOptions, Links};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct ConnectArgs {
    /// Control-plane member(s), comma-separated; any member will do. `https://HOST:PORT` is
    /// TLS, `http://HOST:PORT` cleartext, a bare `HOST:PORT` TLS when --ca is given.
    #[arg(
        long,
        global = true,
        env = "TRIBUTARY_SERVER",
        default_value = "127.0.0.1:7100"
    )]
    pub server: String,
    /// PEM file of the cluster CA: TLS to the members and data nodes, their certificates
    /// checked against it (`tribctl certs init` writes `ca.pem`).
    #[arg(long, global = true, env = "TRIBUTARY_CA", value_name = "FILE")]
    ca: Option<PathBuf>,
    /// PEM client certificate shown to every server (subject `tls:CN`); needs --key and --ca.
    #[arg(long, global = true, env = "TRIBUTARY_CERT", value_name = "FILE")]
    cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, global = true, env = "TRIBUTARY_KEY", value_name = "FILE")]
    key: Option<PathBuf>,
    /// Bearer token (an OIDC JWT) sent as `authorization: Bearer …` on every call. Shown by
    /// `ps`: prefer --token-file or TRIBUTARY_TOKEN.
    #[arg(
        long,
        global = true,
        env = "TRIBUTARY_TOKEN",
        hide_env_values = true,
        default_value = "",
        hide_default_value = true
    )]
    token: String,
    /// A file holding the bearer token (surrounding whitespace ignored).
    #[arg(long, global = true, env = "TRIBUTARY_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Stream secret sent to data nodes on every stream call (x-tributary-stream-secret).
    #[arg(
        long,
        global = true,
        env = "TRIBUTARY_STREAM_SECRET",
        default_value = "",
        hide_default_value = true,
        hide_env_values = true
    )]
    stream_secret: String,
    /// A file holding the stream secret.
    #[arg(
        long,
        global = true,
        env = "TRIBUTARY_STREAM_SECRET_FILE",
        value_name = "FILE"
    )]
    stream_secret_file: Option<PathBuf>,
    /// Reach the server named HOST:PORT (in --server or the catalogue) at ADDR:PORT, as
    /// curl's --resolve: a cluster whose servers know each other by names the host cannot
    /// reach (the compose cluster's published ports). Its certificate must still name HOST.
    #[arg(
        long,
        global = true,
        env = "TRIBUTARY_RESOLVE",
        value_delimiter = ',',
        value_name = "HOST:PORT=ADDR:PORT"
    )]
    resolve: Vec<String>,
    /// A W3C trace context (`00-<trace id>-<span id>-<flags>`) sent on every call, so the
    /// servers' spans of this command join that trace (a servers' `[tracing]` must be on).
    #[arg(long, global = true, env = "TRACEPARENT", value_name = "TRACEPARENT")]
    traceparent: Option<String>,
}

impl ConnectArgs {
    /// The control plane, reached (as every data node) with these credentials.
    pub fn control_plane(&self) -> Result<ControlPlane> {
        let links = Links::new(LinkOptions {
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            token: secret("--token", &self.token, self.token_file.as_deref())?,
            stream_secret: secret(
                "--stream-secret",
                &self.stream_secret,
                self.stream_secret_file.as_deref(),
            )?,
            resolve: self.resolve.clone(),
            traceparent: self.traceparent.clone(),
        })?;
        ControlPlane::with_links(&self.server, links)
    }

    /// What a failure report needs to know of the links, without opening them.
    pub fn failure_context(&self) -> crate::failure::Context {
        crate::failure::Context {
            tls: self.ca.is_some() && !self.server.contains("http://"),
            cert: self.cert.is_some(),
            credentials: self.cert.is_some() || !self.token.is_empty() || self.token_file.is_some(),
        }
    }
}

/// A secret given inline (`flag`, or its environment variable) or in a file (`flag-file`):
/// `None` when neither is given; both at once is an error, as is an empty file.
pub fn secret(flag: &str, inline: &str, file: Option<&Path>) -> Result<Option<String>> {
    match (inline.is_empty(), file) {
        (true, None) => Ok(None),
        (false, None) => Ok(Some(inline.to_string())),
        (false, Some(_)) => bail!(
            "{flag} and {flag}-file are both given (on the command line or in the environment): \
             give one"
        ),
        (true, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{flag}-file {}", path.display()))?;
            let value = text.trim();
            if value.is_empty() {
                bail!("{flag}-file {}: the file is empty", path.display());
            }
            Ok(Some(value.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_one_place_only() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("token");
        std::fs::write(&file, "  abc.def.ghi\n")?;
        assert_eq!(secret("--token", "", None)?, None);
        assert_eq!(secret("--token", "x", None)?, Some("x".into()));
        assert_eq!(
            secret("--token", "", Some(&file))?,
            Some("abc.def.ghi".into())
        );
        let both = secret("--token", "x", Some(&file)).unwrap_err().to_string();
        assert!(both.contains("--token-file"), "{both}");
        std::fs::write(&file, "\n")?;
        let empty = secret("--token", "", Some(&file)).unwrap_err().to_string();
        assert!(empty.contains("empty"), "{empty}");
        let missing = format!(
            "{:#}",
            secret("--token", "", Some(&dir.path().join("no"))).unwrap_err()
        );
        assert!(missing.contains("--token-file"), "{missing}");
        Ok(())
    }
}
