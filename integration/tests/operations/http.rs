//! A minimal HTTP/1.1 client for the admin listener: one request per connection.

use anyhow::{anyhow, Context, Result};
use serde_json::Value;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `method path` with an optional bearer token and JSON body; the status and the JSON body.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).await?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("no HTTP response: {raw}"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("no status in {head}"))?;
    let json = serde_json::from_str(body).with_context(|| format!("{method} {path}: {body}"))?;
    Ok((status, json))
}

pub async fn get(addr: SocketAddr, path: &str, token: &str) -> Result<(u16, Value)> {
    call(addr, "GET", path, Some(token), None).await
}

pub async fn put(addr: SocketAddr, path: &str, token: &str, body: Value) -> Result<(u16, Value)> {
    call(addr, "PUT", path, Some(token), Some(&body)).await
}
