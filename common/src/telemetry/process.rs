//! The process's own gauges, read from `/proc/self` (Linux) under the names the Prometheus
//! client libraries use: `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
//! `process_cpu_seconds_total`, `process_open_fds`, `process_max_fds`.
//!
//! `process_cpu_seconds_total` is exported with TYPE gauge: the `metrics` crate's counters
//! are whole numbers and CPU time is not; `rate()` reads it the same. Elsewhere than Linux
//! nothing is reported.

use std::path::Path;

/// What one read of `/proc/self` found.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessSample {
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub cpu_seconds: f64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
}

/// Reads `proc` (`/proc/self`, or a copy of it in tests).
pub fn read(proc: &Path, clock_ticks: f64, page_bytes: u64) -> Option<ProcessSample> {
    let stat = std::fs::read_to_string(proc.join("stat")).ok()?;
    let mut s = parse_stat(&stat, clock_ticks, page_bytes)?;
    s.open_fds = std::fs::read_dir(proc.join("fd")).ok()?.count() as u64;
    s.max_fds = std::fs::read_to_string(proc.join("limits"))
        .ok()
        .and_then(|l| parse_max_fds(&l));
    Some(s)
}

/// `/proc/self/stat`: after the command name (in parentheses, which may hold spaces), field 14
/// utime and 15 stime (clock ticks), 23 vsize (bytes), 24 rss (pages).
fn parse_stat(stat: &str, clock_ticks: f64, page_bytes: u64) -> Option<ProcessSample> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(ProcessSample {
        cpu_seconds: (field(14)? + field(15)?) as f64 / clock_ticks,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_bytes,
        ..Default::default()
    })
}

/// The soft limit of "Max open files" in `/proc/self/limits`.
fn parse_max_fds(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Sets the process gauges from `/proc/self` (nothing where there is none).
pub fn sample() {
    // SAFETY: sysconf only reads configuration values.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let (ticks, page) = (
        if ticks > 0 { ticks as f64 } else { 100.0 },
        page.max(1) as u64,
    );
    let Some(s) = read(Path::new("/proc/self"), ticks, page) else {
        return;
    };
    metrics::gauge!("process_resident_memory_bytes").set(s.resident_bytes as f64);
    metrics::gauge!("process_virtual_memory_bytes").set(s.virtual_bytes as f64);
    metrics::gauge!("process_cpu_seconds_total").set(s.cpu_seconds);
    metrics::gauge!("process_open_fds").set(s.open_fds as f64);
    if let Some(max) = s.max_fds {
        metrics::gauge!("process_max_fds").set(max as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_limits_are_read_as_the_kernel_writes_them() {
        // A command name with spaces and parentheses, as a thread can set it.
        let stat = "4242 (tokio (worker) 1) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 50 0 0 20 0 9 0 12345 104857600 2560 18446744073709551615";
        let s = parse_stat(stat, 100.0, 4096).expect("parsed");
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.virtual_bytes, 104_857_600);
        assert_eq!(s.resident_bytes, 2560 * 4096);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024));
    }

    #[test]
    fn this_process_has_memory_and_open_files() {
        let s = read(Path::new("/proc/self"), 100.0, 4096).expect("a Linux /proc");
        assert!(s.resident_bytes > 0 && s.open_fds > 0, "{s:?}");
    }
}
