//! One worker per (well, target): forward pass from the Start-Time shard in key order, then
//! late entries behind the cursor, then tail. Each batch: saved as pending → sent → on ack
//! progress saved (`pipeline`: several forward batches in flight). Errors back off, reload
//! the saved progress and resend every pending batch under its own id.

use super::client::TargetClient;
pub use super::pipeline::WorkerCtx;
use super::pipeline::{self, blocking, Forward, Mapper, State, BATCH_ENTRIES};
use super::progress::{Pending, Progress};
use crate::storage::keys;
use crate::storage::successor;
use crate::storage::wells::Well;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tributary_proto::v1::Target;

/// A tailing worker also wakes this often without writes (catalogue changes, ageout).
const IDLE_WAKE: Duration = Duration::from_millis(500);

enum Step {
    Worked,
    Idle,
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100)
        .saturating_mul(1 << attempt.min(6))
        .min(Duration::from_secs(5))
}

pub async fn run(ctx: WorkerCtx) {
    let mut st = State {
        client: None,
        progress: None,
        permit: None,
        next_send: Instant::now(),
    };
    let mut attempt = 0;
    loop {
        match step(&ctx, &mut st).await {
            Ok(Step::Worked) => attempt = 0,
            Ok(Step::Idle) => {
                // Caught up: give the slot to another well while this one only tails.
                st.permit = None;
                ctx.stats.set_state("tailing");
                let Some(well) = ctx.node.wells.get(&ctx.well) else {
                    tokio::time::sleep(IDLE_WAKE).await;
                    continue;
                };
                let mut changed = well.subscribe();
                changed.borrow_and_update();
                let _ = tokio::time::timeout(IDLE_WAKE, changed.changed()).await;
            }
            Err(e) => {
                // Reloaded from disk next step: what is saved is what was acked, and every
                // batch in flight is a saved pending that goes again on a fresh stream.
                st.progress = None;
                let failover = st.client.as_mut().is_some_and(|c| {
                    c.disconnect();
                    c.take_failover()
                });
                if failover {
                    tracing::info!(well = %ctx.well, target = %ctx.target, error = %e, "ditto endpoint failed; trying the next");
                    continue;
                }
                st.permit = None;
                tracing::warn!(well = %ctx.well, target = %ctx.target, error = %e, "ditto batch failed; retrying from saved progress");
                ctx.stats.set_error(&e);
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
}

async fn step(ctx: &WorkerCtx, st: &mut State) -> Result<Step, String> {
    let well = ctx
        .node
        .wells
        .get(&ctx.well)
        .ok_or_else(|| format!("well {} is not open on this node", ctx.well))?;
    let target = ctx
        .node
        .with_catalog(|c| c.targets.get(&ctx.target).cloned())
        .ok_or_else(|| format!("target {} is not in the catalogue", ctx.target))?;
    if st.client.as_ref().is_none_or(|c| c.differs(&target)) {
        st.client = Some(TargetClient::new(&target));
    }
    let engine = ctx.node.engine();
    if st.progress.is_none() {
        let (w, t) = (ctx.well.clone(), ctx.target.clone());
        let e = engine.clone();
        let loaded =
            blocking(move || Progress::load(e.as_ref(), &w, &t).map_err(|e| e.to_string())).await?;
        st.progress = Some(loaded.unwrap_or_else(|| Progress {
            // Everything below this seq exists now, so the forward pass sees it.
            floor: ctx.node.wells.next_seq(&well),
            ..Default::default()
        }));
    }
    let start_shard = u64::try_from(target.start_time_ns).unwrap_or(0) / well.shard_ns();
    update_position(ctx, &well, st, start_shard);
    if st.permit.is_none() {
        ctx.stats.set_state("queued");
        st.permit = Some(ctx.slots.acquire().await);
    }
    ctx.stats.set_state("copying");
    // Batches sent but not acked before a failure or restart go again, identical.
    if st.progress.as_ref().is_some_and(|p| !p.pending.is_empty()) {
        pipeline::resend(ctx, st, &well, &target).await?;
        return Ok(Step::Worked);
    }
    let update = |st: &State| update_position(ctx, &well, st, start_shard);
    let (hi, batches) =
        match pipeline::forward(ctx, st, &well, &target, start_shard, update).await? {
            Forward::Done { hi, batches } => (hi, batches),
            Forward::Interrupted => return Ok(Step::Worked),
        };
    // Caught up with the key order: now what landed behind the cursor meanwhile.
    let sent_late = late_pass(ctx, st, &well, &target, start_shard, hi).await?;
    let Some(p) = st.progress.as_mut() else {
        return Ok(Step::Idle);
    };
    if p.floor != hi || !p.sent.is_empty() {
        p.floor = hi;
        p.sent.clear();
        p.save(engine.as_ref(), &ctx.well, &ctx.target)
            .map_err(|e| e.to_string())?;
    }
    update_position(ctx, &well, st, start_shard);
    Ok(if sent_late || batches > 0 {
        Step::Worked
    } else {
        Step::Idle
    })
}

/// Shards whose stored count exceeds what was processed get scanned for entries with
/// `floor <= seq < hi` not yet sent, up to the cursor. True if anything was sent.
async fn late_pass(
    ctx: &WorkerCtx,
    st: &mut State,
    well: &Arc<Well>,
    target: &Target,
    start_shard: u64,
    hi: u64,
) -> Result<bool, String> {
    let Some(progress) = st.progress.clone() else {
        return Ok(false);
    };
    let Some(cursor) = progress.cursor.clone() else {
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
        .filter(|(s, n)| **n > progress.processed.get(s).copied().unwrap_or(0))
        .map(|(s, _)| *s)
        .collect();
    let mut any = false;
    for shard in late {
        let end = keys::shard_end(well.id, shard).min(successor(&cursor));
        let mut from = keys::shard_start(well.id, shard);
        loop {
            let progress = st.progress.clone().unwrap_or_default();
            let (node, w, f, e) = (ctx.node.clone(), well.clone(), from.clone(), end.clone());
            let (floor, sent) = (progress.floor, progress.sent.clone());
            // Scan until a batch of late entries is found or the shard ends.
            let (found, next) = blocking(move || {
                let mut found = Vec::new();
                let mut at = f;
                loop {
                    let page = node
                        .wells
                        .page_raw(&w, &at, &e, BATCH_ENTRIES)
                        .map_err(|e| e.to_string())?;
                    let last = page.entries.last().map(|(k, _)| k.clone());
                    for (k, v) in page.entries {
                        let seq = keys::parse_entry_key(&k).map_or(0, |k| k.3);
                        if seq >= floor && seq < hi && !sent.contains(&seq) {
                            found.push((k, v));
                        }
                    }
                    match last {
                        Some(l) if page.more && found.len() < BATCH_ENTRIES => at = successor(&l),
                        Some(l) => return Ok((found, page.more.then(|| successor(&l)))),
                        None => return Ok((found, None)),
                    }
                }
            })
            .await?;
            if let Some(to) = found.last().map(|(k, _)| k.clone()) {
                let p = Pending {
                    batch: progress.next_batch,
                    from: from.clone(),
                    to,
                    lo: progress.floor,
                    hi,
                    late: true,
                };
                let built = Mapper::new(ctx, target).build(&found, &p, &progress.sent);
                pipeline::send_one(ctx, st, target, p, built).await?;
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

/// Shard n of m and entries behind, for `ditto stats`.
fn update_position(ctx: &WorkerCtx, well: &Well, st: &State, start_shard: u64) {
    let Some(p) = &st.progress else { return };
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
