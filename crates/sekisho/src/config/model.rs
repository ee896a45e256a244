//! The config file's schema: what an operator writes, typed.
//!
//! Every struct rejects unknown fields so a typo is an error, not a silently ignored
//! setting. Values that other parts of the file refer to, or that name files, keep their
//! location (`Spanned`) so validation can point at them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::text::{Duration, Parsed, Pattern, Text};

/// The whole gateway config.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The admin listener (metrics, health, config, clusters); off when absent.
    #[serde(default)]
    pub admin: Option<Admin>,
    /// How long a shutdown waits for requests in flight before closing connections.
    #[serde(default)]
    pub drain_timeout: Option<Parsed<Duration>>,
    /// Where clients connect.
    #[serde(default)]
    pub listeners: Vec<Listener>,
    /// Matched in file order; the first match wins.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Named groups of upstream endpoints.
    #[serde(default)]
    pub clusters: Vec<Cluster>,
    /// The per-request JSON log on stdout.
    #[serde(default)]
    pub access_log: AccessLog,
    /// Issuers of JSON Web Tokens that routes may require.
    #[serde(default)]
    pub jwt_providers: Vec<super::jwt::JwtProvider>,
    /// Distributed tracing; off when absent.
    #[serde(default)]
    pub tracing: Option<Tracing>,
    /// Headers only the gateway may give a value (the identity a backend trusts, such as
    /// a user id or a service name): removed from every client request on arrival, so
    /// only a route's `jwt.forward_claims` or `request_headers.add` sets them. Headers a
    /// route's `forward_claims` names are internal whether listed here or not.
    #[serde(default)]
    pub internal_headers: Vec<Spanned<Text>>,
    /// Parts of the URL space handed to teams, whose routes and clusters live in the
    /// teams' own files (see `config::grant`).
    #[serde(default)]
    pub teams: Vec<super::grant::Grant>,
    /// Stores where the gateway's replicas keep the buckets of shared rate limits, which
    /// a route's `rate_limit.shared` names.
    #[serde(default)]
    pub rate_limit_stores: Vec<RateLimitStore>,
}

/// A store of shared rate limit buckets.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitStore {
    /// Unique; a route's `rate_limit.shared.store` names it.
    pub name: Spanned<Text>,
    /// A Redis server (or a managed Redis's primary endpoint).
    pub redis: RedisStore,
}

/// How to reach a Redis server.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisStore {
    /// `host:port`: the server, any node of a cluster, or a Sentinel.
    pub address: Spanned<Text>,
    /// One server, a Redis Cluster whose nodes the gateway learns from `address`, or a
    /// primary that Sentinels name.
    #[serde(default)]
    pub mode: RedisMode,
    /// For `mode: sentinel`: which primary, and the Sentinels besides `address`.
    #[serde(default)]
    pub sentinel: Option<RedisSentinel>,
    /// The ACL user; the default user when absent.
    #[serde(default)]
    pub username: Option<Text>,
    /// Usually `${file:...}` or `${env:...}`; never shown in `/config` or logs, even when
    /// written in the file itself.
    #[serde(default, serialize_with = "redact")]
    pub password: Option<Text>,
    /// The logical database.
    #[serde(default)]
    pub database: u16,
    /// TLS to the server (`rediss`); plain TCP when absent.
    #[serde(default)]
    pub tls: Option<RedisTls>,
    /// How long opening a connection may take (default 1s).
    #[serde(default)]
    pub connect_timeout: Option<Parsed<Duration>>,
    /// The longest a call may take, and so the longest a request waits on the store
    /// (default 100ms); a call that takes longer counts as the store failing.
    #[serde(default)]
    pub timeout: Option<Parsed<Duration>>,
    /// Connections kept open, each carrying many calls at once.
    #[serde(default = "RedisStore::default_connections")]
    pub connections: usize,
    /// Put before every key, so several gateways (or other users) can share a database.
    #[serde(default = "RedisStore::default_key_prefix")]
    pub key_prefix: Text,
}

/// Serializes a password as set or not, never its value.
fn redact<S: serde::Serializer>(value: &Option<Text>, out: S) -> Result<S::Ok, S::Error> {
    value.as_ref().map(|_| super::text::REDACTED).serialize(out)
}

impl RedisStore {
    fn default_connections() -> usize {
        2
    }

    fn default_key_prefix() -> Text {
        Text::plain("sekisho:rl:")
    }
}

/// What `address` of a Redis store points at.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RedisMode {
    /// One server, or a managed primary whose address follows its failovers.
    #[default]
    Standalone,
    /// A Redis Cluster: buckets spread over its primaries by key slot.
    Cluster,
    /// A primary that Redis Sentinels monitor: asked for at start and after a failure,
    /// so a failover is followed.
    Sentinel,
}

