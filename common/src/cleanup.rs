//! Background cleanup as Eclipse Ditto's persistence cleanup: one coordinator per process
//! hands out *credits* every `interval`, `credits-per-batch` of them, and none in an interval
//! whose slowest storage write took longer than `timer-threshold` (live traffic comes first).
//! Each credit lets the process's [`Cleaner`] clean one step: read at most `reads-per-query`
//! records after the last id it cleaned, delete at most `writes-per-credit` of them. After a
//! whole pass it rests `quiet-period`. The piggyback target `/user/persistenceCleanup` reads
//! its health and config and changes the config (`last-pid` sets where the next step starts).
//!
//! Storage writes report their latency with [`record_write`]; each coordinator takes the
//! interval's maximum of every write of its process.

use crate::devops::piggyback::{config_reply, health_info};
use crate::devops::{DevopsError, PiggyCommand, PiggyReply, PiggybackHandler};
use crate::sync::lock;
use crate::task::AbortOnDrop;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Ditto's knobs, as `[cleanup]` keys (`TRIBUTARY_CLEANUP__INTERVAL=3s`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CleanupConfig {
    pub enabled: bool,
    /// A record goes only once it has been stale this long.
    #[serde(with = "crate::duration::human")]
    pub history_retention: Duration,
    /// The rest after a whole pass, before the next starts.
    #[serde(with = "crate::duration::human")]
    pub quiet_period: Duration,
    /// How often credits are handed out.
    #[serde(with = "crate::duration::human")]
    pub interval: Duration,
    /// No credits in an interval whose slowest storage write took longer.
    #[serde(with = "crate::duration::human")]
    pub timer_threshold: Duration,
    pub credits_per_batch: u32,
    pub reads_per_query: u32,
    pub writes_per_credit: u32,
    /// Whether the last trace of a deleted entity goes too.
    pub delete_final_deleted_snapshot: bool,
}

impl Default for CleanupConfig {
    fn default() -> Self {
        CleanupConfig {
            enabled: true,
            history_retention: Duration::ZERO,
            quiet_period: Duration::from_secs(300),
            interval: Duration::from_secs(3),
            timer_threshold: Duration::from_millis(150),
            credits_per_batch: 3,
            reads_per_query: 100,
            writes_per_credit: 100,
            delete_final_deleted_snapshot: false,
        }
    }
}

fn human(d: Duration) -> Value {
    humantime::format_duration(d).to_string().into()
}

impl CleanupConfig {
    pub fn validate(&self, section: &str) -> Result<(), String> {
        let zero = |k: &str| format!("key `{section}.{k}`: must be more than 0");
        if self.interval.is_zero() {
            return Err(zero("interval"));
        }
        if self.reads_per_query == 0 {
            return Err(zero("reads_per_query"));
        }
        if self.writes_per_credit == 0 {
            return Err(zero("writes_per_credit"));
        }
        Ok(())
    }

    /// As Ditto shows it (`retrieveConfig`).
    pub fn to_json(&self) -> Value {
        json!({
            "enabled": self.enabled,
            "history-retention-duration": human(self.history_retention),
            "quiet-period": human(self.quiet_period),
            "interval": human(self.interval),
            "timer-threshold": human(self.timer_threshold),
            "credits-per-batch": self.credits_per_batch,
            "reads-per-query": self.reads_per_query,
            "writes-per-credit": self.writes_per_credit,
            "delete-final-deleted-snapshot": self.delete_final_deleted_snapshot,
        })
    }

