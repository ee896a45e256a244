//! Reusable connections to one endpoint.
//!
//! HTTP/2 keeps as many multiplexed connections as the endpoint's stream limit asks for
//! ([`Multiplex`]; one opener at a time, so a burst does not open a hundred). HTTP/1.1
//! keeps idle keep-alive connections; a connection goes back to the idle list once its
//! response body is done.
//! Opening counts against the cluster's `max_connections`; requests waiting for a
//! connection count against `max_pending`. When the pool is dropped (its endpoint left the
//! cluster) idle connections close at once and busy ones once their response is done.
//!
//! A pool is keyed by everything its connections depend on ([`PoolKey`]): requests reach
//! a connection only through the pool whose key describes it, so two clusters, or two
//! endpoints of one cluster, that differ in TLS server name, CA or protocol never share
//! a connection, and a reload carries a pool over only to an identical key.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::Either;
use http::{Request, Response};
use hyper::client::conn::http1;
use tokio::sync::Notify;

use super::connect::{Connector, ConnectorKey};
use super::limits::{Counters, Limits, Overload};
use super::multiplex::{Connection, Multiplex, StreamError};
use super::response::UpstreamBody;
use crate::body::Body;
use crate::config::model::Protocol;
use crate::observe::metrics;

/// An idle HTTP/1.1 connection is closed after this long unused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);
/// Idle HTTP/1.1 connections kept per endpoint; more are closed.
const MAX_IDLE: usize = 256;

/// Why a request did not get a response from the endpoint.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made.
    Connect(String),
    /// The connection failed after the request was (maybe) sent.
    Reset(String),
    /// A cluster limit refused the request before it was sent.
    Overloaded(Overload),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Connect(reason) => write!(f, "connect failed: {reason}"),
            SendError::Reset(reason) => write!(f, "connection failed: {reason}"),
            SendError::Overloaded(limit) => write!(f, "{limit}"),
        }
    }
}

/// Everything a pooled connection depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolKey {
    /// Where connections go.
    pub addr: SocketAddr,
    /// What TLS sends in SNI and verifies the certificate against; `None` in clear text.
    pub server_name: Option<Arc<str>>,
    /// How connections are made: protocol, trusted CAs, connect timeout (and the client
    /// certificate, should clusters ever present one: it belongs in the connector).
    pub connector: ConnectorKey,
}

/// Connections to one endpoint.
pub struct Pool {
    key: PoolKey,
    /// Makes this pool's connections; its key is `key.connector`.
    connector: Arc<Connector>,
    cluster: Arc<str>,
    counters: Arc<Counters>,
    kind: Kind,
}

/// Idle HTTP/1.1 connections with the time each went idle, newest last.
struct Idle {
    list: Mutex<Vec<(http1::SendRequest<Body>, Instant)>>,
    /// Woken when a connection goes back to the list.
    returned: Notify,
}

enum Kind {
    Http1(Arc<Idle>),
    Http2(Multiplex),
}

impl Pool {
    /// An empty pool for the endpoint at `addr` that came from the DNS source `origin`;
    /// connections are opened on first use, with the TLS name the connector gives the
    /// endpoint.
    pub fn new(
        connector: Arc<Connector>,
        addr: SocketAddr,
        origin: Option<&str>,
        cluster: Arc<str>,
        counters: Arc<Counters>,
    ) -> Self {
        let key = Self::key_for(&connector, addr, origin);
        let kind = match key.connector.protocol {
            Protocol::Http1 => Kind::Http1(Arc::new(Idle {
                list: Mutex::new(Vec::new()),
                returned: Notify::new(),
            })),
            Protocol::H2c | Protocol::H2 => Kind::Http2(Multiplex::new()),
        };
        Pool {
            key,
            connector,
            cluster,
            counters,
            kind,
        }
    }

    /// The key a pool for this endpoint would have: compared with [`Pool::key`] to decide
    /// whether an existing pool may serve it.
    pub fn key_for(connector: &Connector, addr: SocketAddr, origin: Option<&str>) -> PoolKey {
        PoolKey {
            addr,
            server_name: connector.server_name(origin, addr),
            connector: connector.key.clone(),
        }
    }

    /// What this pool's connections depend on.
    pub fn key(&self) -> &PoolKey {
        &self.key
    }

