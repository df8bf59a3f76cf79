//! A TCP proxy a test controls, to cut one process off a backend without touching the shared
//! backend itself: the process connects to the proxy (127.0.0.1, a port the OS picked), the
//! proxy forwards to the backend. `cut()` closes every open connection and stops listening, so
//! new connections are refused as by a backend that is down, until `restore()` listens on the
//! same port again. The proxy runs on its own runtime thread, so that it keeps forwarding while
//! the test's thread blocks (running an administrative command, for example). Dropping the
//! proxy stops it and closes its connections.
//!
//! `slow(delay)` makes the link slow instead of down: from then on until `fast()`, every chunk
//! read from either side is written to the other `delay` after it was read (a long wire: the
//! latency grows, the chunks keep their order, and data keeps being read while earlier chunks
//! wait, so a burst costs one `delay`, not one per chunk). Each direction of a connection holds
//! at most [`IN_FLIGHT_CHUNKS`] chunks of [`CHUNK_BYTES`]; when they are all waiting the proxy
//! stops reading that side, and TCP's flow control pushes back on the sender. The delay applies
//! to open connections and to chunks already waiting: `fast()` releases them at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};

/// The most bytes one read of a slowed direction takes (the size of a chunk).
pub const CHUNK_BYTES: usize = 16 * 1024;

/// The most chunks a direction of a connection holds while they wait out the delay.
pub const IN_FLIGHT_CHUNKS: usize = 64;

/// A running proxy to one upstream address.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// True while cut; the listener and every connection task watch it.
    cut: watch::Sender<bool>,
    /// How long each chunk waits before it is forwarded (zero unless slowed); every connection
    /// task watches it.
    delay: watch::Sender<Duration>,
    /// Whether the proxy's port is open now (set by the task that owns the listener).
    listening: Arc<AtomicBool>,
    /// Connections being forwarded now.
    open_connections: Arc<AtomicUsize>,
    /// The proxy's own runtime; `None` once dropped.
    runtime: Option<Runtime>,
}

/// Listen on `addr` (the proxy's port, again after a cut: `SO_REUSEADDR` lets the port be
/// bound while closed connections of the last listener linger).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

impl Proxy {
    /// Listen on 127.0.0.1, on a port the OS picks, and forward to `upstream` (a loopback
    /// address of a backend).
    pub fn start(upstream: SocketAddr) -> Proxy {
        assert!(upstream.ip().is_loopback(), "the proxy only forwards to loopback addresses");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("e2e-proxy")
            .enable_all()
            .build()
            .expect("the proxy's runtime");
        let first = {
            let _inside = runtime.enter();
            listen(SocketAddr::from(([127, 0, 0, 1], 0))).expect("binding the proxy on 127.0.0.1:0")
        };
        let addr = first.local_addr().expect("the proxy's address");
        let (cut, watching) = watch::channel(false);
        let (delay, delays) = watch::channel(Duration::ZERO);
        let listening = Arc::new(AtomicBool::new(true));
        let open_connections = Arc::new(AtomicUsize::new(0));
        let state = (Arc::clone(&listening), Arc::clone(&open_connections));
        runtime.spawn(serve(first, addr, upstream, (watching, delays), state));
        Proxy { addr, cut, delay, listening, open_connections, runtime: Some(runtime) }
    }

