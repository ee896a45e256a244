//! What every request of a run needs, resolved once before the clock starts: the address
//! (no name lookups while measuring), the authority and path, and the TLS client.

use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Uri};
use rustls_pki_types::ServerName;
use tokio_rustls::TlsConnector;

use crate::Error;
use crate::cli::{IdleProto, Mode, TargetArgs};

/// The resolved target and request shape of a run.
pub struct Setup {
    pub mode: Mode,
    pub addr: SocketAddr,
    /// `http://host:port`: the origin gRPC requests carry (`:scheme`, `:authority`).
    pub origin: Uri,
    /// The `Host` header of HTTP/1.1 requests.
    pub host: HeaderValue,
    /// Path (and query) of HTTP GETs.
    pub path: Uri,
    pub size: usize,
    /// The JSON `SimpleRequest` of `rest-unary`: `size` payload bytes each way.
    pub rest_body: Bytes,
    /// `size` as the protocol's `int32`.
    pub response_size: i32,
    pub stream_messages: usize,
    /// How long a grpc-bidi call waits for each echo.
    pub echo_wait: Duration,
    pub idle_proto: IdleProto,
    pub timeout: Duration,
    /// Present for tls-handshake.
    pub tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Setup {
    /// Parses and resolves the target arguments.
    pub async fn resolve(args: &TargetArgs) -> Result<Arc<Setup>, Error> {
        let uri: Uri = args
            .target
            .parse()
            .map_err(|e| format!("--target {:?}: {e}", args.target))?;
        let scheme = uri.scheme_str().unwrap_or("http");
        let authority = uri
            .authority()
            .ok_or_else(|| format!("--target {:?} has no host:port", args.target))?
            .clone();
        let port = authority
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        let addr = tokio::net::lookup_host((authority.host(), port))
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", authority.host()))?
            .next()
            .ok_or_else(|| format!("{} resolves to no address", authority.host()))?;
        let tls = match (args.mode, scheme) {
            (Mode::TlsHandshake, "https") => {
                let ca = args
                    .ca
                    .as_deref()
                    .ok_or("tls-handshake needs --ca with the CA to trust")?;
                let name = args
                    .server_name
                    .clone()
                    .unwrap_or_else(|| authority.host().to_owned());
                let name = ServerName::try_from(name)
                    .map_err(|e| format!("invalid --server-name: {e}"))?;
                Some((TlsConnector::from(crate::tls::client_config(ca)?), name))
            }
            (Mode::TlsHandshake, _) => return Err("tls-handshake needs an https:// target".into()),
            (_, "http") => None,
            (mode, _) => {
                return Err(format!("{} needs an http:// target", mode.name()).into());
            }
        };
        let response_size = i32::try_from(args.size).map_err(|_| "--size is too large")?;
        Ok(Arc::new(Setup {
            mode: args.mode,
            addr,
            origin: Uri::builder()
                .scheme("http")
                .authority(authority.clone())
                .path_and_query("/")
                .build()?,
            host: HeaderValue::from_str(authority.as_str())?,
            path: args
                .path
                .parse()
                .map_err(|e| format!("--path {:?}: {e}", args.path))?,
            size: args.size,
            rest_body: rest_body(args.size),
            response_size,
            stream_messages: args.stream_messages,
            echo_wait: args.echo_wait,
            idle_proto: args.idle_proto,
            timeout: args.timeout,
            tls,
        }))
    }

    /// Opens a TCP connection to the target with Nagle off, as every proxy under test does.
    pub async fn connect_tcp(&self) -> Result<tokio::net::TcpStream, String> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|_| "connect".to_owned())?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

/// `{"responseSize": N, "payload": {"body": <N zero bytes in base64>}}`.
fn rest_body(size: usize) -> Bytes {
    let mut body = "A".repeat(size / 3 * 4);
    body.push_str(match size % 3 {
        1 => "AA==",
        2 => "AAA=",
        _ => "",
    });
    Bytes::from(format!(
        r#"{{"responseSize":{size},"payload":{{"body":"{body}"}}}}"#
    ))
}
