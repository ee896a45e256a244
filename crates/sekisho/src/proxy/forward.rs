//! Sending a request upstream: one attempt, or, under a retry policy, attempts on
//! different endpoints until one answers well or the policy, the retry budget or the time
//! runs out.
//!
//! A failed attempt is judged before it is counted: the client's request body is watched
//! on its way upstream ([`Watched`]), and when it broke (the client sent half a body and
//! left, sent a malformed chunk, reset its stream) or the time ran out while the gateway
//! was waiting for the client's next bytes, the failure is the client's. Then no endpoint
//! is blamed (outlier ejection), nothing is retried, no upstream failure is counted, and
//! the client is answered 400, 408 or 413, or logged 499 when it went away.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::Either;
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, Uri, Version};

use super::GatewayError;
use super::exchange::grpc_status_of;
use super::replay::Replay;
use crate::body::{self, Body, Watch, Watched};
use crate::observe::metrics;
use crate::observe::trace::{Attempt, Trace};
use crate::upstream::retry::{Failed, RetryPolicy};
use crate::upstream::{Cluster, InFlight, Outcome, SendError, UpstreamBody};

/// The response that goes back to the client, and the attempt it came from.
pub struct Sent {
    /// Headers received; the body still streams.
    pub response: Response<UpstreamBody>,
    /// Counted by the balancer until the response ends.
    pub in_flight: InFlight,
}

/// A request head that can be sent more than once.
pub struct Head {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

impl Head {
    /// Keeps what a request needs to be built again.
    pub fn of(parts: Parts) -> Self {
        Head {
            method: parts.method,
            uri: parts.uri,
            version: parts.version,
            headers: parts.headers,
        }
    }

