//! What an ashi server needs to know to run. Every setting has a default that works on a
//! laptop: SQLite and scans in a local directory.

use std::path::PathBuf;
use std::time::Duration;

/// Where scans are kept.
#[derive(Debug, Clone)]
pub enum ObjectsConfig {
    /// A local directory; ashi signs and serves the upload URLs itself.
    Local { dir: PathBuf },
    /// An S3-compatible store; it checks the SigV4-presigned URLs ashi hands out.
    S3(S3Config),
}

/// An S3-compatible bucket.
#[derive(Clone)]
pub struct S3Config {
    /// e.g. `http://127.0.0.1:9000` or `https://s3.eu-west-1.amazonaws.com`.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Settings of one ashi server.
#[derive(Clone)]
pub struct Config {
    /// `sqlite://...` or `postgres://...`. SQLite files are created and every database is
    /// migrated on start.
    pub database_url: String,
    pub objects: ObjectsConfig,
    /// Base URL that clients reach ashi's HTTP side at, for local signed URLs; `None` means
    /// `http://` plus the HTTP listener's address.
    pub public_url: Option<String>,
    /// Key for signing local object URLs. `None` draws a random key at start, so URLs handed
    /// out before a restart stop working.
    pub signing_key: Option<Vec<u8>>,
    /// How long an upload URL stays valid.
    pub upload_expiry: Duration,
    /// Largest scan an upload URL is issued for, bytes.
    pub max_upload_bytes: u64,
    /// Default tolerance within which two toe tips count as level, mm.
    pub toe_tolerance_mm: f64,
    /// Load the demo shoe catalog on start (upserting its shoes).
    pub demo_catalog: bool,
    /// Export spans of each RPC and its queries over OTLP; `None` turns tracing off.
    pub tracing: Option<crate::trace::TraceConfig>,
    /// Serve a call that carries no identity header at all as this service principal, which
    /// reaches every user's data. For in-cluster callers that cannot go through the gateway;
    /// anyone who can reach the gRPC port then gets that access, so it is off (`None`) by
    /// default. Malformed identity headers are refused regardless.
    pub anonymous_service: Option<String>,
    /// How each of ashi's two servers bounds its client connections.
    pub connections: ConnectionBounds,
}

/// Bounds on the client connections of one of ashi's servers, so that clients which send
/// little or nothing cannot hold its connections: ashi may be reachable beside the gateway
/// (uploads go straight to its HTTP side), not only through it. A zero duration turns off the
/// timeouts that say so.
#[derive(Debug, Clone)]
pub struct ConnectionBounds {
    /// Connections open at once per server; more are closed as soon as accepted.
    pub max_connections: usize,
    /// The first bytes (the HTTP/2 preface on the gRPC side, enough to tell HTTP/1.1 from
    /// HTTP/2 on the HTTP side) must arrive within this.
    pub handshake_timeout: Duration,
    /// Each HTTP/1.1 request head must arrive within this (HTTP side); zero: no limit.
    pub header_read_timeout: Duration,
    /// A connection without a request in flight for this long is closed gracefully (HTTP/2:
    /// GOAWAY), on both servers. A request is in flight until its response body is done, so
    /// a long answer keeps its connection. The gateway pools its connections to ashi and
    /// opens a new one when ashi closes one. Zero: never.
    pub idle_timeout: Duration,
    /// HTTP/2 PINGs this often, so a peer that vanished is noticed; zero: no PINGs.
    pub keep_alive_interval: Duration,
    /// A PING unanswered this long closes the connection; also how long a connection told to
    /// close for idleness may take to finish.
    pub keep_alive_timeout: Duration,
    /// An upload body (a PUT to a local signed URL) from which no bytes arrive for this long
    /// is answered 408 and its connection closed; nothing of it is stored. Zero: no limit.
    pub request_body_idle_timeout: Duration,
}

impl Default for ConnectionBounds {
    /// The gateway's own edge defaults.
    fn default() -> Self {
        ConnectionBounds {
            max_connections: 10_000,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            keep_alive_interval: Duration::from_secs(60),
            keep_alive_timeout: Duration::from_secs(20),
            request_body_idle_timeout: Duration::from_secs(30),
        }
    }
}

/// A timeout that zero turns off, as the server code takes it.
pub(crate) fn unless_zero(timeout: Duration) -> Option<Duration> {
    (!timeout.is_zero()).then_some(timeout)
}

impl std::fmt::Debug for Config {
    /// Shows everything but secrets: the signing key, and a password in the database URL.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_password(&self.database_url))
            .field("objects", &self.objects)
            .field("public_url", &self.public_url)
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|_| "<redacted>"),
            )
            .field("upload_expiry", &self.upload_expiry)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("toe_tolerance_mm", &self.toe_tolerance_mm)
            .field("demo_catalog", &self.demo_catalog)
            .field("tracing", &self.tracing)
            .field("anonymous_service", &self.anonymous_service)
            .field("connections", &self.connections)
            .finish()
    }
}

/// `postgres://user:secret@host/db` as `postgres://user:<redacted>@host/db`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Default upload URL lifetime: long enough for a phone on a slow link.
pub const DEFAULT_UPLOAD_EXPIRY: Duration = Duration::from_secs(15 * 60);
/// Default largest scan: 50 MiB, above a dense point cloud of both feet.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 50 * 1024 * 1024;

impl Config {
    /// A server keeping everything under `data_dir`: `ashi.db` and `objects/`.
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Config {
            database_url: format!("sqlite://{}?mode=rwc", data_dir.join("ashi.db").display()),
            objects: ObjectsConfig::Local {
                dir: data_dir.join("objects"),
            },
            public_url: None,
            signing_key: None,
            upload_expiry: DEFAULT_UPLOAD_EXPIRY,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            toe_tolerance_mm: crate::sizing::toe::DEFAULT_TOLERANCE_MM,
            demo_catalog: false,
            tracing: None,
            anonymous_service: None,
            connections: ConnectionBounds::default(),
        }
    }
}

impl Default for Config {
    /// Everything under `.ashi/` in the working directory.
    fn default() -> Self {
        Config::local(".ashi")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets() {
        let mut config = Config::local("/data");
        config.database_url = "postgres://ashi:hunter2@db/ashi".into();
        config.signing_key = Some(b"very-secret".to_vec());
        let shown = format!("{config:?}");
        assert!(
            shown.contains("postgres://ashi:<redacted>@db/ashi"),
            "{shown}"
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("118, 101, 114, 121"), "{shown}");
        assert!(
            shown.contains("signing_key: Some(\"<redacted>\")"),
            "{shown}"
        );
    }
}
