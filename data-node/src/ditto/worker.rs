//! One worker per (well, target): forward pass from the Start-Time shard in key order, then
//! late entries behind the cursor, then tail. Each batch: saved as pending → sent → on ack
//! progress saved (`pipe`; `forward` keeps several in flight). Errors back off, reload the
//! saved progress and resend every pending batch under its own id.

use super::client::TargetClient;
use super::error::{DittoError, DittoResult};
use super::forward::{forward, Forward};
use super::host::DittoHost;
use super::mapper::Mapper;
use super::pipe::{blocking, resend, send_one, Pager, Session, WorkerCtx, BATCH_ENTRIES};
use super::progress::{Pending, Progress};
use crate::node::ditto_status::CopySlot;
use crate::storage::keys;
use crate::storage::successor;
use crate::storage::wells::{RawEntry, Well};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tributary_common::backoff::Backoff;
use tributary_proto::v1::Target;

/// A tailing worker also wakes this often without writes (catalogue changes, ageout).
const IDLE_WAKE: Duration = Duration::from_millis(500);
const RETRY: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), 4);

enum Step {
    Worked,
    Idle,
}

/// What a worker keeps between steps.
struct Worker {
    ctx: WorkerCtx,
    /// Kept across errors: it knows which endpoint failed and which to try next.
    client: Option<TargetClient>,
    /// None after an error: reloaded from disk, so what is used is what was acked.
    progress: Option<Progress>,
    slot: Option<CopySlot>,
    next_send: Instant,
}

pub async fn run(ctx: WorkerCtx) {
    let mut w = Worker {
        ctx,
        client: None,
        progress: None,
        slot: None,
        next_send: Instant::now(),
    };
    // Registered at 0 from the start, so `rate()` reads the link before its first error.
    let errors = metrics::counter!(
        "tributary_ditto_errors_total",
        "well" => w.ctx.well.clone(),
        "target" => w.ctx.target.clone()
    );
    let mut attempt = 0;
    loop {
        match w.step().await {
            Ok(Step::Worked) => attempt = 0,
            Ok(Step::Idle) => {
                // Caught up: give the slot to another well while this one only tails.
                w.slot = None;
                w.ctx.stats.set_state("tailing");
                let Some(well) = w.ctx.host.well(&w.ctx.well) else {
                    tokio::time::sleep(IDLE_WAKE).await;
                    continue;
                };
                let mut changed = well.subscribe();
                changed.borrow_and_update();
                let _ = tokio::time::timeout(IDLE_WAKE, changed.changed()).await;
            }
            Err(e) => {
                // Every batch in flight is a saved pending that goes again on a fresh stream.
                w.progress = None;
                let failover = w.client.as_mut().is_some_and(|c| {
                    c.disconnect();
                    c.take_failover()
                });
                let (well, target) = (&w.ctx.well, &w.ctx.target);
                errors.increment(1);
                if failover {
                    tracing::info!(%well, %target, error = %e, "ditto endpoint failed; trying the next");
                    continue;
                }
                w.slot = None;
                tracing::warn!(%well, %target, error = %e, "ditto batch failed; retrying from saved progress");
                w.ctx.stats.set_error(&e.to_string());
                attempt += 1;
                tokio::time::sleep(RETRY.delay(attempt)).await;
            }
        }
    }
}

impl Worker {
    async fn step(&mut self) -> DittoResult<Step> {
        let ctx = &self.ctx;
        let well = ctx
            .host
            .well(&ctx.well)
            .ok_or_else(|| DittoError::WellNotOpen(ctx.well.clone()))?;
        let target = ctx
            .host
            .target(&ctx.target)
            .ok_or_else(|| DittoError::NoTarget(ctx.target.clone()))?;
        let client = match &mut self.client {
            Some(c) if !c.differs(&target) => c,
            slot => slot.insert(TargetClient::new(&target)),
        };
        let progress = match &mut self.progress {
            Some(p) => p,
            none => {
                let (host, w, t) = (ctx.host.clone(), ctx.well.clone(), ctx.target.clone());
                let loaded = blocking(move || Ok(Progress::load(host.as_ref(), &w, &t)?)).await?;
                none.insert(loaded.unwrap_or_else(|| Progress {
                    // Everything below this seq exists now, so the forward pass sees it.
                    floor: ctx.host.next_seq(&well),
                    ..Default::default()
                }))
            }
        };
        let start_shard = u64::try_from(target.start_time_ns).unwrap_or(0) / well.shard_ns();
        update_position(ctx, &well, progress, start_shard);
        if self.slot.is_none() {
            ctx.stats.set_state("queued");
            self.slot = Some(ctx.slots.acquire().await);
        }
        ctx.stats.set_state("copying");
        let mut s = Session {
            ctx,
            client,
            progress,
            next_send: &mut self.next_send,
        };
        // Batches sent but not acked before a failure or restart go again, identical.
        if !s.progress.pending.is_empty() {
            resend(&mut s, &well, &target).await?;
            return Ok(Step::Worked);
        }
        let update = |p: &Progress| update_position(ctx, &well, p, start_shard);
        let (hi, batches) = match forward(&mut s, &well, &target, start_shard, update).await? {
            Forward::Done { hi, batches } => (hi, batches),
            Forward::Interrupted => return Ok(Step::Worked),
        };
        // Caught up with the key order: now what landed behind the cursor meanwhile.
        let sent_late = late_pass(&mut s, &well, &target, start_shard, hi).await?;
        if s.progress.floor != hi || !s.progress.sent.is_empty() {
            s.progress.floor = hi;
            s.progress.sent.clear();
            s.save()?;
        }
        update_position(ctx, &well, s.progress, start_shard);
        Ok(if sent_late || batches > 0 {
            Step::Worked
        } else {
            Step::Idle
        })
    }
}

