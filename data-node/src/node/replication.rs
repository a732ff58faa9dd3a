//! The board mirror and source workers post their state on, and `Streams.Info` reads: per
//! destination stream, one line per origin (mirror first, then sources in config order).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tributary_common::sync::lock;
use tributary_proto::v1::{ReplicationInfo, StreamSource};

/// `active_ms` of an origin never heard from (reports show "never").
pub const NEVER_ACTIVE: u64 = u64::MAX;

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

    /// Replaces every line (after the workers changed).
    pub fn set(&self, all: Lines) {
        *lock(&self.lines) = all;
    }
}
