//! The devops routes of the admin HTTP listener, in Eclipse Ditto's shapes:
//!
//! ```text
//! GET /devops/logging[/{service}[/{instance}]]
//! PUT /devops/logging[/{service}[/{instance}]]   {"logger": "tributary_data_node", "level": "debug"}
//! GET /devops/config[/{service}[/{instance}]]?path=tributary.info
//! POST /devops/piggyback[/{service}[/{instance}]]?timeout=10s   {"targetActorSelection": …}
//! ```
//!
//! One handler reads the route (`/devops/{what}/{service}/{instance}`), lets the caller in,
//! and hands a [`Command`] to the server's [`Devops`]. Piggyback takes `PUT` too, as Ditto's
//! namespace examples send it.

use super::{shape, Command, Devops, DevopsError, Operators, Piggyback, Scope};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;

struct Routes {
    devops: Arc<dyn Devops>,
    operators: Arc<dyn Operators>,
}

/// The devops routes, to merge into the admin listener's router (which must be served with
/// connect info, for the caller's address).
pub fn routes(devops: Arc<dyn Devops>, operators: Arc<dyn Operators>) -> Router {
    let state = Arc::new(Routes { devops, operators });
    Router::new()
        .route("/devops/{what}", any(handle))
        .route("/devops/{what}/{*rest}", any(handle))
        .with_state(state)
}

fn json(status: u16, v: &Value) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

async fn handle(
    State(r): State<Arc<Routes>>,
    ConnectInfo(crate::telemetry::PeerAddr(remote)): ConnectInfo<crate::telemetry::PeerAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match serve(&r, remote, &method, &uri, &headers, &body).await {
        Ok((status, v)) => json(status, &v),
        Err(Failure::Devops(e)) => json(
            e.http_status(),
            &shape::error(e.http_status(), &e.to_string()),
        ),
        Err(Failure::Method(allowed)) => {
            let msg = format!("{method} is not served here; use {allowed}");
            let mut resp = json(405, &shape::error(405, &msg));
            if let Ok(v) = allowed.parse() {
                resp.headers_mut().insert(header::ALLOW, v);
            }
            resp
        }
    }
}

enum Failure {
    Devops(DevopsError),
    Method(&'static str),
}

impl From<DevopsError> for Failure {
    fn from(e: DevopsError) -> Failure {
        Failure::Devops(e)
    }
}

/// The value of `name` in the query string (`path=tributary.info&timeout=10s`).
fn query<'a>(uri: &'a Uri, name: &str) -> Option<&'a str> {
    uri.query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn serve(
    r: &Routes,
    remote: SocketAddr,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(u16, Value), Failure> {
    let parts: Vec<&str> = uri
        .path()
        .trim_start_matches("/devops/")
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let (what, service, instance) = match parts.as_slice() {
        [what] => (*what, None, None),
        [what, s] => (*what, Some(*s), None),
        [what, s, i] => (*what, Some(*s), Some(*i)),
        _ => {
            return Err(DevopsError::NotFound(format!(
                "no devops route {}: /devops/logging, /devops/config or /devops/piggyback, then [/SERVICE[/INSTANCE]]",
                uri.path()
            ))
            .into())
        }
    };
    let caller = r
        .operators
        .access()
        .http_devops_caller(headers, Some(remote))
        .await
        .map_err(DevopsError::from)?;
    r.operators
        .may_operate(&caller)
        .map_err(DevopsError::from)?;
    let cmd = match (what, method) {
        ("logging", &Method::GET) => Command::RetrieveLoggerConfig,
        ("logging", &Method::PUT) => change_of(body)?,
        ("logging", _) => return Err(Failure::Method("GET, PUT")),
        ("config", &Method::GET) => Command::RetrieveConfig {
            path: query(uri, "path").unwrap_or("").to_string(),
        },
        ("config", _) => return Err(Failure::Method("GET")),
        ("piggyback", &Method::POST | &Method::PUT) => {
            Command::Piggyback(Piggyback::from_body(body, query(uri, "timeout"))?)
        }
        ("piggyback", _) => return Err(Failure::Method("POST, PUT")),
        (other, _) => {
            return Err(DevopsError::NotFound(format!(
                "no devops route /devops/{other}: logging, config or piggyback"
            ))
            .into())
        }
    };
    let scope = Scope::parse(service, instance)?;
    cmd.check_scope(&scope)?;
    let answers = r.devops.execute(&scope, &cmd).await?;
    Ok(shape::response(&cmd, &scope, &answers))
}

/// `{"logger": "...", "level": "debug"}`.
fn change_of(body: &Bytes) -> Result<Command, DevopsError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        DevopsError::BadRequest(format!(
            r#"the body must be JSON {{"logger": "...", "level": "debug"}}: {e}"#
        ))
    })?;
    let field = |name: &str| {
        v.get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                DevopsError::BadRequest(format!("the body has no string field {name:?}"))
            })
    };
    let cmd = Command::ChangeLogLevel {
        logger: field("logger")?,
        level: field("level")?,
    };
    cmd.validate()?;
    Ok(cmd)
}
