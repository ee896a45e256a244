//! The path every stage sees: routes, policies, rewrites and the upstream.
//!
//! A gateway that matches the raw path while its upstream normalizes it guards a different
//! resource than the one served: `/public/../admin`, `/%61dmin` and `//admin` all reach
//! `/admin` upstream. So the path is normalized once, on arrival, the way RFC 3986 defines
//! it (section 6.2.2): percent-escapes of unreserved characters decoded, the hex digits of
//! other escapes in upper case, dot segments removed (5.2.4), and, unless the listener says
//! otherwise, runs of slashes merged. Encoded slashes and backslashes (`%2F`, `%5C`, and a
//! raw `\`, which some servers read as `/`) are where gateway and upstream disagree most:
//! the listener chooses to refuse them (the default), keep them as they are, or decode
//! them to `/` before the other steps.

use std::borrow::Cow;

use crate::config::model::{EscapedSlashes, PathPolicy};

/// Why a path was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadPath(pub &'static str);

/// Normalizes the path of `uri` in place, keeping its query, scheme and authority; gives
/// back the target as sent when normalizing changed it (the WAF reads that form).
pub fn normalize_uri(
    uri: &mut http::Uri,
    policy: &PathPolicy,
) -> Result<Option<http::Uri>, BadPath> {
    let Some(pq) = uri.path_and_query() else {
        return Ok(None);
    };
    let Cow::Owned(path) = normalize(pq.path(), policy)? else {
        return Ok(None);
    };
    let target = match pq.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let invalid = || BadPath("a path that is not a valid request target");
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(http::uri::PathAndQuery::try_from(target).map_err(|_| invalid())?);
    let normalized = http::Uri::from_parts(parts).map_err(|_| invalid())?;
    Ok(Some(std::mem::replace(uri, normalized)))
}

/// Normalizes `path` (without its query) as the listener's policy says.
pub fn normalize<'a>(path: &'a str, policy: &PathPolicy) -> Result<Cow<'a, str>, BadPath> {
    if !path.starts_with('/') {
        // `*` (OPTIONS) and authority-form (CONNECT) have no path to normalize.
        return Ok(Cow::Borrowed(path));
    }
    if already_normal(path) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode(path, policy.escaped_slashes)?;
    let merged = if policy.merge_slashes {
        merge_slashes(&decoded)
    } else {
        decoded
    };
    let normalized = remove_dot_segments(&merged);
    Ok(if normalized == path {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(normalized)
    })
}

/// Whether an absolute `path` has nothing to normalize under any policy: no escape, no
/// backslash, no empty segment and no segment that starts with a dot. Most paths are like
/// that, and then nothing is allocated.
fn already_normal(path: &str) -> bool {
    let bytes = path.as_bytes();
    // Folds without an early exit, which compile to vector compares: a path is short,
    // and looking at all of it costs less than a branch per byte.
    let escaped = bytes
        .iter()
        .fold(false, |seen, &b| seen | (b == b'%') | (b == b'\\'));
    let after = bytes.get(1..).unwrap_or_default();
    let empty_or_dot = bytes.iter().zip(after).fold(false, |seen, (&a, &b)| {
        seen | ((a == b'/') & ((b == b'/') | (b == b'.')))
    });
    !escaped && !empty_or_dot
}

/// Decodes escapes of unreserved characters, upper-cases the others' hex digits, and
/// applies the policy for slashes and backslashes, escaped or raw.
fn decode(path: &str, slashes: EscapedSlashes) -> Result<String, BadPath> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' {
            match slashes {
                EscapedSlashes::Reject => return Err(BadPath("a backslash in the path")),
                EscapedSlashes::Keep => out.push('\\'),
                EscapedSlashes::Decode => out.push('/'),
            }
            i += 1;
            continue;
        }
        if b != b'%' {
            // Copy up to the next escape or backslash whole: both are ASCII, so the cut
            // falls between characters, and bytes past ASCII stay as they came.
            let end = bytes[i..]
                .iter()
                .position(|&b| b == b'%' || b == b'\\')
                .map_or(bytes.len(), |n| i + n);
            out.push_str(&path[i..end]);
            i = end;
            continue;
        }
        let (Some(hi), Some(lo)) = (
            bytes.get(i + 1).and_then(|&h| hex(h)),
            bytes.get(i + 2).and_then(|&l| hex(l)),
        ) else {
            return Err(BadPath("a malformed percent-escape in the path"));
        };
        let value = hi << 4 | lo;
        match value {
            b'/' | b'\\' => match slashes {
                EscapedSlashes::Reject => {
                    return Err(BadPath("an encoded slash or backslash in the path"));
                }
                EscapedSlashes::Keep => push_escape(&mut out, value),
                EscapedSlashes::Decode => out.push('/'),
            },
            v if unreserved(v) => out.push(char::from(v)),
            v => push_escape(&mut out, v),
        }
        i += 3;
    }
    Ok(out)
}

fn push_escape(out: &mut String, value: u8) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(DIGITS[usize::from(value >> 4)]));
    out.push(char::from(DIGITS[usize::from(value & 0x0f)]));
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 2.3.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

