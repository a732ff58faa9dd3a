//! Batches in flight. Each batch is built (read and mapped on a blocking thread), saved as
//! pending, sent without waiting for its ack, and committed when its ack comes back; acks come
//! in order, so commits do too. The forward pass (`forward`) keeps several batches in flight;
//! the late pass and a resend after an error use the same steps one batch at a time, or all
//! saved pendings at once.

use super::client::{TargetClient, ACK_TIMEOUT};
use super::error::{DittoError, DittoResult, LinkError};
use super::host::DittoHost;
use super::mapper::{Built, Mapper};
use super::progress::{Pending, Progress};
use crate::node::ditto_status::{CopySlots, WorkerStats};
use crate::storage::successor;
use crate::storage::wells::{RawEntry, Well};
use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;
use tributary_common::trace_context;
use tributary_proto::v1::{IngestBatch, Target};

pub(super) const BATCH_ENTRIES: usize = 2048;

/// What a (well, target) worker works with.
pub struct WorkerCtx {
    pub host: Arc<dyn DittoHost>,
    pub well: String,
    pub target: String,
    pub source_id: String,
    pub slots: Arc<CopySlots>,
    pub stats: Arc<WorkerStats>,
}

/// A worker with its progress loaded and its target's client made: what every pass works
/// on. The progress is the saved one plus what was committed since in memory.
pub(super) struct Session<'a> {
    pub ctx: &'a WorkerCtx,
    pub client: &'a mut TargetClient,
    pub progress: &'a mut Progress,
    /// When the bandwidth limit lets the next batch go.
    pub next_send: &'a mut Instant,
}

impl Session<'_> {
    pub(super) fn save(&self) -> DittoResult<()> {
        let c = self.ctx;
        Ok(self.progress.save(c.host.as_ref(), &c.well, &c.target)?)
    }
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> DittoResult<T> + Send + 'static,
) -> DittoResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DittoError::Task(e.to_string()))?
}

/// Pages of a well's raw entries in key order, from a key up to an end: the one paging loop
/// of every pass (forward, late, resend).
pub(super) struct Pager<'a> {
    host: &'a dyn DittoHost,
    well: &'a Well,
    at: Vec<u8>,
    end: Vec<u8>,
    done: bool,
}

impl<'a> Pager<'a> {
    pub(super) fn new(
        host: &'a dyn DittoHost,
        well: &'a Well,
        from: Vec<u8>,
        end: Vec<u8>,
    ) -> Self {
        Pager {
            host,
            well,
            at: from,
            end,
            done: false,
        }
    }

    /// The next page (None: the range is done).
    pub(super) fn next_page(&mut self) -> DittoResult<Option<Vec<RawEntry>>> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .host
            .page(self.well, &self.at, &self.end, BATCH_ENTRIES)?;
        match page.entries.last() {
            Some((last, _)) if page.more => self.at = successor(last),
            _ => self.done = true,
        }
        Ok((!page.entries.is_empty()).then_some(page.entries))
    }

    /// Where the next page starts (None: the range is done).
    pub(super) fn position(&self) -> Option<Vec<u8>> {
        (!self.done).then(|| self.at.clone())
    }

    /// Goes on from `at` instead (a reader that used only part of a page).
    pub(super) fn seek(&mut self, at: Vec<u8>) {
        self.at = at;
        self.done = false;
    }
}

/// Reads the raw entries of `[from, to]` of `well`.
pub(super) fn read_range(
    host: &dyn DittoHost,
    well: &Well,
    from: &[u8],
    to: &[u8],
) -> DittoResult<Vec<RawEntry>> {
    let mut pager = Pager::new(host, well, from.to_vec(), successor(to));
    let mut raw = Vec::new();
    while let Some(page) = pager.next_page()? {
        raw.extend(page);
    }
    Ok(raw)
}

