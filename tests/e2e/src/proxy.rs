//! A TCP proxy a test controls, to cut one process off a backend without touching the shared
//! backend itself: the process connects to the proxy (127.0.0.1, a port the OS picked), the
//! proxy forwards to the backend. `cut()` closes every open connection and refuses new ones
//! (accepted and closed at once) until `restore()`. Dropping the proxy stops it and closes its
//! connections.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy to one upstream address.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// True while cut; every connection task watches it.
    cut: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listen on 127.0.0.1, on a port the OS picks, and forward to `upstream` (a loopback
    /// address of a backend).
    pub async fn start(upstream: SocketAddr) -> Proxy {
        assert!(upstream.ip().is_loopback(), "the proxy only forwards to loopback addresses");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the proxy on 127.0.0.1:0");
        let addr = listener.local_addr().expect("the proxy's address");
        let (cut, watching) = watch::channel(false);
        let watching = Arc::new(watching);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                if *watching.borrow() {
                    drop(client); // refused while cut
                    continue;
                }
                tokio::spawn(forward(client, upstream, watching.as_ref().clone()));
            }
        });
        Proxy { addr, cut, accept }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Close every open connection and refuse new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Accept and forward connections again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }

    pub fn is_cut(&self) -> bool {
        *self.cut.borrow()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut.send_replace(true);
        self.accept.abort();
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
        let proxy = Proxy::start(echo().await).await;
        let mut before = TcpStream::connect(proxy.addr).await.unwrap();
        assert_eq!(round_trip(&mut before).await.unwrap(), b"ping");

        proxy.cut();
        assert!(proxy.is_cut());
        assert!(round_trip(&mut before).await.is_err(), "an open connection survived the cut");
        let mut during = TcpStream::connect(proxy.addr).await.unwrap();
        assert!(round_trip(&mut during).await.is_err(), "a new connection was forwarded while cut");

        proxy.restore();
        let mut after = TcpStream::connect(proxy.addr).await.unwrap();
        assert_eq!(round_trip(&mut after).await.unwrap(), b"ping");
    }
}