    /// Sends `req` on a pooled connection, opening one if none is usable. The protocol's
    /// own future is returned as it is (no `async` layer around it holding the request a
    /// second time).
    pub fn send<'a>(
        &'a self,
        limits: &'a Limits,
        req: Request<Body>,
    ) -> impl Future<Output = Result<Response<UpstreamBody>, SendError>> + 'a {
        match &self.kind {
            Kind::Http1(idle) => Either::Left(
                self.send_http1(limits, idle, req)
                    .map(|sent| sent.map(|response| response.map(UpstreamBody::Http1))),
            ),
            Kind::Http2(multiplex) => Either::Right(
                self.send_http2(limits, multiplex, req)
                    .map(|sent| sent.map(|response| response.map(UpstreamBody::Http2))),
            ),
        }
    }

    async fn send_http1(
        &self,
        limits: &Limits,
        idle: &Arc<Idle>,
        mut req: Request<Body>,
    ) -> Result<Response<hyper::body::Incoming>, SendError> {
        let mut waiting = None;
        let mut sender = loop {
            while let Some(mut sender) = take_idle(idle) {
                match sender.try_send_request(req).await {
                    Ok(response) => {
                        recycle(Arc::downgrade(idle), sender);
                        return Ok(response);
                    }
                    Err(mut e) => match e.take_message() {
                        // Not sent: the keep-alive connection had closed; try the next one.
                        Some(unsent) => req = unsent,
                        None => return Err(self.reset(&e.into_error())),
                    },
                }
            }
            if waiting.is_none() {
                waiting = Some(self.wait(limits)?);
            }
            if self.counters.open_connection(limits) {
                // Boxed: opening (TCP, TLS, handshake) is the rare path, and its state
                // would otherwise make every request's future, copied at each await
                // level above, as large as a TLS handshake's.
                break Box::pin(self.open_http1()).await?;
            }
            // At the connection limit: wait for a connection to come back.
            let returned = idle.returned.notified();
            if tokio::time::timeout(self.key.connector.connect_timeout, returned)
                .await
                .is_err()
            {
                return Err(self.overloaded(Overload::Connections));
            }
        };
        drop(waiting);
        let response = sender.send_request(req).await.map_err(|e| self.reset(&e))?;
        recycle(Arc::downgrade(idle), sender);
        Ok(response)
    }

    async fn open_http1(&self) -> Result<http1::SendRequest<Body>, SendError> {
        let name = self.key.server_name.as_deref();
        match self
            .connector
            .http1(self.key.addr, name, self.on_close())
            .await
        {
            Ok(sender) => {
                metrics::upstream_connection_opened(&self.cluster);
                Ok(sender)
            }
            Err(e) => Err(self.connect_failed(e.0)),
        }
    }

    async fn send_http2(
        &self,
        limits: &Limits,
        multiplex: &Multiplex,
        mut req: Request<Body>,
    ) -> Result<Response<super::multiplex::RecvBody>, SendError> {
        // A connection found closed before the request left is dropped and the request
        // tries the next; each pass either sends, or loses a connection that was open.
        for _ in 0..3 {
            let connection = match multiplex.with_room() {
                Some(connection) => connection,
                // Boxed, as opening an HTTP/1.1 connection is.
                None => Box::pin(self.connection_for(limits, multiplex)).await?,
            };
            match multiplex.send(&connection, req).await {
                Ok(response) => return Ok(response),
                Err(StreamError::Unsent(unsent)) => req = *unsent,
                Err(StreamError::Failed(e)) => return Err(self.reset(&e)),
            }
        }
        Err(SendError::Reset(format!(
            "{}: connections kept closing before the request could be sent",
            self.key.addr
        )))
    }

    /// A connection with a stream free: one another request just opened, or a new one.
    /// At `max_connections` the request queues for a stream on the least busy connection.
    async fn connection_for(
        &self,
        limits: &Limits,
        multiplex: &Multiplex,
    ) -> Result<Arc<Connection>, SendError> {
        let _waiting = self.wait(limits)?;
        let _one_opener = multiplex.opening.lock().await;
        if let Some(connection) = multiplex.with_room() {
            return Ok(connection);
        }
        if !self.counters.open_connection(limits) {
            return multiplex
                .least_busy()
                .ok_or_else(|| self.overloaded(Overload::Connections));
        }
        let name = self.key.server_name.as_deref();
        let opened = self
            .connector
            .http2(self.key.addr, name, self.on_close())
            .await;
        let connection = opened.map_err(|e| self.connect_failed(e.0))?;
        metrics::upstream_connection_opened(&self.cluster);
        multiplex.add(connection.clone());
        Ok(connection)
    }

    fn wait(&self, limits: &Limits) -> Result<super::limits::Slot, SendError> {
        self.counters
            .wait(limits)
            .map_err(|limit| self.overloaded(limit))
    }

    fn overloaded(&self, limit: Overload) -> SendError {
        metrics::overflow(&self.cluster, limit.as_str());
        SendError::Overloaded(limit)
    }

    fn on_close(&self) -> impl FnOnce() + Send + 'static {
        let cluster = self.cluster.clone();
        let counters = self.counters.clone();
        move || {
            counters.connection_closed();
            metrics::upstream_connection_closed(&cluster);
        }
    }

    fn reset(&self, error: &(dyn std::error::Error + 'static)) -> SendError {
        SendError::Reset(format!("{}: {}", self.key.addr, chain(error)))
    }

    fn connect_failed(&self, reason: String) -> SendError {
        self.counters.connection_closed();
        metrics::upstream_connect_error(&self.cluster);
        SendError::Connect(reason)
    }
}

fn take_idle(idle: &Idle) -> Option<http1::SendRequest<Body>> {
    let mut list = idle.list.lock().ok()?;
    while let Some((sender, since)) = list.pop() {
        if sender.is_ready() && since.elapsed() < IDLE_TIMEOUT {
            return Some(sender);
        }
    }
    None
}

/// Puts the connection back once the response body has been read to the end, unless the
/// pool is gone (its endpoint was removed): then the connection closes.
fn recycle(idle: Weak<Idle>, mut sender: http1::SendRequest<Body>) {
    tokio::spawn(async move {
        if sender.ready().await.is_ok()
            && let Some(idle) = idle.upgrade()
            && let Ok(mut list) = idle.list.lock()
            && list.len() < MAX_IDLE
        {
            list.push((sender, Instant::now()));
            drop(list);
            idle.returned.notify_one();
        }
    });
}

/// An error with its causes, for the log: hyper's own message alone ("connection error")
/// rarely says what happened.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
