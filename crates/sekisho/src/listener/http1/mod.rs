//! The gateway's HTTP/1.1 server: one client connection, one request at a time.
//!
//! Written here rather than taken from hyper for what an edge proxy holds per connection:
//! between requests a connection holds its stream and nothing else (no read or write
//! buffer: the next head is read through a buffer on the stack, and only a head that
//! arrives is given memory of its own), so ten thousand idle keep-alive connections cost
//! little more than their sockets. Having the client's bytes in hand also lets the
//! gateway see what hyper hides: the `#fragment` of a target and the head it refused,
//! both logged.
//!
//! A request's body owns the connection's read side while it is read ([`body`]); the
//! response is written while the request path runs ([`response`]). Pipelined requests
//! are served in order. A client that closes its connection while its request is in
//! flight cancels the request, as a reset stream does on HTTP/2.

pub mod body;
mod head;
mod response;

use std::convert::Infallible;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response, Version};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::idle::{BodyIdleTimeout, Tracked};
use super::refusal;
use super::stall::{self, Paced, Stalled};
use super::wait_list::{Waiter, Woke};
use crate::body::{Body, ClientBody};
use crate::heap;
use crate::observe::metrics;
use crate::proxy::{self, Downstream};
use body::{Home, Inbound, RequestBody};
use head::{Framing, Head, Refusal};
use response::Reply;

/// Bytes read at once while waiting for a head; a buffer on the stack, so a connection
/// that waits holds none.
const HEAD_READ: usize = 4096;
/// How long a closing connection may take to say goodbye (a TLS `close_notify`).
const GOODBYE: Duration = Duration::from_secs(5);

/// The bounds one connection's requests are kept in.
pub struct Limits {
    /// Largest head, in bytes (`http1.max_header_bytes`).
    pub max_head: usize,
    /// Time for each head to arrive, counted from the end of the previous response.
    pub header_read_timeout: Option<Duration>,
    /// How long a request body may be silent.
    pub body_idle: Option<Duration>,
    /// How long a response may wait for the client to take any of it.
    pub send_timeout: Option<Duration>,
}

/// Serves HTTP/1.1 on `io` until the client leaves, a request ends it, or the listener
/// closes (`waiter` says when: a connection waiting for a head closes at once; one serving
/// a request closes after its response). `waiter` also keeps each head's deadline.
pub async fn serve<IO>(io: IO, downstream: Arc<Downstream>, limits: Limits, waiter: Waiter)
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (read, mut write) = tokio::io::split(io);
    let mut inbound = Inbound {
        io: Box::new(read),
        buf: BytesMut::new(),
    };
    let mut refused = None;
    loop {
        // The head is taken apart in a block of its own: a value held in the loop's scope
        // would keep room for it in the connection's task for as long as it lives.
        let next = {
            let waited = next_head(&mut inbound, &limits, &waiter).await;
            match waited {
                Waited::Head(head, started) => {
                    let taken = std::mem::replace(&mut inbound, Inbound::gone());
                    // Boxed: a request's state is held only while it is served.
                    Next::Serve(heap::pin(|| {
                        exchange(
                            &downstream,
                            head,
                            started,
                            taken,
                            &mut write,
                            &limits,
                            &waiter,
                        )
                    }))
                }
                Waited::Refused(refusal, line, started) => {
                    refusal::head(
                        &downstream,
                        line.as_deref(),
                        Some(started.into_std()),
                        refusal.status(),
                        refusal.reason(),
                        refusal.describe(),
                    );
                    Next::Refuse(response::refusal(refusal.status(), false))
                }
                Waited::TimedOut(Some((line, started))) => {
                    refusal::head(
                        &downstream,
                        Some(&line),
                        Some(started.into_std()),
                        408,
                        "header_timeout",
                        "request head not received within http1.header_read_timeout",
                    );
                    Next::Close
                }
                Waited::TimedOut(None) | Waited::Gone | Waited::Closing => Next::Close,
            }
        };
        let exchange = match next {
            Next::Serve(exchange) => exchange,
            Next::Refuse(answer) => {
                refused = Some(answer);
                break;
            }
            Next::Close => break,
        };
        match exchange.await {
            Some(next) => inbound = next,
            None => break,
        }
        if inbound.buf.is_empty() {
            // Idle from here: give the buffer back.
            inbound.buf = BytesMut::new();
        }
    }
    if let Some(answer) = refused {
        let _ = write.write_all(&answer).await;
    }
    // Boxed: a timer held in the connection's future would take room in it for its life.
    let _ = Box::pin(tokio::time::timeout(GOODBYE, write.shutdown())).await;
}

