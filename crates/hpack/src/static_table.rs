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

/// Slots of the name hash: the static names' hash values below fit in a byte.
const SLOTS: usize = 256;

/// A slot no static name hashes to.
const EMPTY: (u8, u8) = (u8::MAX, 0);

/// Hashes a name by its length and its first, middle and last bytes. Each of the 52
/// static names gets a slot of its own (checked as the table is built, at compile time),
/// so a lookup is a hash and one comparison; a `match` over the names went through them
/// arm by arm, all 52 for a name not in the table, which most custom names are.
const fn slot(name: &[u8]) -> usize {
    let len = name.len();
    if len == 0 {
        return 0;
    }
    let first = name[0] as usize;
    let middle = name[len / 2] as usize;
    let last = name[len - 1] as usize;
    (len ^ first ^ last.wrapping_mul(44) ^ (middle << 4)) % SLOTS
}

/// For each slot, the first entry of the name that hashes there and how many entries in
/// a row have that name.
static BY_SLOT: [(u8, u8); SLOTS] = by_slot();

const fn by_slot() -> [(u8, u8); SLOTS] {
    let mut slots = [EMPTY; SLOTS];
    let mut i = 0;
    while i < ENTRIES.len() {
        let name = ENTRIES[i].0;
        let s = slot(name);
        if slots[s].0 == EMPTY.0 {
            slots[s] = (i as u8, 1);
        } else if same(ENTRIES[slots[s].0 as usize].0, name)
            && slots[s].0 as usize + slots[s].1 as usize == i
        {
            slots[s].1 += 1;
        } else {
            panic!("two static names share a hash slot, or a name's entries are apart");
        }
        i += 1;
    }
    slots
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The entries (0-based) holding `name`.
fn entries_of(name: &[u8]) -> Option<std::ops::Range<usize>> {
    let (first, count) = BY_SLOT[slot(name)];
    let first = usize::from(first);
    let (entry, _) = ENTRIES.get(first)?;
    (*entry == name).then(|| first..first + usize::from(count))
}

/// Finds the best static match: the entry with both name and value, or else the first
/// with the name.
pub(crate) fn find(name: &[u8], value: &[u8]) -> Option<Match> {
    let entries = entries_of(name)?;
    let start = entries.start;
    for i in entries {
        if ENTRIES[i].1 == value {
            return Some(Match::Full(i + 1));
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
    fn entries_of_agrees_with_a_scan_of_the_table() {
        for &(name, _) in &ENTRIES {
            let first = ENTRIES.iter().position(|&(n, _)| n == name);
            let count = ENTRIES.iter().filter(|&&(n, _)| n == name).count();
            let scanned = first.map(|first| first..first + count);
            assert_eq!(
                entries_of(name),
                scanned,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
        for unknown in [
            &b"x-unknown"[..],
            b"",
            b"x-forwarded-for",
            b"content-lengths",
            b":",
        ] {
            assert_eq!(entries_of(unknown), None);
        }
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
