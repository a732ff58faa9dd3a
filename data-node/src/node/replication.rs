//! The board mirror and source workers post their state on, and `Streams.Info` reads: per
//! destination stream, one line per origin (mirror first, then sources in config order).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tributary_common::sync::lock;
use tributary_proto::v1::{ReplicationInfo, StreamSource};

/// `active_ms` of an origin never heard from (reports show "never").
pub const NEVER_ACTIVE: u64 = u64::MAX;

/// An origin heard from (message or heartbeat, sent every second) within this long is active.
pub const ACTIVE_WITHIN_MS: u64 = 3_000;

/// A copy worker's state as the reports show it.
#[derive(Debug, Clone, Default)]
pub struct CopyStatus {
    pub lag: u64,
    pub last_active: Option<Instant>,
    pub error: String,
}

/// One origin of a destination stream, and its worker's status.
#[derive(Debug, Clone)]
pub struct BoardLine {
    pub origin: StreamSource,
    pub mirror: bool,
    pub external_tls: bool,
    pub status: Arc<Mutex<CopyStatus>>,
}

/// Destination stream (canonical name) → its origins' lines.
pub type Lines = BTreeMap<String, Vec<BoardLine>>;

#[derive(Default)]
pub struct ReplicationBoard {
    lines: Mutex<Lines>,
}

impl ReplicationBoard {
    /// What `Streams.Info` shows for `dest` (canonical name).
    pub fn report(&self, dest: &str) -> Vec<ReplicationInfo> {
        let lines = lock(&self.lines);
        let Some(dest_lines) = lines.get(dest) else {
            return Vec::new();
        };
        dest_lines
            .iter()
            .map(|l| {
                let st = lock(&l.status).clone();
                ReplicationInfo {
                    stream: l.origin.stream.clone(),
                    kind: if l.mirror { "mirror" } else { "source" }.into(),
                    lag: st.lag,
                    active_ms: st.last_active.map_or(NEVER_ACTIVE, |t| {
                        u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
                    }),
                    error: st.error,
                    external: l.origin.external.clone(),
                    external_tls: l.external_tls,
                }
            })
            .collect()
    }

    /// Every destination stream with its report, in name order.
    pub fn all(&self) -> Vec<(String, Vec<ReplicationInfo>)> {
        let dests: Vec<String> = lock(&self.lines).keys().cloned().collect();
        dests
            .into_iter()
            .map(|d| {
                let r = self.report(&d);
                (d, r)
            })
            .collect()
    }

    /// Sets each link's gauges: lag, seconds since it was last heard from, and its state
    /// (`active`: heard within [`ACTIVE_WITHIN_MS`] with no error; `error`: the last attempt
    /// failed; `stalled`: neither).
    pub fn record_metrics(&self) {
        for (dest, infos) in self.all() {
            for i in infos {
                let labels = [
                    ("stream", dest.clone()),
                    ("origin", i.stream.clone()),
                    ("kind", i.kind.clone()),
                ];
                metrics::gauge!("tributary_mirror_lag_messages", &labels).set(i.lag as f64);
                if i.active_ms != NEVER_ACTIVE {
                    metrics::gauge!("tributary_mirror_last_active_seconds", &labels)
                        .set(i.active_ms as f64 / 1000.0);
                }
                let state = match (i.error.is_empty(), i.active_ms <= ACTIVE_WITHIN_MS) {
                    (false, _) => "error",
                    (true, true) => "active",
                    (true, false) => "stalled",
                };
                for s in ["active", "stalled", "error"] {
                    let mut l = labels.to_vec();
                    l.push(("state", s.to_string()));
                    metrics::gauge!("tributary_mirror_state", l.as_slice()).set(if s == state {
                        1.0
                    } else {
                        0.0
                    });
                }
            }
        }
    }

    /// Replaces every line (after the workers changed).
    pub fn set(&self, all: Lines) {
        *lock(&self.lines) = all;
    }
}
