//! The connections a listener admits: at most `max_connections` at once (one more is closed
//! as soon as it is accepted, logged and counted, so a flood cannot take the server's memory
//! or file descriptors), each closed once nothing has arrived on it for `idle_timeout` (a peer
//! that connected and never spoke holds no slot for long). The slot is given back when the
//! connection ends, whoever ends it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Refusals are logged at most this often (with how many there were), not one line each.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Who a listener lets in. Cheap to clone: clones share the slots.
#[derive(Clone)]
pub struct Admission {
    slots: Arc<Semaphore>,
    max: usize,
    idle: Option<Duration>,
    what: &'static str,
    refusals: Arc<Refusals>,
}

#[derive(Default)]
struct Refusals {
    last_log: Mutex<Option<Instant>>,
    unlogged: AtomicU64,
}

impl Admission {
    /// At most `max` connections at once, each closed after `idle` without a byte from its
    /// peer (`None`: never); `what` names the listener in logs and metrics.
    pub fn new(max: usize, idle: Option<Duration>, what: &'static str) -> Admission {
        // Registered at 0, so `rate()` reads the listener before its first refusal.
        metrics::counter!("tributary_connections_refused_total", "listener" => what).increment(0);
        metrics::counter!("tributary_connections_idle_closed_total", "listener" => what)
            .increment(0);
        Admission {
            slots: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
            max,
            idle,
            what,
            refusals: Arc::default(),
        }
    }

    /// `tcp` as an admitted connection, or `None` (and `tcp` closed) when every slot is taken.
    pub fn admit(&self, tcp: TcpStream, peer: SocketAddr) -> Option<Conn> {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            self.refused(peer);
            return None;
        };
        metrics::gauge!("tributary_connections", "listener" => self.what).increment(1.0);
        Some(Conn {
            tcp,
            _slot: Slot {
                _permit: permit,
                what: self.what,
            },
            idle: self.idle.map(|limit| Idle {
                limit,
                last_read: Instant::now(),
                timer: Box::pin(tokio::time::sleep(limit)),
                what: self.what,
            }),
        })
    }

    fn refused(&self, peer: SocketAddr) {
        metrics::counter!("tributary_connections_refused_total", "listener" => self.what)
            .increment(1);
        let unlogged = self.refusals.unlogged.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = crate::sync::lock(&self.refusals.last_log);
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < REFUSAL_LOG_EVERY) {
            return;
        }
        *last = Some(now);
        self.refusals.unlogged.store(0, Ordering::Relaxed);
        tracing::warn!(
            listener = self.what,
            %peer,
            refused = unlogged,
            max_connections = self.max,
            "connection refused: grpc.max_connections reached (count is since the last \
             such line)"
        );
    }
}

/// A connection slot, given back (and the gauge lowered) when the connection is dropped.
struct Slot {
    _permit: OwnedSemaphorePermit,
    what: &'static str,
}

impl Drop for Slot {
    fn drop(&mut self) {
        metrics::gauge!("tributary_connections", "listener" => self.what).decrement(1.0);
    }
}

/// When the peer was last heard from, and a timer for when it would have been silent too long.
struct Idle {
    limit: Duration,
    last_read: Instant,
    timer: Pin<Box<Sleep>>,
    what: &'static str,
}

impl Idle {
    /// Whether nothing has arrived for the limit; if not, the timer wakes the reader when it
    /// would have been.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            let due = self.last_read + self.limit;
            if Instant::now() >= due {
                metrics::counter!("tributary_connections_idle_closed_total", "listener" => self.what)
                    .increment(1);
                return true;
            }
            // A fired timer stays ready: re-arm it, or this would spin.
            if self.timer.deadline() != due || self.timer.is_elapsed() {
                self.timer.as_mut().reset(due);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
        }
    }
}

/// An admitted TCP connection: holds its slot, and ends reads with `TimedOut` once its peer
/// has been silent for the idle timeout (the server then closes it).
pub struct Conn {
    tcp: TcpStream,
    _slot: Slot,
    idle: Option<Idle>,
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let r = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if let Some(idle) = &mut this.idle {
            match r {
                Poll::Ready(Ok(())) if buf.filled().len() > before => {
                    idle.last_read = Instant::now();
                }
                Poll::Pending if idle.expired(cx) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "nothing arrived within grpc.idle_timeout",
                    )));
                }
                _ => {}
            }
        }
        r
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// The TCP connection's info, so `Request::remote_addr` (and, under TLS, `peer_certs`) work
/// as on a bare `TcpStream`.
impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.tcp.connect_info()
    }
}

/// Accepts one connection that `admission` lets in, Nagle off (a small ack or event goes at
/// once instead of waiting for the peer's delayed ACK, as clients have it).
pub async fn accept(listener: &TcpListener, admission: &Admission) -> (Conn, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                if let Some(conn) = admission.admit(tcp, peer) {
                    return (conn, peer);
                }
            }
            Err(e) => {
                // Out of file descriptors, typically: wait for some to close.
                tracing::warn!(listener = admission.what, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A cleartext listener's admitted connections.
pub fn incoming(
    listener: TcpListener,
    admission: Admission,
) -> impl futures::Stream<Item = io::Result<Conn>> + Send {
    futures::stream::unfold((listener, admission), |(listener, admission)| async move {
        let (conn, _) = accept(&listener, &admission).await;
        Some((Ok(conn), (listener, admission)))
    })
}
