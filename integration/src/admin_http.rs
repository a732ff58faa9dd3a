//! A client of the admin HTTP listener (`/metrics`, `/health`, `/ready`, `/devops/…`), as an
//! operator's `curl` reaches it: over TLS trusting the cluster CA when the server is not
//! `insecure`, cleartext otherwise; one request per call.

use anyhow::{Context, Result};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

/// How the listener is reached: `ca_pem` (the cluster CA) for TLS, `None` for cleartext.
pub struct Admin<'a> {
    pub addr: SocketAddr,
    pub ca_pem: Option<&'a str>,
}

impl Admin<'_> {
    /// `method path` with an optional bearer token and JSON body: the status and the body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, String)> {
        let mut client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(0);
        let scheme = match self.ca_pem {
            Some(ca) => {
                client =
                    client.add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes())?);
                "https"
            }
            None => "http",
        };
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = client
            .build()?
            .request(method.clone(), format!("{scheme}://{}{path}", self.addr));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {scheme}://{}{path}", self.addr))?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await?))
    }

    pub async fn get(&self, path: &str) -> Result<(u16, String)> {
        self.call("GET", path, None, None).await
    }

    /// The body as JSON.
    pub async fn json(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let (status, text) = self.call(method, path, token, body).await?;
        let v = serde_json::from_str(&text).with_context(|| format!("{method} {path}: {text}"))?;
        Ok((status, v))
    }
}
