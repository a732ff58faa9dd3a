//! One worker per (well, target): forward pass from the Start-Time shard in key order, then
//! late entries behind the cursor, then tail. Each batch: saved as pending → sent → on ack
//! progress saved. Errors back off and resend the pending batch under the same id.

use super::client::TargetClient;
use super::progress::{Pending, Progress};
use super::stats::WorkerStats;
use crate::node::Node;
use crate::storage::codec::EntryValue;
use crate::storage::keys;
use crate::storage::successor;
use crate::storage::wells::{Well, Wells};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tributary_proto::v1::{IngestBatch, Target, WellEntry};

const BATCH_ENTRIES: usize = 2048;
const BATCH_BYTES: usize = 1 << 20;
/// A tailing worker also wakes this often without writes (catalogue changes, ageout).
const IDLE_WAKE: Duration = Duration::from_millis(500);

pub struct WorkerCtx {
    pub node: Arc<Node>,
    pub well: String,
    pub target: String,
    pub source_id: String,
    pub permits: Arc<Semaphore>,
    pub stats: Arc<WorkerStats>,
}

/// A batch ready to send and what committing it records.
#[derive(Default)]
struct Built {
    entries: Vec<WellEntry>,
    bytes: u64,
    /// Entries processed per shard (sent, dropped or corrupt).
    processed: BTreeMap<u64, u64>,
    seqs: Vec<u64>,
    retagged: u64,
    dropped: u64,
    corrupt: u64,
}

enum Step {
    Worked,
    Idle,
}

struct State {
    client: Option<TargetClient>,
    progress: Option<Progress>,
    permit: Option<OwnedSemaphorePermit>,
    next_send: Instant,
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
                st.permit = None;
                // Reloaded from disk next step: what is saved is what was acked.
                st.progress = None;
                tracing::warn!(well = %ctx.well, target = %ctx.target, error = %e, "ditto batch failed; retrying from saved progress");
                ctx.stats.set_error(&e);
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("ditto read task failed: {e}"))?
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
        st.permit = Some(
            ctx.permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| "worker slots closed".to_string())?,
        );
    }
    ctx.stats.set_state("copying");
    let progress = st.progress.clone().unwrap_or_default();
    // A batch sent but not acked before a failure or restart goes again, identical.
    if let Some(p) = progress.pending.clone() {
        let built = rebuild(ctx, &well, &target, &p, &progress).await?;
        send_and_commit(ctx, st, &target, p, built).await?;
        return Ok(Step::Worked);
    }
    let hi = ctx.node.wells.next_seq(&well);
    let from = match &progress.cursor {
        Some(c) => successor(c),
        None => keys::shard_start(well.id, start_shard),
    };
    let page = {
        let (node, w, f) = (ctx.node.clone(), well.clone(), from.clone());
        blocking(move || {
            node.wells
                .page_raw(&w, &f, &Wells::well_end_key(&w), BATCH_ENTRIES)
                .map_err(|e| e.to_string())
        })
        .await?
    };
    if let Some(mut entries) = non_empty(page.entries) {
        let mut size = 0;
        // Cap the batch by bytes too (big entries).
        let cut = entries
            .iter()
            .position(|(_, v)| {
                size += v.len();
                size > BATCH_BYTES
            })
            .unwrap_or(entries.len())
            .max(1);
        entries.truncate(cut);
        let to = entries.last().map(|(k, _)| k.clone()).unwrap_or_default();
        let p = Pending {
            from,
            to,
            lo: 0,
            hi,
            late: false,
        };
        let built = build(ctx, &target, &entries, &p, &progress);
        send_and_commit(ctx, st, &target, p, built).await?;
        return Ok(Step::Worked);
    }
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
    Ok(if sent_late { Step::Worked } else { Step::Idle })
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
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
                    from: from.clone(),
                    to,
                    lo: progress.floor,
                    hi,
                    late: true,
                };
                let built = build(ctx, target, &found, &p, &progress);
                send_and_commit(ctx, st, target, p, built).await?;
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

/// Reads the entries a pending batch names again.
async fn rebuild(
    ctx: &WorkerCtx,
    well: &Arc<Well>,
    target: &Target,
    p: &Pending,
    progress: &Progress,
) -> Result<Built, String> {
    let (node, w, pc) = (ctx.node.clone(), well.clone(), p.clone());
    let sent = progress.sent.clone();
    let entries = blocking(move || {
        let end = successor(&pc.to);
        let mut at = pc.from.clone();
        let mut out = Vec::new();
        loop {
            let page = node
                .wells
                .page_raw(&w, &at, &end, BATCH_ENTRIES)
                .map_err(|e| e.to_string())?;
            let last = page.entries.last().map(|(k, _)| k.clone());
            for (k, v) in page.entries {
                let seq = keys::parse_entry_key(&k).map_or(0, |k| k.3);
                if seq >= pc.lo && seq < pc.hi && !sent.contains(&seq) {
                    out.push((k, v));
                }
            }
            match last {
                Some(l) if page.more => at = successor(&l),
                _ => return Ok(out),
            }
        }
    })
    .await?;
    Ok(build(ctx, target, &entries, p, progress))
}

