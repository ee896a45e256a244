//! `@rx`: regular expressions with the options ModSecurity compiles them with (PCRE's DOTALL
//! and MULTILINE, byte-oriented matching), so `.` spans newlines, `^`/`$` work per line and
//! arbitrary bytes can be matched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use regex::bytes::{CaptureLocations, Regex, RegexBuilder};

/// The Core Rule Set's largest regexes exceed the regex crate's default limits.
const SIZE_LIMIT: usize = 256 << 20;
const DFA_SIZE_LIMIT: usize = 64 << 20;
/// How many expanded regexes a dynamic `@rx` keeps compiled before starting over.
const CACHE_CAPACITY: usize = 64;
/// TX.0 to TX.9: the whole match and up to nine groups.
const MAX_CAPTURES: usize = 10;

/// A compiled `@rx` parameter, or one whose `%{macros}` are expanded per evaluation.
#[derive(Debug)]
pub(super) enum Rx {
    Static(Regex),
    Dynamic(Mutex<HashMap<String, Option<Arc<Regex>>>>),
}

impl Rx {
    pub(super) fn new(pattern: &str) -> Result<Rx, String> {
        if pattern.contains("%{") {
            Ok(Rx::Dynamic(Mutex::new(HashMap::new())))
        } else {
            compile(pattern).map(Rx::Static)
        }
    }

    pub(super) fn is_dynamic(&self) -> bool {
        matches!(self, Rx::Dynamic(_))
    }

    /// Matches `input`, filling `captures` with groups 0..=9 when asked. A dynamic pattern
    /// that does not compile after expansion never matches.
    pub(super) fn matches(
        &self,
        input: &[u8],
        raw: &str,
        expand: &dyn Fn(&str) -> String,
        captures: Option<&mut Vec<Vec<u8>>>,
    ) -> bool {
        match self {
            Rx::Static(re) => run(re, input, captures),
            Rx::Dynamic(cache) => {
                let pattern = expand(raw);
                let re = {
                    let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(re) = cache.get(&pattern) {
                        re.clone()
                    } else {
                        if cache.len() >= CACHE_CAPACITY {
                            cache.clear();
                        }
                        let re = compile(&pattern).ok().map(Arc::new);
                        cache.insert(pattern, re.clone());
                        re
                    }
                };
                re.is_some_and(|re| run(&re, input, captures))
            }
        }
    }
}

/// Compiles a pattern for byte-oriented matching, as PCRE does without its UTF mode.
pub(super) fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(&to_byte_syntax(pattern))
        .unicode(false)
        .dot_matches_new_line(true)
        .multi_line(true)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid regular expression: {e}"))
}

/// Rewrites what PCRE reads as bytes but the regex crate reads as code points: `\x{HH}` becomes
/// `\xHH`, and each non-ASCII character becomes its UTF-8 bytes, so that inside a class they are
/// separate members, as in PCRE.
fn to_byte_syntax(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let rest = chars.as_str();
            if let Some(hex) = rest
                .strip_prefix("x{")
                .and_then(|r| r.split_once('}'))
                .map(|(h, _)| h)
                && (1..=2).contains(&hex.len())
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
            {
                out.push_str(&format!("\\x{hex:0>2}"));
                chars = rest[hex.len() + 3..].chars();
                continue;
            }
            match chars.next() {
                // An escaped non-ASCII character is just its bytes taken literally.
                Some(escaped) if !escaped.is_ascii() => push_byte_char(&mut out, escaped),
                Some(escaped) => {
                    out.push('\\');
                    out.push(escaped);
                }
                None => out.push('\\'),
            }
        } else {
            push_byte_char(&mut out, c);
        }
    }
    out
}

fn push_byte_char(out: &mut String, c: char) {
    if c.is_ascii() {
        out.push(c);
    } else {
        let mut buf = [0; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
}

fn run(re: &Regex, input: &[u8], captures: Option<&mut Vec<Vec<u8>>>) -> bool {
    let Some(captures) = captures else {
        return re.is_match(input);
    };
    let mut locs: CaptureLocations = re.capture_locations();
    if re.captures_read(&mut locs, input).is_none() {
        return false;
    }
    let groups = locs.len().min(MAX_CAPTURES);
    // Groups after the last one that took part are left unset, as PCRE reports them.
    let last = (0..groups)
        .rev()
        .find(|&g| locs.get(g).is_some())
        .unwrap_or(0);
    for g in 0..=last {
        captures.push(
            locs.get(g)
                .map_or_else(Vec::new, |(s, e)| input[s..e].to_vec()),
        );
    }
    true
}
