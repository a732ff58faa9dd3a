//! Tailing a stream: messages from a seq, filtered by subject, then live as they are stored.
//! The one read loop behind `Streams.Subscribe` and a mirror of a stream on the same node.
//!
//! What a reader costs is bounded in bytes: each read takes at most `REPLY_BYTES` (or one
//! bigger message), and the event channel holds `CHANNEL_EVENTS`, so an idle or slow reader
//! parks the loop holding at most `(CHANNEL_EVENTS + 1)` reads, whatever its `batch` and
//! however big the backlog (issue 11: six idle readers of a stream of 20 MB messages each
//! held their whole backlog). The bytes held count in `tributary_stream_tail_held_bytes`.
//! A heartbeat with first/last seq goes out every second (readers use it for lag and to tell
//! a quiet stream from a dead link). Events hold messages as stored, so a local mirror copies
//! those bytes as they are.

use super::{RawMessage, StreamError, StreamResult, StreamStore};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tributary_common::grpc::REPLY_BYTES;

const HEARTBEAT: Duration = Duration::from_secs(1);
/// Events in flight to one reader before the loop waits.
const CHANNEL_EVENTS: usize = 2;

/// Where a tail starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailStart {
    Seq(u64),
    /// The first message stored at or after this time (unix ns).
    Time(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailSpec {
    pub start: TailStart,
    /// Subject filter (wildcards allowed); empty takes everything.
    pub filter: String,
    /// Most messages per event.
    pub batch: usize,
    /// Names this copy of the stream (see `Node::incarnation_of`), sent in every heartbeat.
    pub incarnation: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TailHeartbeat {
    pub first_seq: u64,
    pub last_seq: u64,
    pub incarnation: u64,
}

#[derive(Debug, Default)]
pub struct TailEvent {
    pub messages: Vec<RawMessage>,
    pub heartbeat: Option<TailHeartbeat>,
    /// Everything before it has been sent (or is gone from the stream).
    pub next_seq: u64,
    pub last_seq: u64,
    /// The bytes of `messages`, counted as held until the reader takes the event.
    pub held: Held,
}

static HELD: AtomicUsize = AtomicUsize::new(0);

/// Bytes of messages read for readers and not yet taken by them, counted (process-wide, and
/// in `tributary_stream_tail_held_bytes`) while this lives.
#[derive(Debug, Default)]
pub struct Held(usize);

impl Held {
    fn new(bytes: usize) -> Self {
        HELD.fetch_add(bytes, Ordering::Relaxed);
        metrics::gauge!("tributary_stream_tail_held_bytes").increment(bytes as f64);
        Held(bytes)
    }

    /// Moves `bytes` of this count into a new one.
    fn split(&mut self, bytes: usize) -> Held {
        let moved = bytes.min(self.0);
        self.0 -= moved;
        Held(moved)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        HELD.fetch_sub(self.0, Ordering::Relaxed);
        metrics::gauge!("tributary_stream_tail_held_bytes").decrement(self.0 as f64);
    }
}

/// Bytes read for readers (every tail of this process) that they have not taken yet.
pub fn held_bytes() -> usize {
    HELD.load(Ordering::Relaxed)
}

pub type Tail = ReceiverStream<StreamResult<TailEvent>>;

impl StreamStore {
    /// Starts tailing; the first event is always a heartbeat, so a reader learns the
    /// incarnation up front. The loop ends when the reader goes, or the stream is deleted
    /// (`Deleted`) or closed on this node (`Closed`).
    pub fn tail(self: &Arc<Self>, spec: TailSpec) -> StreamResult<Tail> {
        let from = match spec.start {
            TailStart::Time(ns) => self.seq_at_time(ns)?,
            TailStart::Seq(s) => s.max(1),
        };
        let (tx, rx) = mpsc::channel(CHANNEL_EVENTS);
        // The tail outlives the call that opened it: a span of its own, following from the
        // call's, so the call's span (and a trace through it) ends once the call is answered.
        let span = tracing::info_span!(parent: None, "stream.tail", stream = %self.name, from);
        span.follows_from(tracing::Span::current());
        tokio::spawn(tracing::Instrument::instrument(
            run(self.clone(), from, spec, tx),
            span,
        ));
        Ok(ReceiverStream::new(rx))
    }
}

type Sender = mpsc::Sender<StreamResult<TailEvent>>;

async fn run(store: Arc<StreamStore>, mut next: u64, spec: TailSpec, tx: Sender) {
    let _counted = store.subscriber();
    let mut changed = store.watch();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The interval's first tick is immediate: the opening heartbeat.
    heartbeat.tick().await;
    if !send_heartbeat(&store, &tx, spec.incarnation, next).await {
        return;
    }
    loop {
        // A deleted stream is also closed: ask the more telling question first.
        let gone = if store.is_destroyed() {
            Some(StreamError::Deleted(store.name.clone()))
        } else if store.is_closed() {
            Some(StreamError::Closed(store.name.clone()))
        } else {
            None
        };
        if let Some(e) = gone {
            let _ = tx.send(Err(e)).await;
            return;
        }
        // Mark the current version seen before reading, so a publish racing the read
        // still wakes us below.
        changed.mark_unchanged();
        let last_before = store.state().last_seq;
        let (msgs, mut after) =
            match store.read_bounded(next, &spec.filter, spec.batch, REPLY_BYTES) {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
        if after == next && last_before >= next {
            // Nothing is stored from `next` on, yet the stream went that far: those
            // messages were deleted. Say so, or a mirror would wait for them forever.
            after = last_before + 1;
        }
        let progressed = after > next;
        next = after;
        if !send_messages(&store, &tx, msgs, next).await {
            return;
        }
        if progressed && next <= store.state().last_seq {
            // More is stored already: keep reading, but still heartbeat on time.
            if futures::FutureExt::now_or_never(heartbeat.tick()).is_some()
                && !send_heartbeat(&store, &tx, spec.incarnation, next).await
            {
                return;
            }
            continue;
        }
        tokio::select! {
            r = changed.changed() => {
                if r.is_err() {
                    return;
                }
            }
            _ = heartbeat.tick() => {
                if !send_heartbeat(&store, &tx, spec.incarnation, next).await {
                    return;
                }
            }
            _ = tx.closed() => return,
        }
    }
}

/// Sends what one read found, in events under a soft byte cap so readers with tonic's default
/// 4 MiB decoding limit can take them (a single bigger message still goes alone). False once
/// the reader is gone.
async fn send_messages(store: &StreamStore, tx: &Sender, msgs: Vec<RawMessage>, next: u64) -> bool {
    let last_seq = store.state().last_seq;
    let mut read = Held::new(msgs.iter().map(|m| m.value.len()).sum());
    let mut event = TailEvent {
        last_seq,
        ..Default::default()
    };
    let mut size = 0;
    for m in msgs {
        let n = m.value.len() + 16;
        if !event.messages.is_empty() && size + n > REPLY_BYTES {
            // A split event only vouches for what it carries.
            event.next_seq = event.messages.last().map_or(0, |m| m.seq + 1);
            let rest = TailEvent {
                last_seq,
                ..Default::default()
            };
            let mut full = std::mem::replace(&mut event, rest);
            full.held = read.split(full.messages.iter().map(|m| m.value.len()).sum());
            if tx.send(Ok(full)).await.is_err() {
                return false;
            }
            size = 0;
        }
        size += n;
        event.messages.push(m);
    }
    event.next_seq = next;
    event.held = read;
    event.messages.is_empty() || tx.send(Ok(event)).await.is_ok()
}

async fn send_heartbeat(store: &StreamStore, tx: &Sender, incarnation: u64, next: u64) -> bool {
    let s = store.state();
    let event = TailEvent {
        messages: Vec::new(),
        heartbeat: Some(TailHeartbeat {
            first_seq: s.first_seq,
            last_seq: s.last_seq,
            incarnation,
        }),
        // Everything before `next` has been sent; from the first stored seq on, what lies
        // below it is gone from the stream.
        next_seq: next.max(1),
        last_seq: s.last_seq,
        held: Held::default(),
    };
    tx.send(Ok(event)).await.is_ok()
}