/// Shards whose stored count exceeds what was processed get scanned for entries with
/// `floor <= seq < hi` not yet sent, up to the cursor. True if anything was sent.
async fn late_pass(
    s: &mut Session<'_>,
    well: &Arc<Well>,
    target: &Target,
    start_shard: u64,
    hi: u64,
) -> DittoResult<bool> {
    let Some(cursor) = s.progress.cursor.clone() else {
        return Ok(false);
    };
    let cursor_shard = keys::parse_entry_key(&cursor).map_or(0, |k| k.1);
    let mut stored: BTreeMap<u64, u64> = BTreeMap::new();
    for r in well.shards() {
        if r.shard >= start_shard && r.shard <= cursor_shard {
            *stored.entry(r.shard).or_default() += r.stat.entries;
        }
    }
    let late: Vec<u64> = stored
        .iter()
        .filter(|(sh, n)| **n > s.progress.processed.get(sh).copied().unwrap_or(0))
        .map(|(sh, _)| *sh)
        .collect();
    let mut any = false;
    for shard in late {
        let end = keys::shard_end(well.id, shard).min(successor(&cursor));
        let mut from = keys::shard_start(well.id, shard);
        loop {
            let (floor, sent) = (s.progress.floor, s.progress.sent.clone());
            let (host, w, f, e) = (s.ctx.host.clone(), well.clone(), from.clone(), end.clone());
            let (found, next) =
                blocking(move || scan_late(host.as_ref(), &w, f, &e, floor, hi, &sent)).await?;
            if let Some(to) = found.last().map(|(k, _)| k.clone()) {
                let p = Pending {
                    batch: s.progress.next_batch,
                    from: from.clone(),
                    to,
                    lo: floor,
                    hi,
                    late: true,
                };
                let mut mapper = Mapper::new(s.ctx.host.clone(), &s.ctx.well, target);
                let built = mapper.build(&found, &p, &s.progress.sent);
                send_one(s, target, p, built).await?;
                any = true;
            }
            match next {
                Some(n) => from = n,
                None => break,
            }
        }
    }
    Ok(any)
}

/// Scans `[from, end)` until a batch of late entries (`floor <= seq < hi`, not in `sent`) is
/// found or the range ends; returns them and where to go on from (None: the range is done).
type Found = (Vec<RawEntry>, Option<Vec<u8>>);

fn scan_late(
    host: &dyn DittoHost,
    well: &Well,
    at: Vec<u8>,
    end: &[u8],
    floor: u64,
    hi: u64,
    sent: &BTreeSet<u64>,
) -> DittoResult<Found> {
    let mut pager = Pager::new(host, well, at, end.to_vec());
    let mut found = Vec::new();
    while let Some(page) = pager.next_page()? {
        for (k, v) in page {
            let seq = keys::parse_entry_key(&k).map_or(0, |k| k.3);
            if seq >= floor && seq < hi && !sent.contains(&seq) {
                found.push((k, v));
            }
        }
        if found.len() >= BATCH_ENTRIES {
            return Ok((found, pager.position()));
        }
    }
    Ok((found, None))
}

/// Shard n of m and entries behind, for `ditto stats`.
fn update_position(ctx: &WorkerCtx, well: &Well, p: &Progress, start_shard: u64) {
    let mut shards: BTreeMap<u64, u64> = BTreeMap::new();
    for r in well.shards() {
        if r.shard >= start_shard {
            *shards.entry(r.shard).or_default() += r.stat.entries;
        }
    }
    let at = p
        .cursor
        .as_ref()
        .and_then(|c| keys::parse_entry_key(c))
        .map_or(start_shard, |k| k.1);
    let index = shards.keys().filter(|s| **s <= at).count().max(1) as u64;
    ctx.stats
        .shard_index
        .store(index.min(shards.len() as u64), Relaxed);
    ctx.stats.shard_count.store(shards.len() as u64, Relaxed);
    let total: u64 = shards.values().sum();
    ctx.stats
        .behind
        .store(total.saturating_sub(p.processed_total()), Relaxed);
}
