//! Reports: tables for people, JSON for scripts.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde::Serialize;

pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    for r in rows {
        t.add_row(r);
    }
    t
}

/// A heading between the parts of a walkthrough (`tribctl demo`).
pub fn step(title: &str) {
    println!("\n== {title}");
}

pub fn json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Field/value table of any serializable object (nested values as compact JSON).
pub fn fields<T: Serialize>(v: &T) -> anyhow::Result<Table> {
    let value = serde_json::to_value(v)?;
    let mut rows = Vec::new();
    if let serde_json::Value::Object(map) = value {
        for (k, v) in map {
            let shown = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            rows.push(vec![k, shown]);
        }
    }
    Ok(table(&["field", "value"], rows))
}
