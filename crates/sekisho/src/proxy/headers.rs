//! Header rules every proxied request and response follows.

use std::net::IpAddr;
use std::time::Duration;

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};

/// Carries the request id from the client to the upstream and into the log.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
pub static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
/// gRPC's status, message and deadline fields: looked up by a name built once, as a
/// name given as text is parsed again on every lookup.
pub static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
pub static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
pub static GRPC_STATUS_DETAILS: HeaderName = HeaderName::from_static("grpc-status-details-bin");
static GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// Removes headers that describe one hop (RFC 9110 7.6.1), including any the
/// `Connection` header names. `te: trailers` stays: gRPC over HTTP/2 needs it.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Nearly every message has none of them: one pass over its names spares the six
    // lookups below.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        if name != header::TE {
            headers.remove(name);
        }
    }
    headers.remove(header::CONNECTION);
    headers.remove(&KEEP_ALIVE);
    headers.remove(&PROXY_CONNECTION);
    headers.remove(header::TRANSFER_ENCODING);
    headers.remove(header::UPGRADE);
    let te_trailers = headers
        .get(header::TE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        });
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    } else {
        headers.remove(header::TE);
    }
}

/// Whether `name` is one of the fields that describe one hop, or the `Connection` field
/// that names more of them. Matched on the name's text, mostly a test of its length:
/// comparing `HeaderName`s one by one costs more.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "proxy-connection" | "te" | "transfer-encoding" | "upgrade"
    )
}

/// The size of a header block as HTTP/1.1 writes it: `name: value` and CRLF per field.
pub fn head_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

/// The `content-length` a request declares, if any and well-formed.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Who sent a request, for the headers that tell the upstream.
#[derive(Clone, Copy, Debug)]
pub struct Forwarding {
    /// The connection's peer (or the PROXY protocol source).
    pub peer: IpAddr,
    /// The client, as the listener's `client_ip` policy derived it.
    pub client: IpAddr,
    /// Whether the peer is a trusted proxy whose `x-forwarded-for` chain goes on.
    pub keep_chain: bool,
    /// Whether the client connection is TLS.
    pub tls: bool,
}

/// Sets `x-forwarded-for` (the peer appended to a trusted chain, or the peer alone: a
/// chain from anyone else could be forged), `x-real-ip` (the derived client) and
/// `x-forwarded-proto`.
pub fn set_forwarded(headers: &mut HeaderMap, forwarding: Forwarding) {
    let peer = ip_value(forwarding.peer);
    let chain: Vec<&str> = if forwarding.keep_chain {
        headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(|v| !v.trim().is_empty())
            .collect()
    } else {
        Vec::new()
    };
    let chained = if chain.is_empty() {
        Some(peer.clone())
    } else {
        let peer = String::from_utf8_lossy(peer.as_bytes());
        HeaderValue::from_str(&format!("{}, {peer}", chain.join(", "))).ok()
    };
    if let Some(value) = chained {
        headers.insert(X_FORWARDED_FOR.clone(), value);
    }
    let client = if forwarding.client == forwarding.peer {
        peer
    } else {
        ip_value(forwarding.client)
    };
    headers.insert(X_REAL_IP.clone(), client);
    let proto = if forwarding.tls { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
}

/// An address as a header value. IPv4, nearly every request's case, is written digit by
/// digit: `Display` for addresses goes through the formatter's padding machinery, and
/// cost more than all the other forwarding headers together.
fn ip_value(ip: IpAddr) -> HeaderValue {
    let mut text = [0u8; 39];
    let len = match ip {
        IpAddr::V4(v4) => {
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    text[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    text[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                text[len] = b'0' + octet % 10;
                len += 1;
            }
            len
        }
        IpAddr::V6(v6) => {
            let mut cursor = std::io::Cursor::new(&mut text[..]);
            // The longest IPv6 text (eight groups of four, seven colons) is 39 bytes.
            let _ = std::io::Write::write_fmt(&mut cursor, format_args!("{v6}"));
            cursor.position() as usize
        }
    };
    // Digits, dots, colons and hex letters are all valid in a header value.
    HeaderValue::from_bytes(&text[..len]).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// The request's id: the client's `x-request-id` when it is sane, else a new UUID.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    let given = headers.get(&X_REQUEST_ID).filter(|v| {
        let bytes = v.as_bytes();
        (1..=128).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    });
    match given {
        Some(value) => value.clone(),
        None => new_request_id(),
    }
}

