//! Key sets fetched from a JWKS URL: fetched once before a config is served, then again
//! on an interval in the background, and early (at most once per interval) when a token
//! names a `kid` the set does not hold. A failed fetch keeps the last good set.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::keys::KeySet;
use crate::observe::metrics;
use crate::upstream::tls_connector;

/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// What identifies a remote key set; a reload keeps the set (and its schedule) while
/// this stays the same, so it does not fetch again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSpec {
    /// Where the JWKS is.
    pub url: Uri,
    /// Time between fetches.
    pub refresh: Duration,
    /// Bound on one fetch.
    pub timeout: Duration,
    /// PEM of the CAs trusted instead of the system roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl RemoteSpec {
    /// Checks the URL: HTTPS, or plain HTTP to a loopback address (a key set fetched in
    /// clear text could be swapped by anyone on the path).
    pub fn new(
        url: &str,
        refresh: Duration,
        timeout: Duration,
        ca_pem: Option<Vec<u8>>,
    ) -> Result<Self, String> {
        let url: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
        let host = url.host().ok_or("the URL has no host")?;
        match url.scheme_str() {
            Some("https") => {}
            Some("http") if is_loopback(host) => {}
            Some("http") => {
                return Err("use https: keys fetched in clear text could be swapped on the way (http is allowed for loopback addresses only)".into());
            }
            _ => return Err("the URL must start with https://".into()),
        }
        Ok(RemoteSpec {
            url,
            refresh,
            timeout,
            ca_pem,
        })
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A key set kept fresh from a JWKS URL.
pub struct RemoteKeys {
    /// How it is fetched.
    pub spec: RemoteSpec,
    provider: Arc<str>,
    /// For https URLs.
    tls: Option<TlsConnector>,
    set: ArcSwapOption<KeySet>,
    started: AtomicBool,
    /// When a token's unknown `kid` last caused a fetch.
    kid_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl RemoteKeys {
    /// A key set with nothing fetched yet; [`RemoteKeys::start`] brings it to life. Fails
    /// when the CA bundle is unusable.
    pub fn new(provider: Arc<str>, spec: RemoteSpec) -> Result<Arc<Self>, String> {
        let tls = match spec.url.scheme_str() {
            Some("https") => Some(tls_connector(spec.ca_pem.as_deref(), b"http/1.1")?),
            _ => None,
        };
        Ok(Arc::new(RemoteKeys {
            spec,
            provider,
            tls,
            set: ArcSwapOption::empty(),
            started: AtomicBool::new(false),
            kid_fetch: tokio::sync::Mutex::new(None),
        }))
    }

    /// The last good set, if any fetch succeeded yet.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.set.load_full()
    }

    /// Fetches the first set (waiting at most the fetch timeout) and starts refreshing in
    /// the background, once; the task ends when the last snapshot using this set is gone.
    pub async fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        if self.current().is_none() {
            self.refresh().await;
        }
        let weak: Weak<RemoteKeys> = Arc::downgrade(self);
        let every = self.spec.refresh;
        tokio::spawn(async move {
            loop {
                let pause = match weak.upgrade() {
                    Some(keys) if keys.current().is_none() => every.min(Duration::from_secs(5)),
                    Some(_) => every,
                    None => return,
                };
                tokio::time::sleep(pause).await;
                let Some(keys) = weak.upgrade() else { return };
                keys.refresh().await;
            }
        });
    }

    /// Fetches the set again because a token named a `kid` it lacks, unless that already
    /// happened within the refresh interval. True when a new set came in.
    pub async fn refetch_for_unknown_kid(&self, seen: &Arc<KeySet>) -> bool {
        let mut last = self.kid_fetch.lock().await;
        if self.current().is_some_and(|now| !Arc::ptr_eq(&now, seen)) {
            // Another request fetched while this one waited.
            return true;
        }
        if last.is_some_and(|at| at.elapsed() < self.spec.refresh) {
            return false;
        }
        *last = Some(Instant::now());
        self.refresh().await
    }

    /// One fetch; on failure the last good set stays. True when a new set came in.
    async fn refresh(&self) -> bool {
        let fetch = fetch(&self.spec.url, self.tls.as_ref());
        let fetched = tokio::time::timeout(self.spec.timeout, fetch).await;
        let result = match fetched {
            Ok(Ok(body)) => KeySet::from_jwks(&body),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("no answer within {:?}", self.spec.timeout)),
        };
        match result {
            Ok((set, skipped)) => {
                for note in skipped {
                    tracing::warn!(provider = %self.provider, "JWKS key passed over: {note}");
                }
                tracing::info!(provider = %self.provider, keys = set.count(), "JWKS fetched");
                self.set.store(Some(Arc::new(set)));
                metrics::jwks_fetch(&self.provider, true);
                true
            }
            Err(e) => {
                let kept = self.current().map_or(0, |s| s.count());
                // The host only: a URL's path or query may hold a secret.
                let host = self.spec.url.host().unwrap_or_default();
                tracing::warn!(provider = %self.provider, host, error = %e, kept_keys = kept, "JWKS fetch failed; the last good key set stays");
                metrics::jwks_fetch(&self.provider, false);
                false
            }
        }
    }
}

/// GETs `url` over HTTP/1.1 (through `tls` for https) and returns the body of a 200 answer.
async fn fetch(url: &Uri, tls: Option<&TlsConnector>) -> Result<Bytes, String> {
    let host = url.host().ok_or("no host")?;
    let port = url
        .port_u16()
        .unwrap_or(if tls.is_some() { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = TcpStream::connect((bare, port))
        .await
        .map_err(|e| format!("connect to {host}:{port}: {e}"))?;
    let request = Request::get(url.path_and_query().map_or("/", |pq| pq.as_str()))
        .header(header::HOST, url.authority().map_or(host, |a| a.as_str()))
        .header(header::ACCEPT, "application/jwk-set+json, application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = if let Some(tls) = tls {
        let name =
            ServerName::try_from(bare.to_owned()).map_err(|e| format!("bad host name: {e}"))?;
        let stream = tls
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {host}: {e}"))?;
        send(stream, request).await?
    } else {
        send(tcp, request).await?
    };
    if response.status() != StatusCode::OK {
        return Err(format!("answered {}", response.status()));
    }
    Limited::new(response.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
        .map(|body| body.to_bytes())
        .map_err(|e| format!("reading the body: {e}"))
}

async fn send<T>(
    io: T,
    request: Request<Empty<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(conn);
    sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_text_only_to_loopback() {
        let d = Duration::from_secs(1);
        assert!(RemoteSpec::new("http://127.0.0.1:8080/jwks", d, d, None).is_ok());
        assert!(RemoteSpec::new("http://[::1]/jwks", d, d, None).is_ok());
        assert!(RemoteSpec::new("https://id.example.com/jwks", d, d, None).is_ok());
        let err =
            RemoteSpec::new("http://id.example.com/jwks", d, d, None).expect_err("clear text");
        assert!(err.contains("https"), "{err}");
    }
}
