//! The forward pass: from the cursor in key order, a reader thread reads pages and builds
//! batches ahead while up to [`WINDOW`] batches travel (the next page starts after the previous
//! batch's last key, known before its ack).

use super::error::{DittoError, DittoResult};
use super::host::DittoHost;
use super::mapper::{Built, Mapper};
use super::pipe::{batch_span, land, launch, Pager, Pipe, Session};
use super::progress::{Pending, Progress};
use crate::storage::keys;
use crate::storage::successor;
use crate::storage::wells::Well;
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tributary_proto::v1::Target;

const BATCH_BYTES: usize = 1 << 20;
/// Forward-pass batches in flight at once.
const WINDOW: usize = 4;

/// How a forward pass ended.
pub(super) enum Forward {
    /// No entry after the cursor: `hi` is the well's next seq read just before finding that.
    Done { hi: u64, batches: u64 },
    /// The target changed in the catalogue: what was in flight is committed; step again.
    Interrupted,
}

/// What the reader thread hands over.
enum Read {
    /// A batch, in its span since its page was read.
    Batch(Pending, Built, tracing::Span),
    End(u64),
    Failed(DittoError),
}

/// Reads pages in key order from `from` and builds each into a batch, on a blocking thread,
/// until the well has no more or the receiver is gone.
fn read_ahead(
    host: Arc<dyn DittoHost>,
    (well, names): (Arc<Well>, (String, String)),
    mut mapper: Mapper,
    sent: BTreeSet<u64>,
    from: Vec<u8>,
    tx: mpsc::Sender<Read>,
) {
    let mut pager = Pager::new(host.as_ref(), &well, from, keys::well_end(well.id));
    loop {
        // Every seq below `hi` is stored before the page is read.
        let hi = host.next_seq(&well);
        let from = pager.position().unwrap_or_default();
        let mut entries = match pager.next_page() {
            // The span starts with the page in hand: an empty read at the tail makes none.
            Ok(Some(p)) => p,
            Ok(None) => {
                let _ = tx.blocking_send(Read::End(hi));
                return;
            }
            Err(e) => {
                let _ = tx.blocking_send(Read::Failed(e));
                return;
            }
        };
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
        // The next page starts right after what this batch holds (it may be cut short).
        pager.seek(successor(&to));
        let p = Pending {
            batch: 0,
            from,
            to,
            lo: 0,
            hi,
            late: false,
        };
        // `sent` only grows behind the reader (forward batches cover disjoint key ranges), so
        // the snapshot filters exactly as the progress saved at any later commit would.
        let span = batch_span(&names.0, &names.1, "forward");
        let built = span.in_scope(|| mapper.build(&entries, &p, &sent));
        if tx.blocking_send(Read::Batch(p, built, span)).is_err() {
            return;
        }
    }
}

enum Event {
    Landed(DittoResult<()>),
    Read(Option<Read>),
    Timer,
}

/// The forward pass from the cursor with up to `WINDOW` batches in flight. Returns once every
/// batch is committed and saved.
pub(super) async fn forward(
    s: &mut Session<'_>,
    well: &Arc<Well>,
    target: &Target,
    start_shard: u64,
    mut on_commit: impl FnMut(&Progress),
) -> DittoResult<Forward> {
    let ctx = s.ctx;
    let from = match &s.progress.cursor {
        Some(c) => successor(c),
        None => keys::shard_start(well.id, start_shard),
    };
    let (tx, mut rx) = mpsc::channel(1);
    let (host, w, mapper, sent) = (
        ctx.host.clone(),
        well.clone(),
        Mapper::new(ctx.host.clone(), &ctx.well, target),
        s.progress.sent.clone(),
    );
    // Dropping `rx` (on return or error) ends the thread after the page it is on.
    let named = (w, (ctx.well.clone(), ctx.target.clone()));
    tokio::task::spawn_blocking(move || read_ahead(host, named, mapper, sent, from, tx));
    let mut pipe = Pipe::default();
    let mut ready: Option<(Pending, Built, tracing::Span)> = None;
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
                    return Err(DittoError::ReaderStopped)
                }
            }
        }
        if ready.is_some() && Instant::now() >= *s.next_send {
            if ctx.host.target(&ctx.target).as_ref() != Some(target) {
                // Let what is in flight land; the next step uses the new target.
                interrupted = true;
                ready = None;
                continue;
            }
            if let Some((mut p, built, span)) = ready.take() {
                p.batch = s.progress.next_batch + s.progress.pending.len() as u64;
                launch(s, target, &mut pipe, p, built, span).await?;
                dirty = false;
                batches += 1;
            }
            continue;
        }
        if dirty {
            s.save()?;
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
        let next_send = *s.next_send;
        let may_read = ready.is_none() && reading(&end, interrupted) && pipe.len() < WINDOW;
        let event = tokio::select! {
            biased;
            r = land(s, &mut pipe), if !pipe.is_empty() => Event::Landed(r),
            _ = tokio::time::sleep_until(next_send), if ready.is_some() => Event::Timer,
            r = rx.recv(), if may_read => Event::Read(r),
            // Nothing in flight, nothing ready, nothing to read: only a stopped reader.
            else => return Err(DittoError::ReaderStopped),
        };
        match event {
            Event::Landed(r) => {
                r?;
                on_commit(s.progress);
                dirty = true;
            }
            Event::Timer => {}
            Event::Read(Some(r)) => ready = on_read(r, &mut end)?,
            Event::Read(None) => return Err(DittoError::ReaderStopped),
        }
    }
}

fn on_read(r: Read, end: &mut Option<u64>) -> DittoResult<Option<(Pending, Built, tracing::Span)>> {
    match r {
        Read::Batch(p, b, span) => Ok(Some((p, b, span))),
        Read::End(hi) => {
            *end = Some(hi);
            Ok(None)
        }
        Read::Failed(e) => Err(e),
    }
}
