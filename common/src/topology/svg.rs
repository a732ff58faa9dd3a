//! The topology as SVG, laid out here (no Graphviz on the server): columns by the longest
//! path from where data enters (external origins, wells, streams that copy nothing) to where
//! it ends (mirrors of mirrors, ditto targets), vertices stacked in each column by role and
//! name, each edge a curve from its origin's right side to its copy's left side with its lag
//! (and error, in red) at the middle. Elements carry classes and `data-` attributes so a page
//! script or a test can find an edge by its ends.

use super::{Role, Topology, Vertex};
use std::collections::HashMap;
use std::fmt::Write as _;

const BOX_W: i64 = 180;
const BOX_H: i64 = 46;
const COL_W: i64 = 340;
const ROW_H: i64 = 84;
const MARGIN: i64 = 24;
/// Longer error texts are cut to fit between two columns (the `<title>` tooltip has them whole).
const MAX_ERROR_CHARS: usize = 26;

/// `&`, `<`, `>`, `"` and `'` as entities (text and attribute values alike).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Column of each vertex: 0 for where data enters, else one more than the furthest column
/// feeding it. A cycle (two streams sourcing each other) stops growing after as many rounds
/// as there are vertices.
fn columns(t: &Topology) -> HashMap<&str, i64> {
    let mut col: HashMap<&str, i64> = t.vertices.iter().map(|v| (v.id.as_str(), 0)).collect();
    for _ in 0..t.vertices.len() {
        let mut changed = false;
        for e in &t.edges {
            let from = col.get(e.from.as_str()).copied().unwrap_or(0);
            if let Some(to) = col.get_mut(e.to.as_str()) {
                if *to < from + 1 && from + 1 < t.vertices.len() as i64 {
                    *to = from + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    col
}

fn role_class(r: Role) -> &'static str {
    match r {
        Role::Origin => "origin",
        Role::Well => "well",
        Role::Stream => "stream",
        Role::Target => "target",
    }
}

fn vertex(out: &mut String, v: &Vertex, x: i64, y: i64) {
    let class = role_class(v.role);
    let mut title = format!("{class} {}", v.name);
    for extra in [&v.detail, &v.error] {
        if !extra.is_empty() {
            title.push_str(&format!("\n{extra}"));
        }
    }
    let _ = write!(
        out,
        r#"<g class="vertex {class}{bad}" data-id="{id}"><title>{title}</title><rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="{rx}"/><text class="name" x="{tx}" y="{ny}">{name}</text><text class="detail" x="{tx}" y="{dy}">{detail}</text></g>"#,
        bad = if v.error.is_empty() { "" } else { " failing" },
        id = escape(&v.id),
        title = escape(&title),
        rx = if v.role == Role::Stream { 4 } else { 14 },
        tx = x + BOX_W / 2,
        ny = y + 19,
        dy = y + 36,
        name = escape(&cut(&v.name, 26)),
        detail = escape(&cut(&v.detail, 30)),
    );
    out.push('\n');
}

const STYLE: &str = "<style>\
.vertex rect{fill:#f4f7fb;stroke:#42607f;stroke-width:1.5}\
.vertex.well rect{fill:#f3f8ee;stroke:#4f7a3a}\
.vertex.origin rect,.vertex.target rect{fill:#fff;stroke-dasharray:5 3}\
.vertex.failing rect{stroke:#c0392b}\
.vertex text{font:12px sans-serif;text-anchor:middle;fill:#1d2b3a}\
.vertex .name{font-weight:bold}\
.vertex .detail{font-size:11px;fill:#5b6b7b}\
.edge path{fill:none;stroke:#42607f;stroke-width:1.6}\
.edge.source path{stroke-dasharray:6 4}\
.edge.ditto path{stroke:#4f7a3a;stroke-width:2.4}\
.edge.failing path{stroke:#c0392b}\
.edge text{font:11px sans-serif;text-anchor:middle;fill:#1d2b3a;paint-order:stroke;stroke:#fff;stroke-width:3px}\
.edge .error{fill:#c0392b}\
</style>";

/// Each vertex's top-left corner, by id.
type Positions<'a> = HashMap<&'a str, (i64, i64)>;

/// Where each vertex goes: its column, and in the column the rows in order of the mean row
/// of what feeds it (so edges cross less), then by role and name.
fn place(t: &Topology) -> (Positions<'_>, HashMap<i64, i64>) {
    let col = columns(t);
    let mut at: Positions = HashMap::new();
    let mut rows: HashMap<i64, i64> = HashMap::new();
    let last = col.values().copied().max().unwrap_or(0);
    for c in 0..=last {
        let mut here: Vec<(f64, &Vertex)> = t
            .vertices
            .iter()
            .filter(|v| col[v.id.as_str()] == c)
            .map(|v| {
                let fed: Vec<i64> = t
                    .edges
                    .iter()
                    .filter(|e| e.to == v.id)
                    .filter_map(|e| at.get(e.from.as_str()).map(|p| p.1))
                    .collect();
                let mean = match fed.is_empty() {
                    true => f64::MAX,
                    false => fed.iter().sum::<i64>() as f64 / fed.len() as f64,
                };
                (mean, v)
            })
            .collect();
        here.sort_by(|(ma, a), (mb, b)| {
            ma.total_cmp(mb)
                .then_with(|| (a.role, &a.id).cmp(&(b.role, &b.id)))
        });
        for (row, (_, v)) in here.iter().enumerate() {
            at.insert(&v.id, (MARGIN + c * COL_W, MARGIN + row as i64 * ROW_H));
        }
        rows.insert(c, here.len() as i64);
    }
    (at, rows)
}

pub fn render(t: &Topology) -> String {
    let (at, rows) = place(t);
    let cols = rows.keys().copied().max().map_or(0, |c| c + 1);
    let height = rows.values().copied().max().unwrap_or(0).max(1) * ROW_H + 2 * MARGIN;
    let width = (cols.max(1) - 1) * COL_W + BOX_W + 2 * MARGIN;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="topology" width="{width}" height="{height}" viewBox="0 0 {width} {height}">"#
    );
    out.push_str(STYLE);
    out.push_str(r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#42607f"/></marker></defs>"##);
    out.push('\n');
    if t.vertices.is_empty() {
        let _ = write!(
            out,
            r#"<text x="{MARGIN}" y="{}" style="font:13px sans-serif">No streams or wells yet.</text>"#,
            MARGIN + 20
        );
    }
    for e in &t.edges {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (at.get(e.from.as_str()), at.get(e.to.as_str()))
        else {
            continue;
        };
        let (sx, sy, ex, ey) = (x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2);
        let bend = ((ex - sx).abs() / 2).max(40);
        let (mx, my) = ((sx + ex) / 2, (sy + ey) / 2);
        let kind = format!("{:?}", e.kind).to_lowercase();
        let mut title = format!("{} → {}: {}", e.from, e.to, e.label());
        if !e.state.is_empty() {
            title.push_str(&format!(" ({})", e.state));
        }
        if !e.error.is_empty() {
            title.push_str(&format!("\n{}", e.error));
        }
        let _ = write!(
            out,
            r#"<g class="edge {kind}{bad}" data-from="{from}" data-to="{to}"><title>{title}</title><path d="M{sx},{sy} C{c1},{sy} {c2},{ey} {ex},{ey}" marker-end="url(#arrow)"/><text class="lag" x="{mx}" y="{ly}">{label}</text>"#,
            bad = if e.error.is_empty() { "" } else { " failing" },
            from = escape(&e.from),
            to = escape(&e.to),
            title = escape(&title),
            c1 = sx + bend,
            c2 = ex - bend,
            ly = my - 6,
            label = escape(&e.label()),
        );
        if !e.error.is_empty() {
            let _ = write!(
                out,
                r#"<text class="error" x="{mx}" y="{}">{}</text>"#,
                my + 12,
                escape(&cut(&e.error, MAX_ERROR_CHARS))
            );
        }
        out.push_str("</g>\n");
    }
    for v in &t.vertices {
        let (x, y) = at[v.id.as_str()];
        vertex(&mut out, v, x, y);
    }
    out.push_str("</svg>\n");
    out
}
