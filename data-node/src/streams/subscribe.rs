//! `Streams.Subscribe`: messages from a seq or a time, filtered by subject, then live. The
//! reply channel is bounded, so a slow reader parks the sender instead of piling up memory;
//! a heartbeat with first/last seq goes out every second (readers use it for lag and to tell
//! a quiet stream from a dead link). Inside the node a subscription yields [`Event`]s holding
//! messages as stored (a local mirror copies those bytes as they are); the gRPC service turns
//! them into `SubscribeEvent`s.

use crate::error::{Error, Result};
use crate::storage::codec::MessageValue;
use crate::storage::streams::{RawMessage, StreamStore};
use futures::{Stream, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tributary_proto::v1::{Heartbeat, StreamMessage, SubscribeEvent, SubscribeRequest};

const HEARTBEAT: Duration = Duration::from_secs(1);
const DEFAULT_BATCH: usize = 256;
const MAX_BATCH: usize = 4096;
/// Events in flight to one reader before the sender waits.
const CHANNEL_EVENTS: usize = 2;

/// A stream's incarnation: its node and node-local id. Local ids are never reused and a
/// stream that moves to another node starts empty there, so a new value means a new stream.
pub fn incarnation(node_id: u64, local_id: u32) -> u64 {
    (node_id << 32) | u64::from(local_id)
}

/// The incarnation of an owned stream. A memory stream keeps its local id across a restart
/// but not its messages, so it is a new stream every time the process starts.
pub fn incarnation_of(node: &crate::node::Node, store: &StreamStore) -> u64 {
    static BOOT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let base = incarnation(node.id, store.id);
    let memory = node
        .stream_config(&store.name)
        .is_some_and(|s| s.storage == tributary_proto::v1::StorageType::Memory as i32);
    if memory {
        base ^ *BOOT.get_or_init(|| rand::random::<u64>() | 1)
    } else {
        base
    }
}

pub fn to_proto(seq: u64, m: MessageValue) -> StreamMessage {
    StreamMessage {
        seq,
        subject: m.subject,
        headers: m.headers.into_iter().collect(),
        data: m.data,
        timestamp_ns: m.timestamp_ns,
    }
}

/// A subscription's event inside the node: [`SubscribeEvent`] with the messages as stored.
#[derive(Debug, Default)]
pub struct Event {
    pub messages: Vec<RawMessage>,
    pub heartbeat: Option<Heartbeat>,
    /// Everything before it has been sent (or is gone from the stream).
    pub next_seq: u64,
    pub last_seq: u64,
}

impl Event {
    /// The event as the gRPC API sends it.
    pub fn into_proto(self) -> Result<SubscribeEvent, Status> {
        let messages = self
            .messages
            .into_iter()
            .map(|m| Ok(to_proto(m.seq, m.decode()?)))
            .collect::<Result<_>>()?;
        Ok(SubscribeEvent {
            messages,
            heartbeat: self.heartbeat,
            next_seq: self.next_seq,
            last_seq: self.last_seq,
        })
    }

    /// An event received from another node, its messages encoded as they are stored.
    pub fn from_proto(ev: SubscribeEvent) -> Self {
        let messages = ev
            .messages
            .into_iter()
            .map(|m| {
                let value = MessageValue {
                    subject: m.subject,
                    headers: m.headers.into_iter().collect(),
                    data: m.data,
                    timestamp_ns: m.timestamp_ns,
                };
                RawMessage::new(m.seq, &value)
            })
            .collect();
        Event {
            messages,
            heartbeat: ev.heartbeat,
            next_seq: ev.next_seq,
            last_seq: ev.last_seq,
        }
    }
}

/// [`start_raw`] as the gRPC API sends it.
pub fn start(
    store: Arc<StreamStore>,
    req: SubscribeRequest,
    incarnation: u64,
) -> Result<impl Stream<Item = Result<SubscribeEvent, Status>> + Send + 'static> {
    Ok(start_raw(store, req, incarnation)?.map(|r| r.and_then(Event::into_proto)))
}