/// How to find a Sentinel-managed primary.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSentinel {
    /// The name the Sentinels monitor the primary under.
    pub master: Text,
    /// More Sentinels (`host:port`), asked in turn after `address` when it does not answer.
    #[serde(default)]
    pub others: Vec<Text>,
    /// The Sentinels' own password, when they require one; never shown, like `password`.
    #[serde(default, serialize_with = "redact")]
    pub password: Option<Text>,
}

/// TLS to a Redis server; its name is checked against the host of `address`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisTls {
    /// A PEM file of the CAs the server's chain must end in; the system's roots when absent.
    #[serde(default)]
    pub ca: Option<Spanned<Text>>,
    /// A PEM file of the client certificate chain, for servers that require one; needs
    /// `key`.
    #[serde(default)]
    pub cert: Option<Spanned<Text>>,
    /// A PEM file of the client certificate's private key.
    #[serde(default)]
    pub key: Option<Spanned<Text>>,
}

/// A rate limit whose buckets the gateway's replicas share through a store.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SharedLimit {
    /// A `rate_limit_stores` entry.
    pub store: Spanned<Text>,
    /// Requests a replica may let through per key before the store has counted them
    /// (default: a twentieth of `burst`, at least 1). Each replica can overshoot the limit
    /// by at most this many; larger batches call the store less often.
    #[serde(default)]
    pub batch: Option<u32>,
    /// How often counted requests are reported when no batch fills (default 50ms).
    #[serde(default)]
    pub sync_every: Option<Parsed<Duration>>,
    /// What happens while the store cannot be reached.
    #[serde(default)]
    pub failure_mode: FailureMode,
}

/// What a shared rate limit does while its store cannot be reached. The local limit (the
/// same quota, counted by each replica alone) applies either way.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Refuse every request of the limit (429, or RESOURCE_EXHAUSTED for gRPC).
    #[default]
    Closed,
    /// Let requests through on the local limit alone.
    Open,
}

/// Spans exported over OTLP/gRPC.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tracing {
    /// The collector, e.g. `http://otel-collector:4317`.
    pub otlp_endpoint: Text,
    /// Share of new traces recorded, 0 to 1; a caller's sampled trace is always continued.
    #[serde(default = "Tracing::default_sampling")]
    pub sampling: f64,
    /// Also accept B3 headers (`b3`, `x-b3-*`) from callers.
    #[serde(default)]
    pub b3: bool,
    /// `service.name` of the gateway's spans.
    #[serde(default = "Tracing::default_service")]
    pub service_name: Text,
    /// Bound on one export.
    #[serde(default)]
    pub timeout: Option<Parsed<Duration>>,
    /// Finished spans waiting for export; more are dropped (and counted).
    #[serde(default = "Tracing::default_queue")]
    pub max_queue: usize,
}

impl Tracing {
    fn default_sampling() -> f64 {
        1.0
    }
    fn default_service() -> Text {
        Text::plain("sekisho")
    }
    fn default_queue() -> usize {
        4096
    }
}

/// The admin listener.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Keep it on loopback or a private network: it exposes the running config.
    pub address: Parsed<SocketAddr>,
}

/// The access log switch and destination.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLog {
    /// One JSON line per request (on by default).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A file the lines are appended to instead of stdout, for hosts that ship logs
    /// from files.
    #[serde(default)]
    pub path: Option<Spanned<Text>>,
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog {
            enabled: true,
            path: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// A bound address that serves HTTP/1.1 and HTTP/2, in clear text or over TLS.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// Unique; shows in logs and metrics.
    pub name: Spanned<Text>,
    /// Port 0 picks a free port (useful in tests).
    pub address: Parsed<SocketAddr>,
    /// Terminate TLS; ALPN picks h2 or http/1.1.
    #[serde(default)]
    pub tls: Option<Tls>,
    /// HTTP/2 limits for client connections.
    #[serde(default)]
    pub http2: Http2,
    /// HTTP/1.1 limits for client connections.
    #[serde(default)]
    pub http1: Http1,
    /// Accept PROXY protocol headers (v1 and v2) from these peers.
    #[serde(default)]
    pub proxy_protocol: Option<ProxyProtocol>,
    /// How the client's address is derived.
    #[serde(default)]
    pub client_ip: Option<ClientIp>,
    /// Clients allowed on (or kept off) this listener.
    #[serde(default)]
    pub ip_acl: Option<IpAcl>,
    /// Longest request target (path and query) accepted; longer gets 414.
    #[serde(default = "Listener::default_max_uri")]
    pub max_uri_bytes: usize,
    /// How request paths are normalized before routing (see `proxy::path`).
    #[serde(default)]
    pub paths: PathPolicy,
    /// Client connections open at once (default 10,000; `0`: no bound). Past it a new
    /// connection is closed as soon as it is accepted and counted, so a flood of idle
    /// connections cannot take every file descriptor the process has.
    #[serde(default = "Listener::default_max_connections")]
    pub max_connections: usize,
    /// From accept to the first bytes of HTTP: the PROXY header, the TLS handshake and,
    /// in clear text, the bytes that tell HTTP/1.1 from HTTP/2 must all arrive within this
    /// (default 10s). A client that sends part of them and falls silent is closed.
    #[serde(default)]
    pub handshake_timeout: Option<Parsed<Duration>>,
    /// A request body that sends nothing for this long, while the gateway waits for it
    /// and nothing moves on the response either, is cut off: 408 when no response has
    /// started, the upstream's stream reset (default 30s; `0s` turns it off).
    #[serde(default)]
    pub request_body_idle_timeout: Option<Parsed<Duration>>,
    /// A response that waits this long for its client to take any of it (an HTTP/1.1
    /// client that stopped reading, an HTTP/2 client whose stream window stays shut) is
    /// cut: the connection closed, or the HTTP/2 stream reset, and the upstream request
    /// cancelled (default 60s, as nginx's `send_timeout`; `0s` turns it off).
    #[serde(default)]
    pub send_timeout: Option<Parsed<Duration>>,
}