/// Decodes and maps the raw entries of a batch (filtering by the pending's seq range).
fn build(
    ctx: &WorkerCtx,
    target: &Target,
    raw: &[(Vec<u8>, Vec<u8>)],
    p: &Pending,
    progress: &Progress,
) -> Built {
    let names: HashMap<u32, String> = ctx
        .node
        .with_catalog(|c| c.tags.iter().map(|(n, id)| (*id, n.clone())).collect());
    let mut b = Built::default();
    for (k, v) in raw {
        let Some((_, shard, ts, seq)) = keys::parse_entry_key(k) else {
            continue;
        };
        if seq < p.lo || seq >= p.hi || progress.sent.contains(&seq) {
            continue;
        }
        *b.processed.entry(shard).or_default() += 1;
        b.seqs.push(seq);
        let value = match EntryValue::decode(v) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(well = %ctx.well, target = %ctx.target, shard, seq, error = %e, "ditto: corrupt entry skipped");
                b.corrupt += 1;
                continue;
            }
        };
        let tag = match names.get(&value.tag) {
            Some(n) => n.clone(),
            None if !target.unresolvable_tag_destination.is_empty() => {
                b.retagged += 1;
                target.unresolvable_tag_destination.clone()
            }
            None => {
                b.dropped += 1;
                continue;
            }
        };
        b.bytes += (value.data.len()
            + value
                .values
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()) as u64;
        b.entries.push(WellEntry {
            timestamp_ns: i64::try_from(ts).unwrap_or(i64::MAX),
            tag,
            source: value.source.map(|s| s.to_string()).unwrap_or_default(),
            data: value.data,
            values: value.values.into_iter().collect(),
        });
    }
    b
}

async fn send_and_commit(
    ctx: &WorkerCtx,
    st: &mut State,
    target: &Target,
    pending: Pending,
    built: Built,
) -> Result<(), String> {
    let engine = ctx.node.engine();
    let Some(progress) = st.progress.as_mut() else {
        return Err("no progress loaded".into());
    };
    let id = format!(
        "ditto/{}/{}/{}/{}",
        ctx.source_id, ctx.well, ctx.target, progress.next_batch
    );
    if !built.entries.is_empty() {
        if progress.pending.as_ref() != Some(&pending) {
            progress.pending = Some(pending.clone());
            progress
                .save(engine.as_ref(), &ctx.well, &ctx.target)
                .map_err(|e| e.to_string())?;
        }
        if target.bandwidth_limit > 0 {
            tokio::time::sleep_until(st.next_send).await;
            let cost = Duration::from_secs_f64(built.bytes as f64 / target.bandwidth_limit as f64);
            st.next_send = st.next_send.max(Instant::now()) + cost;
        }
        let batch = IngestBatch {
            seq: progress.next_batch,
            entries: built.entries,
            batch_id: id,
        };
        let client = st
            .client
            .as_mut()
            .ok_or_else(|| "no target client".to_string())?;
        let acked = client.send(batch).await?;
        ctx.stats.set_endpoint(&acked.endpoint);
        if acked.duplicate {
            ctx.stats.duplicates.fetch_add(1, Relaxed);
        }
    }
    let Some(progress) = st.progress.as_mut() else {
        return Err("no progress loaded".into());
    };
    if !pending.late {
        progress.cursor = Some(pending.to.clone());
    }
    for (shard, n) in &built.processed {
        *progress.processed.entry(*shard).or_default() += n;
    }
    let floor = progress.floor;
    progress
        .sent
        .extend(built.seqs.iter().copied().filter(|s| *s >= floor));
    progress.next_batch += 1;
    progress.pending = None;
    progress
        .save(engine.as_ref(), &ctx.well, &ctx.target)
        .map_err(|e| e.to_string())?;
    let s = &ctx.stats;
    s.entries.fetch_add(
        built.seqs.len() as u64 - built.dropped - built.corrupt,
        Relaxed,
    );
    s.bytes.fetch_add(built.bytes, Relaxed);
    s.retagged.fetch_add(built.retagged, Relaxed);
    s.dropped.fetch_add(built.dropped, Relaxed);
    s.corrupt.fetch_add(built.corrupt, Relaxed);
    Ok(())
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
