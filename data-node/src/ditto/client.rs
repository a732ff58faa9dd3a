//! The connection to a target cluster: its data nodes' Ingest endpoints, TLS (rustls, with the
//! target's CA) or cleartext, gzip when asked. Batches go to one endpoint at a time, several in
//! flight on its one `Ingest.Write` stream (the target acks each batch, in order). An endpoint
//! that fails is dropped for the next one in the list at once; only when every endpoint has
//! failed in a row does the worker back off, with every endpoint's error. Staying on one
//! endpoint while it works keeps a resent batch on the node that remembers its id.

use super::error::LinkError;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic::Streaming;
use tributary_common::grpc::INGEST_SECRET_HEADER;
use tributary_proto::v1::{ingest_client::IngestClient, IngestAck, IngestBatch, Target};

/// How long a batch may wait for its ack before the endpoint counts as failed.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_MESSAGE: usize = 64 << 20;
/// Batches queued for the stream's encoder; at least the worker's window, so a send only
/// waits when the connection is stuck.
const QUEUE: usize = 8;

/// What an endpoint said about one batch.
#[derive(Debug, Clone)]
pub struct Acked {
    /// The batch's `seq`, echoed.
    pub seq: u64,
    pub duplicate: bool,
    pub endpoint: String,
}

/// An open `Ingest.Write` stream to one endpoint.
struct Conn {
    tx: mpsc::Sender<IngestBatch>,
    acks: Streaming<IngestAck>,
}

struct Slot {
    addr: String,
    tls: bool,
    conn: Option<Conn>,
}

pub struct TargetClient {
    slots: Vec<Slot>,
    /// The endpoint batches go to.
    current: usize,
    /// Errors of the endpoints that failed in a row since the last ack.
    failures: Vec<LinkError>,
    /// An endpoint failed and another is still untried: retry at once.
    failover: bool,
    secret: String,
    compression: bool,
    ca_pem: String,
}

impl TargetClient {
    pub fn new(t: &Target) -> Self {
        let slots = t
            .encrypted_endpoints
            .iter()
            .map(|a| (a, true))
            .chain(t.cleartext_endpoints.iter().map(|a| (a, false)))
            .map(|(addr, tls)| Slot {
                addr: addr.clone(),
                tls,
                conn: None,
            })
            .collect();
        TargetClient {
            slots,
            current: 0,
            failures: Vec::new(),
            failover: false,
            secret: t.ingest_secret.clone(),
            compression: t.enable_compression,
            ca_pem: t.ca_pem.clone(),
        }
    }

    /// True when `t` would build a different client (endpoints, secret, TLS, compression).
    pub fn differs(&self, t: &Target) -> bool {
        let fresh = TargetClient::new(t);
        fresh.secret != self.secret
            || fresh.compression != self.compression
            || fresh.ca_pem != self.ca_pem
            || fresh
                .slots
                .iter()
                .map(|s| (&s.addr, s.tls))
                .ne(self.slots.iter().map(|s| (&s.addr, s.tls)))
    }