/// How a listener normalizes request paths. Dot segments are always removed and escapes
/// of unreserved characters always decoded; these are the choices that break some APIs.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PathPolicy {
    /// `%2F`, `%5C` and a raw backslash: refused (400), kept, or decoded to `/`.
    #[serde(default)]
    pub escaped_slashes: EscapedSlashes,
    /// Runs of slashes become one.
    #[serde(default = "yes")]
    pub merge_slashes: bool,
}

impl Default for PathPolicy {
    fn default() -> Self {
        PathPolicy {
            escaped_slashes: EscapedSlashes::default(),
            merge_slashes: true,
        }
    }
}

/// What an encoded slash or backslash in a path does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EscapedSlashes {
    /// 400: the gateway and the upstream would read such a path differently.
    #[default]
    Reject,
    /// Passed on as they are (upper-case hex); routes see them encoded.
    Keep,
    /// Decoded to `/` before the path is normalized, so routes see what a decoding
    /// upstream serves.
    Decode,
}

impl Listener {
    fn default_max_uri() -> usize {
        8 * 1024
    }

    fn default_max_connections() -> usize {
        10_000
    }
}

/// PROXY protocol on a listener.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyProtocol {
    /// Peers (load balancers) allowed to send a header; CIDRs or addresses.
    pub from: Vec<Text>,
    /// Whether those peers must send one (connections from other peers never may).
    #[serde(default = "yes")]
    pub required: bool,
}

/// Which address is the client's.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientIp {
    /// Proxies whose `X-Forwarded-For` entries are believed (CIDRs or addresses).
    #[serde(default)]
    pub trusted_proxies: Vec<Text>,
    /// Or: this many proxies in front are trusted, whatever their address.
    #[serde(default)]
    pub xff_trusted_hops: Option<usize>,
}

/// An allow/deny list of client networks.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IpAcl {
    /// Only these networks may pass (when given).
    #[serde(default)]
    pub allow: Vec<Text>,
    /// These never pass; deny wins over allow.
    #[serde(default)]
    pub deny: Vec<Text>,
    /// Files of allowed networks, one per line (`#` comments); watched.
    #[serde(default)]
    pub allow_files: Vec<Text>,
    /// Files of denied networks; watched.
    #[serde(default)]
    pub deny_files: Vec<Text>,
    /// HTTP status for refused clients: 403, or 404 to hide the endpoint.
    #[serde(default = "IpAcl::default_status")]
    pub status: u16,
}

impl IpAcl {
    fn default_status() -> u16 {
        403
    }
}

/// TLS termination settings.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Chosen by SNI from each certificate's DNS names; the first is the default.
    pub certificates: Vec<CertificateFiles>,
}

/// A PEM certificate chain and its private key, re-read when either file changes.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFiles {
    /// PEM chain, leaf first.
    pub cert: Spanned<Text>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Spanned<Text>,
}

/// HTTP/2 settings with edge-safe defaults.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Http2 {
    /// Streams a client may have open at once.
    #[serde(default = "Http2::default_streams")]
    pub max_concurrent_streams: u32,
    /// Flow-control window per stream; bounds memory a slow reader can pin.
    #[serde(default = "Http2::default_stream_window")]
    pub initial_stream_window_size: u32,
    /// Flow-control window per connection.
    #[serde(default = "Http2::default_connection_window")]
    pub initial_connection_window_size: u32,
    /// Largest header block accepted, in bytes.
    #[serde(default = "Http2::default_header_list")]
    pub max_header_list_size: u32,
    /// Streams a client may cancel (reset before its response is complete) beyond those
    /// it lets finish; past it the connection gets GOAWAY(ENHANCE_YOUR_CALM). Bounds the
    /// backend work a client can start without ever waiting for an answer (0: no bound).
    #[serde(default = "Http2::default_cancelled_streams")]
    pub max_cancelled_streams: u32,
    /// A connection with no open stream for this long is sent GOAWAY and closed
    /// (default 5m; `0s`: never).
    #[serde(default)]
    pub idle_timeout: Option<Parsed<Duration>>,
    /// The client is sent a PING this often, so a peer that vanished without a word is
    /// noticed (default 60s; `0s`: never).
    #[serde(default)]
    pub keep_alive_interval: Option<Parsed<Duration>>,
    /// A PING unanswered this long closes the connection; also how long a connection sent
    /// GOAWAY for being idle may take to close itself (default 20s).
    #[serde(default)]
    pub keep_alive_timeout: Option<Parsed<Duration>>,
}

