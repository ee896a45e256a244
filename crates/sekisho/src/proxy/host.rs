//! The host a request is for, read one way for routing, logs and the upstream.
//!
//! Two hosts in one request are two answers to "which site": a gateway that routes by one
//! while the upstream serves the other has let the client choose the policy. So a request
//! names its host once and cleanly (RFC 9112 3.2, RFC 9110 7.2, RFC 9113 8.3.1): an
//! absolute-form target (HTTP/1.1) or `:authority` (HTTP/2) wins over `Host`; HTTP/1.1 needs
//! exactly one `Host`; HTTP/2's `Host`, when sent beside `:authority`, must agree with it;
//! and the host is a DNS name or an IP address with an optional port: no user info, no
//! lists, no empty value.

use std::borrow::Cow;
use std::cell::RefCell;
use std::net::{Ipv4Addr, Ipv6Addr};

use http::Version;
use http::header::HOST;
use http::request::Parts;

use super::exchange::Authority;

/// Why a request's host was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadHost(pub &'static str);

/// The request's authority, validated.
pub fn authority(parts: &Parts) -> Result<Authority, BadHost> {
    let mut hosts = parts.headers.get_all(HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(BadHost("more than one Host header"));
    }
    if let Some(authority) = parts.uri.authority() {
        valid(authority.as_str().as_bytes())?;
        if parts.version == Version::HTTP_2
            && let Some(host) = host
            && !host
                .as_bytes()
                .eq_ignore_ascii_case(authority.as_str().as_bytes())
        {
            return Err(BadHost("Host differs from :authority"));
        }
        // HTTP/1.1 absolute-form: the target's host wins and `Host` is ignored (RFC 9112
        // 3.2.2); the upstream is sent the target's.
        return Ok(Authority::Uri(authority.clone()));
    }
    match host {
        Some(host) => {
            valid(host.as_bytes())?;
            Ok(Authority::Host(host.clone()))
        }
        None if parts.version == Version::HTTP_11 => Err(BadHost("no Host header")),
        None => Ok(Authority::Missing),
    }
}

/// Hosts up to this long are remembered once found valid.
const REMEMBERED_LEN: usize = 64;

thread_local! {
    /// The last host this thread found valid: clients name one host on request after
    /// request, and checking it again cost more than the rest of reading the request's
    /// target.
    static LAST_VALID: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Checks `host[:port]` as [`check`] does, remembering the last host found valid.
fn valid(value: &[u8]) -> Result<(), BadHost> {
    let remembered = LAST_VALID
        .try_with(|last| {
            // Empty until a host is found valid; an empty host never is.
            last.try_borrow()
                .is_ok_and(|last| !last.is_empty() && *last == value)
        })
        .unwrap_or(false);
    if remembered {
        return Ok(());
    }
    check(value)?;
    if value.len() <= REMEMBERED_LEN {
        let _ = LAST_VALID.try_with(|last| {
            if let Ok(mut last) = last.try_borrow_mut() {
                last.clear();
                last.extend_from_slice(value);
            }
        });
    }
    Ok(())
}

/// Checks `host[:port]`: a DNS name (letters, digits, `-`, `_`, `.`), an IPv4 address or a
/// bracketed IPv6 address, and a port of 1 to 5 digits up to 65535.
fn check(value: &[u8]) -> Result<(), BadHost> {
    let text = std::str::from_utf8(value).map_err(|_| BadHost("a host that is not ASCII"))?;
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or(BadHost("an unclosed IPv6 address in the host"))?;
        ip.parse::<Ipv6Addr>()
            .map_err(|_| BadHost("an IPv6 host that is not an address"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or(BadHost("junk after an IPv6 host"))?,
            ),
        };
        (None, port)
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(text), None),
        }
    };
    if let Some(host) = host {
        name(host)?;
    }
    if let Some(port) = port {
        let digits =
            !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || port.parse::<u32>().map_or(true, |p| p > 65535) {
            return Err(BadHost("a host with a malformed port"));
        }
    }
    Ok(())
}

