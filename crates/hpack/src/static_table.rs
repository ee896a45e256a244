//! The static table (RFC 7541 Appendix A).

/// Entries 1..=61; `ENTRIES[i]` is index `i + 1`.
pub(crate) const ENTRIES: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// Number of static entries; dynamic indices start right after.
pub(crate) const LEN: usize = ENTRIES.len();

/// Looks up a 1-based static index.
pub(crate) fn get(index: usize) -> Option<(&'static [u8], &'static [u8])> {
    index.checked_sub(1).and_then(|i| ENTRIES.get(i)).copied()
}

/// What the static table offers an encoder for one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Match {
    /// Name and value match: the field is one index byte.
    Full(usize),
    /// Only the name matches: the name can be sent as an index.
    Name(usize),
}

/// Where the run of entries named `name` starts in [`ENTRIES`]: a `match` the compiler
/// turns into a switch on the length and a few comparisons, where scanning the table
/// compared up to 61 names per field.
fn first_of(name: &[u8]) -> Option<usize> {
    Some(match name {
        b":authority" => 0,
        b":method" => 1,
        b":path" => 3,
        b":scheme" => 5,
        b":status" => 7,
        b"accept-charset" => 14,
        b"accept-encoding" => 15,
        b"accept-language" => 16,
        b"accept-ranges" => 17,
        b"accept" => 18,
        b"access-control-allow-origin" => 19,
        b"age" => 20,
        b"allow" => 21,
        b"authorization" => 22,
        b"cache-control" => 23,
        b"content-disposition" => 24,
        b"content-encoding" => 25,
        b"content-language" => 26,
        b"content-length" => 27,
        b"content-location" => 28,
        b"content-range" => 29,
        b"content-type" => 30,
        b"cookie" => 31,
        b"date" => 32,
        b"etag" => 33,
        b"expect" => 34,
        b"expires" => 35,
        b"from" => 36,
        b"host" => 37,
        b"if-match" => 38,
        b"if-modified-since" => 39,
        b"if-none-match" => 40,
        b"if-range" => 41,
        b"if-unmodified-since" => 42,
        b"last-modified" => 43,
        b"link" => 44,
        b"location" => 45,
        b"max-forwards" => 46,
        b"proxy-authenticate" => 47,
        b"proxy-authorization" => 48,
        b"range" => 49,
        b"referer" => 50,
        b"refresh" => 51,
        b"retry-after" => 52,
        b"server" => 53,
        b"set-cookie" => 54,
        b"strict-transport-security" => 55,
        b"transfer-encoding" => 56,
        b"user-agent" => 57,
        b"vary" => 58,
        b"via" => 59,
        b"www-authenticate" => 60,
        _ => return None,
    })
}

/// Finds the best static match. Entries sharing a name are adjacent, so the scan
/// stops at the end of the first run of that name.
pub(crate) fn find(name: &[u8], value: &[u8]) -> Option<Match> {
    let start = first_of(name)?;
    let run = ENTRIES[start..].iter().take_while(|&&(n, _)| n == name);
    for (offset, &(_, v)) in run.enumerate() {
        if v == value {
            return Some(Match::Full(start + offset + 1));
        }
    }
    Some(Match::Name(start + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_one_based() {
        assert_eq!(get(0), None);
        assert_eq!(get(1), Some((&b":authority"[..], &b""[..])));
        assert_eq!(get(61), Some((&b"www-authenticate"[..], &b""[..])));
        assert_eq!(get(62), None);
    }

    #[test]
    fn find_prefers_full_matches() {
        assert_eq!(find(b":method", b"POST"), Some(Match::Full(3)));
        assert_eq!(find(b":method", b"PUT"), Some(Match::Name(2)));
        assert_eq!(find(b":status", b"500"), Some(Match::Full(14)));
        assert_eq!(find(b"content-type", b"text/html"), Some(Match::Name(31)));
        assert_eq!(find(b"x-unknown", b""), None);
    }

    #[test]
    fn first_of_agrees_with_a_scan_of_the_table() {
        for &(name, _) in &ENTRIES {
            let scanned = ENTRIES.iter().position(|&(n, _)| n == name);
            assert_eq!(first_of(name), scanned, "{}", String::from_utf8_lossy(name));
        }
        assert_eq!(first_of(b"x-unknown"), None);
        assert_eq!(first_of(b""), None);
    }

    #[test]
    fn names_are_grouped() {
        for (i, &(name, _)) in ENTRIES.iter().enumerate() {
            let first = ENTRIES
                .iter()
                .position(|&(n, _)| n == name)
                .unwrap_or(usize::MAX);
            assert!(ENTRIES[first..=i].iter().all(|&(n, _)| n == name), "{i}");
        }
    }
}