/// Reads the entries a pending batch names again and maps them as the first time.
pub(super) async fn rebuild(
    ctx: &WorkerCtx,
    well: &Arc<Well>,
    target: &Target,
    p: &Pending,
    sent: &BTreeSet<u64>,
) -> DittoResult<Built> {
    let (host, w, pc, sent) = (ctx.host.clone(), well.clone(), p.clone(), sent.clone());
    let mut mapper = Mapper::new(ctx.host.clone(), &ctx.well, target);
    blocking(move || {
        let raw = read_range(host.as_ref(), &w, &pc.from, &pc.to)?;
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
    /// Ends with the ack.
    _span: tracing::Span,
}

/// The span of one batch, from its entries read through the target's write to its ack: a
/// trace of its own (none while tracing is off), continued on the target cluster, whose
/// `Ingest.Write` reads the traceparent the batch carries.
pub(super) fn batch_span(well: &str, target: &str, pass: &'static str) -> tracing::Span {
    if !trace_context::enabled() {
        return tracing::Span::none();
    }
    tracing::info_span!(parent: None, "ditto.batch", %well, %target, pass)
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

/// Saves `pending` (unless it is already saved: a resend) with whatever was committed in
/// memory, then sends its batch without waiting for the ack.
pub(super) async fn launch(
    s: &mut Session<'_>,
    target: &Target,
    pipe: &mut Pipe,
    pending: Pending,
    mut built: Built,
    span: tracing::Span,
) -> DittoResult<()> {
    if !s.progress.pending.iter().any(|p| p.batch == pending.batch) {
        s.progress.pending.push(pending.clone());
        s.save()?;
    }
    let sent = !built.entries.is_empty();
    if sent {
        if target.bandwidth_limit > 0 {
            tokio::time::sleep_until(*s.next_send).await;
            let cost = Duration::from_secs_f64(built.bytes as f64 / target.bandwidth_limit as f64);
            *s.next_send = (*s.next_send).max(Instant::now()) + cost;
        }
        let batch = IngestBatch {
            seq: pending.batch,
            entries: std::mem::take(&mut built.entries),
            batch_id: format!(
                "ditto/{}/{}/{}/{}",
                s.ctx.source_id, s.ctx.well, s.ctx.target, pending.batch
            ),
            traceparent: trace_context::traceparent_of(&span),
        };
        s.client.submit(batch).instrument(span.clone()).await?;
    }
    pipe.0.push_back(Flight {
        pending,
        built,
        sent,
        deadline: Instant::now() + ACK_TIMEOUT,
        _span: span,
    });
    Ok(())
}

/// Waits for the oldest batch's ack (none if it had nothing to send) and commits it in
/// memory; the caller saves. Cancel-safe: only the wait for the ack can be cancelled.
pub(super) async fn land(s: &mut Session<'_>, pipe: &mut Pipe) -> DittoResult<()> {
    let Some(front) = pipe.0.front() else {
        return Ok(());
    };
    if front.sent {
        let acked = s.client.ack(front.deadline).await?;
        if acked.seq != front.pending.batch {
            s.client.disconnect();
            return Err(LinkError::AckOutOfOrder {
                addr: acked.endpoint,
                got: acked.seq,
                want: front.pending.batch,
            }
            .into());
        }
        s.ctx.stats.set_endpoint(&acked.endpoint);
        if acked.duplicate {
            s.ctx.stats.duplicates.fetch_add(1, Relaxed);
        }
    }
    let Some(Flight { pending, built, .. }) = pipe.0.pop_front() else {
        return Ok(());
    };
    commit(s.progress, &s.ctx.stats, &pending, &built)
}

/// Records an acked batch: the oldest pending goes, the cursor moves (forward batches), the
/// processed counts and `sent` grow, the counters too.
fn commit(
    progress: &mut Progress,
    stats: &WorkerStats,
    pending: &Pending,
    built: &Built,
) -> DittoResult<()> {
    if progress.pending.first().map(|p| p.batch) != Some(pending.batch) {
        return Err(DittoError::OutOfStep(pending.batch));
    }
    progress.pending.remove(0);
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
    progress.next_batch = pending.batch + 1;
    stats.entries.fetch_add(
        built.seqs.len() as u64 - built.dropped - built.corrupt,
        Relaxed,
    );
    stats.bytes.fetch_add(built.bytes, Relaxed);
    stats.retagged.fetch_add(built.retagged, Relaxed);
    stats.dropped.fetch_add(built.dropped, Relaxed);
    stats.corrupt.fetch_add(built.corrupt, Relaxed);
    Ok(())
}

/// Sends one batch and waits for it to be committed and saved (late pass).
pub(super) async fn send_one(
    s: &mut Session<'_>,
    target: &Target,
    pending: Pending,
    built: Built,
) -> DittoResult<()> {
    let mut pipe = Pipe::default();
    let span = batch_span(&s.ctx.well, &s.ctx.target, "late");
    launch(s, target, &mut pipe, pending, built, span).await?;
    land(s, &mut pipe).await?;
    s.save()
}

/// Resends every saved pending in order, rebuilt identically, and commits them.
pub(super) async fn resend(
    s: &mut Session<'_>,
    well: &Arc<Well>,
    target: &Target,
) -> DittoResult<()> {
    let saved = s.progress.clone();
    let mut pipe = Pipe::default();
    for p in saved.pending {
        let span = batch_span(&s.ctx.well, &s.ctx.target, "resend");
        let built = rebuild(s.ctx, well, target, &p, &saved.sent)
            .instrument(span.clone())
            .await?;
        launch(s, target, &mut pipe, p, built, span).await?;
    }
    while !pipe.is_empty() {
        land(s, &mut pipe).await?;
        s.save()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(batch: u64, to: u8, late: bool) -> Pending {
        Pending {
            batch,
            from: vec![to - 1],
            to: vec![to],
            lo: 0,
            hi: 100,
            late,
        }
    }

    fn built(seqs: &[u64], dropped: u64) -> Built {
        Built {
            seqs: seqs.to_vec(),
            processed: [(0, seqs.len() as u64)].into(),
            dropped,
            bytes: 10 * seqs.len() as u64,
            ..Default::default()
        }
    }

    #[test]
    fn commits_go_in_pending_order_and_record_what_was_done() {
        let stats = WorkerStats::default();
        let mut p = Progress {
            floor: 2,
            next_batch: 4,
            pending: vec![pending(4, 10, false), pending(5, 12, true)],
            ..Default::default()
        };
        // The second pending acked first: refused, nothing recorded.
        let e = commit(&mut p, &stats, &pending(5, 12, true), &built(&[9], 0)).unwrap_err();
        assert!(matches!(e, DittoError::OutOfStep(5)), "{e}");
        assert_eq!(p.pending.len(), 2);

        commit(
            &mut p,
            &stats,
            &pending(4, 10, false),
            &built(&[1, 2, 3], 1),
        )
        .unwrap();
        assert_eq!(p.cursor, Some(vec![10]), "a forward batch moves the cursor");
        assert_eq!(p.sent, [2, 3].into(), "seqs below the floor need no record");
        assert_eq!((p.next_batch, p.processed_total()), (5, 3));
        assert_eq!(
            stats.entries.load(Relaxed),
            2,
            "a dropped entry is not sent"
        );
        assert_eq!(stats.dropped.load(Relaxed), 1);

        commit(&mut p, &stats, &pending(5, 12, true), &built(&[9], 0)).unwrap();
        assert_eq!(p.cursor, Some(vec![10]), "a late batch leaves the cursor");
        assert!(p.pending.is_empty());
        assert_eq!(p.sent, [2, 3, 9].into());
        assert_eq!(p.next_batch, 6);
    }
}
