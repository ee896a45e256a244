//! Opening connections to an endpoint: TCP, then TLS with ALPN `h2` where the cluster
//! asks for it, then the HTTP handshake.
//!
//! The name TLS sends in SNI and verifies the certificate against belongs to the cluster
//! and the endpoint ([`Connector::server_name`]), never to the request: a pooled
//! connection carries requests for every host a client names, so a name taken from the
//! first request's `Host` would let a client pick which certificate the gateway accepts
//! for everyone after it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::crypto::aws_lc_rs;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::multiplex;
use crate::body::Body;
use crate::config::model::Protocol;

/// What identifies how connections are made; pools are kept across reloads only while
/// this stays the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorKey {
    /// Wire protocol.
    pub protocol: Protocol,
    /// TCP (and TLS) connect bound.
    pub connect_timeout: Duration,
    /// PEM bytes of the trusted CAs (the system roots when absent).
    pub ca_pem: Option<Vec<u8>>,
    /// The cluster's `tls.server_name`: SNI and verified name for every endpoint. When
    /// absent, each endpoint's DNS name (or, failing that, its address) is used.
    pub server_name: Option<String>,
}

/// Makes connections for one cluster.
pub struct Connector {
    /// Settings this connector was built from.
    pub key: ConnectorKey,
    tls: Option<TlsConnector>,
}

/// A connection that failed to open, with the reason in words.
#[derive(Debug)]
pub struct ConnectError(pub String);

impl Connector {
    /// Builds the TLS client setup once, so each connection only does the handshake.
    pub fn new(key: ConnectorKey) -> Result<Self, String> {
        let tls = match key.protocol {
            Protocol::H2 => Some(tls_connector(key.ca_pem.as_deref(), b"h2")?),
            Protocol::Http1 | Protocol::H2c => None,
        };
        Ok(Connector { key, tls })
    }

    /// The name TLS uses with the endpoint at `addr` that came from the DNS source
    /// `origin` (`host:port`, `None` for a static address): the cluster's `server_name`,
    /// else the DNS host, else the address. `None` in clear text, where no name is sent.
    pub fn server_name(&self, origin: Option<&str>, addr: SocketAddr) -> Option<Arc<str>> {
        self.tls.as_ref()?;
        Some(match (&self.key.server_name, origin) {
            (Some(name), _) => Arc::from(name.as_str()),
            (None, Some(origin)) => Arc::from(dns_host(origin)),
            (None, None) => Arc::from(addr.ip().to_string()),
        })
    }

    /// TCP, then TLS as `server_name` when the cluster uses TLS.
    async fn transport(
        &self,
        addr: SocketAddr,
        server_name: Option<&str>,
    ) -> Result<Transport, ConnectError> {
        let connect = TcpStream::connect(addr);
        let tcp = match tokio::time::timeout(self.key.connect_timeout, connect).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(ConnectError(format!("connect to {addr}: {e}"))),
            Err(_) => {
                return Err(ConnectError(format!(
                    "connect to {addr}: timed out after {:?}",
                    self.key.connect_timeout
                )));
            }
        };
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return Ok(Transport::Plain(tcp));
        };
        let Some(name) = server_name else {
            return Err(ConnectError(format!(
                "TLS to {addr}: no server name to verify"
            )));
        };
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|e| ConnectError(format!("bad TLS server name {name:?}: {e}")))?;
        let handshake = tls.connect(server_name, tcp);
        match tokio::time::timeout(self.key.connect_timeout, handshake).await {
            Ok(Ok(stream)) => Ok(Transport::Tls(Box::new(stream))),
            Ok(Err(e)) => Err(ConnectError(format!("TLS handshake with {addr}: {e}"))),
            Err(_) => Err(ConnectError(format!(
                "TLS handshake with {addr}: timed out"
            ))),
        }
    }

    /// Opens an HTTP/1.1 connection; the connection runs on its own task.
    pub async fn http1(
        &self,
        addr: SocketAddr,
        server_name: Option<&str>,
        on_close: impl FnOnce() + Send + 'static,
    ) -> Result<http1::SendRequest<Body>, ConnectError> {
        let io = self.transport(addr, server_name).await?;
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| ConnectError(format!("HTTP/1.1 handshake with {addr}: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.await;
            on_close();
        });
        Ok(sender)
    }

    /// Opens an HTTP/2 connection, over TLS as `server_name` when the cluster uses TLS;
    /// the connection runs on its own task and is handed over once the peer's settings
    /// are known.
    pub async fn http2(
        &self,
        addr: SocketAddr,
        server_name: Option<&str>,
        on_close: impl FnOnce() + Send + 'static,
    ) -> Result<Arc<multiplex::Connection>, ConnectError> {
        let io = self.transport(addr, server_name).await?;
        multiplex::handshake(io, self.key.connect_timeout, on_close)
            .await
            .map_err(|e| ConnectError(format!("HTTP/2 handshake with {addr}: {e}")))
    }
}

/// A TLS client trusting `ca_pem` (else the system's roots) that offers one ALPN protocol.
pub(crate) fn tls_connector(ca_pem: Option<&[u8]>, alpn: &[u8]) -> Result<TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("bad PEM in CA bundle: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("unusable CA certificate: {e}"))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err("no trusted CA certificates".into());
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The host of a DNS source written `host:port`, without the brackets of an IPv6 literal.
fn dns_host(origin: &str) -> &str {
    let host = origin.rsplit_once(':').map_or(origin, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Reads a CA bundle for [`ConnectorKey::ca_pem`].
pub fn read_ca(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read CA file {}: {e}", path.display()))
}

/// A connected byte stream, clear or encrypted.
enum Transport {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => std::pin::Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::Tls(s) => std::pin::Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(s) => s.is_write_vectored(),
            Transport::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(protocol: Protocol, server_name: Option<&str>) -> Connector {
        let ca = crate::cert::self_signed(&["backend.test"]).expect("certificate");
        Connector::new(ConnectorKey {
            protocol,
            connect_timeout: Duration::from_secs(1),
            ca_pem: Some(ca.cert_pem.into_bytes()),
            server_name: server_name.map(str::to_owned),
        })
        .expect("connector")
    }

    #[test]
    fn the_tls_name_is_the_clusters_then_the_dns_name_then_the_address() {
        let addr: SocketAddr = "10.0.0.7:443".parse().expect("addr");
        let pinned = connector(Protocol::H2, Some("api.internal"));
        assert_eq!(
            pinned.server_name(Some("other.test:443"), addr).as_deref(),
            Some("api.internal")
        );
        let by_dns = connector(Protocol::H2, None);
        assert_eq!(
            by_dns.server_name(Some("ashi.svc:443"), addr).as_deref(),
            Some("ashi.svc")
        );
        assert_eq!(
            by_dns.server_name(Some("[::1]:443"), addr).as_deref(),
            Some("::1")
        );
        assert_eq!(by_dns.server_name(None, addr).as_deref(), Some("10.0.0.7"));
        let clear = connector(Protocol::H2c, Some("api.internal"));
        assert_eq!(clear.server_name(Some("ashi.svc:80"), addr), None);
    }
}
