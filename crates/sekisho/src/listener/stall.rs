//! Bounding how long a response may wait on a client that does not take it: the
//! listener's `send_timeout`, as nginx's.
//!
//! A client that asks for a large response and then stops reading its socket (HTTP/1.1)
//! or stops opening its stream's window (HTTP/2) would otherwise hold the upstream
//! request, the backend's work and the gateway's buffers for as long as it likes: the
//! slow-read attack. Each wait for the client to take more of a response is bounded; the
//! count starts again whenever the client takes something, so a slow reader is not cut,
//! only one that stopped. No timer is made while writes go straight through, which is
//! nearly always.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;
use tokio::time::Sleep;

/// One response's wait for its client, armed only when the client does not take what is
/// offered.
pub struct Stall {
    limit: Option<Duration>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Stall {
    /// A wait bounded by `limit`; `None`: unbounded.
    pub fn new(limit: Option<Duration>) -> Self {
        Stall { limit, timer: None }
    }

    /// The client took something: the next wait is counted afresh.
    pub fn moved(&mut self) {
        self.timer = None;
    }

    /// The client is not taking anything: ready once that has lasted the limit.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<Stalled> {
        let Some(limit) = self.limit else {
            return Poll::Pending;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        timer.as_mut().poll(cx).map(|()| Stalled(limit))
    }
}

/// A response was cut because its client took nothing of it for `send_timeout`.
#[derive(Debug)]
pub struct Stalled(pub Duration);

impl fmt::Display for Stalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the client took nothing of the response for {:?} (send_timeout)",
            self.0
        )
    }
}

impl std::error::Error for Stalled {}

impl Stalled {
    /// The [`Stalled`] a write was given up on for, if `error` is one.
    pub fn of(error: &io::Error) -> Option<&Stalled> {
        error.get_ref()?.downcast_ref::<Stalled>()
    }
}

thread_local! {
    /// Set while the body of a response cut by [`cut`] is dropped.
    static CUT: Cell<Option<Duration>> = const { Cell::new(None) };
}

/// Drops `body`, a response cut for `stalled`. The request's record, which the body holds
/// and which is finished as it drops, asks [`cut_for`] why the response ended early; a
/// dropped body does not otherwise say why it was dropped.
pub fn cut<B>(body: B, stalled: &Stalled) {
    CUT.set(Some(stalled.0));
    drop(body);
    CUT.set(None);
}

/// Why the response being dropped was cut, while [`cut`] drops it.
pub fn cut_for() -> Option<Stalled> {
    CUT.get().map(Stalled)
}

/// A connection's writing side whose writes fail with [`Stalled`] once one has waited
/// for the client for the limit.
pub struct Paced<'a, W> {
    io: &'a mut W,
    stall: Stall,
}

impl<'a, W> Paced<'a, W> {
    /// Writes to `io`, each wait bounded by `limit`.
    pub fn new(io: &'a mut W, limit: Option<Duration>) -> Self {
        Paced {
            io,
            stall: Stall::new(limit),
        }
    }

    fn waited<T>(
        &mut self,
        cx: &mut Context<'_>,
        done: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match done {
            Poll::Ready(result) => {
                self.stall.moved();
                Poll::Ready(result)
            }
            Poll::Pending => self
                .stall
                .poll_expired(cx)
                .map(|stalled| Err(io::Error::new(io::ErrorKind::TimedOut, stalled))),
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Paced<'_, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let done = Pin::new(&mut *this.io).poll_write(cx, buf);
        this.waited(cx, done)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let done = Pin::new(&mut *this.io).poll_flush(cx);
        this.waited(cx, done)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_write_the_reader_never_takes_fails_after_the_limit() {
        // A pipe whose reader holds 16 bytes and never reads them.
        let (mut writer, _reader) = tokio::io::duplex(16);
        let mut paced = Paced::new(&mut writer, Some(Duration::from_millis(50)));
        let started = tokio::time::Instant::now();
        let error = paced
            .write_all(&[0; 64])
            .await
            .expect_err("the write stalls");
        assert!(Stalled::of(&error).is_some(), "{error}");
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_slow_reader_is_not_cut_while_it_keeps_reading() {
        let (mut writer, mut reader) = tokio::io::duplex(16);
        let drain = tokio::spawn(async move {
            let mut buf = [0; 8];
            let mut total = 0;
            while total < 256 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                total += tokio::io::AsyncReadExt::read(&mut reader, &mut buf)
                    .await
                    .expect("read");
            }
        });
        // Each wait is shorter than the limit, though the whole write takes longer.
        let mut paced = Paced::new(&mut writer, Some(Duration::from_millis(100)));
        paced
            .write_all(&[0; 256])
            .await
            .expect("the slow reader takes it all");
        drain.await.expect("reader");
    }

    #[tokio::test]
    async fn without_a_limit_a_stalled_write_waits() {
        let (mut writer, _reader) = tokio::io::duplex(16);
        let mut paced = Paced::new(&mut writer, None);
        let waited =
            tokio::time::timeout(Duration::from_millis(100), paced.write_all(&[0; 64])).await;
        assert!(waited.is_err(), "still waiting");
    }
}
