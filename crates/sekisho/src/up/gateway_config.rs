//! The gateway config `up` writes: an ordinary config file, kept in the data directory, so
//! what the demo does can be read and copied like any other.

use std::net::SocketAddr;
use std::path::Path;

use super::identity;

/// Where everything the gateway routes to listens, and the files it reads.
pub struct Layout<'a> {
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub cert: &'a Path,
    pub key: &'a Path,
    pub jwks: &'a Path,
    pub descriptors: &'a Path,
    pub ashi_grpc: SocketAddr,
    pub ashi_http: SocketAddr,
    pub site: SocketAddr,
    /// Who may call the partner REST API.
    pub partners: &'a [&'a str],
}

/// CatalogService methods that change the catalog.
const CATALOG_WRITES: [&str; 2] = ["UpsertShoe", "ImportShoesCsv"];

/// What partners may call over REST: sizing, and reading the catalog.
const PARTNER_METHODS: [&str; 5] = [
    "ashi.v1.SizingService/DiagnoseFoot",
    "ashi.v1.SizingService/RecommendSize",
    "ashi.v1.SizingService/RecommendSizes",
    "ashi.v1.CatalogService/GetShoe",
    "ashi.v1.CatalogService/ListShoes",
];

/// A YAML string literal (JSON's double-quoted strings are YAML too).
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

fn path(path: &Path) -> String {
    quoted(&path.to_string_lossy())
}

/// The config text, commented for whoever opens the file.
pub fn render(l: &Layout<'_>) -> String {
    let app_routes: String = ["MeasurementService", "SizingService", "CatalogService"]
        .iter()
        .map(|service| {
            format!(
                r#"  - name: app-{service}
    match: {{ grpc_service: ashi.v1.{service} }}
    jwt:
      provider: demo
      require: {{ role: [user] }}
      forward_claims: {{ sub: x-user-id }}
    to: ashi
"#
            )
        })
        .collect();
    // Catalog writes are for the catalog team: matched before the catalog's user route.
    let catalog_writes: String = CATALOG_WRITES
        .iter()
        .map(|method| {
            format!(
                r#"  - name: catalog-{method}
    match: {{ grpc_service: ashi.v1.CatalogService, grpc_method: {method} }}
    jwt:
      provider: demo
      require: {{ role: [catalog-admin] }}
      forward_claims: {{ sub: x-user-id }}
    to: ashi
"#
            )
        })
        .collect();
    let partner_methods = PARTNER_METHODS.join(", ");
    let partners = l
        .partners
        .iter()
        .map(|p| quoted(p))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"# Written by `sekisho up` at every start; copy it elsewhere to change it.
# Native apps and the browser page call ashi over gRPC and gRPC-Web with a token from the demo
# identity; partner servers call the sizing and catalog APIs over REST from listed addresses.
# ashi serves no call without a caller the gateway vouches for: a user (x-user-id, the token's
# subject) or a named service (x-ashi-service, set by a route). No client may send either.
internal_headers: [x-user-id, x-ashi-service]

admin:
  address: {admin}
access_log: {{ enabled: true }}
drain_timeout: 5s

listeners:
  - name: public
    address: {listen}
    tls:
      certificates:
        - {{ cert: {cert}, key: {key} }}

jwt_providers:
  - name: demo
    issuer: {issuer}
    audiences: [{audience}]
    algorithms: [ES256]
    keys: {{ jwks_file: {jwks} }}

routes:
{catalog_writes}{app_routes}  # Server reflection and health for tools such as grpcurl; they reveal no user data.
  - name: grpc-tools
    match: {{ path_regex: "^/grpc\\.(reflection\\.v1(alpha)?\\.ServerReflection|health\\.v1\\.Health)/[^/]+$" }}
    to: ashi

  # Partners read: sizing and the catalog, never its writes, and ashi knows them as `partner`.
  - name: partner-rest
    match: {{ path_prefix: /v1/ }}
    ip_acl:
      allow: [{partners}]
    request_headers: {{ add: {{ x-ashi-service: partner }} }}
    transcode:
      descriptors: {descriptors}
      services: [ashi.v1.SizingService, ashi.v1.CatalogService]
      methods: [{partner_methods}]
      openapi: /v1/openapi.json
    to: ashi

  # Scan uploads to the URLs ashi signs.
  - name: scans
    match: {{ path_prefix: /objects/ }}
    max_body_bytes: {max_upload}
    to: ashi-objects

  - name: site
    match: {{ path_prefix: / }}
    to: site

clusters:
  - name: ashi
    protocol: h2c
    endpoints: [{{ address: {ashi_grpc} }}]
    health: {{ grpc: {{}}, interval: 5s, timeout: 1s }}
  - name: ashi-objects
    endpoints: [{{ address: {ashi_http} }}]
  - name: site
    endpoints: [{{ address: {site} }}]
"#,
        admin = l.admin,
        listen = l.listen,
        cert = path(l.cert),
        key = path(l.key),
        issuer = quoted(identity::ISSUER),
        audience = identity::AUDIENCE,
        jwks = path(l.jwks),
        descriptors = path(l.descriptors),
        max_upload = ashi::config::DEFAULT_MAX_UPLOAD_BYTES,
        ashi_grpc = l.ashi_grpc,
        ashi_http = l.ashi_http,
        site = l.site,
    )
}
