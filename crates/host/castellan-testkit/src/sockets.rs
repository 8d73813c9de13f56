//! Raw sockets for front-door tests: a TCP connection from a chosen loopback address (so that
//! a flood and a legitimate client count against different per-address caps), and whether the
//! server closed a connection.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `to` from the local address `from` (any port), e.g. `127.0.0.2`.
pub async fn tcp_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if from.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// Whether the peer closes (or resets, or refuses with a TLS alert) the stream within `limit`:
/// a read ends with end-of-file or an error rather than waiting.
pub async fn closed_by_peer<S: AsyncRead + Unpin>(stream: &mut S, limit: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(limit, stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}
