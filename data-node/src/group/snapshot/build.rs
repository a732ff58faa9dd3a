//! Building snapshots off the ready loop: a thread per build, at most [`MAX_BUILDS`] at once
//! (as TiKV's region worker generates snapshots beside its raftstore). The ready loop waits
//! only until the builder has pinned its view of the stream, then goes on; the builder reads
//! that view, encodes the payload and puts it on the shelf, where the next request finds it.

use super::{payload, Built, Held, NotYet};
use crate::storage::streams::{Records, StreamLimits};
use raft::prelude::ConfState;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use tributary_common::sync::lock;

/// Snapshots built at once on a node: each holds its whole stream in memory while built.
pub const MAX_BUILDS: usize = 2;

/// A snapshot to build: its id on the shelf, and the group's state it is taken at.
pub(super) struct Build {
    pub group: u64,
    pub id: u64,
    pub index: u64,
    pub term: u64,
    pub conf_state: ConfState,
}

/// The build threads of a node.
#[derive(Default)]
pub(super) struct Builders {
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Builders {
    /// Starts `build` of `records` on a thread of its own and returns once that thread has
    /// pinned its view of them (or failed before): the caller holds the stream still so far.
    pub(super) fn start(
        &self,
        build: Build,
        limits: StreamLimits,
        records: Records,
        held: Arc<Mutex<Held>>,
    ) -> Result<(), NotYet> {
        let mut threads = lock(&self.threads);
        if self.stop.load(Ordering::Acquire) {
            return Err(NotYet::Stopped);
        }
        // The finished threads are joined here, so handles do not pile up.
        let (done, running): (Vec<_>, Vec<_>) = threads.drain(..).partition(|t| t.is_finished());
        *threads = running;
        for t in done {
            let _ = t.join();
        }
        let (pinned_tx, pinned) = mpsc::sync_channel(1);
        let stop = self.stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("stream-snapshot-{}", build.group))
            .spawn(move || run(build, &limits, &records, pinned_tx, &stop, &held))
            .map_err(|e| NotYet::Spawn(e.to_string()))?;
        threads.push(thread);
        drop(threads);
        // An error means the builder ended before it pinned anything: nothing to wait for.
        let _ = pinned.recv();
        Ok(())
    }

    /// Stops the builds under way and joins their threads; later builds are refused.
    pub(super) fn stop(&self) {
        let threads = {
            let mut threads = lock(&self.threads);
            self.stop.store(true, Ordering::Release);
            std::mem::take(&mut *threads)
        };
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Builders {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One build, on its thread: the payload, onto the shelf unless the group was forgotten
/// meanwhile.
fn run(
    build: Build,
    limits: &StreamLimits,
    records: &Records,
    pinned_tx: mpsc::SyncSender<()>,
    stop: &AtomicBool,
    held: &Mutex<Held>,
) {
    let started = Instant::now();
    let mut pinned_tx = Some(pinned_tx);
    let payload = payload(
        limits,
        records,
        &mut || {
            if let Some(tx) = pinned_tx.take() {
                let _ = tx.send(());
            }
        },
        stop,
    );
    drop(pinned_tx);
    let elapsed = started.elapsed();
    let mut held = lock(held);
    if held.building.get(&build.group) != Some(&build.id) {
        return;
    }
    held.building.remove(&build.group);
    match payload {
        Ok(payload) => {
            tracing::info!(
                stream = records.stream(),
                index = build.index,
                bytes = payload.len(),
                elapsed_ms = elapsed.as_millis() as u64,
                "stream snapshot built"
            );
            metrics::counter!("tributary_dn_stream_snapshots_built_total").increment(1);
            metrics::histogram!("tributary_dn_stream_snapshot_build_seconds")
                .record(elapsed.as_secs_f64());
            held.built.entry(build.group).or_default().push(Built {
                id: build.id,
                index: build.index,
                term: build.term,
                conf_state: build.conf_state,
                payload: payload.into(),
                at: Instant::now(),
            });
        }
        Err(e) => {
            tracing::warn!(stream = records.stream(), index = build.index, error = %e, "stream snapshot build failed")
        }
    }
}
