//! The connection to a target cluster: its data nodes' Ingest endpoints, TLS (rustls, with the
//! target's CA) or cleartext, gzip when asked. Batches go round-robin over the endpoints; one
//! that fails is skipped for the rest of that send, so a dead endpoint costs one attempt.

use crate::ingest::SECRET_HEADER;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic::Streaming;
use tributary_proto::v1::{ingest_client::IngestClient, IngestAck, IngestBatch, Target};

/// How long a batch may wait for its ack before the endpoint counts as failed.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_MESSAGE: usize = 64 << 20;

/// What an endpoint said about one batch.
#[derive(Debug, Clone)]
pub struct Acked {
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
    next: usize,
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
            next: 0,
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

    async fn connect(&self, addr: &str, tls: bool) -> Result<Conn, String> {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let uri = if tls {
            format!("https://{addr}")
        } else {
            format!("http://{addr}")
        };
        let mut ep = Endpoint::from_shared(uri)
            .map_err(|e| format!("bad endpoint {addr}: {e}"))?
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
            ep = ep
                .tls_config(cfg)
                .map_err(|e| format!("TLS config for {addr}: {e}"))?;
        }
        let channel = ep
            .connect()
            .await
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let mut client = IngestClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        if self.compression {
            client = client.send_compressed(CompressionEncoding::Gzip);
        }
        let (tx, rx) = mpsc::channel(4);
        let mut req = tonic::Request::new(ReceiverStream::new(rx));
        let secret = tonic::metadata::MetadataValue::try_from(self.secret.as_str())
            .map_err(|_| "the target's ingest secret is not a valid header value".to_string())?;
        req.metadata_mut().insert(SECRET_HEADER, secret);
        let acks = client
            .write(req)
            .await
            .map_err(|s| format!("{addr}: {}", s.message()))?
            .into_inner();
        Ok(Conn { tx, acks })
    }

    async fn send_to(&mut self, i: usize, batch: IngestBatch) -> Result<IngestAck, String> {
        let (addr, tls) = (self.slots[i].addr.clone(), self.slots[i].tls);
        if self.slots[i].conn.is_none() {
            self.slots[i].conn = Some(self.connect(&addr, tls).await?);
        }
        let Some(conn) = self.slots[i].conn.as_mut() else {
            return Err(format!("{addr}: no connection"));
        };
        if conn.tx.send(batch).await.is_err() {
            return Err(format!("{addr}: stream closed"));
        }
        match tokio::time::timeout(ACK_TIMEOUT, conn.acks.message()).await {
            Ok(Ok(Some(ack))) => Ok(ack),
            Ok(Ok(None)) => Err(format!("{addr}: stream ended without an ack")),
            Ok(Err(s)) => Err(format!("{addr}: {:?}: {}", s.code(), s.message())),
            Err(_) => Err(format!("{addr}: no ack within {ACK_TIMEOUT:?}")),
        }
    }

    /// Sends one batch, trying each endpoint at most once starting with the next in turn.
    /// The error names every endpoint's failure.
    pub async fn send(&mut self, batch: IngestBatch) -> Result<Acked, String> {
        if self.slots.is_empty() {
            return Err("the target has no endpoints".into());
        }
        let mut errors = Vec::new();
        for k in 0..self.slots.len() {
            let i = (self.next + k) % self.slots.len();
            match self.send_to(i, batch.clone()).await {
                Ok(ack) => {
                    // Spread batches: the next one starts at the next endpoint.
                    self.next = (i + 1) % self.slots.len();
                    return Ok(Acked {
                        duplicate: ack.duplicate,
                        endpoint: self.slots[i].addr.clone(),
                    });
                }
                Err(e) => {
                    // A failed stream is dropped; the next use reconnects.
                    self.slots[i].conn = None;
                    errors.push(e);
                }
            }
        }
        Err(errors.join("; "))
    }
}
