//! Which address is the client's. By default the connection's peer (or the source a PROXY
//! protocol header gave); behind proxies the operator trusts, the address those proxies
//! recorded in `X-Forwarded-For`. Only entries added by trusted proxies are believed: a
//! client can write anything into the header, so the walk goes right to left and stops at
//! the first address that is not a trusted proxy.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;

use super::cidr::{CidrSet, canonical};

/// How a listener derives the client's address.
pub enum ClientIp {
    /// The peer (or PROXY protocol source) is the client.
    Peer,
    /// Walk `X-Forwarded-For` right to left past these networks.
    TrustedProxies(CidrSet),
    /// The peer and the proxies before it are this many trusted hops: the client is the
    /// address the farthest of them recorded.
    Hops(usize),
}

impl ClientIp {
    /// The client's address for a request from `peer` carrying `headers`.
    pub fn derive(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        match self {
            ClientIp::Peer => peer,
            ClientIp::TrustedProxies(trusted) => {
                if !trusted.contains(peer) {
                    return peer;
                }
                let mut leftmost = None;
                for ip in forwarded_for(headers) {
                    if !trusted.contains(ip) {
                        return ip;
                    }
                    leftmost = Some(ip);
                }
                // Every hop is a trusted proxy: the farthest one is as close to the client as
                // the header goes.
                leftmost.unwrap_or(peer)
            }
            ClientIp::Hops(0) => peer,
            ClientIp::Hops(hops) => {
                let mut seen = 0;
                let mut leftmost = None;
                for ip in forwarded_for(headers) {
                    seen += 1;
                    if seen == *hops {
                        return ip;
                    }
                    leftmost = Some(ip);
                }
                leftmost.unwrap_or(peer)
            }
        }
    }

    /// Whether `peer` is a proxy whose `X-Forwarded-For` the gateway passes on (extended);
    /// from anyone else the header is replaced, so a forged chain never reaches a backend.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        match self {
            ClientIp::Peer => false,
            ClientIp::TrustedProxies(trusted) => trusted.contains(canonical(peer)),
            ClientIp::Hops(hops) => *hops > 0,
        }
    }
}

/// The addresses in every `X-Forwarded-For` field, right to left. Entries that are not an
/// address (`unknown`, obfuscated names, garbage) are skipped; `host:port` and `[v6]:port`
/// forms are accepted.
pub fn forwarded_for(headers: &HeaderMap) -> impl Iterator<Item = IpAddr> + '_ {
    let fields: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    fields
        .into_iter()
        .rev()
        .flat_map(|field| field.rsplit(','))
        .filter_map(parse_entry)
}

/// One `X-Forwarded-For` entry as an address.
pub fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    let bracketed = entry.strip_prefix('[')?.strip_suffix(']')?;
    bracketed.parse::<IpAddr>().ok().map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in xff {
            headers.append(
                "x-forwarded-for",
                HeaderValue::from_str(value).expect("value"),
            );
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn trusted() -> ClientIp {
        ClientIp::TrustedProxies(CidrSet::parse(["10.0.0.0/8", "fd00::/8"]).expect("cidrs"))
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let h = headers(&["1.2.3.4"]);
        assert_eq!(trusted().derive(ip("198.51.100.7"), &h), ip("198.51.100.7"));
        assert_eq!(
            ClientIp::Peer.derive(ip("198.51.100.7"), &h),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn the_walk_stops_at_the_first_untrusted_address_from_the_right() {
        // The client forged 6.6.6.6; the load balancer appended the real address.
        let h = headers(&["6.6.6.6, 203.0.113.9", "10.1.1.1"]);
        assert_eq!(trusted().derive(ip("10.0.0.2"), &h), ip("203.0.113.9"));
        let all_trusted = headers(&["10.9.9.9, 10.1.1.1"]);
        assert_eq!(
            trusted().derive(ip("10.0.0.2"), &all_trusted),
            ip("10.9.9.9")
        );
        assert_eq!(
            trusted().derive(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn malformed_entries_are_skipped() {
        let h = headers(&["203.0.113.9, unknown, 10.1.1.1:8080, [fd00::1]:443, garbage!!"]);
        assert_eq!(trusted().derive(ip("10.0.0.2"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn hops_count_from_the_right() {
        let h = headers(&["6.6.6.6, 203.0.113.9, 10.1.1.1"]);
        assert_eq!(ClientIp::Hops(1).derive(ip("10.0.0.2"), &h), ip("10.1.1.1"));
        assert_eq!(
            ClientIp::Hops(2).derive(ip("10.0.0.2"), &h),
            ip("203.0.113.9")
        );
        assert_eq!(ClientIp::Hops(9).derive(ip("10.0.0.2"), &h), ip("6.6.6.6"));
        assert_eq!(ClientIp::Hops(0).derive(ip("10.0.0.2"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn mapped_addresses_compare_as_ipv4() {
        let h = headers(&["203.0.113.9"]);
        assert_eq!(
            trusted().derive(ip("::ffff:10.0.0.2"), &h),
            ip("203.0.113.9")
        );
    }

    proptest! {
        // Any header value: never panics, and the answer is the peer or one of the entries.
        #[test]
        fn any_forwarded_for_is_handled_safely(value in "[ -~]{0,200}") {
            if let Ok(v) = HeaderValue::from_str(&value) {
                let mut h = HeaderMap::new();
                h.insert("x-forwarded-for", v);
                let peer = ip("10.0.0.2");
                let got = trusted().derive(peer, &h);
                let entries: Vec<IpAddr> = forwarded_for(&h).collect();
                prop_assert!(got == peer || entries.contains(&got));
                let _ = ClientIp::Hops(3).derive(peer, &h);
            }
        }

        #[test]
        fn written_addresses_parse_back(a in any::<[u8; 4]>(), port in any::<u16>(), v6 in any::<[u16; 8]>()) {
            let v4 = IpAddr::from(a);
            prop_assert_eq!(parse_entry(&v4.to_string()), Some(v4));
            prop_assert_eq!(parse_entry(&format!("{v4}:{port}")), Some(v4));
            let v6 = IpAddr::from(v6);
            prop_assert_eq!(parse_entry(&format!("[{v6}]:{port}")), Some(canonical(v6)));
        }
    }
}
