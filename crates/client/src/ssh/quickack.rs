//! A TCP stream that acknowledges what it receives at once.
//!
//! OpenSSH's sshd turns Nagle's algorithm off only for interactive sessions (a pty), not for
//! the forwarded channel our gRPC runs in. A gRPC answer is several small writes (HEADERS,
//! DATA, trailers); sshd sends the first, and Nagle holds the next until the first is
//! acknowledged, which a Linux receiver delays by up to 40 ms or more ("delayed ACK"). Every
//! call then stalls. Re-arming `TCP_QUICKACK` after each read makes this side acknowledge
//! immediately, so sshd's next segment leaves at once. (The kernel clears quick-ack mode by
//! itself, hence after every read; one setsockopt, about a microsecond.)

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// [`TcpStream`] with `TCP_QUICKACK` re-armed after every read.
#[derive(Debug)]
pub struct QuickAckStream {
    inner: TcpStream,
}

impl QuickAckStream {
    /// Wraps `inner` (and arms quick ACKs for the first segment).
    pub fn new(inner: TcpStream) -> Self {
        let s = Self { inner };
        s.arm();
        s
    }

    fn arm(&self) {
        // Best effort: a kernel without TCP_QUICKACK only loses the speed-up.
        let _ = socket2::SockRef::from(&self.inner).set_tcp_quickack(true);
    }
}

impl AsyncRead for QuickAckStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            this.arm();
        }
        r
    }
}

impl AsyncWrite for QuickAckStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn carries_bytes_both_ways() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).await.unwrap();
            s.write_all(&b).await.unwrap();
        });
        let mut c = QuickAckStream::new(TcpStream::connect(addr).await.unwrap());
        c.write_all(b"ping").await.unwrap();
        let mut b = [0u8; 4];
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"ping");
        assert!(socket2::SockRef::from(&c.inner).tcp_quickack().unwrap());
        server.await.unwrap();
    }
}
