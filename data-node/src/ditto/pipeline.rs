//! Batches in flight. Each batch is built (read and mapped on a blocking thread), saved as
//! pending, sent without waiting for its ack, and committed when its ack comes back; acks come
//! in order, so commits do too. The forward pass keeps up to `WINDOW` batches in flight and
//! reads the next page while they travel (the next page starts after the previous batch's last
//! key, known before its ack). The late pass and a resend after an error use the same steps
//! one batch at a time, or all saved pendings at once.

use super::client::{TargetClient, ACK_TIMEOUT};
use super::progress::{Pending, Progress};
use super::slots::{CopySlot, CopySlots};
use super::stats::WorkerStats;
use crate::node::Node;
use crate::storage::codec::EntryValue;
use crate::storage::keys;
use crate::storage::successor;
use crate::storage::wells::{Well, Wells};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tributary_proto::v1::{IngestBatch, Target, WellEntry};

pub(super) const BATCH_ENTRIES: usize = 2048;
const BATCH_BYTES: usize = 1 << 20;
/// Forward-pass batches in flight at once.
pub(super) const WINDOW: usize = 4;

/// What a (well, target) worker works with.
pub struct WorkerCtx {
    pub node: Arc<Node>,
    pub well: String,
    pub target: String,
    pub source_id: String,
    pub slots: Arc<CopySlots>,
    pub stats: Arc<WorkerStats>,
}

/// A worker's connection, loaded progress, ditto slot and bandwidth schedule.
pub(super) struct State {
    pub(super) client: Option<TargetClient>,
    pub(super) progress: Option<Progress>,
    pub(super) permit: Option<CopySlot>,
    /// When the bandwidth limit lets the next batch go.
    pub(super) next_send: Instant,
}

/// A batch ready to send and what committing it records.
#[derive(Default)]
pub(super) struct Built {
    entries: Vec<WellEntry>,
    bytes: u64,
    /// Entries processed per shard (sent, dropped or corrupt).
    processed: BTreeMap<u64, u64>,
    seqs: Vec<u64>,
    retagged: u64,
    dropped: u64,
    corrupt: u64,
}

/// Maps stored entries to what the target gets: tag ids to names (unresolvable: re-tagged or
/// dropped), corrupt values skipped and counted.
pub(super) struct Mapper {
    node: Arc<Node>,
    well: String,
    target: String,
    unresolvable: String,
    names: HashMap<u32, String>,
}

impl Mapper {
    pub(super) fn new(ctx: &WorkerCtx, target: &Target) -> Self {
        let mut m = Mapper {
            node: ctx.node.clone(),
            well: ctx.well.clone(),
            target: ctx.target.clone(),
            unresolvable: target.unresolvable_tag_destination.clone(),
            names: HashMap::new(),
        };
        m.refresh();
        m
    }

    fn refresh(&mut self) {
        self.names = self
            .node
            .with_catalog(|c| c.tags.iter().map(|(n, id)| (*id, n.clone())).collect());
    }

