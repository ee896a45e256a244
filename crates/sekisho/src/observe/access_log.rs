//! One JSON line per request on stdout or in a file, written by a thread of its own so a
//! slow terminal, pipe or disk never holds up a request.

use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::SystemTime;

use serde::Serialize;

/// Lines waiting to be written; past this, lines are dropped rather than blocking.
const QUEUE: usize = 64 * 1024;

/// Everything logged about one request.
#[derive(Serialize)]
pub struct Entry<'a> {
    /// When the request arrived, RFC 3339 UTC.
    pub time: String,
    /// The `x-request-id` sent upstream.
    pub request_id: &'a str,
    /// The client's address, as the listener's `client_ip` policy derived it.
    pub client: IpAddr,
    /// The connection's peer (or the PROXY protocol source).
    pub peer: SocketAddr,
    /// Listener name.
    pub listener: &'a str,
    /// `h1` or `h2`.
    pub http: &'static str,
    /// `grpc`, `grpc-web` or `http`.
    pub protocol: &'static str,
    /// Request method.
    pub method: &'a str,
    /// Host the client asked for.
    pub authority: &'a str,
    /// Request path (without the query, which may carry secrets).
    pub path: &'a str,
    /// Route name, null when none matched.
    pub route: Option<&'a str>,
    /// Cluster name, null when the request never went upstream.
    pub cluster: Option<&'a str>,
    /// Endpoint address, null when none was reached.
    pub upstream: Option<SocketAddr>,
    /// HTTP status sent to the client.
    pub status: u16,
    /// gRPC status sent to the client, null for plain HTTP.
    pub grpc_status: Option<u16>,
    /// Request body bytes received from the client.
    pub bytes_in: u64,
    /// Response body bytes sent to the client.
    pub bytes_out: u64,
    /// Attempts sent upstream; more than one when retried, 0 when none was sent.
    pub attempts: u32,
    /// The trace this request belongs to, when tracing is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<&'a str>,
    /// The gateway's server span for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_id: Option<&'a str>,
    /// From the request's arrival to the end of the response, in milliseconds.
    pub duration_ms: f64,
    /// Why the gateway answered itself or the response ended early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    /// The ids of the WAF rules that matched, in order; absent when none did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waf: Option<&'a [u32]>,
}

/// Where entries go.
#[derive(Clone)]
pub struct AccessLog {
    lines: mpsc::SyncSender<String>,
    /// The file written to; `None` for stdout.
    path: Option<PathBuf>,
}

impl AccessLog {
    /// Starts the writer thread for stdout.
    pub fn start() -> Self {
        Self::spawn(Box::new(std::io::stdout()), None)
    }

    /// Starts a writer thread appending to `path`, creating the file if needed.
    pub fn to_file(path: &Path) -> std::io::Result<Self> {
        let file = File::options().create(true).append(true).open(path)?;
        Ok(Self::spawn(Box::new(file), Some(path.to_owned())))
    }

    /// The file this log appends to, `None` for stdout; a reload naming the same file
    /// keeps the writer.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn spawn(out: Box<dyn Write + Send>, path: Option<PathBuf>) -> Self {
        let (lines, queue) = mpsc::sync_channel::<String>(QUEUE);
        let spawned = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(queue, out));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "access log thread did not start");
        }
        AccessLog { lines, path }
    }

    /// Queues one entry; drops it if the writer is far behind.
    pub fn write(&self, entry: &Entry<'_>) {
        if let Ok(line) = serde_json::to_string(entry) {
            let _ = self.lines.try_send(line);
        }
    }
}

fn write_lines(queue: mpsc::Receiver<String>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    while let Ok(line) = queue.recv() {
        let _ = writeln!(out, "{line}");
        // Write whatever else is waiting, then flush once.
        while let Ok(line) = queue.try_recv() {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }
}

/// `time` formatted for an entry.
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}