    /// Wait (5 s at most) until the port is open, or closed with no connection left.
    fn settle(&self, open: bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let settled = || {
            let listening = self.listening.load(Ordering::SeqCst);
            if open {
                listening
            } else {
                !listening && self.open_connections.load(Ordering::SeqCst) == 0
            }
        };
        while !settled() {
            assert!(Instant::now() < deadline, "the proxy did not {} in 5 s", if open { "open" } else { "close" });
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many connections the proxy forwards now (a process reaching its backend through the
    /// proxy holds at least one).
    pub fn connections(&self) -> usize {
        self.open_connections.load(Ordering::SeqCst)
    }

    /// Close every open connection and refuse new ones; returns once all are closed.
    pub fn cut(&self) {
        self.cut.send_replace(true);
        self.settle(false);
    }

    /// Listen and forward again, on the same port; returns once it listens.
    pub fn restore(&self) {
        self.cut.send_replace(false);
        self.settle(true);
    }

    pub fn is_cut(&self) -> bool {
        *self.cut.borrow()
    }

    /// Forward every chunk, both ways, `delay` after it was read, until `fast()`: on open
    /// connections too, and for chunks already waiting. Returns at once.
    pub fn slow(&self, delay: Duration) {
        self.delay.send_replace(delay);
    }

    /// Forward without delay again; chunks waiting out a delay go at once.
    pub fn fast(&self) {
        self.delay.send_replace(Duration::ZERO);
    }

    /// The delay each chunk waits now (zero unless slowed).
    pub fn delay(&self) -> Duration {
        *self.delay.borrow()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut.send_replace(true);
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Accept and forward until cut; closed while cut; listening again on `addr` when restored.
async fn serve(
    first: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    (mut cut, delay): (watch::Receiver<bool>, watch::Receiver<Duration>),
    (listening, open_connections): (Arc<AtomicBool>, Arc<AtomicUsize>),
) {
    let mut listener = Some(first);
    loop {
        listening.store(listener.is_some(), Ordering::SeqCst);
        match listener.take() {
            Some(open) => {
                let for_connections = (cut.clone(), delay.clone());
                tokio::select! {
                    accepted = open.accept() => {
                        if let Ok((client, _)) = accepted {
                            open_connections.fetch_add(1, Ordering::SeqCst);
                            let done = Arc::clone(&open_connections);
                            tokio::spawn(async move {
                                let (cut, delay) = for_connections;
                                forward(client, upstream, cut, delay).await;
                                done.fetch_sub(1, Ordering::SeqCst);
                            });
                        }
                        listener = Some(open);
                    }
                    _ = cut.wait_for(|is_cut| *is_cut) => {}
                }
            }
            None => {
                if cut.wait_for(|is_cut| !*is_cut).await.is_err() {
                    return; // the proxy is gone
                }
                // The port is ours; binding it again can fail only for a moment.
                while listener.is_none() {
                    match listen(addr) {
                        Ok(open) => listener = Some(open),
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            }
        }
    }
}

/// Copy both ways between `client` and a new connection to `upstream` (each chunk after the
/// delay of the moment) until both sides have closed, either fails, or the proxy is cut (both
/// sockets are then dropped, which closes them).
async fn forward(
    client: TcpStream,
    upstream: SocketAddr,
    mut cut: watch::Receiver<bool>,
    delay: watch::Receiver<Duration>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (from_client, to_client) = client.into_split();
    let (from_server, to_server) = server.into_split();
    let both_ways =
        async { tokio::try_join!(pipe(from_client, to_server, delay.clone()), pipe(from_server, to_client, delay)) };
    tokio::select! {
        _ = both_ways => {}
        _ = cut.wait_for(|is_cut| *is_cut) => {}
    }
}

/// Copy one direction: a reader takes chunks as they come (while fewer than
/// [`IN_FLIGHT_CHUNKS`] wait) and a writer forwards each once it has waited out the delay, in
/// order. At the reader's end of stream the writer forwards what is left and shuts its side
/// down (a half close, as the peer did).
async fn pipe(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut delay: watch::Receiver<Duration>,
) -> std::io::Result<()> {
    let (waiting, mut due) = mpsc::channel::<(Vec<u8>, tokio::time::Instant)>(IN_FLIGHT_CHUNKS);
    let read = async move {
        loop {
            let mut chunk = vec![0; CHUNK_BYTES];
            let n = from.read(&mut chunk).await?;
            if n == 0 {
                return Ok(()); // dropping `waiting` ends the writer once it has forwarded the rest
            }
            chunk.truncate(n);
            if waiting.send((chunk, tokio::time::Instant::now())).await.is_err() {
                return Ok(()); // the writer failed; its error ends the pipe
            }
        }
    };
    let write = async move {
        while let Some((chunk, read_at)) = due.recv().await {
            wait_out(read_at, &mut delay).await;
            to.write_all(&chunk).await?;
        }
        to.shutdown().await
    };
    tokio::try_join!(read, write).map(|_| ())
}

/// Wait until `read_at` plus the delay, as the delay is now and as it changes meanwhile.
async fn wait_out(read_at: tokio::time::Instant, delay: &mut watch::Receiver<Duration>) {
    loop {
        let until = read_at + *delay.borrow_and_update();
        if tokio::time::Instant::now() >= until {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep_until(until) => return,
            changed = delay.changed() => {
                if changed.is_err() {
                    return; // the proxy is gone; its cut closes the connection
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// An echo server on 127.0.0.1 that answers each read with the same bytes.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 256];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
        stream.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_exact(&mut buf)).await;
        read.map_err(|_| std::io::Error::other("timeout"))??;
        Ok(buf.to_vec())
    }

    #[tokio::test]
    async fn a_cut_closes_connections_and_refuses_new_ones_until_restored() {
        let proxy = Proxy::start(echo().await);
        let mut before = TcpStream::connect(proxy.addr).await.unwrap();
        assert_eq!(round_trip(&mut before).await.unwrap(), b"ping");

        proxy.cut();
        assert!(proxy.is_cut());
        assert!(round_trip(&mut before).await.is_err(), "an open connection survived the cut");
        assert!(TcpStream::connect(proxy.addr).await.is_err(), "a new connection was accepted while cut");

        proxy.restore();
        let mut after = TcpStream::connect(proxy.addr).await.unwrap();
        assert_eq!(round_trip(&mut after).await.unwrap(), b"ping");
    }

    #[tokio::test]
    async fn a_slow_proxy_delays_both_ways_on_open_connections_until_fast_again() {
        let proxy = Proxy::start(echo().await);
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        let started = Instant::now();
        assert_eq!(round_trip(&mut stream).await.unwrap(), b"ping");
        assert!(started.elapsed() < Duration::from_millis(300), "fast: {:?}", started.elapsed());

        // Slowed on the open connection: the ping waits going out, the echo coming back.
        proxy.slow(Duration::from_millis(400));
        assert_eq!(proxy.delay(), Duration::from_millis(400));
        let started = Instant::now();
        assert_eq!(round_trip(&mut stream).await.unwrap(), b"ping");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(800), "a round trip through the slow proxy took {took:?}");
        assert!(took < Duration::from_secs(3), "a round trip through the slow proxy took {took:?}");

        // A burst costs one delay, not one per chunk, and keeps its order.
        let started = Instant::now();
        let burst: Vec<u8> = (0..20u8).flat_map(|i| [i; 100]).collect();
        for piece in burst.chunks(100) {
            stream.write_all(piece).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut back = vec![0; burst.len()];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut back)).await.unwrap().unwrap();
        assert_eq!(back, burst);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "20 chunks through the slow proxy took {took:?}");

        // Fast again: what waits goes at once.
        proxy.slow(Duration::from_secs(60));
        stream.write_all(b"ping").await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        proxy.fast();
        let mut buf = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf, b"ping");
        assert!(started.elapsed() < Duration::from_millis(500), "released in {:?}", started.elapsed());
        assert_eq!(proxy.delay(), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_slow_proxy_can_still_be_cut() {
        let proxy = Proxy::start(echo().await);
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        proxy.slow(Duration::from_secs(60));
        stream.write_all(b"ping").await.unwrap();
        proxy.cut();
        assert!(round_trip(&mut stream).await.is_err(), "an open connection survived the cut");
        proxy.restore();
        proxy.fast();
        let mut after = TcpStream::connect(proxy.addr).await.unwrap();
        assert_eq!(round_trip(&mut after).await.unwrap(), b"ping");
    }
}
