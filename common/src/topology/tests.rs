use super::*;
use tributary_proto::v1::{DittoWorkerStats, StreamSource};

fn stream(name: &str, mirror: Option<&str>, sources: &[&str]) -> Stream {
    let origin = |s: &str| StreamSource {
        stream: s.into(),
        ..Default::default()
    };
    Stream {
        name: format!("default:{name}"),
        mirror: mirror.map(origin),
        sources: sources.iter().map(|s| origin(s)).collect(),
        ..Default::default()
    }
}

fn info(replication: &[(&str, &str, u64, &str)]) -> StreamState {
    Ok(StreamInfoReply {
        replication: replication
            .iter()
            .map(|(kind, from, lag, error)| ReplicationInfo {
                stream: format!("default:{from}"),
                kind: kind.to_string(),
                lag: *lag,
                active_ms: 120,
                error: error.to_string(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

/// The reference scenario, with REPORT's node down, and a well copied to a target.
fn snapshot() -> Snapshot {
    Snapshot {
        streams: vec![
            (stream("ORDERS", None, &[]), info(&[])),
            (stream("RETURNS", None, &[]), info(&[])),
            (
                stream("ARCHIVE", None, &["ORDERS", "RETURNS"]),
                info(&[
                    ("source", "ORDERS", 12_345, ""),
                    ("source", "RETURNS", 3, ""),
                ]),
            ),
            (
                stream("REPORT", Some("ARCHIVE"), &[]),
                Err("data node 2: connection refused".into()),
            ),
        ],
        wells: vec![Well {
            name: "default:logs".into(),
            ditto_targets: vec!["dr".into(), "gone".into()],
            owner_node: 1,
            ..Default::default()
        }],
        targets: vec![Target {
            name: "default:dr".into(),
            cleartext_endpoints: vec!["10.0.0.9:4023".into()],
            ingest_secret: "<redacted>".into(),
            ..Default::default()
        }],
        ditto: vec![(
            1,
            Ok(DittoStatsReply {
                workers: vec![DittoWorkerStats {
                    well: "default:logs".into(),
                    target: "default:dr".into(),
                    state: "copying".into(),
                    entries_behind: 40,
                    last_error: "target said <no> & \"why\"".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        )],
    }
}

#[test]
fn every_copy_is_an_edge_with_its_reported_lag_or_why_it_is_unknown() {
    let t = Topology::build(&snapshot());
    let edge = |from: &str, to: &str| {
        t.edges
            .iter()
            .find(|e| e.from == from && e.to == to)
            .unwrap_or_else(|| panic!("no edge {from} -> {to} in {:?}", t.edges))
    };
    assert_eq!(t.edges.len(), 5);
    assert_eq!(edge("ORDERS", "ARCHIVE").lag, Some(12_345));
    assert_eq!(edge("ORDERS", "ARCHIVE").label(), "Source lag 12.3k msgs");
    assert_eq!(edge("RETURNS", "ARCHIVE").label(), "Source lag 3 msgs");
    let report = edge("ARCHIVE", "REPORT");
    assert_eq!((report.kind, report.lag), (EdgeKind::Mirror, None));
    assert!(report.error.contains("connection refused"), "{report:?}");
    let ditto = edge("well/logs", "target/dr");
    assert_eq!(ditto.lag, Some(40));
    assert_eq!(ditto.state, "copying");
    assert_eq!(ditto.label(), "Ditto lag 40 entries");
    let gone = edge("well/logs", "target/gone");
    assert_eq!(gone.lag, None);
    assert!(gone.error.contains("no worker"), "{gone:?}");
    let roles: Vec<(Role, &str)> = t.vertices.iter().map(|v| (v.role, v.id.as_str())).collect();
    assert!(roles.contains(&(Role::Target, "target/gone")), "{roles:?}");
    assert!(roles.contains(&(Role::Well, "well/logs")), "{roles:?}");
    assert_eq!(roles.iter().filter(|(r, _)| *r == Role::Stream).count(), 4);
}

#[test]
fn dot_and_svg_draw_every_vertex_and_edge_escaped() {
    let t = Topology::build(&snapshot());
    let dot = dot::render(&t);
    assert!(
        dot.contains("\"ARCHIVE\" -> \"REPORT\" [label=\"Mirror lag ?\\ndestination unreachable")
    );
    assert!(dot.contains("\"well/logs\" -> \"target/dr\" [label=\"Ditto lag 40 entries\\ntarget said <no> & \\\"why\\\"\""), "{dot}");
    assert_eq!(dot.matches(" -> ").count(), 5);
    let svg = svg::render(&t);
    assert_eq!(svg.matches("<g class=\"edge").count(), 5);
    assert_eq!(svg.matches("<g class=\"vertex").count(), t.vertices.len());
    assert!(svg.contains(r#"data-from="well/logs" data-to="target/dr""#));
    assert!(svg.contains("target said &lt;no&gt; &amp; &quot;why&quot;"));
    assert!(!svg.contains("<no>"), "unescaped text in the SVG");
    assert!(
        !svg.contains("redacted"),
        "the page shows no secret, not even redacted"
    );
}

#[test]
fn an_external_origin_is_its_own_vertex_and_columns_follow_the_flow() {
    let mut s = stream("COPY", Some("UP"), &[]);
    if let Some(m) = s.mirror.as_mut() {
        m.external = "other:7200".into();
    }
    let mut i = info(&[("mirror", "UP", 0, "")]);
    if let Ok(i) = i.as_mut() {
        i.replication[0].external = "other:7200".into();
    }
    let t = Topology::of_streams(&[(s, i)]);
    assert_eq!(t.edges[0].from, "UP@other:7200");
    assert!(t.vertices.iter().any(|v| v.role == Role::Origin));
    let svg = svg::render(&Topology::build(&snapshot()));
    // ORDERS in column 0, ARCHIVE in 1, REPORT in 2.
    let x_of = |id: &str| {
        let at = svg.find(&format!("data-id=\"{id}\"")).expect("vertex");
        let rest = &svg[at..];
        let x = rest.split("x=\"").nth(1).and_then(|r| r.split('"').next());
        x.and_then(|x| x.parse::<i64>().ok()).expect("x")
    };
    assert!(x_of("ORDERS") < x_of("ARCHIVE") && x_of("ARCHIVE") < x_of("REPORT"));
}
