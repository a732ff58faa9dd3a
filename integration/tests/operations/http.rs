//! The devops routes' JSON through the harness's admin client (TLS with the cluster CA).

use anyhow::Result;
use serde_json::Value;
use tributary_integration::admin_http::Admin;

/// `method path` with an optional bearer token and JSON body; the status and the JSON body.
pub async fn call(
    admin: &Admin<'_>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    admin.json(method, path, token, body).await
}

pub async fn get(admin: &Admin<'_>, path: &str, token: &str) -> Result<(u16, Value)> {
    call(admin, "GET", path, Some(token), None).await
}

pub async fn put(admin: &Admin<'_>, path: &str, token: &str, body: Value) -> Result<(u16, Value)> {
    call(admin, "PUT", path, Some(token), Some(&body)).await
}