impl Http2 {
    fn default_streams() -> u32 {
        100
    }
    fn default_stream_window() -> u32 {
        64 * 1024
    }
    fn default_connection_window() -> u32 {
        1024 * 1024
    }
    fn default_header_list() -> u32 {
        16 * 1024
    }
    fn default_cancelled_streams() -> u32 {
        200
    }
}

impl Default for Http2 {
    fn default() -> Self {
        Http2 {
            max_concurrent_streams: Self::default_streams(),
            initial_stream_window_size: Self::default_stream_window(),
            initial_connection_window_size: Self::default_connection_window(),
            max_header_list_size: Self::default_header_list(),
            max_cancelled_streams: Self::default_cancelled_streams(),
            idle_timeout: None,
            keep_alive_interval: None,
            keep_alive_timeout: None,
        }
    }
}

/// HTTP/1.1 settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Http1 {
    /// Largest request head accepted, in bytes.
    #[serde(default = "Http1::default_max_buf")]
    pub max_header_bytes: usize,
    /// A client must send each request head within this time, counted from the start of
    /// the connection or the end of the previous response, so it also bounds how long a
    /// keep-alive connection may sit idle (default 10s; `0s` turns it off).
    #[serde(default)]
    pub header_read_timeout: Option<Parsed<Duration>>,
}

impl Http1 {
    fn default_max_buf() -> usize {
        64 * 1024
    }
}

impl Default for Http1 {
    fn default() -> Self {
        Http1 {
            max_header_bytes: Self::default_max_buf(),
            header_read_timeout: None,
        }
    }
}

/// One entry of the route table.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Unique; shows in logs and metrics.
    pub name: Spanned<Text>,
    /// All given conditions must hold; an empty match takes everything.
    #[serde(default, rename = "match")]
    pub matches: Match,
    /// Where matching requests go.
    pub to: Spanned<Target>,
    /// Replace the matched path prefix before sending upstream.
    #[serde(default)]
    pub rewrite: Option<Rewrite>,
    /// Headers added to or removed from the request sent upstream.
    #[serde(default)]
    pub request_headers: HeaderEdits,
    /// Headers added to or removed from the response sent to the client.
    #[serde(default)]
    pub response_headers: HeaderEdits,
    /// How long to wait for the upstream's response headers (default 15s; 0 turns it off).
    #[serde(default)]
    pub timeout: Option<Parsed<Duration>>,
    /// Retry failed attempts on other endpoints.
    #[serde(default)]
    pub retry: Option<Retry>,
    /// Copy a share of the requests to a shadow cluster.
    #[serde(default)]
    pub mirror: Option<Mirror>,
    /// Serve REST/JSON callers by translating to the cluster's gRPC methods.
    #[serde(default)]
    pub transcode: Option<Transcode>,
    /// Require a valid JSON Web Token from a provider.
    #[serde(default)]
    pub jwt: Option<super::jwt::RouteJwt>,
    /// Clients allowed on (or kept off) this route.
    #[serde(default)]
    pub ip_acl: Option<IpAcl>,
    /// Requests per client (or per key) over time.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Largest request body; a longer one gets 413.
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
    /// Bound on the whole exchange, the response body included (streams too).
    #[serde(default)]
    pub max_duration: Option<Parsed<Duration>>,
    /// gRPC-Web from browsers, translated to gRPC; on by default when every cluster of the
    /// route speaks HTTP/2.
    #[serde(default)]
    pub grpc_web: Option<GrpcWeb>,
    /// Which other sites' pages may call this route from a browser.
    #[serde(default)]
    pub cors: Option<Cors>,
    /// Inspect requests (and optionally responses) with SecLang rules such as the OWASP
    /// Core Rule Set.
    #[serde(default)]
    pub waf: Option<Waf>,
}