    /// A request with this head and `body`.
    pub fn request(&self, body: Body) -> Request<Body> {
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// Why one attempt got no response.
enum Failure {
    Send(SendError),
    /// The attempt's time ran out; `last` when it was the whole request's time.
    Timeout {
        after: Duration,
        last: bool,
    },
}

impl Failure {
    /// The kind of failure for the retry policy; `None` when no retry may help.
    fn kind(&self) -> Option<Failed> {
        match self {
            Failure::Send(SendError::Connect(_)) => Some(Failed::Connect),
            Failure::Send(SendError::Reset(_)) => Some(Failed::Reset),
            Failure::Timeout { last: false, .. } => Some(Failed::Reset),
            Failure::Send(SendError::Overloaded(_)) | Failure::Timeout { last: true, .. } => None,
        }
    }

    /// The client's answer when the failure was the client's doing: its request body
    /// failed (and the gateway broke the upstream exchange off because of it), or the
    /// time ran out while the gateway waited for the client to send more of its body.
    /// `None` when the upstream is to blame. A failed connect or a cluster limit is never
    /// the client's: no body was read for them.
    fn client_fault(&self, watch: Option<&Watch>) -> Option<GatewayError> {
        let watch = watch?;
        if matches!(
            self,
            Failure::Send(SendError::Connect(_) | SendError::Overloaded(_))
        ) {
            return None;
        }
        if let Some(failure) = watch.failure() {
            return Some(GatewayError::from(failure.clone()));
        }
        match self {
            Failure::Timeout { after, .. } if watch.waiting_for_client() => {
                Some(GatewayError::RequestTimeout { after: *after })
            }
            _ => None,
        }
    }

    /// Turns the failure into the client's answer, counting it against the endpoint (and
    /// in the upstream failure metric) only when the upstream is to blame.
    fn settle(self, in_flight: &InFlight, watch: Option<&Watch>) -> GatewayError {
        let cluster = in_flight.cluster().name.clone();
        // A client gone is counted where it is answered (`proxy::answer`).
        if let Some(err) = self.client_fault(watch) {
            return err;
        }
        match self {
            Failure::Send(SendError::Connect(reason)) => {
                metrics::upstream_failure(&cluster, "connect");
                in_flight.report(Outcome::Failure);
                GatewayError::Connect { cluster, reason }
            }
            Failure::Send(SendError::Reset(reason)) => {
                metrics::upstream_failure(&cluster, "reset");
                in_flight.report(Outcome::Failure);
                GatewayError::Reset { cluster, reason }
            }
            Failure::Send(SendError::Overloaded(limit)) => {
                GatewayError::Overloaded { cluster, limit }
            }
            Failure::Timeout { after, .. } => {
                metrics::upstream_failure(&cluster, "timeout");
                in_flight.report(Outcome::Failure);
                GatewayError::Timeout { cluster, after }
            }
        }
    }
}

/// Where and how a request goes.
pub struct Route<'a> {
    /// The cluster.
    pub cluster: &'a Arc<Cluster>,
    /// Its retry policy, if any.
    pub retry: Option<&'a RetryPolicy>,
    /// Bound on all attempts together.
    pub limit: Option<Duration>,
}

/// Sends the request along `route`, retrying under its policy. `attempts` counts the
/// attempts made, for the log; each gets a client span under `trace`.
pub async fn forward(
    route: Route<'_>,
    parts: Parts,
    body: Body,
    trace: Option<&Trace>,
    attempts: &mut u32,
) -> Result<Sent, GatewayError> {
    let Route {
        cluster,
        retry,
        limit,
    } = route;
    // Watched beneath any replay buffer: only the client's own body is judged, not a
    // reader a retry superseded.
    let watch = (!http_body::Body::is_end_stream(&body)).then(|| Arc::new(Watch::default()));
    let body = match &watch {
        Some(watch) => body::boxed(Watched::new(body, watch.clone())),
        None => body,
    };
    let Some(policy) = retry.filter(|p| p.attempts > 1) else {
        // The common case: one attempt, nothing kept for a second.
        *attempts = 1;
        let in_flight = pick(cluster, &[])?;
        let mut req = Request::from_parts(parts, body);
        let span =
            trace.map(|t| Box::new(t.attempt(1, in_flight.endpoint().addr, req.headers_mut())));
        let result = attempt(cluster, &in_flight, req, limit, limit).await;
        end_attempt(span, &result);
        return outcome(result, in_flight, watch);
    };
    // Boxed: the retry loop's state (the head kept for another attempt, the endpoints
    // tried, a backoff timer) would otherwise be room in every request's state, retried or
    // not, laid out beside the single attempt's rather than over it.
    let retried = Retried {
        cluster,
        policy,
        limit,
        watch,
        trace,
        attempts,
    };
    Box::pin(retried.send(parts, body)).await
}

/// The request's outcome from its last attempt: the response, with the endpoint held until
/// the request body is done, or the failure settled against the endpoint.
fn outcome(
    result: Result<Response<UpstreamBody>, Failure>,
    mut in_flight: InFlight,
    watch: Option<Arc<Watch>>,
) -> Result<Sent, GatewayError> {
    match result {
        Ok(response) => {
            in_flight.carry_request_body(watch);
            Ok(Sent {
                response,
                in_flight,
            })
        }
        Err(failure) => Err(failure.settle(&in_flight, watch.as_deref())),
    }
}

/// A request on a route that retries, with what its attempts share.
struct Retried<'a> {
    cluster: &'a Arc<Cluster>,
    policy: &'a RetryPolicy,
    limit: Option<Duration>,
    watch: Option<Arc<Watch>>,
    trace: Option<&'a Trace>,
    attempts: &'a mut u32,
}

impl Retried<'_> {
    /// Sends the request, and again to another endpoint while the policy allows.
    async fn send(self, parts: Parts, body: Body) -> Result<Sent, GatewayError> {
        let started = Instant::now();
        let head = Head::of(parts);
        let replay = Replay::new(body, self.policy.buffer_bytes);
        let mut tried: Vec<SocketAddr> = Vec::with_capacity(self.policy.attempts as usize);
        let mut retrying = None;
        loop {
            *self.attempts += 1;
            let in_flight = pick(self.cluster, &tried)?;
            tried.push(in_flight.endpoint().addr);
            let remaining = self.limit.map(|l| l.saturating_sub(started.elapsed()));
            let per_try = [self.policy.per_try_timeout, remaining]
                .into_iter()
                .flatten()
                .min();
            let mut req = head.request(replay.body());
            let span = self.trace.map(|t| {
                Box::new(t.attempt(*self.attempts, in_flight.endpoint().addr, req.headers_mut()))
            });
            let result = attempt(self.cluster, &in_flight, req, per_try, remaining).await;
            end_attempt(span, &result);
            drop(retrying.take());

            let failed = match &result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let grpc_status = grpc_status_of(response.headers());
                    self.policy
                        .retries_response(status, grpc_status)
                        .then_some(Failed::Status(status, grpc_status))
                }
                // The client's failure would only repeat: never retried.
                Err(failure) if failure.client_fault(self.watch.as_deref()).is_some() => None,
                Err(failure) => failure.kind().filter(|kind| self.policy.retries(*kind)),
            };
            let slot = match failed {
                Some(failed) if *self.attempts < self.policy.attempts && replay.can_replay() => {
                    self.cluster.retry(failed != Failed::Connect).ok()
                }
                _ => None,
            };
            let Some(slot) = slot else {
                return outcome(result, in_flight, self.watch);
            };
            // This attempt is given up: count it against its endpoint and try another.
            match result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    in_flight.report(Outcome::of_response(
                        status,
                        grpc_status_of(response.headers()),
                    ));
                }
                Err(failure) => {
                    failure.settle(&in_flight, self.watch.as_deref());
                }
            }
            drop(in_flight);
            metrics::retry(&self.cluster.name);
            let mut wait = self.policy.backoff(*self.attempts);
            if let Some(limit) = self.limit {
                wait = wait.min(limit.saturating_sub(started.elapsed()));
            }
            tokio::time::sleep(wait).await;
            retrying = Some(slot);
        }
    }
}

