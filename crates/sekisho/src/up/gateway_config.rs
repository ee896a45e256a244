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
{app_routes}  # Server reflection and health for tools such as grpcurl; they reveal no user data.
  - name: grpc-tools
    match: {{ path_regex: "^/grpc\\.(reflection\\.v1(alpha)?\\.ServerReflection|health\\.v1\\.Health)/" }}
    to: ashi

  - name: partner-rest
    match: {{ path_prefix: /v1/ }}
    ip_acl:
      allow: [{partners}]
    transcode:
      descriptors: {descriptors}
      services: [ashi.v1.SizingService, ashi.v1.CatalogService]
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
