//! A connection whose first bytes were read to learn what it is (a PROXY protocol header,
//! the HTTP/2 preface), then handed on with those bytes still to be read.
//!
//! The first bytes are *read*, not peeked at: a peek returns whatever the socket holds at
//! once, the same bytes again and again when nothing new arrives (and never 0 while
//! unread bytes sit before the peer's FIN), so waiting for more by peeking is a busy loop
//! that no deadline around it can interrupt. A read waits for new bytes, and returns 0 at
//! the end of the stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// Most bytes read ahead: the longest thing read before HTTP starts is a PROXY v2 header
/// (16 bytes and up to 2048 of addresses and TLVs).
const MAX_AHEAD: usize = 4096;

/// A stream with bytes read ahead of whoever reads it next, who gets them first.
pub struct ReadAhead<IO> {
    io: IO,
    ahead: Vec<u8>,
    /// How much of `ahead` was already handed on.
    start: usize,
}

impl<IO> ReadAhead<IO> {
    /// Wraps `io` with nothing read ahead yet.
    pub fn new(io: IO) -> Self {
        ReadAhead {
            io,
            ahead: Vec::new(),
            start: 0,
        }
    }

    /// The bytes read ahead and not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.ahead[self.start..]
    }

    /// Marks the first `n` buffered bytes as used up (a PROXY header the next reader must
    /// not see).
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.ahead.len());
        if self.start == self.ahead.len() {
            self.ahead = Vec::new();
            self.start = 0;
        }
    }

    /// The stream beneath.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }
}

impl<IO: AsyncRead + Unpin> ReadAhead<IO> {
    /// Waits for more bytes and appends them to the buffered ones; `Ok(0)` when the peer
    /// closed its side (or the read-ahead bound is reached, which callers treat alike:
    /// nothing more will tell them what the connection is).
    pub async fn read_more(&mut self) -> io::Result<usize> {
        let room = MAX_AHEAD.saturating_sub(self.ahead.len());
        if room == 0 {
            return Ok(0);
        }
        // Straight into the buffer's spare room: a chunk on the stack would be part of the
        // connection task's largest state, whose size the task keeps while it lives.
        let want = room.min(1024);
        self.ahead.reserve(want);
        (&mut self.io)
            .take(want as u64)
            .read_buf(&mut self.ahead)
            .await
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for ReadAhead<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start < this.ahead.len() {
            let n = (this.ahead.len() - this.start).min(buf.remaining());
            buf.put_slice(&this.ahead[this.start..this.start + n]);
            this.consume(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for ReadAhead<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// What an HTTP/2 client with prior knowledge sends first (RFC 9113 3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The HTTP version a clear-text connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// HTTP/1.x.
    Http1,
    /// HTTP/2 with prior knowledge (h2c).
    Http2,
}

/// Tells HTTP/1.1 from HTTP/2 by the first bytes, which stay buffered for the HTTP server.
/// `None` when the client closes (or fails) before its bytes tell; the caller bounds the
/// wait with a deadline, which fires because every wait here is a read.
pub async fn sniff<IO: AsyncRead + Unpin>(io: &mut ReadAhead<IO>) -> Option<Wire> {
    loop {
        let seen = io.buffered();
        let n = seen.len().min(PREFACE.len());
        if seen[..n] != PREFACE[..n] {
            return Some(Wire::Http1);
        }
        if n == PREFACE.len() {
            return Some(Wire::Http2);
        }
        match io.read_more().await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn sniffed_bytes_are_read_again_by_the_next_reader() {
        let (mut client, server) = tokio::io::duplex(64);
        client
            .write_all(b"GET / HTTP/1.1\r\n")
            .await
            .expect("write");
        let mut io = ReadAhead::new(server);
        assert_eq!(sniff(&mut io).await, Some(Wire::Http1));
        drop(client);
        let mut all = Vec::new();
        io.read_to_end(&mut all).await.expect("read");
        assert_eq!(all, b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn the_preface_is_told_even_when_it_arrives_byte_by_byte() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut io = ReadAhead::new(server);
        let sniffing = tokio::spawn(async move { (sniff(&mut io).await, io) });
        for byte in PREFACE.iter() {
            client.write_all(&[*byte]).await.expect("write");
            tokio::task::yield_now().await;
        }
        let (wire, io) = sniffing.await.expect("sniff task");
        assert_eq!(wire, Some(Wire::Http2));
        assert_eq!(io.buffered(), PREFACE);
    }

    #[tokio::test]
    async fn a_partial_preface_then_close_ends_the_sniff() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b"PRI").await.expect("write");
        drop(client);
        let mut io = ReadAhead::new(server);
        let sniffed = tokio::time::timeout(Duration::from_secs(1), sniff(&mut io)).await;
        assert_eq!(
            sniffed.ok(),
            Some(None),
            "EOF after a partial preface ends at once"
        );
    }

    #[tokio::test]
    async fn a_partial_preface_then_silence_is_ended_by_the_callers_deadline() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b"PRI").await.expect("write");
        let mut io = ReadAhead::new(server);
        let sniffed = tokio::time::timeout(Duration::from_millis(100), sniff(&mut io)).await;
        assert!(sniffed.is_err(), "the deadline fired");
        drop(client);
    }
}