fn new_request_id() -> HeaderValue {
    // One 128-bit draw: drawing the 16 bytes one by one cost more than the rest together.
    let mut bytes = rand::random::<u128>().to_be_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    // Where each byte's two hex digits go in `8-4-4-4-12`.
    const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let mut text = *b"00000000-0000-0000-0000-000000000000";
    for (byte, at) in bytes.into_iter().zip(AT) {
        text[at] = HEX[usize::from(byte >> 4)];
        text[at + 1] = HEX[usize::from(byte & 0x0f)];
    }
    HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The caller's deadline from `grpc-timeout` (`1-8 digits` and a unit `HMSmun`).
pub fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(&GRPC_TIMEOUT)?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn addresses_are_written_as_display_writes_them(v4: u32, v6: u128) {
            let v4 = IpAddr::from(std::net::Ipv4Addr::from(v4));
            let v6 = IpAddr::from(std::net::Ipv6Addr::from(v6));
            for ip in [v4, v6] {
                let (value, text) = (ip_value(ip), ip.to_string());
                prop_assert_eq!(value.to_str().ok(), Some(text.as_str()));
            }
        }
    }

    #[test]
    fn hop_by_hop_headers_go_and_connection_named_ones_too() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers, deflate"));
        h.insert("x-end-to-end", HeaderValue::from_static("stays"));
        strip_hop_by_hop(&mut h);
        assert!(h.get("x-secret-hop").is_none());
        assert!(h.get(header::CONNECTION).is_none());
        assert!(h.get("keep-alive").is_none());
        assert_eq!(h[header::TE], "trailers");
        assert_eq!(h["x-end-to-end"], "stays");
    }

    #[test]
    fn forwarded_for_extends_only_a_trusted_chain() {
        let forwarding = |keep_chain| Forwarding {
            peer: "10.1.2.3".parse().expect("ip"),
            client: "203.0.113.9".parse().expect("ip"),
            keep_chain,
            tls: true,
        };
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        set_forwarded(&mut h, forwarding(true));
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 10.1.2.3");
        assert_eq!(h["x-real-ip"], "203.0.113.9");
        assert_eq!(h["x-forwarded-proto"], "https");

        let mut forged = HeaderMap::new();
        forged.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        set_forwarded(&mut forged, forwarding(false));
        assert_eq!(
            forged["x-forwarded-for"], "10.1.2.3",
            "an untrusted chain is replaced"
        );
    }

    #[test]
    fn request_id_is_kept_when_sane_and_made_otherwise() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(
            "x-request-id",
            HeaderValue::from_static("bad id with spaces"),
        );
        let made = request_id(&h);
        assert_eq!(made.len(), 36);
        assert_eq!(made.as_bytes()[14], b'4');
        assert_ne!(request_id(&h), made, "two made ids are the same");
    }

    #[test]
    fn made_request_ids_are_version_4_uuids() {
        for _ in 0..200 {
            let id = new_request_id();
            let text = id.to_str().unwrap();
            let groups: Vec<&str> = text.split('-').collect();
            let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
            assert_eq!(lens, [8, 4, 4, 4, 12], "{text}");
            assert!(groups.concat().bytes().all(|b| HEX.contains(&b)), "{text}");
            assert!(groups[2].starts_with('4'), "{text}");
            assert!(
                matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
                "{text}"
            );
        }
    }

    #[test]
    fn grpc_timeout_units() {
        let mut h = HeaderMap::new();
        h.insert("grpc-timeout", HeaderValue::from_static("250m"));
        assert_eq!(grpc_timeout(&h), Some(Duration::from_millis(250)));
        h.insert("grpc-timeout", HeaderValue::from_static("2S"));
        assert_eq!(grpc_timeout(&h), Some(Duration::from_secs(2)));
        h.insert("grpc-timeout", HeaderValue::from_static("123456789m"));
        assert_eq!(grpc_timeout(&h), None);
        h.insert("grpc-timeout", HeaderValue::from_static("5x"));
        assert_eq!(grpc_timeout(&h), None);
    }
}
