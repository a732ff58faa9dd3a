//! Every metric this crate records, with its HELP text: the one list `/metrics` describes
//! them from (each server crate keeps its own list of what it adds, and describes both).

use metrics::Unit;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric: its kind, name and HELP text.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub kind: Kind,
    pub name: &'static str,
    pub help: &'static str,
}

pub const fn counter(name: &'static str, help: &'static str) -> Metric {
    Metric {
        kind: Kind::Counter,
        name,
        help,
    }
}

pub const fn gauge(name: &'static str, help: &'static str) -> Metric {
    Metric {
        kind: Kind::Gauge,
        name,
        help,
    }
}

pub const fn histogram(name: &'static str, help: &'static str) -> Metric {
    Metric {
        kind: Kind::Histogram,
        name,
        help,
    }
}

/// What both servers record (through this crate).
pub const COMMON: &[Metric] = &[
    // gRPC calls (telemetry::grpc_calls), every listener.
    counter("tributary_grpc_requests_total", "gRPC calls served, by service, method and status code (counted when the call's response ends)."),
    histogram("tributary_grpc_request_duration_seconds", "Time from a gRPC call's arrival to the end of its response (a stream's whole life), by service and method."),
    counter("tributary_request_deadline_exceeded_total", "gRPC calls whose handler did not answer within grpc.request_timeout."),
    // Connections (conn), by listener.
    gauge("tributary_connections", "Connections open now, by listener."),
    counter("tributary_connections_refused_total", "Connections closed on accept because the listener was at max_connections."),
    counter("tributary_connections_idle_closed_total", "Connections closed after idle_timeout with nothing received."),
    counter("tributary_throttled_waits_total", "Calls made to wait by throttling, by rpc."),
    counter("tributary_raft_messages_refused_total", "Raft messages refused before reaching Raft, by why (identity, unknown peer, kind)."),
    // Raft groups (telemetry::raft_group), by group.
    gauge("tributary_raft_term", "The Raft group's current term, by group (catalogue, stream:<name>)."),
    gauge("tributary_raft_commit_index", "The Raft group's commit index as this member knows it."),
    gauge("tributary_raft_applied_index", "The Raft group's last index applied here."),
    gauge("tributary_raft_is_leader", "1 while this member leads the Raft group, else 0."),
    counter("tributary_raft_leader_changes_total", "Leaders this member has seen the Raft group change to (the first included)."),
    histogram("tributary_raft_proposal_duration_seconds", "Time from proposing an entry to applying it here, for the proposals this member made."),
    counter("tributary_raft_snapshots_sent_total", "Raft snapshots this member sent to peers that were too far behind."),
    counter("tributary_raft_snapshots_applied_total", "Raft snapshots this member installed."),
    // RocksDB (telemetry::rocks), by column family, sampled every few seconds.
    gauge("tributary_rocksdb_sst_files_bytes", "Bytes of the column family's SST files (rocksdb.total-sst-files-size)."),
    gauge("tributary_rocksdb_live_data_bytes", "Estimated bytes of live data in the column family (rocksdb.estimate-live-data-size)."),
    gauge("tributary_rocksdb_pending_compaction_bytes", "Estimated bytes compaction must rewrite to settle the column family's levels."),
    gauge("tributary_rocksdb_memtable_bytes", "Bytes of the column family's memtables (active and immutable)."),
    gauge("tributary_rocksdb_block_cache_usage_bytes", "Bytes the column family's block cache holds (shared caches report the same figure)."),
    gauge("tributary_rocksdb_estimated_keys", "Estimated keys in the column family."),
    gauge("tributary_rocksdb_delayed_write_rate_bytes", "The write rate RocksDB holds writers to while it stalls them (bytes per second; 0: not delayed)."),
    gauge("tributary_rocksdb_write_stopped", "1 while RocksDB stops writes (too many level-0 files or memtables), else 0."),
    // Background cleanup (cleanup).
    counter("tributary_cleanup_credits_total", "Credits the background cleanup handed out."),
    counter("tributary_cleanup_throttled_intervals_total", "Cleanup intervals skipped because the process was busy."),
    counter("tributary_cleanup_removed_total", "Items background cleanup removed, by what."),
    // The process (telemetry::process), from /proc/self.
    gauge("process_resident_memory_bytes", "Resident memory of the process (RSS)."),
    gauge("process_virtual_memory_bytes", "Virtual memory of the process."),
    gauge("process_cpu_seconds_total", "User and system CPU time the process used, in seconds (a gauge: metrics counters are integers)."),
    gauge("process_open_fds", "File descriptors the process has open."),
    gauge("process_max_fds", "The process's limit of open file descriptors."),
];

/// Gives every metric of `list` its HELP text (and unit) in `/metrics`; the process-wide
/// recorder is installed first, so the descriptions are not lost.
pub fn describe(list: &[Metric]) {
    let _ = super::prometheus();
    describe_now(list);
}

/// [`describe`] once the recorder is installed.
pub(super) fn describe_now(list: &[Metric]) {
    for m in list {
        let unit = unit_of(m.name);
        match (m.kind, unit) {
            (Kind::Counter, Some(u)) => metrics::describe_counter!(m.name, u, m.help),
            (Kind::Counter, None) => metrics::describe_counter!(m.name, m.help),
            (Kind::Gauge, Some(u)) => metrics::describe_gauge!(m.name, u, m.help),
            (Kind::Gauge, None) => metrics::describe_gauge!(m.name, m.help),
            (Kind::Histogram, Some(u)) => metrics::describe_histogram!(m.name, u, m.help),
            (Kind::Histogram, None) => metrics::describe_histogram!(m.name, m.help),
        }
    }
}

fn unit_of(name: &str) -> Option<Unit> {
    let base = name.strip_suffix("_total").unwrap_or(name);
    if base.ends_with("_seconds") {
        Some(Unit::Seconds)
    } else if base.ends_with("_bytes") {
        Some(Unit::Bytes)
    } else {
        None
    }
}

/// Names that break Prometheus's conventions: a unit suffix (`_seconds`, `_bytes`) only
/// where the value is in that unit, `_total` on counters only (and on
/// `process_cpu_seconds_total`, the client libraries' name), lower snake case.
pub fn convention_problems(list: &[Metric]) -> Vec<String> {
    let mut out = Vec::new();
    for m in list {
        let snake = m
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !snake {
            out.push(format!("{}: not lower snake case", m.name));
        }
        let total = m.name.ends_with("_total");
        if m.kind == Kind::Counter && !total {
            out.push(format!("{}: a counter without _total", m.name));
        }
        if m.kind != Kind::Counter && total && m.name != "process_cpu_seconds_total" {
            out.push(format!("{}: _total on a {:?}", m.name, m.kind));
        }
        if m.kind == Kind::Histogram && !m.name.ends_with("_seconds") {
            out.push(format!(
                "{}: histograms here time things, in seconds",
                m.name
            ));
        }
        if m.help.is_empty() {
            out.push(format!("{}: no HELP", m.name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_names_keep_the_conventions_and_are_unique() {
        assert_eq!(convention_problems(COMMON), Vec::<String>::new());
        let mut names: Vec<_> = COMMON.iter().map(|m| m.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "a name is listed twice");
    }
}
