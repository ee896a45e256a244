//! The PROXY protocol (v1 text and v2 binary): an L4 load balancer in front of the gateway
//! prepends the client's real address to the connection. Only peers in the configured
//! networks may send it; anything else that looks like one, or a malformed one, closes the
//! connection. The header is read byte-exact, so what follows (a TLS ClientHello, an HTTP
//! request) is left untouched for the next layer.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::policy::cidr::CidrSet;

/// The v2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Longest v1 line, CRLF included (the protocol's own bound).
const V1_MAX: usize = 107;
/// Longest v2 header accepted: addresses plus a generous room for TLVs.
const V2_MAX: usize = 16 + 2048;

/// A listener's PROXY protocol settings.
pub struct ProxyProtocol {
    /// Peers allowed to send a header.
    pub from: CidrSet,
    /// Whether a trusted peer must send one.
    pub required: bool,
}

/// Why a connection was closed before any HTTP.
#[derive(Debug)]
pub enum Refused {
    /// A header from a peer outside `from`.
    Untrusted,
    /// A required header is missing.
    Missing,
    /// Not a valid header.
    Malformed(String),
    /// The peer sent nothing (in time).
    Silent,
}

impl Refused {
    /// The metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Refused::Untrusted => "untrusted",
            Refused::Missing => "missing",
            Refused::Malformed(_) => "malformed",
            Refused::Silent => "silent",
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Untrusted => {
                f.write_str("PROXY header from a peer not in `proxy_protocol.from`")
            }
            Refused::Missing => f.write_str("PROXY header required but not sent"),
            Refused::Malformed(why) => write!(f, "malformed PROXY header: {why}"),
            Refused::Silent => f.write_str("nothing received"),
        }
    }
}

/// What the start of a connection holds.
#[derive(Debug, PartialEq, Eq)]
enum Start {
    V1,
    V2,
    Other,
    /// Too few bytes yet to tell.
    Unsure,
}

fn classify(seen: &[u8]) -> Start {
    let v1 = b"PROXY ";
    let n = seen.len();
    if n >= V2_SIGNATURE.len() && seen.starts_with(V2_SIGNATURE) {
        return Start::V2;
    }
    if n >= v1.len() && seen.starts_with(v1) {
        return Start::V1;
    }
    let could_be_v2 = V2_SIGNATURE.starts_with(&seen[..n.min(12)]);
    let could_be_v1 = v1.starts_with(&seen[..n.min(6)]);
    if could_be_v1 || could_be_v2 {
        Start::Unsure
    } else {
        Start::Other
    }
}

/// Reads the header if there is one and returns the client's address from it; `None` when
/// the connection carries no header (allowed only when not required) or a LOCAL/UNKNOWN one
/// (a load balancer's own health check: the peer stands for itself).
pub async fn accept(
    stream: &mut TcpStream,
    peer: SocketAddr,
    settings: &ProxyProtocol,
    wait: Duration,
) -> Result<Option<SocketAddr>, Refused> {
    let trusted = settings.from.contains(peer.ip());
    let deadline = tokio::time::Instant::now() + wait;
    let mut seen = [0u8; V1_MAX];
    let (start, n) = loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut seen))
            .await
            .map_err(|_| Refused::Silent)?
            .map_err(|_| Refused::Silent)?;
        if n == 0 {
            return Err(Refused::Silent);
        }
        match classify(&seen[..n]) {
            Start::Unsure if n < 16 => tokio::time::sleep(Duration::from_millis(2)).await,
            Start::Unsure => break (Start::Other, n),
            start => break (start, n),
        }
    };
    match start {
        Start::Other if trusted && settings.required => Err(Refused::Missing),
        Start::Other => Ok(None),
        _ if !trusted => Err(Refused::Untrusted),
        Start::V1 => read_v1(stream, &seen[..n], deadline).await,
        Start::V2 => read_v2(stream, deadline).await,
        Start::Unsure => Err(Refused::Silent),
    }
}

