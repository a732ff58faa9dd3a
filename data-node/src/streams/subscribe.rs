//! `Streams.Subscribe` on the wire: a request becomes a tail of the stream's store (the read
//! loop lives in storage, shared with local mirrors), and each tail event becomes a
//! `SubscribeEvent`: its messages decoded for clients, or as stored for the data nodes that
//! ask (`stored_form`), which copy those bytes without decoding them.

use crate::error::{Error, Result};
use crate::gate::Pass;
use crate::storage::codec::MessageValue;
use crate::storage::streams::tail::{TailEvent, TailSpec, TailStart};
use tonic::Status;
use tributary_proto::v1::{
    Heartbeat, StoredMessage, StreamMessage, SubscribeEvent, SubscribeRequest,
};

const DEFAULT_BATCH: usize = 256;
const MAX_BATCH: usize = 4096;

/// The tail a request asks for, checked.
pub fn tail_spec(req: &SubscribeRequest, incarnation: u64) -> Result<TailSpec> {
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
    let start = if req.start_time_ns != 0 {
        TailStart::Time(req.start_time_ns)
    } else {
        TailStart::Seq(req.start_seq)
    };
    let batch = match req.batch {
        0 => DEFAULT_BATCH,
        b => usize::try_from(b).unwrap_or(MAX_BATCH).min(MAX_BATCH),
    };
    Ok(TailSpec {
        start,
        filter: req.filter_subject.clone(),
        batch,
        incarnation,
    })
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

/// Whether a subscription goes out in the stored form: asked for, by a caller that may have
/// it (a data node of this cluster, or a stream-secret holder such as another cluster's
/// mirror). Anyone else gets decoded messages, as from an origin of an earlier release: the
/// stored form is no public format. Reading needs the same permission either way.
pub fn stored_form(req: &SubscribeRequest, pass: &Pass) -> bool {
    req.stored_form && matches!(pass, Pass::Node | Pass::Secret)
}

/// A tail event as the gRPC API sends it; `stored_form`: the messages' stored values, moved
/// as they were read (no decode, no copy), in `stored`.
pub fn event_to_proto(ev: TailEvent, stored_form: bool) -> Result<SubscribeEvent, Status> {
    let (messages, stored) = if stored_form {
        let stored = ev
            .messages
            .into_iter()
            .map(|m| StoredMessage {
                seq: m.seq,
                value: m.value,
            })
            .collect();
        (Vec::new(), stored)
    } else {
        let messages = ev
            .messages
            .into_iter()
            .map(|m| Ok(to_proto(m.seq, m.decode()?)))
            .collect::<Result<_>>()?;
        (messages, Vec::new())
    };
    Ok(SubscribeEvent {
        messages,
        stored,
        heartbeat: ev.heartbeat.map(|h| Heartbeat {
            first_seq: h.first_seq,
            last_seq: h.last_seq,
            incarnation: h.incarnation,
        }),
        next_seq: ev.next_seq,
        last_seq: ev.last_seq,
    })
}