/// What the connection does after waiting for a head.
enum Next<F> {
    /// Serve the request.
    Serve(Pin<Box<F>>),
    /// Answer a refused head with these bytes, then close.
    Refuse(Vec<u8>),
    /// Close.
    Close,
}

/// What waiting for the next head gave.
// Taken apart as soon as it is returned; boxing the head would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Waited {
    /// A head, and when its first byte arrived.
    Head(Head, Instant),
    /// A head refused before it became a request, with its request line.
    Refused(Refusal, Option<Bytes>, Instant),
    /// No complete head within `header_read_timeout`; the start of what came, if any.
    TimedOut(Option<(Bytes, Instant)>),
    /// The client closed the connection (or broke it) before a head.
    Gone,
    /// The listener is closing and no head had started.
    Closing,
}

async fn next_head(inbound: &mut Inbound, limits: &Limits, waiter: &Waiter) -> Waited {
    waiter.arm(limits.header_read_timeout.map(|t| Instant::now() + t));
    let mut started = None;
    let mut scan = head::Scan::default();
    loop {
        if !inbound.buf.is_empty() {
            let first = *started.get_or_insert_with(Instant::now);
            match head::parse(&mut inbound.buf, limits.max_head, &mut scan) {
                Ok(Some(head)) => {
                    waiter.arm(None);
                    return Waited::Head(head, first);
                }
                Ok(None) => {}
                Err((refusal, line)) => {
                    let line = line.unwrap_or_else(|| request_line(&inbound.buf));
                    return Waited::Refused(refusal, Some(line), first);
                }
            }
        }
        // A connection that has started a head finishes it before a drain closes it.
        let idle = inbound.buf.is_empty();
        let woke = poll_fn(|cx| {
            if let Poll::Ready(read) = read_small(inbound, cx) {
                return Poll::Ready(Ok(read));
            }
            waiter.poll(cx, idle).map(Err)
        })
        .await;
        match woke {
            Ok(Ok(0) | Err(_)) => return Waited::Gone,
            Ok(Ok(_)) => {}
            Err(Woke::Deadline) => {
                let partial = started
                    .filter(|_| !inbound.buf.is_empty())
                    .map(|at| (request_line(&inbound.buf), at));
                return Waited::TimedOut(partial);
            }
            Err(Woke::Closing) => return Waited::Closing,
        }
    }
}

