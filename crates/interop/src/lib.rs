//! Real backends for sekisho's integration tests and benchmarks.
//!
//! [`grpc`] serves the `grpc.testing.TestService` interop service with tonic over h2c, and
//! [`http`] serves an HTTP/1.1 + h2c echo server that describes each request it received as JSON.
//! Both bind `127.0.0.1:0`, add an `x-backend: <name>` response header so a caller can see which
//! backend answered, honour an `x-delay-ms` request header (to provoke timeouts), and stop when
//! their [`ServerHandle`] is dropped.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::JoinHandle;

pub mod bookstore;
pub mod grpc;
pub mod http;
mod mixed;

pub use mixed::serve_mixed_on;

/// Re-exported so callers can encode the generated messages without their own `prost` dependency.
pub use prost;

/// Code generated from `proto/grpc/testing/test.proto` (package `grpc.testing`).
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("grpc.testing");
}

/// Code generated from `proto/testing/bookstore.proto` (package `testing.bookstore`).
#[allow(clippy::all, missing_docs)]
pub mod testing {
    /// `testing.bookstore`.
    pub mod bookstore {
        tonic::include_proto!("testing.bookstore");
    }
}
pub use testing::bookstore as pb_bookstore;

/// `google.api` messages the bookstore refers to (`HttpBody`), at the path the generated code
/// expects.
#[allow(clippy::all, missing_docs)]
pub mod google {
    /// `google.api`.
    pub mod api {
        tonic::include_proto!("google.api");
    }
}

/// Response header naming the backend that answered; used to count a weighted split.
pub const BACKEND_HEADER: &str = "x-backend";

/// Request header asking a backend to wait this many milliseconds before answering.
pub const DELAY_HEADER: &str = "x-delay-ms";

/// Keeps a backend running; dropping it closes the listener and every open connection at once,
/// so a test can turn a healthy upstream into a refused one.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
    health: Option<tonic_health::server::HealthReporter>,
}

impl ServerHandle {
    /// The address the backend listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the backend and waits until its listener is closed, so the port refuses connections
    /// once this returns.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Sets what the backend's `grpc.health.v1.Health` answers for the whole server
    /// (SERVING or NOT_SERVING); HTTP backends have no health service and ignore it.
    pub async fn set_serving(&self, serving: bool) {
        if let Some(health) = &self.health {
            let status = if serving {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            health.set_service_status("", status).await;
        }
    }

    fn new(addr: SocketAddr, task: JoinHandle<()>) -> Self {
        ServerHandle {
            addr,
            task: Some(task),
            health: None,
        }
    }

    fn with_health(mut self, health: tonic_health::server::HealthReporter) -> Self {
        self.health = Some(health);
        self
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Reads the `x-delay-ms` header, if present and a number.
fn requested_delay(headers: &::http::HeaderMap) -> Option<Duration> {
    headers
        .get(DELAY_HEADER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_millis)
}

/// Accept loop shared by both backends: one task per connection, all owned by a `JoinSet` that
/// the loop owns, so aborting the loop aborts every connection too.
async fn accept_loop<F, Fut>(listener: tokio::net::TcpListener, serve_connection: F)
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(stream));
                }
                // Out of file descriptors or similar: back off briefly instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
