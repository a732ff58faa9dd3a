//! The file appender as an operator turns it on: Logstash JSON lines, rolled by size into
//! gzipped files of which `max_log_file_history` are kept, the file threshold, and a level
//! changed at runtime reaching the file at once. (One test: the subscriber is per process.)

use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};
use tributary_common::logging::{self, LoggingConfig};

fn wait_for(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !check() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    n.sort();
    n
}

fn try_gunzip(path: &Path) -> Option<String> {
    let mut s = String::new();
    let file = std::fs::File::open(path).ok()?;
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

fn gunzip(path: &Path) -> String {
    try_gunzip(path).unwrap_or_else(|| panic!("{} is no gzip file", path.display()))
}

/// A rolled file of this run (the leftovers are not gzip).
fn rolled_json(path: &Path) -> bool {
    try_gunzip(path).is_some_and(|t| t.starts_with('{'))
}

#[test]
fn files_roll_gzip_keep_their_history_and_follow_level_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Leftovers of an earlier run: clean_history_on_start keeps only the history.
    for i in 1..=5 {
        std::fs::write(dir.path().join(format!("dn.log.{i}.gz")), b"old").expect("old file");
    }
    let config = LoggingConfig {
        level: "info".into(),
        disable_sysout_log: true,
        file_appender: true,
        file_appender_threshold: "debug".into(),
        file_name_pattern: dir.path().join("dn.log.%i.gz").display().to_string(),
        max_log_file_size: "4KB".into(),
        max_log_file_history: 2,
        total_log_file_size: "1GB".into(),
        clean_history_on_start: true,
        ..Default::default()
    };
    let guard = logging::init(&config, "data-node").expect("logging");
    assert!(
        !dir.path().join("dn.log.3.gz").exists(),
        "{:?}",
        names(dir.path())
    );

    let span = tracing::info_span!("rpc", trace_id = "4bf92f3577b34da6", well = "acme:orders");
    let _entered = span.enter();
    tracing::debug!(marker = "before", "not at info");
    // Rolls over a few times: 4 KB per file.
    let mut n = 0u64;
    wait_for("two rolled gzip files", Duration::from_secs(30), || {
        for _ in 0..50 {
            n += 1;
            tracing::info!(n, "an entry to fill the file with some text");
        }
        rolled_json(&dir.path().join("dn.log.1.gz")) && rolled_json(&dir.path().join("dn.log.2.gz"))
    });
    let rolled = dir.path().join("dn.log.1.gz");
    wait_for("the history bound", Duration::from_secs(10), || {
        !dir.path().join("dn.log.3.gz").exists() && rolled.exists()
    });
    let text = gunzip(&rolled);
    let line: Value = serde_json::from_str(text.lines().next().expect("a line")).expect("JSON");
    for key in [
        "@timestamp",
        "@version",
        "level",
        "level_value",
        "logger_name",
        "message",
        "thread_name",
    ] {
        assert!(line.get(key).is_some(), "{key} missing: {line}");
    }
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["logger_name"], module_path!());
    assert_eq!(line["trace_id"], "4bf92f3577b34da6", "span fields: {line}");
    assert_eq!(line["well"], "acme:orders");

    // ROOT at info: a debug line waits for the level change, then reaches the file.
    assert_eq!(logging::levels().level_of(module_path!()), "info");
    logging::levels()
        .set(module_path!(), "debug")
        .expect("level");
    tracing::debug!(marker = "after", "now at debug");
    tracing::trace!(marker = "below threshold", "the file takes debug and up");
    drop(_entered);
    drop(guard); // flushes the writer
    let live = std::fs::read_to_string(dir.path().join("dn.log")).expect("live file");
    // Every file, a rolled one still being gzipped too.
    let all: String = live
        + &names(dir.path())
            .iter()
            .filter_map(|f| match f {
                f if f.ends_with(".gz") => Some(gunzip(&dir.path().join(f))),
                f if f.contains("pending") && !f.ends_with(".tmp") => {
                    std::fs::read_to_string(dir.path().join(f)).ok()
                }
                _ => None,
            })
            .collect::<String>();
    let markers: Vec<String> = all
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["marker"].as_str().map(str::to_string))
        .collect();
    assert_eq!(markers, ["after"], "only the debug line after the change");
}