/// A route's web application firewall.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Waf {
    /// Rule files loaded in order, as if each were `Include`d (`*` and `?` expand in the
    /// file name).
    pub rules: Vec<Spanned<Text>>,
    /// `block` acts on the rules' disruptive actions; `detect` only logs (DetectionOnly).
    #[serde(default)]
    pub mode: WafMode,
    /// Request body bytes buffered and inspected (SecRequestBodyLimit); default 13107200.
    #[serde(default)]
    pub request_body_limit: Option<u64>,
    /// What a longer body gets: `reject` (413) or `process_partial` (inspect the first
    /// `request_body_limit` bytes, pass the rest). The same choice applies to the limits
    /// below: `reject` refuses a body past one, `process_partial` inspects what fitted.
    #[serde(default)]
    pub request_body_limit_action: BodyLimitAction,
    /// Arguments inspected at most, query and body together (SecArgumentsLimit); default
    /// 1000. Also bounds a gRPC message's fields, uploaded files and XML attribute values:
    /// every value costs every rule a run, so a body of many small ones is costly.
    #[serde(default)]
    pub arguments_limit: Option<std::num::NonZeroUsize>,
    /// JSON containers nested at most (SecRequestBodyJsonDepthLimit); default 128, the
    /// depth serde_json accepts.
    #[serde(default)]
    pub json_depth_limit: Option<std::num::NonZeroUsize>,
    /// XML elements nested at most; default 256, libxml2's limit.
    #[serde(default)]
    pub xml_depth_limit: Option<std::num::NonZeroUsize>,
    /// Also run the response phases: headers always, bodies of non-gRPC responses.
    #[serde(default)]
    pub inspect_responses: bool,
    /// Response body bytes buffered and inspected (SecResponseBodyLimit); default 524288.
    #[serde(default)]
    pub response_body_limit: Option<u64>,
}

/// Whether the WAF may refuse requests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WafMode {
    /// Refuse what the rules deny.
    #[default]
    Block,
    /// Log what the rules match, refuse nothing.
    Detect,
}

/// What happens to a request body longer than the WAF inspects.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyLimitAction {
    /// Refuse it (413), as ModSecurity's default.
    #[default]
    Reject,
    /// Inspect what fits, pass the rest uninspected.
    ProcessPartial,
}

/// gRPC-Web translation on a route.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcWeb {
    /// `false` passes gRPC-Web through untouched, for a backend that speaks it itself.
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// Cross-origin resource sharing: the gateway answers preflights and marks responses so
/// a browser lets a page from an allowed origin read them.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    /// `https://app.example.com` (scheme, host and port, as a browser sends `Origin`), or
    /// `*` alone for any origin.
    pub allow_origins: Vec<Spanned<Text>>,
    /// Request headers a page may send, besides the gRPC-Web ones (`content-type`,
    /// `x-grpc-web`, `x-user-agent`, `grpc-timeout`).
    #[serde(default)]
    pub allow_headers: Vec<Spanned<Text>>,
    /// Response headers a page may read, besides `grpc-status`, `grpc-message` and
    /// `grpc-status-details-bin`.
    #[serde(default)]
    pub expose_headers: Vec<Spanned<Text>>,
    /// How long a browser may keep a preflight's answer.
    #[serde(default)]
    pub max_age: Option<Parsed<Duration>>,
}

/// A token bucket per key.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per `per`, sustained.
    pub requests: u32,
    /// The period of `requests`.
    #[serde(default)]
    pub per: Option<Parsed<Duration>>,
    /// Requests allowed at once above the rate (default: `requests`).
    #[serde(default)]
    pub burst: Option<u32>,
    /// What a bucket belongs to.
    #[serde(default)]
    pub key: RateKey,
    /// Most keys tracked at once. Only keys whose bucket has refilled are ever forgotten (they
    /// hold nothing a fresh bucket would not); when every tracked key is in debt, new keys
    /// share one overflow bucket of the same quota instead, so a flood of fresh keys cannot
    /// hand a limited client a new allowance.
    #[serde(default = "RateLimit::default_max_keys")]
    pub max_keys: usize,
    /// With `key: client_ip`, IPv4 clients are counted by this prefix of their address
    /// (32: each address; 24 to count a whole /24 as one client).
    #[serde(default = "RateLimit::default_ipv4_prefix")]
    pub ipv4_prefix: u8,
    /// With `key: client_ip`, IPv6 clients are counted by this prefix: one host is usually
    /// given a whole /64, and could otherwise take a fresh bucket per address.
    #[serde(default = "RateLimit::default_ipv6_prefix")]
    pub ipv6_prefix: u8,
    /// Counts the limit across every replica of the gateway, in a store; each replica
    /// counts alone when absent.
    #[serde(default)]
    pub shared: Option<SharedLimit>,
}

impl RateLimit {
    fn default_max_keys() -> usize {
        100_000
    }

    fn default_ipv4_prefix() -> u8 {
        32
    }

    fn default_ipv6_prefix() -> u8 {
        64
    }
}

/// The key of a rate limit.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RateKey {
    /// The derived client address.
    #[default]
    ClientIp,
    /// A request header's value (requests without it share one bucket).
    Header(Text),
    /// A claim of the route's verified JWT, such as `sub` (the route needs `jwt`).
    Claim(Text),
}

