//! The topology as a Graphviz digraph (`dot -Tsvg`): a box per stream, well, external origin
//! and target; an edge per mirror (solid), source (dashed) and ditto target (bold), labelled
//! with its lag and, in red, its error.

use super::{EdgeKind, Role, Topology};
use std::fmt::Write as _;

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn quote(s: &str) -> String {
    format!("\"{}\"", escape(s))
}

/// Lines of a label, each escaped, joined by Graphviz's `\n`.
fn lines(parts: &[&str]) -> String {
    let parts: Vec<String> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| escape(p))
        .collect();
    format!("\"{}\"", parts.join("\\n"))
}

pub fn render(t: &Topology) -> String {
    let mut out = String::from("digraph Topology {\n  rankdir=LR;\n  node [shape=box];\n");
    for v in &t.vertices {
        let shape = match v.role {
            Role::Stream => "box",
            Role::Well => "cylinder",
            Role::Origin | Role::Target => "box, style=dashed",
        };
        let color = match v.error.is_empty() {
            true => String::new(),
            false => ", color=red".into(),
        };
        let _ = writeln!(
            out,
            "  {} [label={}, shape={shape}{color}];",
            quote(&v.id),
            lines(&[&v.name, &v.detail])
        );
    }
    for e in &t.edges {
        let style = match e.kind {
            EdgeKind::Mirror => "solid",
            EdgeKind::Source => "dashed",
            EdgeKind::Ditto => "bold",
        };
        let color = match e.error.is_empty() {
            true => "",
            false => ", color=red, fontcolor=red",
        };
        let _ = writeln!(
            out,
            "  {} -> {} [label={}, style={style}{color}];",
            quote(&e.from),
            quote(&e.to),
            lines(&[&e.label(), &e.error])
        );
    }
    out.push_str("}\n");
    out
}
