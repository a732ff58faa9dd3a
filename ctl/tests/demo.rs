//! `tribctl demo` as a user runs it: the reference replication scenario ends with the counts,
//! lag 0 in both reports, and a Graphviz file with one edge per mirror or source.

fn rows(out: &str, columns: usize) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| l.starts_with('│'))
        .map(|l| {
            l.trim_matches('│')
                .split('┆')
                .map(|c| c.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|r| r.len() == columns)
        .collect()
}

#[test]
fn demo_shows_the_reference_scenario_reports_and_graph() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tribctl"))
        .arg("demo")
        .env("TMPDIR", tmp.path())
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run tribctl demo");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "demo failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Stream Report: Stream, Storage, Replication, Consumers, Messages, Bytes, Lost, Deleted, Cluster.
    let streams = rows(&stdout, 9);
    let messages = |name: &str| {
        streams
            .iter()
            .find(|r| r[0] == name)
            .map(|r| (r[1].clone(), r[4].clone()))
            .unwrap_or_else(|| panic!("no {name} row in:\n{stdout}"))
    };
    assert_eq!(messages("ORDERS"), ("Memory".into(), "100".into()));
    assert_eq!(messages("RETURNS"), ("Memory".into(), "100".into()));
    assert_eq!(messages("ARCHIVE"), ("File".into(), "200".into()));
    assert_eq!(messages("REPORT"), ("File".into(), "200".into()));

    // Replication Report: Stream, Kind, Source Stream, Active, Lag, Error.
    let mut replication: Vec<(String, String, String, String)> = rows(&stdout, 6)
        .into_iter()
        .filter(|r| r[0] != "Stream" && (r[1] == "Source" || r[1] == "Mirror"))
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone(), r[4].clone()))
        .collect();
    replication.sort();
    assert_eq!(
        replication,
        vec![
            (
                "ARCHIVE".into(),
                "Source".into(),
                "ORDERS".into(),
                "0".into()
            ),
            (
                "ARCHIVE".into(),
                "Source".into(),
                "RETURNS".into(),
                "0".into()
            ),
            (
                "REPORT".into(),
                "Mirror".into(),
                "ARCHIVE".into(),
                "0".into()
            ),
        ]
    );

    let dot_path = tmp.path().join("tributary-demo-replication.dot");
    assert!(
        stdout.contains(&dot_path.display().to_string()),
        "the demo names its graph file"
    );
    let dot = std::fs::read_to_string(&dot_path).expect("the demo wrote the graph");
    let mut edges: Vec<&str> = dot
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("->"))
        .collect();
    edges.sort();
    assert_eq!(edges.len(), 3, "{dot}");
    assert!(
        edges[0].starts_with("\"ARCHIVE\" -> \"REPORT\"") && edges[0].contains("Mirror lag 0"),
        "{dot}"
    );
    assert!(
        edges[1].starts_with("\"ORDERS\" -> \"ARCHIVE\"") && edges[1].contains("Source lag 0"),
        "{dot}"
    );
    assert!(
        edges[2].starts_with("\"RETURNS\" -> \"ARCHIVE\"") && edges[2].contains("Source lag 0"),
        "{dot}"
    );
}
