//! One origin of one destination stream, copied as nats-server does: subscribe from the
//! destination's progress + 1, take batches under flow control (the origin's bounded send
//! queue waits for us), store each batch with its progress in one write, watch the heartbeat
//! that arrives every second (a silent link for [`STALL`] is dropped and reopened), and retry
//! failures with growing, jittered delays while the error shows in the reports.
//!
//! Three stages run at once: the origin's reader, [`prepare_ahead`] (which turns the next
//! event into what the destination stores), and this task, which only commits.

use super::error::MirrorError;
use super::host::MirrorHost;
use super::origin::{Feed, Resolver};
use super::Spec;
use crate::group::op::{Op, Outcome};
use crate::node::replication::CopyStatus;
use crate::storage::codec::MessageValue;
use crate::storage::streams::replicate::{Appended, PreparedMirror, SourceProgress};
use crate::storage::streams::tail::{TailEvent, TailHeartbeat};
use crate::storage::streams::{RawMessage, StreamError, StreamResult, StreamStore};
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tributary_common::backoff::Backoff;
use tributary_common::grpc::{ORIGIN_SEQ_HEADER, ORIGIN_STREAM_HEADER};
use tributary_common::sync::lock;
use tributary_common::task::AbortOnDrop;
use tributary_proto::v1::SubscribeRequest;

/// Origins heartbeat every second; three missed ones mean the link is dead.
const STALL: Duration = Duration::from_secs(3);
/// Messages per event we ask the origin for (its cap applies too).
const BATCH: u32 = 4096;
/// Jitter keeps the workers of a restarted origin from retrying in lockstep.
const RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10), 2);

pub async fn run(
    host: Arc<dyn MirrorHost>,
    spec: Spec,
    status: Arc<Mutex<CopyStatus>>,
    resolver: Arc<Resolver>,
) {
    let span = tracing::info_span!("mirror", dest = %spec.dest, origin = %spec.origin.stream, mirror = spec.mirror);
    // Registered at 0 from the start, so `rate()` reads the link before its first error.
    let errors = metrics::counter!("tributary_mirror_errors_total", &link_labels(&spec));
    let mut attempt = 0u32;
    loop {
        let r = tracing::Instrument::instrument(
            copy(host.as_ref(), &spec, &status, &resolver),
            span.clone(),
        )
        .await;
        match r {
            // The origin was replaced: start over from the configured start at once.
            Ok(()) => attempt = 0,
            Err(e) => {
                tracing::warn!(parent: &span, error = %e, attempt, "copy interrupted; retrying");
                errors.increment(1);
                lock(&status).error = e.to_string();
                attempt = attempt.saturating_add(1);
                tokio::time::sleep(RETRY.delay(attempt)).await;
            }
        }
    }
}

/// Where to start reading the origin, and the origin incarnation the progress belongs to.
fn start(spec: &Spec, dest: &StreamStore) -> Result<(SubscribeRequest, u64), MirrorError> {
    let o = &spec.origin;
    let store_err = |e| stored_into(spec, StreamError::Storage(e));
    let resume = if spec.mirror {
        let last = dest.state().last_seq;
        let inc = dest.mirror_origin().map_err(store_err)?;
        (last > 0 || inc != 0).then_some((last + 1, inc))
    } else {
        dest.source_progress(&spec.progress_key())
            .map_err(store_err)?
            .filter(|p| p.next_seq > 0)
            .map(|p| (p.next_seq, p.incarnation))
    };
    let mut req = SubscribeRequest {
        stream: o.stream.clone(),
        filter_subject: o.filter_subject.clone(),
        batch: BATCH,
        ..Default::default()
    };
    // The configured start applies only while nothing has been copied.
    let inc = match resume {
        Some((next, inc)) => {
            req.start_seq = next;
            inc
        }
        None if o.start_time_ns != 0 => {
            req.start_time_ns = o.start_time_ns;
            0
        }
        None => {
            req.start_seq = o.start_seq.max(1);
            0
        }
    };
    Ok((req, inc))
}

/// An origin event made ready for the destination's write by [`prepare_ahead`].
struct Ready {
    heartbeat: Option<TailHeartbeat>,
    /// The origin's last seq (for the lag).
    last_seq: u64,
    /// Every origin seq before it has been seen.
    through_next: u64,
    /// The event carried no messages.
    empty: bool,
    write: Write,
}

enum Write {
    Mirror(PreparedMirror),
    /// A replicated destination's mirror copy: the origin's messages above `after`, for the
    /// group's log (every replica prepares its own write).
    MirrorRaw {
        msgs: Vec<RawMessage>,
        after: u64,
    },
    /// With their origin headers already spliced in.
    Source(Vec<RawMessage>),
}