    /// Decodes and maps the raw entries of a batch (filtering by the pending's seq range and
    /// `sent`). A tag id not known yet reloads the names once per batch, so a tag created
    /// since is found just as a fresh read of the catalogue would find it.
    pub(super) fn build(
        &mut self,
        raw: &[(Vec<u8>, Vec<u8>)],
        p: &Pending,
        sent: &BTreeSet<u64>,
    ) -> Built {
        let mut b = Built {
            entries: Vec::with_capacity(raw.len()),
            seqs: Vec::with_capacity(raw.len()),
            ..Default::default()
        };
        let mut refreshed = false;
        for (k, v) in raw {
            let Some((_, shard, ts, seq)) = keys::parse_entry_key(k) else {
                continue;
            };
            if seq < p.lo || seq >= p.hi || sent.contains(&seq) {
                continue;
            }
            *b.processed.entry(shard).or_default() += 1;
            b.seqs.push(seq);
            let value = match EntryValue::decode(v) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(well = %self.well, target = %self.target, shard, seq, error = %e, "ditto: corrupt entry skipped");
                    b.corrupt += 1;
                    continue;
                }
            };
            if !refreshed && !self.names.contains_key(&value.tag) {
                refreshed = true;
                self.refresh();
            }
            let tag = match self.names.get(&value.tag) {
                Some(n) => n.clone(),
                None if !self.unresolvable.is_empty() => {
                    b.retagged += 1;
                    self.unresolvable.clone()
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
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("ditto read task failed: {e}"))?
}

/// Reads the entries a pending batch names again and maps them as the first time.
pub(super) async fn rebuild(
    ctx: &WorkerCtx,
    well: &Arc<Well>,
    target: &Target,
    p: &Pending,
    sent: &BTreeSet<u64>,
) -> Result<Built, String> {
    let (node, w, pc) = (ctx.node.clone(), well.clone(), p.clone());
    let sent = sent.clone();
    let mut mapper = Mapper::new(ctx, target);
    blocking(move || {
        let end = successor(&pc.to);
        let mut at = pc.from.clone();
        let mut raw = Vec::new();
        loop {
            let page = node
                .wells
                .page_raw(&w, &at, &end, BATCH_ENTRIES)
                .map_err(|e| e.to_string())?;
            let last = page.entries.last().map(|(k, _)| k.clone());
            raw.extend(page.entries);
            match last {
                Some(l) if page.more => at = successor(&l),
                _ => break,
            }
        }
        Ok(mapper.build(&raw, &pc, &sent))
    })
    .await
}

/// A batch saved as pending, sent (or with nothing to send), waiting for its commit.
struct Flight {
    pending: Pending,
    /// What committing records (the entries went out with the batch).
    built: Built,
    sent: bool,
    deadline: Instant,
}

/// Batches in flight, oldest first.
#[derive(Default)]
pub(super) struct Pipe(VecDeque<Flight>);

impl Pipe {
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn save(ctx: &WorkerCtx, st: &State) -> Result<(), String> {
    let Some(progress) = st.progress.as_ref() else {
        return Err("no progress loaded".into());
    };
    progress
        .save(ctx.node.engine().as_ref(), &ctx.well, &ctx.target)
        .map_err(|e| e.to_string())
}

/// Saves `pending` (unless it is already saved: a resend) with whatever was committed in
/// memory, then sends its batch without waiting for the ack.
pub(super) async fn launch(
    ctx: &WorkerCtx,
    st: &mut State,
    target: &Target,
    pipe: &mut Pipe,
    pending: Pending,
    mut built: Built,
) -> Result<(), String> {
    let Some(progress) = st.progress.as_mut() else {
        return Err("no progress loaded".into());
    };
    if !progress.pending.iter().any(|p| p.batch == pending.batch) {
        progress.pending.push(pending.clone());
        save(ctx, st)?;
    }
    let sent = !built.entries.is_empty();
    if sent {
        if target.bandwidth_limit > 0 {
            tokio::time::sleep_until(st.next_send).await;
            let cost = Duration::from_secs_f64(built.bytes as f64 / target.bandwidth_limit as f64);
            st.next_send = st.next_send.max(Instant::now()) + cost;
        }
        let batch = IngestBatch {
            seq: pending.batch,
            entries: std::mem::take(&mut built.entries),
            batch_id: format!(
                "ditto/{}/{}/{}/{}",
                ctx.source_id, ctx.well, ctx.target, pending.batch
            ),
        };
        st.client
            .as_mut()
            .ok_or_else(|| "no target client".to_string())?
            .submit(batch)
            .await?;
    }
    pipe.0.push_back(Flight {
        pending,
        built,
        sent,
        deadline: Instant::now() + ACK_TIMEOUT,
    });
    Ok(())
}

/// Waits for the oldest batch's ack (none if it had nothing to send) and commits it in
/// memory; the caller saves. Cancel-safe: only the wait for the ack can be cancelled.
pub(super) async fn land(ctx: &WorkerCtx, st: &mut State, pipe: &mut Pipe) -> Result<(), String> {
    let Some(front) = pipe.0.front() else {
        return Ok(());
    };
    if front.sent {
        let client = st
            .client
            .as_mut()
            .ok_or_else(|| "no target client".to_string())?;
        let acked = client.ack(front.deadline).await?;
        if acked.seq != front.pending.batch {
            client.disconnect();
            return Err(format!(
                "{}: ack for batch {} while waiting for batch {}",
                acked.endpoint, acked.seq, front.pending.batch
            ));
        }
        ctx.stats.set_endpoint(&acked.endpoint);
        if acked.duplicate {
            ctx.stats.duplicates.fetch_add(1, Relaxed);
        }
    }
    let Some(Flight { pending, built, .. }) = pipe.0.pop_front() else {
        return Ok(());
    };
    let Some(progress) = st.progress.as_mut() else {
        return Err("no progress loaded".into());
    };
    if progress.pending.first().map(|p| p.batch) != Some(pending.batch) {
        return Err(format!(
            "ditto progress out of step: batch {} acked, not the oldest pending",
            pending.batch
        ));
    }
    progress.pending.remove(0);
    if !pending.late {
        progress.cursor = Some(pending.to);
    }
    for (shard, n) in &built.processed {
        *progress.processed.entry(*shard).or_default() += n;
    }
    let floor = progress.floor;
    progress
        .sent
        .extend(built.seqs.iter().copied().filter(|s| *s >= floor));
    progress.next_batch = pending.batch + 1;
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

/// Sends one batch and waits for it to be committed and saved (late pass).
pub(super) async fn send_one(
    ctx: &WorkerCtx,
    st: &mut State,
    target: &Target,
    pending: Pending,
    built: Built,
) -> Result<(), String> {
    let mut pipe = Pipe::default();
    launch(ctx, st, target, &mut pipe, pending, built).await?;
    land(ctx, st, &mut pipe).await?;
    save(ctx, st)
}

/// Resends every saved pending in order, rebuilt identically, and commits them.
pub(super) async fn resend(
    ctx: &WorkerCtx,
    st: &mut State,
    well: &Arc<Well>,
    target: &Target,
) -> Result<(), String> {
    let Some(progress) = st.progress.clone() else {
        return Err("no progress loaded".into());
    };
    let mut pipe = Pipe::default();
    for p in progress.pending {
        let built = rebuild(ctx, well, target, &p, &progress.sent).await?;
        launch(ctx, st, target, &mut pipe, p, built).await?;
    }
    while !pipe.is_empty() {
        land(ctx, st, &mut pipe).await?;
        save(ctx, st)?;
    }
    Ok(())
}

/// How a forward pass ended.
pub(super) enum Forward {
    /// No entry after the cursor: `hi` is the well's next seq read just before finding that.
    Done { hi: u64, batches: u64 },
    /// The target changed in the catalogue: what was in flight is committed; step again.
    Interrupted,
}

/// What the reader thread hands over.
enum Read {
    Batch(Pending, Built),
    End(u64),
    Failed(String),
}

/// Reads pages in key order from `from` and builds each into a batch, on a blocking thread,
/// until the well has no more or the receiver is gone.
fn read_ahead(
    node: Arc<Node>,
    well: Arc<Well>,
    mut mapper: Mapper,
    sent: BTreeSet<u64>,
    mut from: Vec<u8>,
    tx: mpsc::Sender<Read>,
) {
    let end = Wells::well_end_key(&well);
    loop {
        // Every seq below `hi` is stored before the page is read.
        let hi = node.wells.next_seq(&well);
        let mut entries = match node.wells.page_raw(&well, &from, &end, BATCH_ENTRIES) {
            Ok(p) => p.entries,
            Err(e) => {
                let _ = tx.blocking_send(Read::Failed(e.to_string()));
                return;
            }
        };
        if entries.is_empty() {
            let _ = tx.blocking_send(Read::End(hi));
            return;
        }
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
        let next = successor(&to);
        let p = Pending {
            batch: 0,
            from: std::mem::replace(&mut from, next),
            to,
            lo: 0,
            hi,
            late: false,
        };
        // `sent` only grows behind the reader (forward batches cover disjoint key ranges), so
        // the snapshot filters exactly as the progress saved at any later commit would.
        let built = mapper.build(&entries, &p, &sent);
        if tx.blocking_send(Read::Batch(p, built)).is_err() {
            return;
        }
    }
}

enum Event {
    Landed(Result<(), String>),
    Read(Option<Read>),
    Timer,
}

/// The forward pass from the cursor with up to `WINDOW` batches in flight. Returns once every
/// batch is committed and saved.
pub(super) async fn forward(
    ctx: &WorkerCtx,
    st: &mut State,
    well: &Arc<Well>,
    target: &Target,
    start_shard: u64,
    mut on_commit: impl FnMut(&State),
) -> Result<Forward, String> {
    let Some(progress) = st.progress.as_ref() else {
        return Err("no progress loaded".into());
    };
    let from = match &progress.cursor {
        Some(c) => successor(c),
        None => keys::shard_start(well.id, start_shard),
    };
    let (tx, mut rx) = mpsc::channel(1);
    let (node, w, mapper, sent) = (
        ctx.node.clone(),
        well.clone(),
        Mapper::new(ctx, target),
        progress.sent.clone(),
    );
    // Dropping `rx` (on return or error) ends the thread after the page it is on.
    tokio::task::spawn_blocking(move || read_ahead(node, w, mapper, sent, from, tx));
    let mut pipe = Pipe::default();
    let mut ready: Option<(Pending, Built)> = None;
    let mut end: Option<u64> = None;
    let mut interrupted = false;
    let mut dirty = false;
    let mut batches = 0;
    loop {
        // Whether the reader may still send: re-evaluated at each use, since the read just
        // below can bring its end.
        let reading = |end: &Option<u64>, interrupted: bool| end.is_none() && !interrupted;
        if ready.is_none() && reading(&end, interrupted) && pipe.len() < WINDOW {
            match rx.try_recv() {
                Ok(r) => ready = on_read(r, &mut end)?,
                Err(mpsc::error::TryRecvError::Empty) => {}
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    return Err("ditto reader stopped".into())
                }
            }
        }
        if ready.is_some() && Instant::now() >= st.next_send {
            let current = ctx
                .node
                .with_catalog(|c| c.targets.get(&ctx.target).cloned());
            if current.as_ref() != Some(target) {
                // Let what is in flight land; the next step uses the new target.
                interrupted = true;
                ready = None;
                continue;
            }
            if let Some((mut p, built)) = ready.take() {
                let Some(progress) = st.progress.as_ref() else {
                    return Err("no progress loaded".into());
                };
                p.batch = progress.next_batch + progress.pending.len() as u64;
                launch(ctx, st, target, &mut pipe, p, built).await?;
                dirty = false;
                batches += 1;
            }
            continue;
        }
        if dirty {
            save(ctx, st)?;
            dirty = false;
        }
        if pipe.is_empty() && ready.is_none() {
            if interrupted {
                return Ok(Forward::Interrupted);
            }
            if let Some(hi) = end {
                return Ok(Forward::Done { hi, batches });
            }
        }
        let next_send = st.next_send;
        let event = tokio::select! {
            biased;
            r = land(ctx, st, &mut pipe), if !pipe.is_empty() => Event::Landed(r),
            _ = tokio::time::sleep_until(next_send), if ready.is_some() => Event::Timer,
            r = rx.recv(), if ready.is_none() && reading(&end, interrupted) && pipe.len() < WINDOW => Event::Read(r),
            else => return Err("ditto pipeline has nothing to wait for".into()),
        };
        match event {
            Event::Landed(r) => {
                r?;
                on_commit(st);
                dirty = true;
            }
            Event::Timer => {}
            Event::Read(Some(r)) => ready = on_read(r, &mut end)?,
            Event::Read(None) => return Err("ditto reader stopped".into()),
        }
    }
}

fn on_read(r: Read, end: &mut Option<u64>) -> Result<Option<(Pending, Built)>, String> {
    match r {
        Read::Batch(p, b) => Ok(Some((p, b))),
        Read::End(hi) => {
            *end = Some(hi);
            Ok(None)
        }
        Read::Failed(e) => Err(e),
    }
}
