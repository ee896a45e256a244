//! HTTP/2 keep-alive: a PING at an interval, each to be answered within a timeout, for
//! the connections on both sides of the gateway (a client's that went silent, an
//! endpoint's that died without a reset) so that a dead peer is noticed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// What the keep-alive timer came to.
pub enum Beat {
    /// Time to send a PING.
    Ping,
    /// The last PING went unanswered for the timeout.
    Expired,
}

/// PINGs at an interval, each to be answered within a timeout.
pub struct KeepAlive {
    every: Duration,
    timeout: Duration,
    /// The next PING while none is out; the deadline for its answer while one is.
    timer: Pin<Box<Sleep>>,
    awaiting: bool,
}

impl KeepAlive {
    /// The first PING goes out after `every`.
    pub fn new(every: Duration, timeout: Duration) -> Self {
        KeepAlive {
            every,
            timeout,
            timer: Box::pin(tokio::time::sleep(every)),
            awaiting: false,
        }
    }

    /// The peer answered: the next PING is due `every` from now.
    pub fn answered(&mut self) {
        if self.awaiting {
            self.awaiting = false;
            self.timer.as_mut().reset(Instant::now() + self.every);
        }
    }

    /// Ready when a PING is due, or when the one out went unanswered too long.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Beat> {
        ready!(self.timer.as_mut().poll(cx));
        if self.awaiting {
            return Poll::Ready(Beat::Expired);
        }
        self.awaiting = true;
        self.timer.as_mut().reset(Instant::now() + self.timeout);
        Poll::Ready(Beat::Ping)
    }
}