/// REST/JSON to gRPC by the `google.api.http` rules of a descriptor set.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Transcode {
    /// A binary FileDescriptorSet (`protoc --include_imports -o`).
    #[serde(default)]
    pub descriptors: Option<Spanned<Text>>,
    /// `.proto` files compiled at start-up instead, so no protoc is needed.
    #[serde(default)]
    pub protos: Vec<Spanned<Text>>,
    /// Where imports of `protos` are looked up.
    #[serde(default)]
    pub includes: Vec<Text>,
    /// Services exposed; every service with rules when empty.
    #[serde(default)]
    pub services: Vec<Text>,
    /// Only these methods (`package.Service/Method`) of those services; empty: all. A route
    /// for partners can serve a service's reads and leave its writes to a route that
    /// requires a role.
    #[serde(default)]
    pub methods: Vec<Text>,
    /// Skip query parameters that name no field instead of answering 400.
    #[serde(default)]
    pub ignore_unknown_query: bool,
    /// Write fields holding their default value.
    #[serde(default)]
    pub emit_defaults: bool,
    /// Write `.proto` field names instead of lowerCamelCase.
    #[serde(default)]
    pub original_names: bool,
    /// Write enums as numbers.
    #[serde(default)]
    pub enums_as_ints: bool,
    /// Server streams as one JSON array instead of newline-delimited JSON.
    #[serde(default)]
    pub stream_as_array: bool,
    /// Request headers passed to the backend as metadata.
    #[serde(default = "Transcode::default_headers")]
    pub headers: Vec<Text>,
    /// Largest request or unary response body, in bytes.
    #[serde(default = "Transcode::default_max_body")]
    pub max_body_bytes: usize,
    /// Path at which the route serves the OpenAPI document of what it exposes.
    #[serde(default)]
    pub openapi: Option<Text>,
}

impl Transcode {
    fn default_headers() -> Vec<Text> {
        vec![Text::plain("authorization"), Text::plain("x-request-id")]
    }
    fn default_max_body() -> usize {
        4 << 20
    }
}

/// When and how a route retries a failed attempt.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Which failures are retried.
    pub on: Vec<RetryOn>,
    /// Upstream HTTP statuses retried when `on` lists `retriable_status_codes`.
    #[serde(default)]
    pub retriable_status_codes: Vec<u16>,
    /// Attempts in all, the first one included.
    #[serde(default = "Retry::default_attempts")]
    pub attempts: u32,
    /// Bound on each attempt; the route's `timeout` still bounds them all.
    #[serde(default)]
    pub per_try_timeout: Option<Parsed<Duration>>,
    /// First backoff before a retry; each later one doubles, with full jitter.
    #[serde(default)]
    pub backoff: Option<Parsed<Duration>>,
    /// Longest backoff.
    #[serde(default)]
    pub max_backoff: Option<Parsed<Duration>>,
    /// Request body bytes kept for a retry; a longer body is not retried once streamed.
    #[serde(default = "Retry::default_buffer")]
    pub buffer_bytes: usize,
}

impl Retry {
    fn default_attempts() -> u32 {
        2
    }
    fn default_buffer() -> usize {
        64 * 1024
    }
}

/// A kind of failed attempt a route may retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryOn {
    /// No connection could be opened (the request never left).
    ConnectFailure,
    /// The connection broke, or the attempt timed out, before a response.
    Reset,
    /// gRPC status UNAVAILABLE in a trailers-only response.
    Unavailable,
    /// Any 5xx from the upstream, and connect failures, resets and attempt timeouts.
    #[serde(rename = "5xx")]
    ServerError,
    /// 502, 503 and 504 from the upstream, and connect failures, resets and attempt timeouts.
    GatewayError,
    /// The statuses listed in `retriable_status_codes`.
    RetriableStatusCodes,
}

/// A copy of a share of a route's requests, sent to another cluster and never waited for.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    /// The shadow cluster.
    pub cluster: Spanned<Text>,
    /// Share of requests copied, 0 to 100.
    #[serde(default = "Mirror::default_percent")]
    pub percent: f64,
}

impl Mirror {
    fn default_percent() -> f64 {
        100.0
    }
}

/// Conditions a request must meet to take a route.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// `api.example.com` or `*.example.com`; compared without the port, case-insensitively.
    #[serde(default)]
    pub host: Option<Text>,
    /// The exact path.
    #[serde(default)]
    pub path: Option<Text>,
    /// A path prefix.
    #[serde(default)]
    pub path_prefix: Option<Text>,
    /// A regular expression the whole path must match.
    #[serde(default)]
    pub path_regex: Option<Parsed<Pattern>>,
    /// The HTTP method, e.g. `GET`.
    #[serde(default)]
    pub method: Option<Text>,
    /// Header conditions; all must hold.
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
    /// The gRPC service, fully qualified (`grpc.testing.TestService`); gRPC requests only.
    #[serde(default)]
    pub grpc_service: Option<Text>,
    /// The gRPC method name (`UnaryCall`); gRPC requests only.
    #[serde(default)]
    pub grpc_method: Option<Text>,
}

