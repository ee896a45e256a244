//! The PROXY protocol (v1 text and v2 binary): an L4 load balancer in front of the gateway
//! prepends the client's real address to the connection. Only peers in the configured
//! networks may send it; anything else that looks like one, or a malformed one, closes the
//! connection. The header is read byte-exact, so what follows (a TLS ClientHello, an HTTP
//! request) is left untouched for the next layer.

use std::fmt;
use std::net::SocketAddr;

use tokio::io::AsyncRead;

use super::read_ahead::ReadAhead;
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
    /// The peer sent nothing, or not all of a header, in time.
    Silent,
    /// The peer closed the connection before its first bytes told anything, or inside
    /// the header.
    Closed,
}

impl Refused {
    /// The metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Refused::Untrusted => "untrusted",
            Refused::Missing => "missing",
            Refused::Malformed(_) => "malformed",
            Refused::Silent => "silent",
            Refused::Closed => "closed",
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
            Refused::Silent => f.write_str("no complete header in time"),
            Refused::Closed => f.write_str("closed before a complete header"),
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
/// (a load balancer's own health check: the peer stands for itself). The header's bytes are
/// consumed from `io`; whatever followed it stays buffered for the next layer. Every wait is
/// a read, so the caller's deadline around this call fires (and is [`Refused::Silent`]).
pub async fn accept<IO: AsyncRead + Unpin>(
    io: &mut ReadAhead<IO>,
    peer: SocketAddr,
    settings: &ProxyProtocol,
) -> Result<Option<SocketAddr>, Refused> {
    let trusted = settings.from.contains(peer.ip());
    let start = loop {
        let seen = io.buffered();
        match classify(&seen[..seen.len().min(V1_MAX)]) {
            Start::Unsure if seen.len() < 16 => more(io).await?,
            Start::Unsure => break Start::Other,
            start => break start,
        }
    };
    match start {
        Start::Other if trusted && settings.required => Err(Refused::Missing),
        Start::Other => Ok(None),
        _ if !trusted => Err(Refused::Untrusted),
        Start::V1 => read_v1(io).await,
        Start::V2 => read_v2(io).await,
        Start::Unsure => Err(Refused::Silent),
    }
}

/// Reads more of the connection; the peer closing (or failing) first is [`Refused::Closed`].
async fn more<IO: AsyncRead + Unpin>(io: &mut ReadAhead<IO>) -> Result<(), Refused> {
    match io.read_more().await {
        Ok(0) | Err(_) => Err(Refused::Closed),
        Ok(_) => Ok(()),
    }
}

async fn read_v1<IO: AsyncRead + Unpin>(
    io: &mut ReadAhead<IO>,
) -> Result<Option<SocketAddr>, Refused> {
    // The line may still be arriving: read until its CRLF or the length bound.
    let end = loop {
        let seen = io.buffered();
        let seen = &seen[..seen.len().min(V1_MAX)];
        if let Some(i) = seen.windows(2).position(|w| w == b"\r\n") {
            break i + 2;
        }
        if seen.len() >= V1_MAX {
            return Err(Refused::Malformed("no CRLF within 107 bytes".into()));
        }
        more(io).await?;
    };
    let parsed = parse_v1(&io.buffered()[..end]);
    io.consume(end);
    parsed
}

async fn read_v2<IO: AsyncRead + Unpin>(
    io: &mut ReadAhead<IO>,
) -> Result<Option<SocketAddr>, Refused> {
    while io.buffered().len() < 16 {
        more(io).await?;
    }
    let fixed = &io.buffered()[..16];
    let len = 16 + usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if len > V2_MAX {
        return Err(Refused::Malformed(format!(
            "{} bytes of addresses and TLVs",
            len - 16
        )));
    }
    while io.buffered().len() < len {
        more(io).await?;
    }
    let parsed = parse_v2(&io.buffered()[..len]);
    io.consume(len);
    parsed
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

    fn from(cidr: &str) -> ProxyProtocol {
        let mut from = CidrSet::default();
        from.insert(cidr.parse().expect("cidr"));
        ProxyProtocol {
            from,
            required: true,
        }
    }

    #[tokio::test]
    async fn a_header_split_across_reads_is_read_and_what_follows_is_kept() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(256);
        let mut io = ReadAhead::new(server);
        let peer: SocketAddr = "10.0.0.9:5000".parse().expect("addr");
        let reading = tokio::spawn(async move {
            let source = accept(&mut io, peer, &from("10.0.0.0/8")).await;
            (source, io)
        });
        for part in [
            &b"PRO"[..],
            b"XY TCP4 203.0.113.9 10.0.0.1 ",
            b"40000 443\r\nGET /",
        ] {
            client.write_all(part).await.expect("write");
            tokio::task::yield_now().await;
        }
        drop(client);
        let (source, mut io) = reading.await.expect("task");
        assert_eq!(
            source.expect("accepted"),
            Some("203.0.113.9:40000".parse().expect("addr"))
        );
        let mut rest = Vec::new();
        io.read_to_end(&mut rest).await.expect("read");
        assert_eq!(rest, b"GET /");
    }

    #[tokio::test]
    async fn a_partial_header_then_close_is_refused_at_once() {
        use tokio::io::AsyncWriteExt;
        let (mut client, server) = tokio::io::duplex(256);
        client.write_all(b"PRO").await.expect("write");
        drop(client);
        let mut io = ReadAhead::new(server);
        let peer: SocketAddr = "10.0.0.9:5000".parse().expect("addr");
        let refused = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            accept(&mut io, peer, &from("10.0.0.0/8")),
        )
        .await
        .expect("no waiting after EOF");
        assert!(matches!(refused, Err(Refused::Closed)), "{refused:?}");
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