async fn read_v1(
    stream: &mut TcpStream,
    peeked: &[u8],
    deadline: tokio::time::Instant,
) -> Result<Option<SocketAddr>, Refused> {
    // The line may still be arriving: peek until its CRLF or the length bound.
    let mut seen = peeked.to_vec();
    let end = loop {
        if let Some(i) = seen.windows(2).position(|w| w == b"\r\n") {
            break i + 2;
        }
        if seen.len() >= V1_MAX {
            return Err(Refused::Malformed("no CRLF within 107 bytes".into()));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        let mut buf = [0u8; V1_MAX];
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
            .await
            .map_err(|_| Refused::Silent)?
            .map_err(|_| Refused::Silent)?;
        if n <= seen.len() && n < V1_MAX && tokio::time::Instant::now() >= deadline {
            return Err(Refused::Silent);
        }
        seen = buf[..n].to_vec();
    };
    let mut line = vec![0u8; end];
    read_exact(stream, &mut line, deadline).await?;
    parse_v1(&line)
}

async fn read_v2(
    stream: &mut TcpStream,
    deadline: tokio::time::Instant,
) -> Result<Option<SocketAddr>, Refused> {
    let mut fixed = [0u8; 16];
    read_exact(stream, &mut fixed, deadline).await?;
    let len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if 16 + len > V2_MAX {
        return Err(Refused::Malformed(format!(
            "{len} bytes of addresses and TLVs"
        )));
    }
    let mut header = vec![0u8; 16 + len];
    header[..16].copy_from_slice(&fixed);
    read_exact(stream, &mut header[16..], deadline).await?;
    parse_v2(&header)
}

async fn read_exact(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: tokio::time::Instant,
) -> Result<(), Refused> {
    tokio::time::timeout_at(deadline, stream.read_exact(buf))
        .await
        .map_err(|_| Refused::Silent)?
        .map(drop)
        .map_err(|_| Refused::Malformed("connection closed inside the header".into()))
}

/// Parses a whole v1 line (CRLF included).
pub fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, Refused> {
    let header = ppp::v1::Header::try_from(line).map_err(|e| Refused::Malformed(e.to_string()))?;
    Ok(match header.addresses {
        ppp::v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v1::Addresses::Unknown => None,
    })
}

/// Parses a whole v2 header.
pub fn parse_v2(bytes: &[u8]) -> Result<Option<SocketAddr>, Refused> {
    let header = ppp::v2::Header::try_from(bytes).map_err(|e| Refused::Malformed(e.to_string()))?;
    if header.command == ppp::v2::Command::Local {
        return Ok(None);
    }
    Ok(match header.addresses {
        ppp::v2::Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v2::Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v2::Addresses::Unspecified | ppp::v2::Addresses::Unix(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v2(source: SocketAddr, dest: SocketAddr) -> Vec<u8> {
        ppp::v2::Builder::with_addresses(
            ppp::v2::Version::Two | ppp::v2::Command::Proxy,
            ppp::v2::Protocol::Stream,
            (source, dest),
        )
        .build()
        .expect("v2 header")
    }

    #[test]
    fn both_versions_give_the_source() {
        let src: SocketAddr = "203.0.113.9:40000".parse().expect("addr");
        let dst: SocketAddr = "10.0.0.1:443".parse().expect("addr");
        assert_eq!(
            parse_v1(b"PROXY TCP4 203.0.113.9 10.0.0.1 40000 443\r\n").expect("v1"),
            Some(src)
        );
        assert_eq!(parse_v2(&v2(src, dst)).expect("v2"), Some(src));
        let six: SocketAddr = "[2001:db8::9]:40000".parse().expect("addr");
        assert_eq!(
            parse_v1(b"PROXY TCP6 2001:db8::9 2001:db8::1 40000 443\r\n").expect("v1"),
            Some(six)
        );
        assert_eq!(parse_v1(b"PROXY UNKNOWN\r\n").expect("unknown"), None);
    }

    #[test]
    fn starts_are_told_apart() {
        assert_eq!(classify(b"PROXY TCP4"), Start::V1);
        assert_eq!(classify(b"PRO"), Start::Unsure);
        assert_eq!(classify(b"GET / HTTP/1.1"), Start::Other);
        assert_eq!(classify(b"\x16\x03\x01"), Start::Other, "a TLS ClientHello");
        assert_eq!(classify(V2_SIGNATURE), Start::V2);
        assert_eq!(classify(b"\r\n\r\n"), Start::Unsure);
    }

    proptest! {
        // Arbitrary bytes never panic either parser.
        #[test]
        fn parsers_survive_any_input(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_v1(&bytes);
            let _ = parse_v2(&bytes);
            let mut framed = V2_SIGNATURE.to_vec();
            framed.extend_from_slice(&bytes);
            let _ = parse_v2(&framed);
            let mut line = b"PROXY ".to_vec();
            line.extend_from_slice(&bytes);
            let _ = parse_v1(&line);
            let _ = classify(&bytes);
        }

        #[test]
        fn written_v1_headers_parse_back(a in any::<[u8; 4]>(), b in any::<[u8; 4]>(), sp in 1u16.., dp in 1u16..) {
            let line = format!(
                "PROXY TCP4 {} {} {sp} {dp}\r\n",
                std::net::Ipv4Addr::from(a),
                std::net::Ipv4Addr::from(b)
            );
            prop_assert_eq!(
                parse_v1(line.as_bytes()).ok().flatten(),
                Some(SocketAddr::from((a, sp)))
            );
        }
    }
}
