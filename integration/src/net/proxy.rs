//! One directed link: a TCP proxy on `127.0.0.1:0` that forwards to its upstream server and
//! misbehaves on demand. It holds its listener for its whole life, so the address servers were
//! configured with stays valid while the server behind it restarts on another port.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tributary_common::task::AbortOnDrop;

/// What a link does to the bytes offered to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwards at once.
    Pass,
    /// Forwards each chunk this long after it arrived (latency, not a bandwidth cap).
    Delay(Duration),
    /// At most this many bytes per second each way: a slow link, so a bulk copy is surely
    /// still going when the test looks.
    Throttle(u64),
    /// Connections stay open and new ones are accepted, but no byte flows either way: a
    /// silently dead network, which only timeouts and heartbeats notice. Bytes already
    /// taken are held and delivered after a heal, as TCP would retransmit them.
    Blackhole,
    /// Open connections are closed and new ones closed at once: a partition both ends see.
    Cut,
}

/// How long the proxy waits for its upstream to accept.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const CHUNK: usize = 64 << 10;
/// Chunks in flight per direction while delayed.
const IN_FLIGHT: usize = 1024;

struct Shared {
    mode: watch::Sender<Mode>,
    upstream: watch::Sender<Option<SocketAddr>>,
    bytes: AtomicU64,
    connections: AtomicU64,
}

/// A running proxy; dropping it closes the listener and every connection through it.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _accept: AbortOnDrop<()>,
}

impl Proxy {
    /// Binds `127.0.0.1:0`; until an upstream is set, connections are accepted and closed.
    pub async fn bind(upstream: Option<SocketAddr>) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            mode: watch::Sender::new(Mode::Pass),
            upstream: watch::Sender::new(upstream),
            bytes: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Proxy {
            addr,
            shared,
            _accept: AbortOnDrop(accept),
        })
    }

    /// The address servers are given instead of the upstream's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.send_replace(mode);
    }

    pub fn mode(&self) -> Mode {
        *self.shared.mode.borrow()
    }

    /// Where new connections go (a restarted server's new port); open ones stay where they are.
    pub fn set_upstream(&self, upstream: Option<SocketAddr>) {
        self.shared.upstream.send_replace(upstream);
    }

    /// Bytes forwarded so far, both directions.
    pub fn bytes(&self) -> u64 {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    /// Connections that reached the upstream so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Owned here, so aborting this loop (the proxy dropped) ends every connection too.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    conns.spawn(connection(client, shared.clone()));
                }
                // Out of descriptors, say: the next accept may work.
                Err(e) => {
                    tracing::warn!(error = %e, "proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn connection(client: TcpStream, shared: Arc<Shared>) {
    let mut mode = shared.mode.subscribe();
    if *mode.borrow_and_update() == Mode::Cut {
        return;
    }
    let Some(up) = *shared.upstream.borrow() else {
        return;
    };
    let server = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(up)).await {
        Ok(Ok(s)) => s,
        // The server is down: the client sees its connection closed, as it would a refusal.
        _ => return,
    };
    shared.connections.fetch_add(1, Ordering::Relaxed);
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let both = async {
        tokio::try_join!(
            direction(cr, sw, &shared, shared.mode.subscribe()),
            direction(sr, cw, &shared, shared.mode.subscribe()),
        )
    };
    tokio::select! {
        _ = both => {}
        _ = mode.wait_for(|m| *m == Mode::Cut) => {}
    }
}

/// Waits until the link lets bytes through and returns how; `Err` once it is cut.
async fn open(mode: &mut watch::Receiver<Mode>) -> std::io::Result<Mode> {
    let m = *mode
        .wait_for(|m| *m != Mode::Blackhole)
        .await
        .map_err(|_| std::io::Error::other("proxy stopped"))?;
    match m {
        Mode::Cut => Err(std::io::Error::other("link cut")),
        m => Ok(m),
    }
}