    /// This config with Ditto's `modifyConfig` keys applied; the first bad one is named and
    /// nothing changes. `last-pid` is not config: it is returned apart.
    pub fn modified(&self, changes: &Map<String, Value>) -> Result<(Self, Option<String>), String> {
        let mut c = self.clone();
        let mut last = None;
        for (k, v) in changes {
            let bad = || format!("config key {k:?}: {v} is not valid");
            let dur = || {
                v.as_str()
                    .ok_or_else(bad)
                    .and_then(|s| crate::duration::parse(s).map_err(|e| format!("{k}: {e}")))
            };
            let num = || {
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(bad)
            };
            match k.as_str() {
                "enabled" => c.enabled = v.as_bool().ok_or_else(bad)?,
                "history-retention-duration" => c.history_retention = dur()?,
                "quiet-period" => c.quiet_period = dur()?,
                "interval" => c.interval = dur()?,
                "timer-threshold" => c.timer_threshold = dur()?,
                "credits-per-batch" => c.credits_per_batch = num()?,
                "reads-per-query" => c.reads_per_query = num()?,
                "writes-per-credit" => c.writes_per_credit = num()?,
                "delete-final-deleted-snapshot" => {
                    c.delete_final_deleted_snapshot = v.as_bool().ok_or_else(bad)?
                }
                "last-pid" => last = Some(v.as_str().ok_or_else(bad)?.to_string()),
                other => return Err(format!("unknown config key {other:?} of /user/persistenceCleanup: use enabled, history-retention-duration, quiet-period, interval, timer-threshold, credits-per-batch, reads-per-query, writes-per-credit, delete-final-deleted-snapshot or last-pid")),
            }
        }
        c.validate("cleanup").map_err(|e| e.replace('_', "-"))?;
        Ok((c, last))
    }
}

/// The slowest write per coordinator since it last looked (a process may run more than one,
/// in-process clusters do): each takes a slot; writes raise every slot taken.
const SLOTS: usize = 8;
static SLOWEST_WRITE_MICROS: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
static SLOTS_TAKEN: AtomicUsize = AtomicUsize::new(0);

/// A storage write of this process took `d` (the coordinator throttles on the slowest).
pub fn record_write(d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let taken = SLOTS_TAKEN.load(Ordering::Relaxed).min(SLOTS);
    for slot in &SLOWEST_WRITE_MICROS[..taken] {
        slot.fetch_max(us, Ordering::Relaxed);
    }
}

/// A coordinator's view of the slowest write (more than `SLOTS` coordinators share slots).
struct WriteGauge(usize);

impl WriteGauge {
    fn new() -> Self {
        let i = SLOTS_TAKEN.fetch_add(1, Ordering::Relaxed) % SLOTS;
        WriteGauge(i)
    }

    /// The slowest write since the last call.
    fn take(&self) -> Duration {
        Duration::from_micros(SLOWEST_WRITE_MICROS[self.0].swap(0, Ordering::Relaxed))
    }
}

/// One step of cleaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleaned {
    /// Where the next step starts (Ditto's `pid`: the last record looked at).
    pub id: String,
    /// What was deleted, by kind (metric label).
    pub removed: Vec<(&'static str, u64)>,
}

/// What a process cleans. Runs on a blocking thread.
pub trait Cleaner: Send + Sync + 'static {
    /// One step after `after` ("" = from the start): `None` once nothing is left after it
    /// (a pass is complete). Never removes what is live.
    fn clean_step(&self, after: &str, config: &CleanupConfig) -> Result<Option<Cleaned>, String>;
}

#[derive(Debug, Clone, Default)]
struct Status {
    state: &'static str,
    last_id: String,
    removed: u64,
    credits: u64,
    throttled: u64,
    passes: u64,
    error: String,
}

/// The process's cleanup coordinator; the piggyback target `/user/persistenceCleanup`.
pub struct Coordinator {
    config: watch::Sender<CleanupConfig>,
    status: Mutex<Status>,
    cleaner: Arc<dyn Cleaner>,
}

impl Coordinator {
    /// Starts the coordinator; it stops with the returned task.
    pub fn start(config: CleanupConfig, cleaner: Arc<dyn Cleaner>) -> (Arc<Self>, AbortOnDrop) {
        let c = Arc::new(Coordinator {
            config: watch::channel(config).0,
            status: Mutex::new(Status {
                state: "STARTING",
                ..Default::default()
            }),
            cleaner,
        });
        let task = AbortOnDrop::spawn(c.clone().run());
        (c, task)
    }