/// A condition on one request header.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    /// Header name, case-insensitive.
    pub name: Spanned<Text>,
    /// The value must equal this.
    #[serde(default)]
    pub exact: Option<Text>,
    /// `true`: the header must be present; `false`: it must be absent.
    #[serde(default)]
    pub present: Option<bool>,
    /// The whole value must match this regular expression.
    #[serde(default)]
    pub regex: Option<Parsed<Pattern>>,
}

/// Path rewriting.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rewrite {
    /// Replaces the route's `path_prefix` (or `path`) in the upstream request.
    pub path_prefix: Spanned<Text>,
}

/// Header additions and removals.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderEdits {
    /// Set (replacing any value already there).
    #[serde(default)]
    pub add: BTreeMap<String, Text>,
    /// Removed by name.
    #[serde(default)]
    pub remove: Vec<Text>,
}

/// Where a route sends traffic: one cluster, or several by weight.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Target {
    /// `to: backend`
    Cluster(String),
    /// `to: { backend: 90, canary: 10 }`
    Weighted(BTreeMap<String, u32>),
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TargetVisitor;
        impl<'de> Visitor<'de> for TargetVisitor {
            type Value = Target;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a cluster name or a map of cluster name to weight")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Target, E> {
                Ok(Target::Cluster(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Target, A::Error> {
                let mut weights = BTreeMap::new();
                while let Some((name, weight)) = map.next_entry::<String, u32>()? {
                    if weights.insert(name.clone(), weight).is_some() {
                        return Err(de::Error::custom(format!("cluster {name:?} listed twice")));
                    }
                }
                Ok(Target::Weighted(weights))
            }
        }
        deserializer.deserialize_any(TargetVisitor)
    }
}

/// A named group of upstream endpoints and how to reach them.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Unique; routes refer to it.
    pub name: Spanned<Text>,
    /// How the gateway talks to the endpoints.
    #[serde(default)]
    pub protocol: Protocol,
    /// Static addresses or DNS names.
    pub endpoints: Vec<Endpoint>,
    /// How an endpoint is picked for each request.
    #[serde(default)]
    pub balance: Balance,
    /// Give up connecting after this long (default 1s).
    #[serde(default)]
    pub connect_timeout: Option<Parsed<Duration>>,
    /// How often DNS endpoints are resolved again (default 5s).
    #[serde(default)]
    pub dns_refresh: Option<Parsed<Duration>>,
    /// TLS to the endpoints; used with `protocol: h2`.
    #[serde(default)]
    pub tls: Option<UpstreamTls>,
    /// Active health checking.
    #[serde(default)]
    pub health: Option<HealthCheck>,
    /// Passive health: ejecting endpoints that fail requests.
    #[serde(default)]
    pub outlier: Option<Outlier>,
    /// Bounds on what the cluster may be asked for at once.
    #[serde(default)]
    pub limits: Limits,
    /// Retries allowed on top of the requests in flight.
    #[serde(default)]
    pub retry_budget: RetryBudget,
}

/// How and how often each endpoint is probed.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// `grpc.health.v1.Health/Check`.
    #[serde(default)]
    pub grpc: Option<GrpcHealthCheck>,
    /// An HTTP GET whose status must fall in a range.
    #[serde(default)]
    pub http: Option<HttpHealthCheck>,
    /// A TCP connect.
    #[serde(default)]
    pub tcp: Option<TcpHealthCheck>,
    /// Time between probes of one endpoint.
    #[serde(default)]
    pub interval: Option<Parsed<Duration>>,
    /// Bound on one probe.
    #[serde(default)]
    pub timeout: Option<Parsed<Duration>>,
    /// Up to this much random delay is added to each interval, so probes spread out.
    #[serde(default)]
    pub jitter: Option<Parsed<Duration>>,
    /// Consecutive failed probes that take a healthy endpoint out of rotation.
    #[serde(default = "HealthCheck::default_unhealthy")]
    pub unhealthy: u32,
    /// Consecutive passed probes that bring an unhealthy endpoint back.
    #[serde(default = "HealthCheck::default_healthy")]
    pub healthy: u32,
}

impl HealthCheck {
    fn default_unhealthy() -> u32 {
        3
    }
    fn default_healthy() -> u32 {
        2
    }
}

/// The gRPC health protocol; `service` empty asks about the server as a whole.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcHealthCheck {
    #[serde(default)]
    pub service: Option<Text>,
    /// `:authority` of the probe; the endpoint's host by default.
    #[serde(default)]
    pub authority: Option<Text>,
}