/// RFC 3986 5.2.4 on an absolute path, written over segments: `.` is dropped, `..` drops
/// the segment before it (never above the root), and a path that ended in a dot segment
/// keeps its trailing slash.
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in path[1..].split('/') {
        trailing_slash = false;
        match segment {
            "." => trailing_slash = true,
            ".." => {
                segments.pop();
                trailing_slash = true;
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy(escaped_slashes: EscapedSlashes, merge_slashes: bool) -> PathPolicy {
        PathPolicy {
            escaped_slashes,
            merge_slashes,
        }
    }

    fn edge(path: &str) -> Result<String, BadPath> {
        normalize(path, &PathPolicy::default()).map(Cow::into_owned)
    }

    #[test]
    fn tricks_that_reach_another_path_are_undone() {
        for (raw, seen) in [
            ("/public/../admin", "/admin"),
            ("/public/%2e%2e/admin", "/admin"),
            ("/public/%2E./admin", "/admin"),
            ("/%61dmin", "/admin"),
            ("//admin", "/admin"),
            ("/./admin/./x", "/admin/x"),
            ("/../../admin", "/admin"),
            ("/admin/x/..", "/admin/"),
            ("/admin;x", "/admin;x"),
            ("/a%7eb%2dc", "/a~b-c"),
            ("/a%3bb%3Fc", "/a%3Bb%3Fc"),
            ("/", "/"),
            ("/..", "/"),
        ] {
            assert_eq!(edge(raw).as_deref(), Ok(seen), "{raw}");
        }
    }

    #[test]
    fn escaped_slashes_follow_the_listener() {
        let raw = "/public/..%2Fadmin";
        assert!(edge(raw).is_err(), "refused by default");
        assert!(edge("/a\\..\\admin").is_err(), "a raw backslash too");
        let keep = policy(EscapedSlashes::Keep, true);
        assert_eq!(normalize("/a/..%2fb", &keep).as_deref(), Ok("/a/..%2Fb"));
        let decode = policy(EscapedSlashes::Decode, true);
        assert_eq!(normalize(raw, &decode).as_deref(), Ok("/admin"));
        assert_eq!(normalize("/a\\..\\admin", &decode).as_deref(), Ok("/admin"));
    }

    #[test]
    fn slashes_merge_unless_told_not_to() {
        let keep_runs = policy(EscapedSlashes::Reject, false);
        assert_eq!(normalize("/a//b", &keep_runs).as_deref(), Ok("/a//b"));
        assert_eq!(edge("/a//b").as_deref(), Ok("/a/b"));
    }

    #[test]
    fn malformed_escapes_are_refused() {
        for raw in ["/a%", "/a%4", "/a%zz", "/%G0"] {
            assert!(edge(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn grpc_paths_and_star_pass_untouched() {
        assert!(matches!(
            edge("/grpc.testing.TestService/UnaryCall").map(Cow::<str>::from),
            Ok(Cow::Owned(_) | Cow::Borrowed(_))
        ));
        let p = "/grpc.testing.TestService/UnaryCall";
        assert!(matches!(
            normalize(p, &PathPolicy::default()),
            Ok(Cow::Borrowed(_))
        ));
        assert!(matches!(
            normalize("*", &PathPolicy::default()),
            Ok(Cow::Borrowed("*"))
        ));
    }

    /// A reference reading of the same rules, written the slow and obvious way: decode
    /// every unreserved escape, split on `/`, drop empty and `.` segments, let `..` pop.
    fn reference(path: &str) -> Option<String> {
        let mut decoded = Vec::new();
        let bytes = path.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let text = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                let v = u8::from_str_radix(text, 16).ok()?;
                if v == b'/' || v == b'\\' {
                    return None;
                }
                if unreserved(v) {
                    decoded.push(v);
                } else {
                    decoded.extend(format!("%{v:02X}").bytes());
                }
                i += 3;
            } else if bytes[i] == b'\\' {
                return None;
            } else {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
        let text = String::from_utf8(decoded).ok()?;
        let mut stack: Vec<&str> = Vec::new();
        let parts: Vec<&str> = text.split('/').skip(1).collect();
        let last = parts.last().copied();
        for part in &parts {
            match *part {
                "" | "." => {}
                ".." => {
                    stack.pop();
                }
                s => stack.push(s),
            }
        }
        let mut out = format!("/{}", stack.join("/"));
        if matches!(last, Some("" | "." | "..")) && out != "/" {
            out.push('/');
        }
        Some(out)
    }

    fn path_strategy() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("/".to_owned()),
            Just("//".to_owned()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("%2e".to_owned()),
            Just("%2E%2e".to_owned()),
            Just("%2f".to_owned()),
            Just("%5C".to_owned()),
            Just("\\".to_owned()),
            Just("%41".to_owned()),
            Just("%3b".to_owned()),
            Just("%".to_owned()),
            "[a-z;=~-]{1,4}",
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|p| format!("/{}", p.concat()))
    }

    proptest! {
        /// Idempotent, never a `..` or `.` segment, never an empty segment when merging,
        /// always absolute; and the same answer as the reference reading.
        #[test]
        fn normalizing_is_idempotent_and_leaves_no_dot_segment(path in path_strategy()) {
            let once = edge(&path);
            prop_assert_eq!(once.clone().ok(), reference(&path), "{}", path);
            if let Ok(once) = once {
                prop_assert!(once.starts_with('/'));
                let twice = edge(&once);
                prop_assert_eq!(twice.as_deref(), Ok(once.as_str()));
                for segment in once[1..].split('/') {
                    prop_assert!(segment != ".." && segment != ".", "{}", once);
                }
                prop_assert!(!once.contains("//"), "{}", once);
            }
        }

        /// Any bytes a client can put in a path: an answer, in time linear in the input.
        #[test]
        fn any_path_gets_an_answer(raw in "/[ -~]{0,400}") {
            let for_keep = policy(EscapedSlashes::Keep, true);
            let for_decode = policy(EscapedSlashes::Decode, false);
            for p in [PathPolicy::default(), for_keep, for_decode] {
                if let Ok(out) = normalize(&raw, &p) {
                    prop_assert!(out.len() <= raw.len() + 2 * raw.len());
                    let again = normalize(&out, &p).map(Cow::into_owned);
                    prop_assert_eq!(again.as_deref(), Ok(&*out));
                }
            }
        }
    }
}
