//! Opening a subscription on an origin stream, wherever it lives: owned by this node (read
//! straight from storage through the same code `Streams.Subscribe` runs, minus the network),
//! on another node of this cluster (this node's certificate, or on an `insecure` cluster the
//! cluster token, and the stream secret the cluster shares), or in another cluster
//! (`external` names that cluster's control plane; TLS with the origin's CA when it says
//! `https://` or gives one, and its credentials as the stream secret, shown to its control
//! plane to locate the stream and to its data node to subscribe). The owner is looked up on
//! every attempt, so a moved or restarted origin node is found again.

use super::error::MirrorError;
use super::host::MirrorHost;
use crate::storage::codec::MessageValue;
use crate::storage::streams::tail::{TailEvent, TailHeartbeat, TailSpec, TailStart};
use crate::storage::streams::RawMessage;
use futures::stream::BoxStream;
use futures::StreamExt;
use std::time::Duration;
use tributary_common::certs;
use tributary_common::grpc::{
    describe, endpoint, wants_tls, CLUSTER_TOKEN_HEADER, STREAM_SECRET_HEADER,
};
use tributary_common::secrets::REDACTED;
use tributary_common::tls::{self, TlsFiles};
use tributary_common::trace_context::{traced, TracedChannel};
use tributary_proto::v1::{
    catalog_client::CatalogClient, entity::Kind, streams_client::StreamsClient, EntityKind,
    EntityRef, StreamSource, SubscribeEvent, SubscribeRequest,
};

/// Events from the origin: read from storage when it is owned here, else received and
/// encoded as stored.
pub type Feed = BoxStream<'static, Result<TailEvent, MirrorError>>;

/// How long one lookup or subscribe call may take before the attempt counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Events can carry up to 2 MiB of messages plus one larger message: stay well above.
const MAX_EVENT_BYTES: usize = 256 << 20;

pub struct Resolver {
    /// This cluster's control plane (empty on a standalone node).
    local: Vec<String>,
    /// The stream secret this cluster's data nodes share (empty: none).
    own_secret: String,
    /// This cluster's TLS files (this node's certificate, the CA); None: cleartext.
    tls: Option<TlsFiles>,
    /// The cluster token, shown to this cluster's servers (empty: none).
    cluster_token: String,
}

/// How links to an origin's cluster speak.
enum Links {
    Cleartext,
    /// This cluster: our certificate shown, the peer's checked against our CA and, for a
    /// data node, pinned to the node the catalogue names (`data-node-ID`).
    Cluster(TlsFiles),
    /// Another cluster over TLS, trusting this CA PEM ("" = the enabled roots).
    External(String),
}