/// An HTTP probe.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpHealthCheck {
    pub path: Spanned<Text>,
    /// Inclusive range of passing statuses, `[200, 399]` by default.
    #[serde(default = "HttpHealthCheck::default_expect")]
    pub expect: [u16; 2],
    /// `Host` of the probe; the endpoint's host by default.
    #[serde(default)]
    pub host: Option<Text>,
}

impl HttpHealthCheck {
    fn default_expect() -> [u16; 2] {
        [200, 399]
    }
}

/// A TCP connect probe: the port accepts.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TcpHealthCheck {}

/// When an endpoint that fails requests is taken out of rotation, and for how long.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Outlier {
    /// Consecutive failed requests (5xx, gRPC UNAVAILABLE, connect failures, resets,
    /// timeouts) that eject an endpoint.
    #[serde(default = "Outlier::default_failures")]
    pub consecutive_failures: u32,
    /// First ejection's length; the n-th ejection in a row lasts n times as long.
    #[serde(default)]
    pub base_ejection: Option<Parsed<Duration>>,
    /// Longest ejection.
    #[serde(default)]
    pub max_ejection: Option<Parsed<Duration>>,
    /// Most of the cluster that may be ejected at once, in percent; one endpoint always
    /// stays.
    #[serde(default = "Outlier::default_percent")]
    pub max_ejected_percent: u32,
}

impl Outlier {
    fn default_failures() -> u32 {
        5
    }
    fn default_percent() -> u32 {
        50
    }
}

/// Circuit breakers: over a limit the gateway answers 503 / RESOURCE_EXHAUSTED at once
/// instead of queueing without bound.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Open connections to all endpoints together.
    #[serde(default = "Limits::default_connections")]
    pub max_connections: usize,
    /// Requests waiting for a connection.
    #[serde(default = "Limits::default_pending")]
    pub max_pending: usize,
    /// Requests in flight.
    #[serde(default = "Limits::default_requests")]
    pub max_requests: usize,
    /// Retries in flight.
    #[serde(default = "Limits::default_retries")]
    pub max_retries: usize,
}

impl Limits {
    fn default_connections() -> usize {
        4096
    }
    fn default_pending() -> usize {
        1024
    }
    fn default_requests() -> usize {
        16384
    }
    fn default_retries() -> usize {
        256
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: Self::default_connections(),
            max_pending: Self::default_pending(),
            max_requests: Self::default_requests(),
            max_retries: Self::default_retries(),
        }
    }
}

/// Retries over the last ten seconds may be at most `percent` of the requests (or
/// `min_retries_per_second`, whichever is more), so retries cannot multiply an outage.
/// Retries after a failed connect are not counted: that request reached no backend.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetryBudget {
    #[serde(default = "RetryBudget::default_percent")]
    pub percent: f64,
    #[serde(default = "RetryBudget::default_min")]
    pub min_retries_per_second: u64,
}

impl RetryBudget {
    fn default_percent() -> f64 {
        20.0
    }
    fn default_min() -> u64 {
        10
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            percent: Self::default_percent(),
            min_retries_per_second: Self::default_min(),
        }
    }
}

/// Wire protocol to the upstream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// HTTP/1.1 in clear text, pooled keep-alive connections.
    #[default]
    Http1,
    /// HTTP/2 with prior knowledge in clear text (gRPC services in a cluster network).
    H2c,
    /// HTTP/2 over TLS with ALPN `h2`.
    H2,
}

impl Protocol {
    /// The name used in config, logs and admin output.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http1 => "http1",
            Protocol::H2c => "h2c",
            Protocol::H2 => "h2",
        }
    }
}

/// Load-balancing algorithm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Each endpoint in turn, in proportion to its weight.
    #[default]
    RoundRobin,
    /// The less busy of two random endpoints (power of two choices).
    LeastRequest,
    /// A random endpoint, in proportion to its weight.
    Random,
}

/// One upstream endpoint: a fixed address or a DNS name.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// `10.0.0.7:50051`
    #[serde(default)]
    pub address: Option<Parsed<SocketAddr>>,
    /// `ashi.default.svc.cluster.local:50051`; every address it resolves to is an endpoint.
    #[serde(default)]
    pub dns: Option<Spanned<Text>>,
    /// Relative share of traffic (default 1).
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// TLS settings for upstream connections.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// PEM bundle of CAs to trust instead of the system roots.
    #[serde(default)]
    pub ca: Option<Spanned<Text>>,
    /// Name every endpoint's connection sends in SNI and verifies the certificate against;
    /// default: the DNS name of a `dns:` endpoint. Needed when an endpoint is an IP
    /// address. Never the client's `Host`: a connection carries requests for every host,
    /// and which certificate the gateway accepts is the operator's choice, not a client's.
    #[serde(default)]
    pub server_name: Option<Spanned<Text>>,
}