    async fn connect(&self, addr: &str, tls: bool) -> Result<Conn, LinkError> {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let uri = if tls {
            format!("https://{addr}")
        } else {
            format!("http://{addr}")
        };
        let mut ep = Endpoint::from_shared(uri)
            .map_err(|e| LinkError::BadEndpoint {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?
            .connect_timeout(Duration::from_secs(3))
            .tcp_nodelay(true)
            .initial_stream_window_size(tributary_common::grpc::STREAM_WINDOW)
            .initial_connection_window_size(tributary_common::grpc::CONNECTION_WINDOW);
        if tls {
            let mut cfg = ClientTlsConfig::new().domain_name(host.trim_matches(['[', ']']));
            if self.ca_pem.is_empty() {
                // No CA given: whatever roots the build enables (none by default: the CA is then required).
                cfg = cfg.with_enabled_roots();
            } else {
                cfg = cfg.ca_certificate(Certificate::from_pem(&self.ca_pem));
            }
            ep = ep.tls_config(cfg).map_err(|e| LinkError::BadEndpoint {
                addr: addr.to_string(),
                reason: format!("TLS config: {e}"),
            })?;
        }
        let channel = ep.connect().await.map_err(|e| LinkError::Connect {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        let mut client = IngestClient::new(tributary_common::trace_context::traced(channel))
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        if self.compression {
            client = client.send_compressed(CompressionEncoding::Gzip);
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut req = tonic::Request::new(ReceiverStream::new(rx));
        let secret = tonic::metadata::MetadataValue::try_from(self.secret.as_str())
            .map_err(|_| LinkError::BadSecret)?;
        req.metadata_mut().insert(INGEST_SECRET_HEADER, secret);
        let acks = client
            .write(req)
            .await
            .map_err(|s| LinkError::Refused {
                addr: addr.to_string(),
                message: s.message().to_string(),
            })?
            .into_inner();
        Ok(Conn { tx, acks })
    }

    /// Queues `batch` on the current endpoint's stream (connecting first if needed) without
    /// waiting for its ack. An error has already moved on to the next endpoint.
    pub async fn submit(&mut self, batch: IngestBatch) -> Result<(), LinkError> {
        if self.slots.is_empty() {
            return Err(LinkError::NoEndpoints);
        }
        let i = self.current;
        let (addr, tls) = (self.slots[i].addr.clone(), self.slots[i].tls);
        if self.slots[i].conn.is_none() {
            match self.connect(&addr, tls).await {
                Ok(c) => self.slots[i].conn = Some(c),
                Err(e) => return Err(self.fail(e)),
            }
        }
        let Some(conn) = self.slots[i].conn.as_mut() else {
            return Err(self.fail(LinkError::Closed { addr }));
        };
        match tokio::time::timeout(ACK_TIMEOUT, conn.tx.send(batch)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(self.fail(LinkError::Closed { addr })),
            Err(_) => Err(self.fail(LinkError::Stuck {
                addr,
                secs: ACK_TIMEOUT.as_secs(),
            })),
        }
    }

    /// The next ack on the current stream (acks come in the order batches were submitted),
    /// waiting until `deadline` at most. Cancel-safe: a cancelled wait loses no ack.
    pub async fn ack(&mut self, deadline: Instant) -> Result<Acked, LinkError> {
        let i = self.current;
        let Some(slot) = self.slots.get_mut(i) else {
            return Err(LinkError::NoEndpoints);
        };
        let addr = slot.addr.clone();
        let Some(conn) = slot.conn.as_mut() else {
            return Err(self.fail(LinkError::Closed { addr }));
        };
        let err = match tokio::time::timeout_at(deadline, conn.acks.message()).await {
            Ok(Ok(Some(ack))) => {
                self.failures.clear();
                return Ok(Acked {
                    seq: ack.seq,
                    duplicate: ack.duplicate,
                    endpoint: addr,
                });
            }
            Ok(Ok(None)) => LinkError::Ended { addr },
            Ok(Err(s)) => LinkError::Status {
                addr,
                code: s.code(),
                message: s.message().to_string(),
            },
            Err(_) => LinkError::NoAck {
                addr,
                secs: ACK_TIMEOUT.as_secs(),
            },
        };
        Err(self.fail(err))
    }

    /// Drops the current stream (batches on it are lost and must be resent).
    pub fn disconnect(&mut self) {
        if let Some(s) = self.slots.get_mut(self.current) {
            s.conn = None;
        }
    }

    /// The current endpoint failed with `err`: drop it, move to the next. Returns the error to
    /// report: `err`, or every endpoint's error once all of them failed in a row.
    fn fail(&mut self, err: LinkError) -> LinkError {
        self.disconnect();
        self.current = (self.current + 1) % self.slots.len().max(1);
        self.failures.push(err.clone());
        if self.failures.len() < self.slots.len() {
            self.failover = true;
            return err;
        }
        self.failover = false;
        LinkError::AllFailed(std::mem::take(&mut self.failures))
    }

    /// True once after an endpoint failed while another one is still untried: the worker
    /// resends at once instead of backing off.
    pub fn take_failover(&mut self) -> bool {
        std::mem::take(&mut self.failover)
    }
}