/// `incarnation` names this copy of the stream (node id and local id, never reused), sent in
/// every heartbeat; the first event is always a heartbeat so a reader learns it up front.
pub fn start_raw(
    store: Arc<StreamStore>,
    req: SubscribeRequest,
    incarnation: u64,
) -> Result<ReceiverStream<Result<Event, Status>>> {
    if !req.filter_subject.is_empty() {
        tributary_common::subject::validate_filter(&req.filter_subject)
            .map_err(|e| Error::invalid("filter_subject", e.to_string()))?;
    }
    if req.start_seq > 0 && req.start_time_ns != 0 {
        return Err(Error::invalid(
            "start_time_ns",
            "give start_seq or start_time_ns, not both",
        ));
    }
    let from = if req.start_time_ns != 0 {
        store.seq_at_time(req.start_time_ns)?
    } else {
        req.start_seq.max(1)
    };
    let batch = match req.batch {
        0 => DEFAULT_BATCH,
        b => (b as usize).min(MAX_BATCH),
    };
    let (tx, rx) = mpsc::channel(CHANNEL_EVENTS);
    tokio::spawn(tracing::Instrument::in_current_span(run(
        store,
        from,
        req.filter_subject,
        batch,
        incarnation,
        tx,
    )));
    Ok(ReceiverStream::new(rx))
}

async fn run(
    store: Arc<StreamStore>,
    mut next: u64,
    filter: String,
    batch: usize,
    incarnation: u64,
    tx: mpsc::Sender<Result<Event, Status>>,
) {
    let _counted = store.subscriber();
    let mut changed = store.watch();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The interval's first tick is immediate: the opening heartbeat.
    heartbeat.tick().await;
    if !send_heartbeat(&store, &tx, incarnation, next).await {
        return;
    }
    loop {
        // A deleted stream is also closed: ask the more telling question first.
        let gone = if store.is_destroyed() {
            Some(Status::not_found(format!(
                "stream {} was deleted",
                store.name
            )))
        } else if store.is_closed() {
            Some(Status::unavailable(format!(
                "stream {} was closed on this node (reopened or moved): subscribe again",
                store.name
            )))
        } else {
            None
        };
        if let Some(status) = gone {
            let _ = tx.send(Err(status)).await;
            return;
        }
        // Mark the current version seen before reading, so a publish racing the read
        // still wakes us below.
        changed.mark_unchanged();
        let last_before = store.state().last_seq;
        let (msgs, mut after) = match store.read(next, &filter, batch) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
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
        // Events stay under a soft byte cap so readers with tonic's default 4 MiB decoding
        // limit can take them (a single bigger message still goes alone).
        let last_seq = store.state().last_seq;
        let mut event = Event {
            last_seq,
            ..Default::default()
        };
        let mut size = 0;
        for m in msgs {
            let n = m.value.len() + 16;
            if !event.messages.is_empty() && size + n > crate::query::REPLY_BYTES {
                // A split event only vouches for what it carries.
                event.next_seq = event.messages.last().map_or(0, |m| m.seq + 1);
                let rest = Event {
                    last_seq,
                    ..Default::default()
                };
                if tx
                    .send(Ok(std::mem::replace(&mut event, rest)))
                    .await
                    .is_err()
                {
                    return;
                }
                size = 0;
            }
            size += n;
            event.messages.push(m);
        }
        event.next_seq = next;
        if !event.messages.is_empty() && tx.send(Ok(event)).await.is_err() {
            return;
        }
        if progressed && next <= store.state().last_seq {
            // More is stored already: keep reading, but still heartbeat on time.
            if futures::FutureExt::now_or_never(heartbeat.tick()).is_some()
                && !send_heartbeat(&store, &tx, incarnation, next).await
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
                if !send_heartbeat(&store, &tx, incarnation, next).await {
                    return;
                }
            }
            _ = tx.closed() => return,
        }
    }
}

async fn send_heartbeat(
    store: &StreamStore,
    tx: &mpsc::Sender<Result<Event, Status>>,
    incarnation: u64,
    next: u64,
) -> bool {
    let s = store.state();
    let event = Event {
        messages: Vec::new(),
        heartbeat: Some(Heartbeat {
            first_seq: s.first_seq,
            last_seq: s.last_seq,
            incarnation,
        }),
        // Everything before `next` has been sent; from the first stored seq on, what lies
        // below it is gone from the stream.
        next_seq: next.max(1),
        last_seq: s.last_seq,
    };
    tx.send(Ok(event)).await.is_ok()
}
