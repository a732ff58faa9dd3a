//! gRPC conventions shared by every service: the wire constants (metadata keys, message
//! headers, window sizes), the leader hint and client channels (cleartext or TLS).

use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::Status;

/// Metadata key a non-leader sets on `UNAVAILABLE` so clients can go to the leader.
pub const LEADER_HINT: &str = "x-tributary-leader";
/// Metadata key set on `UNAVAILABLE` when a write was proposed but its outcome is unknown
/// (it may have applied): retrying it blindly could apply it twice.
pub const UNCERTAIN_HEADER: &str = "x-tributary-uncertain";
/// Metadata key carrying the ingest secret on `Ingest.Write`.
pub const INGEST_SECRET_HEADER: &str = "x-tributary-ingest-secret";
/// Metadata key carrying the stream secret on `Streams` calls.
pub const STREAM_SECRET_HEADER: &str = "x-tributary-stream-secret";
/// Metadata key a data node sends on catalogue reads so that target secrets come back.
pub const CLUSTER_TOKEN_HEADER: &str = "x-tributary-cluster-token";

/// Message headers a sourced message carries, naming where it came from.
pub const ORIGIN_STREAM_HEADER: &str = "Tributary-Origin-Stream";
pub const ORIGIN_SEQ_HEADER: &str = "Tributary-Origin-Seq";
/// Message headers that name a message for the duplicate window (ours, and NATS's).
pub const MSG_ID_HEADERS: [&str; 2] = ["Msg-Id", "Nats-Msg-Id"];

/// What a non-leader says, naming the leader when one is known.
pub fn not_leader_message(leader_addr: Option<&str>) -> String {
    match leader_addr {
        Some(a) => format!("not the leader; the leader is {a}"),
        None => "no leader elected yet; retry".to_string(),
    }
}

/// `UNAVAILABLE` carrying the leader's address when one is known.
pub fn not_leader(leader_addr: Option<&str>) -> Status {
    let mut status = Status::unavailable(not_leader_message(leader_addr));
    if let Some(v) = leader_addr.and_then(|a| MetadataValue::try_from(a).ok()) {
        status.metadata_mut().insert(LEADER_HINT, v);
    }
    status
}

/// The leader address carried by a status, if any.
pub fn leader_hint(status: &Status) -> Option<String> {
    status
        .metadata()
        .get(LEADER_HINT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// HTTP/2 windows: an ingest batch or a subscribe event is far bigger than h2's 64 KiB
/// default, which would stall every message on window updates.
pub const STREAM_WINDOW: u32 = 8 << 20;
pub const CONNECTION_WINDOW: u32 = 16 << 20;

/// Soft cap on the payload of one streamed reply (query pages, subscription events): clients
/// keep tonic's default 4 MiB decoding limit, and one entry or message is at most 1 MiB by
/// default (a single bigger one still goes alone).
pub const REPLY_BYTES: usize = 2 << 20;

/// `http://addr` unless the address already has a scheme.
pub fn endpoint_uri(addr: &str) -> String {
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// A lazily connecting channel to `addr`.
pub fn channel(addr: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(endpoint(addr, None)?.connect_lazy())
}

/// Whether links to `addr` use TLS: the address says `https://`, or a CA to trust is given.
pub fn wants_tls(addr: &str, ca_pem: &str) -> bool {
    addr.starts_with("https://") || !ca_pem.is_empty()
}

/// A lazily connecting channel to `addr` over TLS (rustls), trusting `ca_pem` when given
/// (else the roots the build enables, none by default: the CA is then required).
pub fn channel_tls(addr: &str, ca_pem: Option<&str>) -> Result<Channel, tonic::transport::Error> {
    Ok(endpoint(addr, Some(ca_pem.unwrap_or_default()))?.connect_lazy())
}

/// The endpoint every client uses for `addr` (`HOST:PORT`, with or without a scheme):
/// cleartext when `tls` is `None`, else TLS trusting the PEM CA in it ("" = the enabled
/// roots). The server name checked is the address's host, a name or an IP address.
pub fn endpoint(addr: &str, tls: Option<&str>) -> Result<Endpoint, tonic::transport::Error> {
    let uri = match tls {
        None => endpoint_uri(addr),
        Some(_) => {
            let hostport = addr
                .trim_start_matches("http://")
                .trim_start_matches("https://");
            format!("https://{hostport}")
        }
    };
    let mut ep = Endpoint::from_shared(uri)?
        .connect_timeout(std::time::Duration::from_secs(2))
        .tcp_nodelay(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW);
    if let Some(ca) = tls {
        let host = ep.uri().host().unwrap_or_default().trim_matches(['[', ']']);
        let mut cfg = ClientTlsConfig::new().domain_name(host);
        cfg = if ca.is_empty() {
            cfg.with_enabled_roots()
        } else {
            cfg.ca_certificate(Certificate::from_pem(ca))
        };
        ep = ep.tls_config(cfg)?;
    }
    Ok(ep)
}

/// A failed call as a person needs it: the status message, then what it says happened below
/// (a lazily connecting channel reports "transport error" and keeps the cause, such as a
/// refused connection or an untrusted certificate, as its source).
pub fn describe(s: &Status) -> String {
    let mut out = s.message().to_string();
    let mut cause = std::error::Error::source(s);
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        cause = c.source();
    }
    out
}