impl Write {
    /// Bytes of the messages it stores (for the link's byte counter).
    fn bytes(&self) -> u64 {
        let raw = |msgs: &[RawMessage]| msgs.iter().map(|m| m.value.len() as u64).sum();
        match self {
            Write::Mirror(p) => p.bytes(),
            Write::MirrorRaw { msgs, .. } | Write::Source(msgs) => raw(msgs),
        }
    }
}

/// The link's labels: destination stream, origin stream, mirror or source.
fn link_labels(spec: &Spec) -> [(&'static str, String); 3] {
    let kind = if spec.mirror { "mirror" } else { "source" };
    [
        ("stream", spec.dest.clone()),
        ("origin", spec.origin.stream.clone()),
        ("kind", kind.to_string()),
    ]
}

/// The stage ahead of the writer: turns each origin event into what the destination stores
/// (a mirror's engine batch; a source's messages with their origin headers), one event ahead,
/// so the writer's thread only commits. `after` is the last seq the mirror holds. The
/// returned handle stops the stage when the writer's attempt ends.
fn prepare_ahead(
    spec: &Spec,
    dest: &Arc<StreamStore>,
    mut feed: Feed,
    mut after: u64,
) -> (mpsc::Receiver<Result<Ready, MirrorError>>, AbortOnDrop) {
    let (tx, rx) = mpsc::channel(1);
    let (spec, dest) = (spec.clone(), dest.clone());
    let task = AbortOnDrop::spawn(async move {
        while let Some(ev) = feed.next().await {
            let ready = ev.and_then(|ev| prepare(&spec, &dest, ev, &mut after));
            let failed = ready.is_err();
            if tx.send(ready).await.is_err() || failed {
                return;
            }
        }
    });
    (rx, task)
}

fn prepare(
    spec: &Spec,
    dest: &StreamStore,
    ev: TailEvent,
    after: &mut u64,
) -> Result<Ready, MirrorError> {
    let through_next = ev.messages.last().map_or(0, |m| m.seq + 1).max(ev.next_seq);
    let empty = ev.messages.is_empty();
    let write = if spec.mirror && spec.replicated {
        let w = Write::MirrorRaw {
            msgs: ev.messages,
            after: *after,
        };
        *after = (*after).max(through_next.saturating_sub(1));
        w
    } else if spec.mirror {
        let p = dest
            .prepare_mirrored(ev.messages, *after)
            .map_err(|e| stored_into(spec, e))?;
        *after = (*after).max(through_next.saturating_sub(1));
        Write::Mirror(p)
    } else {
        let msgs = ev
            .messages
            .into_iter()
            .map(|m| sourced(m, &spec.origin.stream))
            .collect::<Result<_, _>>()?;
        Write::Source(msgs)
    };
    Ok(Ready {
        heartbeat: ev.heartbeat,
        last_seq: ev.last_seq,
        through_next,
        empty,
        write,
    })
}

/// Copies until the link fails (`Err`) or the origin turns out to be a new stream (`Ok`).
async fn copy(
    host: &dyn MirrorHost,
    spec: &Spec,
    status: &Mutex<CopyStatus>,
    resolver: &Resolver,
) -> Result<(), MirrorError> {
    let dest = host.dest(&spec.dest)?;
    let (req, mut known) = start(spec, &dest)?;
    // Progress is counted from where we start: the origin seq we expect next.
    let mut next = req.start_seq.max(1);
    // Each subscription is a trace of its own (the worker's span lives as long as it does):
    // locating the origin and subscribing, on this node, the origin's control plane and
    // the origin's data node, in another cluster too.
    let subscribing = tracing::info_span!(
        parent: None,
        "mirror.subscribe",
        dest = %spec.dest,
        origin = %spec.origin.stream,
        external = %spec.origin.external,
        start_seq = req.start_seq,
    );
    let feed: Feed =
        tracing::Instrument::instrument(resolver.open(host, &spec.origin, req), subscribing)
            .await?;
    let (mut ready, _ahead) = prepare_ahead(spec, &dest, feed, dest.state().last_seq);
    let labels = link_labels(spec);
    let copied_msgs = metrics::counter!("tributary_mirror_messages_total", &labels);
    let copied_bytes = metrics::counter!("tributary_mirror_bytes_total", &labels);
    loop {
        let r = match tokio::time::timeout(STALL, ready.recv()).await {
            Err(_) => {
                return Err(MirrorError::Stalled {
                    origin: spec.origin.stream.clone(),
                    secs: STALL.as_secs(),
                })
            }
            Ok(None) => return Err(MirrorError::Ended(spec.origin.stream.clone())),
            Ok(Some(r)) => r?,
        };
        if let Some(hb) = &r.heartbeat {
            // A different incarnation: the origin was deleted and created again (or moved,
            // which starts it empty). Start over from its configured start.
            if known != 0 && hb.incarnation != known {
                tracing::info!(dest = %spec.dest, origin = %spec.origin.stream, "origin was re-created; copying it from its start");
                forget_origin(host, spec, &dest).await?;
                return Ok(());
            }
            known = hb.incarnation;
        }
        let last_seq = r.last_seq;
        let bytes = r.write.bytes();
        let stored = store(host, spec, &dest, r, known, &mut next).await?;
        if stored > 0 {
            copied_msgs.increment(stored);
            copied_bytes.increment(bytes);
        }
        let lag = last_seq.saturating_sub(next.saturating_sub(1));
        let mut s = lock(status);
        s.lag = lag;
        s.last_active = Some(Instant::now());
        s.error.clear();
    }
}

/// Writes one event's messages and the progress it vouches for, in one write (through the
/// group's log when the destination is replicated); returns the messages stored.
async fn store(
    host: &dyn MirrorHost,
    spec: &Spec,
    dest: &StreamStore,
    r: Ready,
    incarnation: u64,
    next: &mut u64,
) -> Result<u64, MirrorError> {
    let through_next = r.through_next;
    if r.empty && through_next <= *next && r.heartbeat.is_none() {
        return Ok(0);
    }
    let appended = match r.write {
        Write::Mirror(p) => dest.commit_mirrored(p, through_next.saturating_sub(1), incarnation),
        Write::MirrorRaw { msgs, after } => {
            let op = Op::Mirrored {
                after,
                msgs,
                through: through_next.saturating_sub(1),
                incarnation,
            };
            copied(host.propose_copy(&spec.dest, op).await?)
        }
        Write::Source(msgs) => {
            let now = dest
                .source_progress(&spec.progress_key())
                .map_err(|e| stored_into(spec, StreamError::Storage(e)))?;
            if r.empty && through_next <= *next && now.is_some_and(|p| p.incarnation == incarnation)
            {
                // Nothing new to record; a heartbeat only confirms the link.
                return Ok(0);
            }
            let progress = SourceProgress {
                next_seq: through_next.max(*next),
                incarnation,
            };
            if spec.replicated {
                let op = Op::Sourced {
                    key: spec.progress_key(),
                    expect: now,
                    msgs,
                    progress,
                };
                copied(host.propose_copy(&spec.dest, op).await?)
            } else {
                dest.append_sourced(msgs, &spec.progress_key(), progress)
            }
        }
    }
    .map_err(|e| stored_into(spec, e))?;
    if appended.too_big > 0 {
        tracing::warn!(dest = %spec.dest, dropped = appended.too_big, "messages larger than max_msg_size were not copied");
    }
    *next = through_next.max(*next);
    Ok(appended.stored)
}

/// What a copy through the group's log stored.
fn copied(o: Outcome) -> StreamResult<Appended> {
    match o {
        Outcome::Copied(r) => r,
        _ => Err(StreamError::Refused("unexpected outcome of a copy".into())),
    }
}

/// A sourced message as the destination stores it: with headers naming where it came from.
fn sourced(m: RawMessage, origin: &str) -> Result<RawMessage, MirrorError> {
    let seq = m.seq.to_string();
    let extra = [
        (ORIGIN_STREAM_HEADER, origin),
        (ORIGIN_SEQ_HEADER, seq.as_str()),
    ];
    let value =
        MessageValue::with_headers(&m.value, &extra).map_err(|source| MirrorError::BadMessage {
            origin: origin.to_string(),
            seq: m.seq,
            source,
        })?;
    Ok(RawMessage {
        value: value.into(),
        ..m
    })
}

/// Drops what ties the destination to the old origin, so the next attempt starts fresh.
async fn forget_origin(
    host: &dyn MirrorHost,
    spec: &Spec,
    dest: &StreamStore,
) -> Result<(), MirrorError> {
    let r = match (spec.replicated, spec.mirror) {
        (true, true) => copied(host.propose_copy(&spec.dest, Op::ResetMirror).await?).map(|_| ()),
        (true, false) => {
            let expect = dest
                .source_progress(&spec.progress_key())
                .map_err(|e| stored_into(spec, StreamError::Storage(e)))?;
            let op = Op::Sourced {
                key: spec.progress_key(),
                expect,
                msgs: Vec::new(),
                progress: SourceProgress::default(),
            };
            copied(host.propose_copy(&spec.dest, op).await?).map(|_| ())
        }
        (false, true) => dest.reset_mirror(),
        (false, false) => dest
            .append_sourced(Vec::new(), &spec.progress_key(), SourceProgress::default())
            .map(|_| ()),
    };
    r.map_err(|e| stored_into(spec, e))
}

fn stored_into(spec: &Spec, source: StreamError) -> MirrorError {
    MirrorError::Store {
        dest: spec.dest.clone(),
        source,
    }
}