/// Ends an attempt's client span with what came of it. The span is boxed while the
/// attempt waits: it is larger than the rest of the request's state at that point, and
/// most requests are not traced.
fn end_attempt(span: Option<Box<Attempt>>, result: &Result<Response<UpstreamBody>, Failure>) {
    let Some(span) = span else { return };
    span.finish(match result {
        Ok(response) => Ok((
            response.status().as_u16(),
            grpc_status_of(response.headers()),
        )),
        Err(Failure::Send(e)) => Err(e.to_string()),
        Err(Failure::Timeout { after, .. }) => Err(format!("no answer within {after:?}")),
    });
}

fn pick(cluster: &Arc<Cluster>, avoid: &[SocketAddr]) -> Result<InFlight, GatewayError> {
    cluster.pick(avoid).ok_or_else(|| GatewayError::NoEndpoint {
        cluster: cluster.name.clone(),
    })
}

/// One attempt within `bound`; `whole` is what is left of the request's own time, to tell
/// an attempt's timeout from the request's. Built from the send's own future rather than
/// wrapped in an `async fn`, which would hold the request once more in every request's
/// state.
fn attempt<'a>(
    cluster: &'a Cluster,
    in_flight: &'a InFlight,
    req: Request<Body>,
    bound: Option<Duration>,
    whole: Option<Duration>,
) -> impl Future<Output = Result<Response<UpstreamBody>, Failure>> + 'a {
    let sent = cluster.send(in_flight.endpoint(), req);
    match bound {
        Some(after) => Either::Left(tokio::time::timeout(after, sent).map(
            move |timed| match timed {
                Ok(result) => result.map_err(Failure::Send),
                Err(_) => {
                    let last = whole.is_some_and(|w| w <= after);
                    Err(Failure::Timeout { after, last })
                }
            },
        )),
        None => Either::Right(sent.map(|result| result.map_err(Failure::Send))),
    }
}