/// How to reach the cluster an origin lives in.
struct Route {
    control_plane: Vec<String>,
    links: Links,
    /// Metadata every call to that cluster carries (stream secret, cluster token).
    metadata: Vec<(&'static str, String)>,
}

impl Route {
    /// `msg` with the route's metadata; a value that cannot be sent is named.
    fn request<T>(&self, msg: T, stream: &str) -> Result<tonic::Request<T>, MirrorError> {
        let mut req = tonic::Request::new(msg);
        for (k, v) in &self.metadata {
            if v.is_empty() {
                continue;
            }
            let v = v
                .parse()
                .map_err(|_| MirrorError::BadSecret(stream.to_string()))?;
            req.metadata_mut().insert(*k, v);
        }
        Ok(req)
    }
}

fn addrs(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether the links to an external origin's cluster use TLS.
pub fn is_tls(origin: &StreamSource) -> bool {
    addrs(&origin.external)
        .iter()
        .any(|a| wants_tls(a, &origin.external_ca_pem))
}

/// A lazily connecting channel, over TLS when the route says so, carrying the trace context;
/// `node` names the data node at `addr` (None: a control-plane member, checked by its
/// address).
fn link(addr: &str, links: &Links, node: Option<u64>) -> Result<TracedChannel, String> {
    let ep = match links {
        Links::Cleartext => endpoint(addr, None).map_err(|e| e.to_string()),
        Links::External(ca) => endpoint(addr, Some(ca)).map_err(|e| e.to_string()),
        Links::Cluster(files) => {
            let pin = node.map(certs::data_node_name);
            tls::endpoint(addr, Some(files), pin.as_deref()).map_err(|e| e.to_string())
        }
    };
    ep.map(|e| traced(e.connect_lazy()))
        .map_err(|e| format!("{addr}: {e}"))
}

/// The tail a subscribe request asks of a stream on this node.
fn tail_spec(req: &SubscribeRequest) -> TailSpec {
    TailSpec {
        start: if req.start_time_ns != 0 {
            TailStart::Time(req.start_time_ns)
        } else {
            TailStart::Seq(req.start_seq)
        },
        filter: req.filter_subject.clone(),
        batch: req.batch as usize,
        incarnation: 0,
    }
}

/// An event received from the node serving `origin`, its messages as they are stored. An
/// origin of this release sends them in that form already (`stored`): each value is checked
/// whole, since another cluster may send anything, and then kept as received. One of an
/// earlier release sends them decoded (`messages`), and they are encoded here.
fn from_proto(ev: SubscribeEvent, origin: &str) -> Result<TailEvent, MirrorError> {
    let messages = match (ev.messages.is_empty(), ev.stored.is_empty()) {
        (true, _) => ev
            .stored
            .into_iter()
            .map(|m| {
                RawMessage::checked(m.seq, m.value).map_err(|source| MirrorError::BadMessage {
                    origin: origin.to_string(),
                    seq: m.seq,
                    source,
                })
            })
            .collect::<Result<_, _>>()?,
        (false, true) => ev
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
            .collect(),
        (false, false) => {
            return Err(MirrorError::Origin {
                origin: origin.to_string(),
                message: "an event carried messages in both forms".into(),
            })
        }
    };
    Ok(TailEvent {
        messages,
        heartbeat: ev.heartbeat.map(|h| TailHeartbeat {
            first_seq: h.first_seq,
            last_seq: h.last_seq,
            incarnation: h.incarnation,
        }),
        next_seq: ev.next_seq,
        last_seq: ev.last_seq,
        held: Default::default(),
    })
}

impl Resolver {
    pub fn new(
        local: Vec<String>,
        own_secret: String,
        tls: Option<TlsFiles>,
        cluster_token: String,
    ) -> Self {
        Resolver {
            local,
            own_secret,
            tls,
            cluster_token,
        }
    }

    fn external(origin: &StreamSource) -> Result<Route, MirrorError> {
        if origin.external_credentials == REDACTED {
            return Err(MirrorError::RedactedCredentials(origin.external.clone()));
        }
        Ok(Route {
            control_plane: addrs(&origin.external),
            links: match is_tls(origin) {
                true => Links::External(origin.external_ca_pem.clone()),
                false => Links::Cleartext,
            },
            metadata: vec![(STREAM_SECRET_HEADER, origin.external_credentials.clone())],
        })
    }

    pub async fn open(
        &self,
        host: &dyn MirrorHost,
        origin: &StreamSource,
        req: SubscribeRequest,
    ) -> Result<Feed, MirrorError> {
        let name = req.stream.clone();
        let origin_err = move |message: String| MirrorError::Origin {
            origin: name.clone(),
            message,
        };
        let route = if origin.external.is_empty() {
            if let Some(tail) = host.local_tail(&req.stream, tail_spec(&req)) {
                let tail = tail.map_err(|e| origin_err(e.to_string()))?;
                return Ok(tail
                    .map(move |r| r.map_err(|e| origin_err(e.to_string())))
                    .boxed());
            }
            if self.local.is_empty() {
                return Err(MirrorError::Unlocatable(req.stream));
            }
            Route {
                control_plane: self.local.clone(),
                links: match &self.tls {
                    Some(f) => Links::Cluster(f.clone()),
                    None => Links::Cleartext,
                },
                metadata: vec![
                    (STREAM_SECRET_HEADER, self.own_secret.clone()),
                    (CLUSTER_TOKEN_HEADER, self.cluster_token.clone()),
                ],
            }
        } else {
            Self::external(origin)?
        };
        let (owner, addr) = locate(&route, &req.stream)
            .await
            .map_err(MirrorError::Locate)?;
        let ch = link(&addr, &route.links, Some(owner)).map_err(|reason| MirrorError::Link {
            addr: addr.clone(),
            reason,
        })?;
        let mut client = StreamsClient::new(ch).max_decoding_message_size(MAX_EVENT_BYTES);
        let stream = req.stream.clone();
        // The messages as the origin stores them, to store as they are (an origin of an
        // earlier release ignores the ask and sends them decoded).
        let req = SubscribeRequest {
            stored_form: true,
            ..req
        };
        let call = route.request(req, &stream)?;
        let failed = |reason: String| MirrorError::Subscribe {
            stream: stream.clone(),
            addr: addr.clone(),
            reason,
        };
        let reply = tokio::time::timeout(CALL_TIMEOUT, client.subscribe(call))
            .await
            .map_err(|_| failed("timed out".into()))?
            .map_err(|s| failed(describe(&s)))?;
        Ok(reply
            .into_inner()
            .map(move |r| {
                r.map_err(|s| origin_err(s.message().to_string()))
                    .and_then(|ev| from_proto(ev, &stream))
            })
            .boxed())
    }
}

/// The address of the data node owning `stream` (for a replicated one, one of its replicas),
/// asking each control-plane member in turn
/// (any member answers catalogue reads).
async fn locate(route: &Route, stream: &str) -> Result<(u64, String), String> {
    let mut last = String::from("no control-plane address");
    for cp in &route.control_plane {
        match locate_at(cp, route, stream).await {
            Ok(a) => return Ok(a),
            // A definite answer (no such stream) needs no second opinion.
            Err((true, e)) => return Err(e),
            Err((false, e)) => last = e,
        }
    }
    Err(last)
}

/// `Err((definite, message))`.
async fn locate_at(cp: &str, route: &Route, stream: &str) -> Result<(u64, String), (bool, String)> {
    let ch = link(cp, &route.links, None).map_err(|e| (false, format!("control plane {e}")))?;
    let c = CatalogClient::new(ch);
    let get = |kind: EntityKind, name: String| {
        let mut c = c.clone();
        async move {
            let r = route
                .request(
                    EntityRef {
                        kind: kind as i32,
                        name,
                    },
                    stream,
                )
                .map_err(|e| (true, e.to_string()))?;
            match tokio::time::timeout(CALL_TIMEOUT, c.get(r)).await {
                Err(_) => Err((false, format!("control plane {cp}: timed out"))),
                Ok(Err(s)) if s.code() == tonic::Code::NotFound => {
                    Err((true, format!("origin: {}", s.message())))
                }
                Ok(Err(s)) => Err((false, format!("control plane {cp}: {}", describe(&s)))),
                Ok(Ok(r)) => Ok(r.into_inner().entity.and_then(|e| e.kind)),
            }
        }
    };
    let owner = match get(EntityKind::Stream, stream.to_string()).await? {
        // Any replica of a replicated origin forwards to its leader: one picked at random on
        // each attempt gets past a replica that is down.
        Some(Kind::Stream(s)) if !s.replica_nodes.is_empty() => {
            s.replica_nodes[rand::random::<u64>() as usize % s.replica_nodes.len()]
        }
        Some(Kind::Stream(s)) => s.owner_node,
        _ => return Err((true, format!("{stream} is not a stream"))),
    };
    if owner == 0 {
        return Err((
            true,
            format!("origin {stream} is not placed on a data node yet"),
        ));
    }
    match get(EntityKind::DataNode, owner.to_string()).await? {
        Some(Kind::DataNode(n)) if !n.addr.is_empty() => Ok((owner, n.addr)),
        _ => Err((
            true,
            format!("data node {owner} of {stream} is not registered"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tributary_proto::v1::{StoredMessage, StreamMessage};

    fn message(i: u64) -> MessageValue {
        MessageValue {
            subject: format!("o.{i}"),
            headers: [("Msg-Id".to_string(), i.to_string())].into(),
            data: Bytes::from(vec![i as u8; 1024]),
            timestamp_ns: 1_000 + i as i64,
        }
    }

    fn stored(seqs: std::ops::RangeInclusive<u64>) -> Vec<StoredMessage> {
        seqs.map(|i| StoredMessage {
            seq: i,
            value: message(i).encode().into(),
        })
        .collect()
    }

    #[test]
    fn stored_values_are_kept_as_received() {
        let ev = SubscribeEvent {
            stored: stored(1..=3),
            next_seq: 4,
            last_seq: 9,
            ..Default::default()
        };
        let received: Vec<*const u8> = ev.stored.iter().map(|m| m.value.as_ptr()).collect();
        let t = from_proto(ev, "O").unwrap();
        assert_eq!((t.next_seq, t.last_seq), (4, 9));
        for (i, m) in (1..=3).zip(&t.messages) {
            assert_eq!(m, &RawMessage::new(i, &message(i)));
        }
        let kept: Vec<*const u8> = t.messages.iter().map(|m| m.value.as_ptr()).collect();
        assert_eq!(kept, received, "the values are not copied");
    }

    #[test]
    fn decoded_messages_of_an_earlier_release_are_stored_alike() {
        let messages = (1..=3)
            .map(|i| {
                let m = message(i);
                StreamMessage {
                    seq: i,
                    subject: m.subject,
                    headers: m.headers.into_iter().collect(),
                    data: m.data,
                    timestamp_ns: m.timestamp_ns,
                }
            })
            .collect();
        let old = SubscribeEvent {
            messages,
            ..Default::default()
        };
        let new = SubscribeEvent {
            stored: stored(1..=3),
            ..Default::default()
        };
        assert_eq!(
            from_proto(old, "O").unwrap().messages,
            from_proto(new, "O").unwrap().messages
        );
    }

    #[test]
    fn a_malformed_stored_value_refuses_the_whole_event_naming_origin_and_seq() {
        let whole = message(2).encode();
        let mut trailing = whole.clone();
        trailing.push(0);
        let mut bad_utf8 = whole.clone();
        // The subject's first byte (after version, timestamp and its length).
        bad_utf8[13] = 0xff;
        let mut huge_len = whole.clone();
        huge_len[9..13].copy_from_slice(&u32::MAX.to_be_bytes());
        let cases: [(&str, Vec<u8>); 6] = [
            ("empty", Vec::new()),
            ("truncated", whole[..whole.len() - 1].to_vec()),
            ("trailing bytes", trailing),
            ("unknown version", [&[9u8][..], &whole[1..]].concat()),
            ("non-UTF-8 subject", bad_utf8),
            ("length past the end", huge_len),
        ];
        for (what, value) in cases {
            let mut msgs = stored(1..=3);
            msgs[1].value = Bytes::from(value);
            let ev = SubscribeEvent {
                stored: msgs,
                next_seq: 4,
                ..Default::default()
            };
            let err = from_proto(ev, "acme:orders").expect_err(what);
            assert!(
                matches!(&err, MirrorError::BadMessage { origin, seq: 2, .. } if origin == "acme:orders"),
                "{what}: {err:?}"
            );
            let text = err.to_string();
            assert!(
                text.contains("message 2 of acme:orders") && text.contains("corrupt"),
                "{what}: {text}"
            );
        }
    }

    #[test]
    fn an_event_in_both_forms_is_refused() {
        let ev = SubscribeEvent {
            stored: stored(1..=1),
            messages: vec![StreamMessage {
                seq: 2,
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(matches!(
            from_proto(ev, "O"),
            Err(MirrorError::Origin { .. })
        ));
    }
}