    fn set_state(&self, state: &'static str) {
        lock(&self.status).state = state;
    }

    /// Waits `d`, or less when the config changes (which aborts the wait, as Ditto's
    /// modifyConfig aborts the ongoing run). Whether it was cut short.
    async fn rest(&self, changes: &mut watch::Receiver<CleanupConfig>, d: Duration) -> bool {
        changes.borrow_and_update();
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            r = changes.changed() => r.is_ok(),
        }
    }

    async fn run(self: Arc<Self>) {
        let mut changes = self.config.subscribe();
        let gauge = WriteGauge::new();
        loop {
            let config = self.config.borrow().clone();
            if !config.enabled {
                self.set_state("DISABLED");
                let _ = changes.changed().await;
                continue;
            }
            if self.rest(&mut changes, config.interval).await {
                continue;
            }
            let slowest = gauge.take();
            if slowest > config.timer_threshold {
                let mut s = lock(&self.status);
                s.state = "THROTTLED";
                s.throttled += 1;
                metrics::counter!("tributary_cleanup_throttled_intervals_total").increment(1);
                continue;
            }
            self.set_state("RUNNING");
            if self.spend(&config).await == Pass::Complete {
                self.set_state("IN_QUIET_PERIOD");
                self.rest(&mut changes, config.quiet_period).await;
            }
        }
    }

    /// Spends one interval's credits.
    async fn spend(&self, config: &CleanupConfig) -> Pass {
        for _ in 0..config.credits_per_batch {
            let after = lock(&self.status).last_id.clone();
            let (cleaner, c) = (self.cleaner.clone(), config.clone());
            let step = tokio::task::spawn_blocking(move || cleaner.clean_step(&after, &c)).await;
            metrics::counter!("tributary_cleanup_credits_total").increment(1);
            let mut s = lock(&self.status);
            s.credits += 1;
            match step {
                Ok(Ok(Some(done))) => {
                    for (what, n) in &done.removed {
                        metrics::counter!("tributary_cleanup_removed_total", "what" => *what)
                            .increment(*n);
                        s.removed += n;
                    }
                    s.last_id = done.id;
                    s.error.clear();
                }
                Ok(Ok(None)) => {
                    s.last_id.clear();
                    s.passes += 1;
                    return Pass::Complete;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cleanup step failed; retrying next interval");
                    s.error = e;
                    return Pass::Ongoing;
                }
                Err(e) => {
                    s.error = format!("cleanup step stopped: {e}");
                    return Pass::Ongoing;
                }
            }
        }
        Pass::Ongoing
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Pass {
    Ongoing,
    Complete,
}

#[tonic::async_trait]
impl PiggybackHandler for Coordinator {
    async fn answer(&self, cmd: &PiggyCommand, _timeout: Duration) -> PiggyReply {
        match cmd {
            PiggyCommand::RetrieveHealth => {
                let s = lock(&self.status).clone();
                Ok(health_info(
                    s.error.is_empty(),
                    json!({"state": s.state, "pid": s.last_id, "removed": s.removed,
                           "credits": s.credits, "throttled-intervals": s.throttled,
                           "passes": s.passes, "error": s.error}),
                ))
            }
            PiggyCommand::RetrieveConfig => Ok(config_reply(self.config.borrow().to_json())),
            PiggyCommand::ModifyConfig { config } => {
                let (next, last) = self
                    .config
                    .borrow()
                    .modified(config)
                    .map_err(DevopsError::BadRequest)?;
                if let Some(id) = last {
                    lock(&self.status).last_id = id;
                }
                let shown = next.to_json();
                // Always sent: the ongoing wait is cut short, as Ditto aborts the run.
                self.config.send_replace(next);
                Ok(config_reply(shown))
            }
            PiggyCommand::Shutdown => {
                lock(&self.status).last_id.clear();
                self.config.send_modify(|_| {});
                let mut m = Map::new();
                m.insert("restarted".into(), true.into());
                Ok(m)
            }
            other => Err(DevopsError::BadRequest(format!(
                "/user/persistenceCleanup does not take {other:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