/// The request path's answer to one request, boxed: it is large, and held only while the
/// request is served.
type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// Serves one request: hands it to the request path and writes the answer. The read
/// side comes back when the connection can carry another request.
async fn exchange<W>(
    downstream: &Arc<Downstream>,
    head: Head,
    started: Instant,
    inbound: Inbound,
    write: &mut W,
    limits: &Limits,
    waiter: &Waiter,
) -> Option<Inbound>
where
    W: AsyncWrite + Unpin,
{
    let Head {
        request,
        framing,
        keep_alive,
        expects_continue,
        accepts_trailers,
        fragment,
        line,
    } = head;
    let (parts, ()) = request.into_parts();
    let http10 = parts.version == Version::HTTP_10;
    let head_only = parts.method == Method::HEAD;

    // While the body is read, it holds the read side and hands it back through `home`;
    // otherwise the connection holds it, and watches it for the client leaving.
    let mut wants_continue = expects_continue.then(|| Arc::new(Notify::new()));
    let (body, mut held, home, progress) = if framing == Framing::Empty {
        (ClientBody::Empty, Some(inbound), None, None)
    } else {
        let (idle, progress) = limits
            .body_idle
            .map(|after| BodyIdleTimeout::start(after, &downstream.listener))
            .unzip();
        let home = Arc::new(Home::default());
        let body = RequestBody::new(inbound, framing, home.clone(), wants_continue.clone());
        (ClientBody::Http1(body, idle), None, Some(home), progress)
    };
    let request = Request::from_parts(parts, body);

    let mut answer: Answer = if fragment {
        let response = refusal::fragment(downstream, &line, started.into_std());
        drop(request);
        Box::pin(std::future::ready(Ok(response)))
    } else {
        heap::pin(|| proxy::handle(downstream.clone(), request))
    };
    let max_head = limits.max_head;
    let response = loop {
        tokio::select! {
            biased;
            response = &mut answer => match response {
                Ok(response) => break response,
                Err(never) => match never {},
            },
            () = notified(wants_continue.as_deref()) => {
                wants_continue = None;
                if write.write_all(response::CONTINUE).await.is_err() || write.flush().await.is_err() {
                    return None;
                }
            }
            // The client left: the request is cancelled with it.
            () = poll_fn(|cx| client_left(held.as_mut(), max_head, cx)) => return None,
        }
    };
    drop(answer);
    if let Some(home) = home {
        held = home.take();
    }
    // A body not read to its end leaves the connection at an unknown place in the
    // client's bytes: it closes after this response.
    let reply = Reply {
        http10,
        head_only,
        keep_alive: keep_alive && held.is_some() && !waiter.closing(),
        trailers: accepts_trailers,
    };
    // The body stays here while it is written, so one cut for `send_timeout` is dropped
    // with its reason.
    let (head, body) = response.into_parts();
    let mut body = Tracked::new(body, progress, None);
    let gone = |cx: &mut Context<'_>| client_left(held.as_mut(), max_head, cx);
    let mut paced = Paced::new(write, limits.send_timeout);
    let response = Response::from_parts(head, &mut body);
    match response::write(&mut paced, response, reply, gone).await {
        Ok(true) => held,
        Ok(false) => None,
        Err(e) => {
            if let Some(stalled) = Stalled::of(&e) {
                metrics::downstream_response_cut(&downstream.listener, "send_timeout");
                tracing::debug!(listener = %downstream.listener, client = %downstream.client, error = %e, "response cut");
                stall::cut(body, stalled);
            }
            None
        }
    }
}

/// Ready when the client has closed (or broken) the connection whose read side is `held`,
/// while its request is served. Pipelined bytes that arrive meanwhile are kept for the next
/// head, up to `max_head`; past that, and while a body holds the read side, nothing is
/// watched.
fn client_left(held: Option<&mut Inbound>, max_head: usize, cx: &mut Context<'_>) -> Poll<()> {
    let Some(inbound) = held.filter(|inbound| inbound.buf.len() < max_head) else {
        return Poll::Pending;
    };
    match read_small(inbound, cx) {
        Poll::Ready(Ok(0) | Err(_)) => Poll::Ready(()),
        Poll::Ready(Ok(_)) => {
            // Read again: until it is pending, nothing will wake this task.
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        Poll::Pending => Poll::Pending,
    }
}

/// Reads what has arrived into `inbound`'s buffer through a buffer on the stack, so a
/// connection that waits holds no buffer of its own; `Ok(0)` at the end of the stream.
fn read_small(inbound: &mut Inbound, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    let mut stack = [std::mem::MaybeUninit::<u8>::uninit(); HEAD_READ];
    let mut read = ReadBuf::uninit(&mut stack);
    ready!(Pin::new(&mut inbound.io).poll_read(cx, &mut read))?;
    let filled = read.filled();
    inbound.buf.extend_from_slice(filled);
    Poll::Ready(Ok(filled.len()))
}

/// Waits for `notify`, or forever without one.
async fn notified(notify: Option<&Notify>) {
    match notify {
        Some(notify) => notify.notified().await,
        None => std::future::pending().await,
    }
}

/// The request line at the start of `buf` (up to its line end), for the log.
fn request_line(buf: &[u8]) -> Bytes {
    const MAX_LOGGED_LINE: usize = 1024;
    let end = buf
        .iter()
        .position(|b| *b == b'\r' || *b == b'\n')
        .unwrap_or(buf.len())
        .min(MAX_LOGGED_LINE);
    Bytes::copy_from_slice(&buf[..end])
}
