//! Reusable connections to one endpoint.
//!
//! HTTP/2 keeps one multiplexed connection and opens a new one only when it closes (one
//! opener at a time, so a burst does not open a hundred). HTTP/1.1 keeps idle keep-alive
//! connections; a connection goes back to the idle list once its response body is done.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};

use super::connect::Connector;
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
}

/// Connections to one endpoint.
pub struct Pool {
    addr: SocketAddr,
    cluster: Arc<str>,
    kind: Kind,
}

/// Idle HTTP/1.1 connections with the time each went idle, newest last.
type IdleList = Arc<Mutex<Vec<(http1::SendRequest<Body>, Instant)>>>;

enum Kind {
    Http1(IdleList),
    Http2 {
        current: Mutex<Option<http2::SendRequest<Body>>>,
        opening: tokio::sync::Mutex<()>,
    },
}

impl Pool {
    /// An empty pool; connections are opened on first use.
    pub fn new(addr: SocketAddr, cluster: Arc<str>, protocol: Protocol) -> Self {
        let kind = match protocol {
            Protocol::Http1 => Kind::Http1(Arc::default()),
            Protocol::H2c | Protocol::H2 => Kind::Http2 {
                current: Mutex::new(None),
                opening: tokio::sync::Mutex::new(()),
            },
        };
        Pool {
            addr,
            cluster,
            kind,
        }
    }

    /// Sends `req` on a pooled connection, opening one if none is usable.
    pub async fn send(
        &self,
        connector: &Connector,
        host: &str,
        req: Request<Body>,
    ) -> Result<Response<Incoming>, SendError> {
        match &self.kind {
            Kind::Http1(idle) => self.send_http1(connector, idle, req).await,
            Kind::Http2 { current, opening } => {
                self.send_http2(connector, host, current, opening, req)
                    .await
            }
        }
    }

    async fn send_http1(
        &self,
        connector: &Connector,
        idle: &IdleList,
        mut req: Request<Body>,
    ) -> Result<Response<Incoming>, SendError> {
        while let Some(mut sender) = take_idle(idle) {
            match sender.try_send_request(req).await {
                Ok(response) => {
                    recycle(idle.clone(), sender);
                    return Ok(response);
                }
                Err(mut e) => match e.take_message() {
                    // Not sent: the keep-alive connection had closed; try the next one.
                    Some(unsent) => req = unsent,
                    None => return Err(SendError::Reset(e.into_error().to_string())),
                },
            }
        }
        let mut sender = connector
            .http1(self.addr, self.on_close())
            .await
            .map_err(|e| self.connect_failed(e.0))?;
        self.opened();
        let response = sender
            .send_request(req)
            .await
            .map_err(|e| SendError::Reset(e.to_string()))?;
        recycle(idle.clone(), sender);
        Ok(response)
    }

    async fn send_http2(
        &self,
        connector: &Connector,
        host: &str,
        current: &Mutex<Option<http2::SendRequest<Body>>>,
        opening: &tokio::sync::Mutex<()>,
        req: Request<Body>,
    ) -> Result<Response<Incoming>, SendError> {
        let mut req = req;
        if let Some(mut sender) = live(current) {
            match sender.try_send_request(req).await {
                Ok(response) => return Ok(response),
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(SendError::Reset(e.into_error().to_string())),
                },
            }
        }
        let mut sender = {
            let _one_opener = opening.lock().await;
            match live(current) {
                Some(sender) => sender,
                None => {
                    let sender = connector
                        .http2(self.addr, host, self.on_close())
                        .await
                        .map_err(|e| self.connect_failed(e.0))?;
                    self.opened();
                    if let Ok(mut slot) = current.lock() {
                        *slot = Some(sender.clone());
                    }
                    sender
                }
            }
        };
        sender
            .send_request(req)
            .await
            .map_err(|e| SendError::Reset(e.to_string()))
    }

    fn opened(&self) {
        metrics::upstream_connection_opened(&self.cluster);
    }

    fn on_close(&self) -> impl FnOnce() + Send + 'static {
        let cluster = self.cluster.clone();
        move || metrics::upstream_connection_closed(&cluster)
    }

    fn connect_failed(&self, reason: String) -> SendError {
        metrics::upstream_connect_error(&self.cluster);
        SendError::Connect(reason)
    }
}

fn live(current: &Mutex<Option<http2::SendRequest<Body>>>) -> Option<http2::SendRequest<Body>> {
    let mut slot = current.lock().ok()?;
    match slot.as_ref() {
        Some(sender) if !sender.is_closed() => Some(sender.clone()),
        Some(_) => {
            *slot = None;
            None
        }
        None => None,
    }
}

fn take_idle(idle: &IdleList) -> Option<http1::SendRequest<Body>> {
    let mut idle = idle.lock().ok()?;
    while let Some((sender, since)) = idle.pop() {
        if sender.is_ready() && since.elapsed() < IDLE_TIMEOUT {
            return Some(sender);
        }
    }
    None
}

/// Puts the connection back once the response body has been read to the end.
fn recycle(idle: IdleList, mut sender: http1::SendRequest<Body>) {
    tokio::spawn(async move {
        if sender.ready().await.is_ok()
            && let Ok(mut idle) = idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push((sender, Instant::now()));
        }
    });
}
