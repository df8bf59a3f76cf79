//! A TCP proxy a test controls, to cut one process off a backend without touching the shared
//! backend itself: the process connects to the proxy (127.0.0.1, a port the OS picked), the
//! proxy forwards to the backend. `cut()` closes every open connection and stops listening, so
//! new connections are refused as by a backend that is down, until `restore()` listens on the
//! same port again. The proxy runs on its own runtime thread, so that it keeps forwarding while
//! the test's thread blocks (running an administrative command, for example). Dropping the
//! proxy stops it and closes its connections.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::watch;

/// A running proxy to one upstream address.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// True while cut; the listener and every connection task watch it.
    cut: watch::Sender<bool>,
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
        let listening = Arc::new(AtomicBool::new(true));
        let open_connections = Arc::new(AtomicUsize::new(0));
        let state = (Arc::clone(&listening), Arc::clone(&open_connections));
        runtime.spawn(serve(first, addr, upstream, watching, state));
        Proxy { addr, cut, listening, open_connections, runtime: Some(runtime) }
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
    mut cut: watch::Receiver<bool>,
    (listening, open_connections): (Arc<AtomicBool>, Arc<AtomicUsize>),
) {
    let mut listener = Some(first);
    loop {
        listening.store(listener.is_some(), Ordering::SeqCst);
        match listener.take() {
            Some(open) => {
                let for_connections = cut.clone();
                tokio::select! {
                    accepted = open.accept() => {
                        if let Ok((client, _)) = accepted {
                            open_connections.fetch_add(1, Ordering::SeqCst);
                            let done = Arc::clone(&open_connections);
                            tokio::spawn(async move {
                                forward(client, upstream, for_connections).await;
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

/// Copy both ways between `client` and a new connection to `upstream` until either side
/// closes or the proxy is cut (both sockets are then dropped, which closes them).
async fn forward(mut client: TcpStream, upstream: SocketAddr, mut cut: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tokio::select! {
        _ = copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.wait_for(|is_cut| *is_cut) => {}
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
}