/// Copies one direction: a reader stamps each chunk with when it may go, a writer sends it
/// then, so a delay adds latency without capping throughput.
async fn direction(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    shared: &Shared,
    mode: watch::Receiver<Mode>,
) -> std::io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let mut read_mode = mode.clone();
    let reader = async move {
        loop {
            let mode = open(&mut read_mode).await?;
            let mut buf = vec![0u8; CHUNK];
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            buf.truncate(n);
            shared.bytes.fetch_add(n as u64, Ordering::Relaxed);
            let delay = match mode {
                Mode::Delay(d) => d,
                Mode::Throttle(rate) => {
                    // Held (and nothing more read) for these bytes' share of a second.
                    let share = Duration::from_secs_f64(n as f64 / rate.max(1) as f64);
                    tokio::time::sleep(share).await;
                    Duration::ZERO
                }
                _ => Duration::ZERO,
            };
            if tx.send((Instant::now() + delay, buf)).await.is_err() {
                return Ok(());
            }
        }
    };
    let mut write_mode = mode;
    let writer = async move {
        while let Some((due, buf)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            // A chunk taken just before a blackhole waits for the heal like the rest.
            open(&mut write_mode).await?;
            to.write_all(&buf).await?;
        }
        // The sender finished: pass the half-close on.
        to.shutdown().await
    };
    tokio::try_join!(reader, writer).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> (SocketAddr, AbortOnDrop<()>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        (addr, AbortOnDrop(task))
    }

    async fn roundtrip(s: &mut TcpStream, msg: &[u8], within: Duration) -> bool {
        if s.write_all(msg).await.is_err() {
            return false;
        }
        let mut got = vec![0u8; msg.len()];
        matches!(
            tokio::time::timeout(within, s.read_exact(&mut got)).await,
            Ok(Ok(_))
        ) && got == msg
    }

    #[tokio::test]
    async fn pass_blackhole_heal_cut_and_a_new_upstream() {
        let (echo, _e) = echo_server().await;
        let p = Proxy::bind(Some(echo)).await.unwrap();
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        assert!(roundtrip(&mut s, b"hello", Duration::from_secs(5)).await);
        assert_eq!(p.connections(), 1);
        assert_eq!(p.bytes(), 10);

        // Blackhole: the connection stays open, nothing comes back; a heal delivers it.
        p.set_mode(Mode::Blackhole);
        s.write_all(b"held").await.unwrap();
        let mut got = [0u8; 4];
        let r = tokio::time::timeout(Duration::from_millis(300), s.read_exact(&mut got)).await;
        assert!(r.is_err(), "bytes crossed a blackhole");
        p.set_mode(Mode::Pass);
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&got, b"held");

        // Cut: the open connection is closed, and so is every new one.
        p.set_mode(Mode::Cut);
        let mut one = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut one)).await;
        assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "{r:?}");
        let mut s2 = TcpStream::connect(p.addr()).await.unwrap();
        assert!(!roundtrip(&mut s2, b"x", Duration::from_secs(5)).await);

        // Healed, towards a different server on another port.
        let (echo2, _e2) = echo_server().await;
        p.set_upstream(Some(echo2));
        p.set_mode(Mode::Pass);
        let mut s3 = TcpStream::connect(p.addr()).await.unwrap();
        assert!(roundtrip(&mut s3, b"again", Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn delay_holds_each_chunk_back() {
        let (echo, _e) = echo_server().await;
        let p = Proxy::bind(Some(echo)).await.unwrap();
        p.set_mode(Mode::Delay(Duration::from_millis(200)));
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        let t = std::time::Instant::now();
        assert!(roundtrip(&mut s, b"slow", Duration::from_secs(10)).await);
        // Both directions are delayed: at least twice the delay, whatever the load.
        assert!(
            t.elapsed() >= Duration::from_millis(400),
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test]
    async fn throttle_caps_the_rate() {
        let (echo, _e) = echo_server().await;
        let p = Proxy::bind(Some(echo)).await.unwrap();
        p.set_mode(Mode::Throttle(100_000));
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        let t = std::time::Instant::now();
        let msg = vec![7u8; 50_000];
        assert!(roundtrip(&mut s, &msg, Duration::from_secs(30)).await);
        // 50 kB at 100 kB/s, each way: never faster than the cap allows.
        assert!(
            t.elapsed() >= Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test]
    async fn no_upstream_closes_connections() {
        let p = Proxy::bind(None).await.unwrap();
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        assert!(!roundtrip(&mut s, b"x", Duration::from_secs(5)).await);
        assert_eq!(p.connections(), 0);
    }
}