fn name(host: &str) -> Result<(), BadHost> {
    if host.is_empty() {
        return Err(BadHost("an empty host"));
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if host.len() > 253 + 1 || !host.bytes().all(allowed) {
        return Err(BadHost("a host that is not a DNS name or an IP address"));
    }
    if host.starts_with('.') || host.contains("..") {
        return Err(BadHost("a host with an empty label"));
    }
    Ok(())
}

/// The host without port, lower case and without a trailing dot, for matching: `Example.com.`
/// and `example.com` are one site to DNS and must be one to the routes.
pub fn for_matching(authority: &str) -> Cow<'_, str> {
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or(authority)
    } else {
        // By bytes: a host is a few bytes, and `rsplit_once` searches for a `char`.
        let colon = authority.bytes().rposition(|b| b == b':');
        colon.map_or(authority, |at| &authority[..at])
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    fn head(version: Version, uri: &str, hosts: &[&[u8]]) -> Parts {
        let mut builder = http::Request::builder().version(version).uri(uri);
        for host in hosts {
            builder = builder.header(HOST, HeaderValue::from_bytes(host).expect("value"));
        }
        builder.body(()).expect("request").into_parts().0
    }

    fn h1(hosts: &[&[u8]]) -> Result<Authority, BadHost> {
        authority(&head(Version::HTTP_11, "/x", hosts))
    }

    #[test]
    fn one_clean_host_is_taken() {
        for host in [
            &b"example.com"[..],
            b"Example.COM:8443",
            b"example.com.",
            b"127.0.0.1:80",
            b"[::1]:8080",
            b"[2001:db8::1]",
            b"my_host-1",
        ] {
            assert!(h1(&[host]).is_ok(), "{:?}", String::from_utf8_lossy(host));
        }
    }

    #[test]
    fn odd_hosts_are_refused() {
        for host in [
            &b""[..],
            b"a, b",
            b"a@b",
            b"user@example.com",
            b"example.com:",
            b"example.com:99999",
            b"example.com:80:80",
            b"[::1",
            b"[::1]x",
            b"[nope]",
            b"exa mple.com",
            b".example.com",
            b"a..b",
            b"\xc3\xa9.example",
        ] {
            assert!(h1(&[host]).is_err(), "{:?}", String::from_utf8_lossy(host));
        }
    }

    #[test]
    fn http11_needs_exactly_one_host() {
        assert_eq!(h1(&[]).err(), Some(BadHost("no Host header")));
        assert!(h1(&[b"a", b"a"]).is_err(), "even two equal ones");
        let http10 = authority(&head(Version::HTTP_10, "/x", &[]));
        assert!(matches!(http10, Ok(Authority::Missing)));
    }

    #[test]
    fn the_target_wins_over_host_and_http2_must_agree() {
        let absolute = head(Version::HTTP_11, "http://a.example/x", &[b"b.example"]);
        assert!(matches!(authority(&absolute), Ok(Authority::Uri(a)) if a == "a.example"));
        let agree = head(Version::HTTP_2, "https://a.example/x", &[b"A.example"]);
        assert!(authority(&agree).is_ok());
        let differ = head(Version::HTTP_2, "https://a.example/x", &[b"b.example"]);
        assert_eq!(
            authority(&differ).err(),
            Some(BadHost("Host differs from :authority"))
        );
        let userinfo = head(Version::HTTP_11, "http://u@a.example/x", &[]);
        assert!(authority(&userinfo).is_err());
    }

    #[test]
    fn matching_ignores_port_case_and_the_trailing_dot() {
        assert_eq!(for_matching("API.Example.com.:8443"), "api.example.com");
        assert_eq!(for_matching("example.com."), "example.com");
        assert_eq!(for_matching("[::1]:8080"), "[::1]");
    }

    #[test]
    fn a_remembered_host_answers_for_no_other() {
        assert!(valid(b"").is_err(), "nothing remembered yet");
        assert!(valid(b"a.example:8443").is_ok());
        assert!(valid(b"a.example:8443").is_ok(), "remembered");
        assert!(valid(b"a.example:99999").is_err());
        assert!(valid(b"a.example:8443 ").is_err());
        assert!(valid(b"a.example:844").is_ok());
        assert!(valid(b"a.example:8443@b").is_err());
    }

    proptest! {
        /// The memo of the last valid host changes no answer, whatever came before.
        #[test]
        fn remembering_changes_no_answer(
            values in proptest::collection::vec("[a-c0-9.:@ \\[\\]]{0,12}", 1..8)
        ) {
            for value in values {
                let value = value.as_bytes();
                prop_assert_eq!(valid(value), check(value));
                prop_assert_eq!(valid(value), check(value));
            }
        }

        /// Whatever a client writes, one answer: a host accepted is one name or address
        /// and an optional port, and it reads the same for matching however it is cased
        /// or dotted at the end.
        #[test]
        fn any_host_value_gets_one_answer(value in proptest::collection::vec(any::<u8>(), 0..80)) {
            let Ok(header) = HeaderValue::from_bytes(&value) else { return Ok(()) };
            let mut parts = head(Version::HTTP_11, "/x", &[]);
            parts.headers.insert(HOST, header);
            if let Ok(found) = authority(&parts) {
                let text = found.as_str();
                prop_assert!(!text.is_empty());
                prop_assert!(!text.contains(['@', ',', ' ']));
                let host = for_matching(text).into_owned();
                let dotted = format!("{host}.");
                prop_assert_eq!(for_matching(&dotted).into_owned(), host.clone());
                let upper = text.to_ascii_uppercase();
                prop_assert_eq!(for_matching(&upper).into_owned(), host);
            }
        }
    }
}
