//! An HTTP/2 connection's socket as its driver uses it, the same on both sides of the
//! gateway: what arrives is read into the connection, what the connection queued is written
//! out. Nothing is kept between reads but an incomplete frame's bytes.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use h2conn::{Connection, ConnectionError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most read from the socket at once.
const READ_CHUNK: usize = 16 * 1024;

/// One connection's socket and the bytes in flight through it.
pub struct Socket<IO> {
    io: IO,
    /// Bytes read and not yet taken by the connection; empty (unallocated) between reads.
    input: BytesMut,
    /// Written since the last flush.
    unflushed: bool,
    /// The peer has closed its side.
    eof: bool,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Socket<IO> {
    pub fn new(io: IO) -> Self {
        Socket {
            io,
            input: BytesMut::new(),
            unflushed: false,
            eof: false,
        }
    }

    /// Whether the peer has closed its side.
    pub fn eof(&self) -> bool {
        self.eof
    }

    /// Whether everything the connection queued has been written and flushed.
    pub fn written(&self, conn: &Connection) -> bool {
        conn.output().is_empty() && !self.unflushed
    }

    /// Reads what the socket has into `conn`, unless the peer has closed or `conn` wants
    /// nothing more for now. `None` when nothing came; otherwise what `conn` made of it (a
    /// connection error has queued its GOAWAY, and `conn` reports it once that is out).
    pub fn read(
        &mut self,
        cx: &mut Context<'_>,
        conn: &mut Connection,
    ) -> io::Result<Option<Result<(), ConnectionError>>> {
        if self.eof || !conn.wants_read() {
            return Ok(None);
        }
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut buf = ReadBuf::uninit(&mut chunk);
        match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
            Poll::Pending => return Ok(None),
            Poll::Ready(Err(error)) => return Err(error),
            Poll::Ready(Ok(())) => {}
        }
        let filled = buf.filled();
        if filled.is_empty() {
            self.eof = true;
            return Ok(None);
        }
        if self.input.is_empty() {
            self.input = BytesMut::from(filled);
        } else {
            self.input.extend_from_slice(filled);
        }
        let received = conn.recv(&mut self.input);
        if self.input.is_empty() {
            self.input = BytesMut::new();
        }
        Ok(Some(received))
    }

    /// Writes what `conn` has queued, as far as the socket takes it, and flushes; whether
    /// any of it went out.
    pub fn write(&mut self, cx: &mut Context<'_>, conn: &mut Connection) -> io::Result<bool> {
        let mut moved = false;
        while !conn.output().is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, conn.output()) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    conn.advance(n);
                    self.unflushed = true;
                    moved = true;
                }
                Poll::Ready(Err(error)) => return Err(error),
                Poll::Pending => return Ok(moved),
            }
        }
        if self.unflushed {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(error)) => return Err(error),
                Poll::Pending => {}
            }
        }
        Ok(moved)
    }
}
