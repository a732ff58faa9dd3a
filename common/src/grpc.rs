//! gRPC conventions shared by every service: the leader hint and a client channel helper.

use tonic::metadata::MetadataValue;
use tonic::Status;

/// Metadata key a non-leader sets on `UNAVAILABLE` so clients can go to the leader.
pub const LEADER_HINT: &str = "x-tributary-leader";

/// `UNAVAILABLE` carrying the leader's address when one is known.
pub fn not_leader(leader_addr: Option<&str>) -> Status {
    let mut status = Status::unavailable(match leader_addr {
        Some(a) => format!("not the leader; the leader is {a}"),
        None => "no leader elected yet; retry".to_string(),
    });
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

/// `http://addr` unless the address already has a scheme.
pub fn endpoint_uri(addr: &str) -> String {
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// A lazily connecting channel to `addr`.
pub fn channel(addr: &str) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    Ok(tonic::transport::Endpoint::from_shared(endpoint_uri(addr))?
        .connect_timeout(std::time::Duration::from_secs(2))
        .tcp_nodelay(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .connect_lazy())
}

/// A server's accepted connections with Nagle off, as clients have it: a small ack or
/// event is sent at once instead of waiting for the peer's delayed ACK.
pub fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}
