//! A member's status page on its admin listener: `GET /` is server-rendered HTML (the
//! members, the data nodes, and the topology as SVG) with a small inline script that fetches
//! `topology.svg` and `topology.json` every 3 s and puts them in place; no front-end
//! toolchain. `/topology.svg` and `/topology.json` serve the same to anyone else who asks.
//!
//! Who may look: the page shows entity names, lags and error texts (no secrets, but what
//! `tribctl stream report` needs READ on each stream to see), so unlike `/metrics` it is not
//! open: the caller authenticates as on the devops routes (bearer token, pre-authentication
//! header, devops user, or the configured `anonymous_subjects`) and needs READ on `cluster:/`
//! (or to be an operator); see [`crate::devops::Operators::may_view`].

use crate::devops::Operators;
use crate::telemetry::PeerAddr;
use crate::topology::{svg, Topology};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::Arc;
use tributary_proto::v1::StatusReply;

/// What the page shows, as the member finds it.
#[tonic::async_trait]
pub trait StatusSource: Send + Sync {
    /// Members and data nodes (`Cluster.Status`).
    async fn cluster(&self) -> Result<StatusReply, String>;
    /// The catalogue's wells, streams and targets with the data nodes' live stats.
    async fn topology(&self) -> Result<Topology, String>;
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberRow {
    pub id: u64,
    pub role: String,
    pub term: u64,
    pub reachable: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DataNodeRow {
    pub id: u64,
    pub up: bool,
    /// Null: never heard from.
    pub heartbeat_ms_ago: Option<u64>,
}

/// `/topology.json`: the cluster's members and data nodes, and the topology (or why either
/// could not be read).
#[derive(Debug, Clone, Serialize)]
pub struct StatusView {
    pub leader: u64,
    pub term: u64,
    pub members: Vec<MemberRow>,
    pub data_nodes: Vec<DataNodeRow>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster_error: String,
    #[serde(flatten)]
    pub topology: Topology,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub topology_error: String,
}

impl StatusView {
    pub async fn read(src: &dyn StatusSource) -> StatusView {
        let (cluster, topology) = futures::future::join(src.cluster(), src.topology()).await;
        let mut v = StatusView {
            leader: 0,
            term: 0,
            members: Vec::new(),
            data_nodes: Vec::new(),
            cluster_error: String::new(),
            topology: Topology::default(),
            topology_error: String::new(),
        };
        match cluster {
            Ok(s) => {
                v.leader = s.leader;
                v.term = s.term;
                v.members = s
                    .members
                    .iter()
                    .map(|m| MemberRow {
                        id: m.id,
                        role: m.role.clone(),
                        term: m.term,
                        reachable: m.reachable,
                    })
                    .collect();
                v.data_nodes = s
                    .data_nodes
                    .iter()
                    .map(|d| DataNodeRow {
                        id: d.id,
                        up: d.up,
                        heartbeat_ms_ago: (d.last_heartbeat_ms_ago != u64::MAX)
                            .then_some(d.last_heartbeat_ms_ago),
                    })
                    .collect();
            }
            Err(e) => v.cluster_error = e,
        }
        match topology {
            Ok(t) => v.topology = t,
            Err(e) => v.topology_error = e,
        }
        v
    }
}

struct Page {
    source: Arc<dyn StatusSource>,
    operators: Arc<dyn Operators>,
}

/// `/`, `/topology.svg` and `/topology.json`, to merge into the admin listener's router.
pub fn routes(source: Arc<dyn StatusSource>, operators: Arc<dyn Operators>) -> Router {
    let state = Arc::new(Page { source, operators });
    Router::new()
        .route("/", get(page))
        .route("/topology.svg", get(topology_svg))
        .route("/topology.json", get(topology_json))
        .route_layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

/// In front of every route here: the caller's credentials, then READ on `cluster:/`; a
/// refusal as plain text.
async fn gate(
    State(p): State<Arc<Page>>,
    ConnectInfo(remote): ConnectInfo<PeerAddr>,
    req: Request,
    next: Next,
) -> Response {
    match let_in(&p, req.headers(), remote).await {
        Ok(()) => next.run(req).await,
        Err(refused) => refused,
    }
}

async fn let_in(p: &Page, headers: &HeaderMap, remote: PeerAddr) -> Result<(), Response> {
    let refused = |r: crate::access::Refusal| match r {
        // A browser asks for the devops user and password (basic auth) on this.
        crate::access::Refusal::Unauthenticated(_) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, r#"Basic realm="tributary""#)],
            format!("{r}\n"),
        )
            .into_response(),
        crate::access::Refusal::Denied { .. } => {
            (StatusCode::FORBIDDEN, format!("{r}\n")).into_response()
        }
    };
    let caller = p
        .operators
        .access()
        .http_devops_caller(headers, Some(remote.0))
        .await
        .map_err(refused)?;
    p.operators.may_view(&caller).map_err(refused)
}

fn no_store(content_type: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn topology_svg(State(p): State<Arc<Page>>) -> Response {
    match p.source.topology().await {
        Ok(t) => no_store("image/svg+xml", svg::render(&t)),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

async fn topology_json(State(p): State<Arc<Page>>) -> Response {
    let view = StatusView::read(p.source.as_ref()).await;
    match serde_json::to_string(&view) {
        Ok(body) => no_store("application/json", body),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn page(State(p): State<Arc<Page>>) -> Response {
    let view = StatusView::read(p.source.as_ref()).await;
    no_store("text/html; charset=utf-8", html(&view))
}

fn html(v: &StatusView) -> String {
    let mut out = String::from(HEAD);
    let _ = write!(
        out,
        r#"<p id="summary">leader {} · term {} · <span id="updated">rendered by the server</span></p>"#,
        v.leader, v.term
    );
    out.push_str(r#"<div class="tables"><section><h2>Members</h2><table id="members">"#);
    out.push_str(&members_rows(v));
    out.push_str(r#"</table></section><section><h2>Data nodes</h2><table id="data-nodes">"#);
    out.push_str(&data_node_rows(v));
    out.push_str("</table></section></div>");
    let _ = write!(
        out,
        r#"<p class="error" id="cluster-error">{}</p><h2>Topology</h2><p class="error" id="topology-error">{}</p><div id="topology">{}</div>"#,
        svg::escape(&v.cluster_error),
        svg::escape(&v.topology_error),
        svg::render(&v.topology)
    );
    out.push_str(SCRIPT);
    out.push_str("</body></html>\n");
    out
}

fn members_rows(v: &StatusView) -> String {
    let mut s = String::from("<tr><th>id</th><th>role</th><th>term</th><th>reachable</th></tr>");
    for m in &v.members {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            m.id,
            svg::escape(&m.role),
            m.term,
            if m.reachable { "yes" } else { "no" }
        );
    }
    s
}

fn data_node_rows(v: &StatusView) -> String {
    let mut s = String::from("<tr><th>id</th><th>state</th><th>heartbeat</th></tr>");
    for d in &v.data_nodes {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            d.id,
            if d.up { "up" } else { "down" },
            d.heartbeat_ms_ago
                .map_or("never".into(), |ms| format!("{ms} ms ago"))
        );
    }
    s
}

const HEAD: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tributary status</title>
<style>
body{font:14px sans-serif;margin:1.5em;color:#1d2b3a}
h1{font-size:20px;margin:0 0 .3em}h2{font-size:16px;margin:1em 0 .4em}
.tables{display:flex;gap:3em}
table{border-collapse:collapse}td,th{border-bottom:1px solid #dde3ea;padding:3px 12px 3px 0;text-align:left}
.error{color:#c0392b}#topology{overflow:auto}
</style></head><body><h1>Tributary</h1>
"#;

/// Every 3 s: the SVG in place of the old one, the tables from the JSON; a failed fetch says
/// so in the summary line and keeps the last picture.
const SCRIPT: &str = r#"<script>
(function () {
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c];
    });
  }
  function rows(head, items, cells) {
    return '<tr>' + head.map(function (h) { return '<th>' + h + '</th>'; }).join('') + '</tr>' +
      items.map(function (x) {
        return '<tr>' + cells(x).map(function (c) { return '<td>' + esc(c) + '</td>'; }).join('') + '</tr>';
      }).join('');
  }
  function refresh() {
    Promise.all([
      fetch('topology.svg', {cache: 'no-store'}).then(function (r) {
        if (!r.ok) { throw new Error('topology.svg: ' + r.status); }
        return r.text();
      }),
      fetch('topology.json', {cache: 'no-store'}).then(function (r) {
        if (!r.ok) { throw new Error('topology.json: ' + r.status); }
        return r.json();
      })
    ]).then(function (got) {
      var v = got[1];
      document.getElementById('topology').innerHTML = got[0];
      document.getElementById('members').innerHTML = rows(['id', 'role', 'term', 'reachable'],
        v.members, function (m) { return [m.id, m.role, m.term, m.reachable ? 'yes' : 'no']; });
      document.getElementById('data-nodes').innerHTML = rows(['id', 'state', 'heartbeat'],
        v.data_nodes, function (d) {
          return [d.id, d.up ? 'up' : 'down',
                  d.heartbeat_ms_ago === null ? 'never' : d.heartbeat_ms_ago + ' ms ago'];
        });
      document.getElementById('cluster-error').textContent = v.cluster_error || '';
      document.getElementById('topology-error').textContent = v.topology_error || '';
      document.getElementById('summary').innerHTML = 'leader ' + esc(v.leader) + ' · term ' +
        esc(v.term) + ' · <span id="updated">updated ' + esc(new Date().toLocaleTimeString()) + '</span>';
    }).catch(function (e) {
      document.getElementById('updated').textContent = 'refresh failed: ' + e.message;
    });
  }
  setInterval(refresh, 3000);
  refresh();
})();
</script>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_renders_members_nodes_and_the_graph_with_text_escaped() {
        let v = StatusView {
            leader: 2,
            term: 7,
            members: vec![MemberRow {
                id: 2,
                role: "leader".into(),
                term: 7,
                reachable: true,
            }],
            data_nodes: vec![
                DataNodeRow {
                    id: 1,
                    up: true,
                    heartbeat_ms_ago: Some(120),
                },
                DataNodeRow {
                    id: 2,
                    up: false,
                    heartbeat_ms_ago: None,
                },
            ],
            cluster_error: String::new(),
            topology: Topology::default(),
            topology_error: "data node 3: <refused>".into(),
        };
        let page = html(&v);
        assert!(page.contains("<td>2</td><td>leader</td><td>7</td><td>yes</td>"));
        assert!(page.contains("<td>1</td><td>up</td><td>120 ms ago</td>"));
        assert!(page.contains("<td>2</td><td>down</td><td>never</td>"));
        assert!(page.contains("data node 3: &lt;refused&gt;"));
        assert!(page.contains(r#"<div id="topology"><svg"#));
        assert!(page.contains("setInterval(refresh, 3000)"));
        let json = serde_json::to_value(&v).expect("json");
        assert_eq!(
            json["data_nodes"][1]["heartbeat_ms_ago"],
            serde_json::Value::Null
        );
        assert!(json["vertices"].is_array() && json["edges"].is_array());
    }
}
