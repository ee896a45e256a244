//! SecLang transformations (`t:name`): the normalisations a rule applies to a variable before
//! its operator sees it. Each one reproduces ModSecurity's byte-level behaviour, quirks included,
//! because the Core Rule Set's regexes are tuned to exactly that output.
//!
//! A transformation that leaves its input unchanged hands the same borrowed bytes back, so a
//! chain over clean input allocates nothing.

use std::borrow::Cow;
use std::io::Write as _;

/// One SecLang transformation, as named by a rule's `t:` action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transform {
    /// Strict Base64 decoding; malformed input decodes to nothing.
    Base64Decode,
    /// Forgiving Base64 decoding that skips characters outside the alphabet.
    Base64DecodeExt,
    /// Base64 encoding with padding.
    Base64Encode,
    /// Undoes shell obfuscation: quotes, carets, odd separators, case.
    CmdLine,
    /// Runs of whitespace become one space.
    CompressWhitespace,
    /// CSS 2.x backslash escapes.
    CssDecode,
    /// ANSI C escape sequences.
    EscapeSeqDecode,
    /// Pairs of hex digits to bytes.
    HexDecode,
    /// Bytes to lowercase hex.
    HexEncode,
    /// HTML character references.
    HtmlEntityDecode,
    /// JavaScript escapes.
    JsDecode,
    /// The length in bytes, as decimal text.
    Length,
    /// ASCII lowercasing.
    Lowercase,
    /// The raw MD5 digest.
    Md5,
    /// Resolves `.`/`..` segments and repeated slashes.
    NormalizePath,
    /// As `NormalizePath`, with backslashes as separators.
    NormalizePathWin,
    /// Sets the high bit for even parity over the low seven.
    ParityEven7bit,
    /// Sets the high bit for odd parity over the low seven.
    ParityOdd7bit,
    /// Clears the high bit.
    ParityZero7bit,
    /// Drops SQL, C and HTML comments.
    RemoveComments,
    /// Drops comment markers, keeping what they enclose.
    RemoveCommentsChar,
    /// Drops NUL bytes.
    RemoveNulls,
    /// Drops whitespace.
    RemoveWhitespace,
    /// Turns each C-style comment into one space.
    ReplaceComments,
    /// Turns NUL bytes into spaces.
    ReplaceNulls,
    /// The raw SHA-1 digest.
    Sha1,
    /// Decodes `0x...` SQL hex literals.
    SqlHexDecode,
    /// Strips leading and trailing whitespace.
    Trim,
    /// Strips leading whitespace.
    TrimLeft,
    /// Strips trailing whitespace.
    TrimRight,
    /// ASCII uppercasing.
    Uppercase,
    /// Percent-decoding, `+` as space.
    UrlDecode,
    /// Percent-decoding including IIS-style `%uHHHH`.
    UrlDecodeUni,
    /// Percent-encoding.
    UrlEncode,
    /// Multi-byte UTF-8 sequences to `%uHHHH`.
    Utf8ToUnicode,
}

/// Names as SecLang spells them, with their British aliases.
const NAMES: &[(&str, Transform)] = &[
    ("base64Decode", Transform::Base64Decode),
    ("base64DecodeExt", Transform::Base64DecodeExt),
    ("base64Encode", Transform::Base64Encode),
    ("cmdLine", Transform::CmdLine),
    ("compressWhitespace", Transform::CompressWhitespace),
    ("cssDecode", Transform::CssDecode),
    ("escapeSeqDecode", Transform::EscapeSeqDecode),
    ("hexDecode", Transform::HexDecode),
    ("hexEncode", Transform::HexEncode),
    ("htmlEntityDecode", Transform::HtmlEntityDecode),
    ("jsDecode", Transform::JsDecode),
    ("length", Transform::Length),
    ("lowercase", Transform::Lowercase),
    ("md5", Transform::Md5),
    ("normalizePath", Transform::NormalizePath),
    ("normalisePath", Transform::NormalizePath),
    ("normalizePathWin", Transform::NormalizePathWin),
    ("normalisePathWin", Transform::NormalizePathWin),
    ("parityEven7bit", Transform::ParityEven7bit),
    ("parityOdd7bit", Transform::ParityOdd7bit),
    ("parityZero7bit", Transform::ParityZero7bit),
    ("removeComments", Transform::RemoveComments),
    ("removeCommentsChar", Transform::RemoveCommentsChar),
    ("removeNulls", Transform::RemoveNulls),
    ("removeWhitespace", Transform::RemoveWhitespace),
    ("replaceComments", Transform::ReplaceComments),
    ("replaceNulls", Transform::ReplaceNulls),
    ("sha1", Transform::Sha1),
    ("sqlHexDecode", Transform::SqlHexDecode),
    ("trim", Transform::Trim),
    ("trimLeft", Transform::TrimLeft),
    ("trimRight", Transform::TrimRight),
    ("uppercase", Transform::Uppercase),
    ("urlDecode", Transform::UrlDecode),
    ("urlDecodeUni", Transform::UrlDecodeUni),
    ("urlEncode", Transform::UrlEncode),
    ("utf8toUnicode", Transform::Utf8ToUnicode),
];

impl Transform {
    /// Looks a `t:` name up. Names compare without regard to case, as rule writers mix
    /// `base64decode` and `base64Decode`; `none` is not a transformation but a reset, so the
    /// caller handles it.
    pub fn parse(name: &str) -> Option<Transform> {
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, t)| t)
    }

    /// The name this transformation goes by in SecLang, for logs.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|&&(_, t)| t == self)
            .map_or("", |&(n, _)| n)
    }

    /// Applies the transformation, borrowing the input back when nothing changes.
    pub fn apply<'a>(&self, input: Cow<'a, [u8]>) -> Cow<'a, [u8]> {
        let out = match self {
            Transform::Base64Decode => Some(base64_decode_strict(&input)),
            Transform::Base64DecodeExt => Some(base64_decode_forgiving(&input)),
            Transform::Base64Encode => Some(base64_encode(&input)),
            Transform::CmdLine => cmd_line(&input),
            Transform::CompressWhitespace => compress_whitespace(&input),
            Transform::CssDecode => css_decode(&input),
            Transform::EscapeSeqDecode => escape_seq_decode(&input),
            Transform::HexDecode => Some(hex_decode(&input)),
            Transform::HexEncode => Some(hex_encode(&input)),
            Transform::HtmlEntityDecode => html_entity_decode(&input),
            Transform::JsDecode => js_decode(&input),
            Transform::Length => Some(input.len().to_string().into_bytes()),
            Transform::Lowercase => map_bytes(
                &input,
                |b| b.is_ascii_uppercase(),
                |b| b.to_ascii_lowercase(),
            ),
            Transform::Md5 => Some(md5(&input)),
            Transform::NormalizePath => normalize_path(&input, false),
            Transform::NormalizePathWin => normalize_path(&input, true),
            Transform::ParityEven7bit => map_bytes(&input, |b| parity_even(b) != b, parity_even),
            Transform::ParityOdd7bit => map_bytes(&input, |b| parity_odd(b) != b, parity_odd),
            Transform::ParityZero7bit => map_bytes(&input, |b| b & 0x80 != 0, |b| b & 0x7f),
            Transform::RemoveComments => remove_comments(&input),
            Transform::RemoveCommentsChar => remove_comment_chars(&input),
            Transform::RemoveNulls => remove_bytes(&input, |b| b == 0),
            Transform::RemoveWhitespace => {
                remove_bytes(&input, |b| is_space(b) || b == 0xa0 || b == 0xc2)
            }
            Transform::ReplaceComments => replace_comments(&input),
            Transform::ReplaceNulls => {
                map_bytes(&input, |b| b == 0, |b| if b == 0 { b' ' } else { b })
            }
            Transform::Sha1 => Some(sha1(&input)),
            Transform::SqlHexDecode => sql_hex_decode(&input),
            Transform::Trim => trim(&input, true, true),
            Transform::TrimLeft => trim(&input, true, false),
            Transform::TrimRight => trim(&input, false, true),
            Transform::Uppercase => map_bytes(
                &input,
                |b| b.is_ascii_lowercase(),
                |b| b.to_ascii_uppercase(),
            ),
            Transform::UrlDecode => url_decode(&input, false),
            Transform::UrlDecodeUni => url_decode(&input, true),
            Transform::UrlEncode => url_encode(&input),
            Transform::Utf8ToUnicode => utf8_to_unicode(&input),
        };
        match out {
            None => input,
            Some(v) => Cow::Owned(v),
        }
    }
}

/// C's `isspace` in the "C" locale, which ModSecurity relies on.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn is_odigit(b: u8) -> bool {
    (b'0'..=b'7').contains(&b)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Two hex digits to a byte, computed the way ModSecurity's `x2c` does: it does not validate,
/// so callers that may pass other characters get the same wrapped value ModSecurity would.
fn x2c(hi: u8, lo: u8) -> u8 {
    let digit = |c: u8| {
        if c >= b'A' {
            (c & 0xdf).wrapping_sub(b'A').wrapping_add(10)
        } else {
            c.wrapping_sub(b'0')
        }
    };
    digit(hi).wrapping_mul(16).wrapping_add(digit(lo))
}

/// A `%uHHHH` or `\uHHHH` escape keeps only its low byte; full-width ASCII (U+FF01..U+FF5E)
/// maps onto its ASCII twin.
fn unicode_low_byte(h: &[u8]) -> u8 {
    let low = x2c(h[2], h[3]);
    if low > 0 && low < 0x5f && matches!(h[0], b'f' | b'F') && matches!(h[1], b'f' | b'F') {
        low + 0x20
    } else {
        low
    }
}

/// Maps each byte when at least one byte needs it.
fn map_bytes(input: &[u8], needs: impl Fn(u8) -> bool, f: impl Fn(u8) -> u8) -> Option<Vec<u8>> {
    if !input.iter().any(|&b| needs(b)) {
        return None;
    }
    Some(input.iter().map(|&b| f(b)).collect())
}

fn remove_bytes(input: &[u8], drop: impl Fn(u8) -> bool) -> Option<Vec<u8>> {
    if !input.iter().any(|&b| drop(b)) {
        return None;
    }
    Some(input.iter().copied().filter(|&b| !drop(b)).collect())
}

fn parity_even(b: u8) -> u8 {
    let low = b & 0x7f;
    if !low.count_ones().is_multiple_of(2) {
        low | 0x80
    } else {
        low
    }
}

fn parity_odd(b: u8) -> u8 {
    let low = b & 0x7f;
    if low.count_ones().is_multiple_of(2) {
        low | 0x80
    } else {
        low
    }
}

fn trim(input: &[u8], left: bool, right: bool) -> Option<Vec<u8>> {
    let mut s = input;
    if left {
        while let [first, rest @ ..] = s {
            if !is_space(*first) {
                break;
            }
            s = rest;
        }
    }
    if right {
        while let [rest @ .., last] = s {
            if !is_space(*last) {
                break;
            }
            s = rest;
        }
    }
    (s.len() != input.len()).then(|| s.to_vec())
}

/// `%HH` decoding, with `+` as space. Invalid or truncated escapes stay as they are. With
/// `unicode`, `%uHHHH` decodes to its low byte as well.
fn url_decode(input: &[u8], unicode: bool) -> Option<Vec<u8>> {
    if !input.iter().any(|&b| b == b'%' || b == b'+') {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'+' {
            out.push(b' ');
            i += 1;
        } else if b != b'%' {
            out.push(b);
            i += 1;
        } else if unicode && matches!(input.get(i + 1), Some(b'u' | b'U')) {
            match input.get(i + 2..i + 6) {
                Some(h) if h.iter().all(u8::is_ascii_hexdigit) => {
                    out.push(unicode_low_byte(h));
                    i += 6;
                }
                _ => {
                    out.extend_from_slice(&input[i..i + 2]);
                    i += 2;
                }
            }
        } else {
            match input.get(i + 1..i + 3) {
                Some(&[h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    out.push(x2c(h, l));
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            }
        }
    }
    Some(out)
}

/// Percent-encodes everything but ASCII letters, digits and `*`; space becomes `+`.
fn url_encode(input: &[u8]) -> Option<Vec<u8>> {
    let keep = |b: u8| b.is_ascii_alphanumeric() || b == b'*';
    if input.iter().all(|&b| keep(b)) {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() * 3);
    for &b in input {
        if b == b' ' {
            out.push(b'+');
        } else if keep(b) {
            out.push(b);
        } else {
            out.push(b'%');
            out.extend_from_slice(&hex_pair(b));
        }
    }
    Some(out)
}

fn hex_pair(b: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]]
}

fn hex_encode(input: &[u8]) -> Vec<u8> {
    input.iter().flat_map(|&b| hex_pair(b)).collect()
}

/// Pairs of characters to bytes without validation (as ModSecurity does); an odd last
/// character is dropped.
fn hex_decode(input: &[u8]) -> Vec<u8> {
    input.chunks_exact(2).map(|p| x2c(p[0], p[1])).collect()
}

/// Decodes MySQL-style `0xHHHH...` literals, leaving everything else alone.
fn sql_hex_decode(input: &[u8]) -> Option<Vec<u8>> {
    let starts_literal = |i: usize| {
        input[i] == b'0'
            && matches!(input.get(i + 1), Some(b'x' | b'X'))
            && input.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            && input.get(i + 3).is_some_and(u8::is_ascii_hexdigit)
    };
    if !(0..input.len()).any(starts_literal) {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if starts_literal(i) {
            i += 2;
            while let Some(&[h, l]) = input.get(i..i + 2) {
                if !(h.is_ascii_hexdigit() && l.is_ascii_hexdigit()) {
                    break;
                }
                out.push(x2c(h, l));
                i += 2;
            }
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Decodes `&name;`, `&#DDD;` and `&#xHH;` entities; the `;` is optional. Only the named
/// entities quot, amp, lt, gt and nbsp are known (also as the start of a longer word, as
/// browsers read `&ltscript`); others stay as written. Numeric entities yield one byte: leading
/// zeros are skipped and at most three decimal or two hex digits are read.
fn html_entity_decode(input: &[u8]) -> Option<Vec<u8>> {
    decode_escapes(input, b'&', |input, i, out| {
        let (byte, next) = html_entity_at(input, i + 1)?;
        out.push(byte);
        Some(next)
    })
}

/// The entity whose body starts at `k` (just after `&`), if it decodes: its byte and where
/// decoding goes on.
fn html_entity_at(input: &[u8], k: usize) -> Option<(u8, usize)> {
    if input.get(k) == Some(&b'#') {
        numeric_entity_at(input, k + 1)
    } else {
        named_entity_at(input, k)
    }
}

/// `&#DDD` or `&#xHH`, from just after the `#`.
fn numeric_entity_at(input: &[u8], mut k: usize) -> Option<(u8, usize)> {
    let (radix, max_digits, is_digit): (u32, usize, fn(&u8) -> bool) =
        if matches!(input.get(k), Some(b'x' | b'X')) {
            k += 1;
            (16, 2, u8::is_ascii_hexdigit)
        } else {
            (10, 3, u8::is_ascii_digit)
        };
    if !input.get(k).is_some_and(is_digit) {
        return None;
    }
    while input.get(k) == Some(&b'0') {
        k += 1;
    }
    let digits = input[k..]
        .iter()
        .take(max_digits)
        .take_while(|b| is_digit(b))
        .count();
    let value = input[k..k + digits]
        .iter()
        .fold(0u32, |v, &d| v * radix + u32::from(hex_val(d).unwrap_or(0)));
    Some((value as u8, skip_semicolon(input, k + digits)))
}

/// One of the five named entities, as the start of the word at `k`.
fn named_entity_at(input: &[u8], k: usize) -> Option<(u8, usize)> {
    const KNOWN: &[(&[u8], u8)] = &[
        (b"quot", b'"'),
        (b"amp", b'&'),
        (b"lt", b'<'),
        (b"gt", b'>'),
        (b"nbsp", 0xa0),
    ];
    let rest = &input[k..];
    KNOWN.iter().find_map(|&(name, byte)| {
        let prefix = rest.get(..name.len())?;
        prefix
            .eq_ignore_ascii_case(name)
            .then(|| (byte, skip_semicolon(input, k + name.len())))
    })
}

fn skip_semicolon(input: &[u8], at: usize) -> usize {
    if input.get(at) == Some(&b';') {
        at + 1
    } else {
        at
    }
}

fn memchr_byte(needle: u8, haystack: &[u8]) -> Option<usize> {
    memchr::memchr(needle, haystack)
}

/// The loop shared by the escape decoders: bytes other than `marker` are copied in runs, and at
/// each `marker` `decode` writes what the escape stands for and returns where to go on, or
/// returns `None` (writing nothing) to keep the marker as it is.
fn decode_escapes(
    input: &[u8],
    marker: u8,
    decode: impl Fn(&[u8], usize, &mut Vec<u8>) -> Option<usize>,
) -> Option<Vec<u8>> {
    let mut at = memchr_byte(marker, input)?;
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(&input[..at]);
    loop {
        let from = match decode(input, at, &mut out) {
            Some(next) => next,
            None => {
                out.push(marker);
                at + 1
            }
        };
        let rest = input.get(from..).unwrap_or_default();
        match memchr_byte(marker, rest) {
            Some(off) => {
                out.extend_from_slice(&rest[..off]);
                at = from + off;
            }
            None => {
                out.extend_from_slice(rest);
                return Some(out);
            }
        }
    }
}

/// JavaScript escapes: `\uHHHH` (low byte), `\xHH`, octal `\OOO` (at most one byte), the C
/// letter escapes, and `\C` to `C`.
fn js_decode(input: &[u8]) -> Option<Vec<u8>> {
    decode_escapes(input, b'\\', |input, i, out| {
        let rest = &input[i + 1..];
        let (byte, len) = match rest {
            [b'u', h @ ..] if h.len() >= 4 && h[..4].iter().all(u8::is_ascii_hexdigit) => {
                (unicode_low_byte(&h[..4]), 5)
            }
            [b'x', h, l, ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => (x2c(*h, *l), 3),
            [o, ..] if is_odigit(*o) => {
                let mut n = rest.iter().take(3).take_while(|b| is_odigit(**b)).count();
                // Three digits only when the value fits a byte.
                if n == 3 && rest[0] > b'3' {
                    n = 2;
                }
                (octal(&rest[..n]), n)
            }
            [c, ..] => (c_escape(*c).unwrap_or(*c), 1),
            [] => return None,
        };
        out.push(byte);
        Some(i + 1 + len)
    })
}

fn octal(digits: &[u8]) -> u8 {
    digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0')) as u8
}

fn c_escape(c: u8) -> Option<u8> {
    Some(match c {
        b'a' => 0x07,
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 0x0b,
        _ => return None,
    })
}

/// ANSI C escape sequences: the letter escapes, `\\ \? \' \"`, `\xHH` and octal `\OOO`;
/// an unknown escape loses its backslash.
fn escape_seq_decode(input: &[u8]) -> Option<Vec<u8>> {
    decode_escapes(input, b'\\', |input, i, out| {
        let rest = &input[i + 1..];
        let &c = rest.first()?;
        let (byte, len) = if let Some(b) =
            c_escape(c).or_else(|| matches!(c, b'\\' | b'?' | b'\'' | b'"').then_some(c))
        {
            (b, 1)
        } else if let [b'x' | b'X', h, l, ..] = rest
            && h.is_ascii_hexdigit()
            && l.is_ascii_hexdigit()
        {
            (x2c(*h, *l), 3)
        } else if is_odigit(c) {
            let n = rest.iter().take(3).take_while(|b| is_odigit(**b)).count();
            (octal(&rest[..n]), n)
        } else {
            (c, 1)
        };
        out.push(byte);
        Some(i + 1 + len)
    })
}

/// CSS 2.x escapes: `\` and one to six hex digits (low byte, full-width ASCII folded, one
/// following whitespace swallowed), `\` newline as a line continuation, `\C` to `C`.
fn css_decode(input: &[u8]) -> Option<Vec<u8>> {
    decode_escapes(input, b'\\', |input, i, out| {
        let h = &input[i + 1..];
        let Some(&next) = h.first() else {
            // A trailing backslash continues to nothing.
            return Some(i + 1);
        };
        let j = h
            .iter()
            .take(6)
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        if j == 0 {
            if next != b'\n' {
                out.push(next);
            }
            return Some(i + 2);
        }
        let mut byte = if j == 1 {
            hex_val(h[0]).unwrap_or(0)
        } else {
            x2c(h[j - 2], h[j - 1])
        };
        let full_width_check = match j {
            4 => true,
            5 => h[0] == b'0',
            6 => h[0] == b'0' && h[1] == b'0',
            _ => false,
        };
        if full_width_check
            && byte > 0
            && byte < 0x5f
            && matches!(h[j - 3], b'f' | b'F')
            && matches!(h[j - 4], b'f' | b'F')
        {
            byte += 0x20;
        }
        out.push(byte);
        let skip_space = h.get(j).is_some_and(|&b| is_space(b));
        Some(i + 1 + j + usize::from(skip_space))
    })
}

/// Normalises a command line the way a shell would read it loosely: drops `\ " ' ^`, turns
/// runs of spaces, tabs, newlines, `,` and `;` into one space, removes a space before `/` or
/// `(`, and lowercases.
fn cmd_line(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut space = false;
    for &b in input {
        match b {
            b'"' | b'\'' | b'\\' | b'^' => {}
            b' ' | b',' | b';' | b'\t' | b'\r' | b'\n' => {
                if !space {
                    out.push(b' ');
                    space = true;
                }
            }
            b'/' | b'(' => {
                if space {
                    out.pop();
                }
                space = false;
                out.push(b);
            }
            _ => {
                out.push(b.to_ascii_lowercase());
                space = false;
            }
        }
    }
    (out != input).then_some(out)
}

/// Turns each run of whitespace into one space.
fn compress_whitespace(input: &[u8]) -> Option<Vec<u8>> {
    let needs = input.windows(2).any(|w| is_space(w[0]) && is_space(w[1]))
        || input.iter().any(|&b| b != b' ' && is_space(b));
    if !needs {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut in_space = false;
    for &b in input {
        if is_space(b) {
            if !in_space {
                out.push(b' ');
            }
            in_space = true;
        } else {
            out.push(b);
            in_space = false;
        }
    }
    Some(out)
}

/// Removes `/* */` and `<!-- -->` comments and cuts the value at `--` or `#`. As in
/// ModSecurity, the character right after a closing marker is kept unexamined (a NUL when the
/// value ends there), and an unterminated comment leaves one space.
fn remove_comments(input: &[u8]) -> Option<Vec<u8>> {
    if !input
        .iter()
        .any(|&b| matches!(b, b'/' | b'<' | b'-' | b'#'))
    {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut in_comment = false;
    let mut i = 0;
    let at = |i: usize, s: &[u8]| input[i..].starts_with(s);
    while i < input.len() {
        if !in_comment {
            if at(i, b"/*") {
                in_comment = true;
                i += 2;
            } else if at(i, b"<!--") {
                in_comment = true;
                i += 4;
            } else if at(i, b"--") || input[i] == b'#' {
                break;
            } else {
                out.push(input[i]);
                i += 1;
            }
        } else {
            let close = if at(i, b"*/") {
                2
            } else if at(i, b"-->") {
                3
            } else {
                0
            };
            if close == 0 {
                i += 1;
                continue;
            }
            in_comment = false;
            i += close;
            out.push(input.get(i).copied().unwrap_or(0));
            i += 1;
        }
    }
    if in_comment {
        out.push(b' ');
    }
    Some(out)
}

/// Removes the comment markers themselves (`/*`, `*/`, `<!--`, `-->`, `--`, `#`), keeping
/// what they enclosed.
fn remove_comment_chars(input: &[u8]) -> Option<Vec<u8>> {
    if !input
        .iter()
        .any(|&b| matches!(b, b'/' | b'*' | b'<' | b'-' | b'#'))
    {
        return None;
    }
    const MARKERS: &[&[u8]] = &[b"/*", b"*/", b"<!--", b"-->", b"--", b"#"];
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match MARKERS.iter().find(|m| input[i..].starts_with(m)) {
            Some(m) => i += m.len(),
            None => {
                out.push(input[i]);
                i += 1;
            }
        }
    }
    (out.len() != input.len()).then_some(out)
}

/// Replaces each `/* ... */` comment, terminated or not, with one space.
fn replace_comments(input: &[u8]) -> Option<Vec<u8>> {
    if !input.windows(2).any(|w| w == b"/*") {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut in_comment = false;
    let mut i = 0;
    while i < input.len() {
        if !in_comment {
            if input[i..].starts_with(b"/*") {
                in_comment = true;
                i += 2;
            } else {
                out.push(input[i]);
                i += 1;
            }
        } else if input[i..].starts_with(b"*/") {
            in_comment = false;
            out.push(b' ');
            i += 2;
        } else {
            i += 1;
        }
    }
    if in_comment {
        out.push(b' ');
    }
    Some(out)
}

/// Resolves `.` and `..` segments and collapses repeated slashes. A relative path keeps the
/// `..` segments that climb above its start; an absolute one never climbs above `/`. A trailing
/// slash survives only if the input had one. With `win`, backslashes count as slashes and are
/// rewritten as the scan reaches them, exactly as ModSecurity does.
fn normalize_path(input: &[u8], win: bool) -> Option<Vec<u8>> {
    if input.is_empty() {
        return None;
    }
    let is_sep = |b: u8| b == b'/' || (win && b == b'\\');
    // The output is written over the front of the same buffer, never ahead of the reader.
    let mut buf = input.to_vec();
    let end = buf.len() - 1;
    let relative = !is_sep(buf[0]);
    let trailing = is_sep(buf[end]);
    let (mut s, mut d) = (0usize, 0usize);
    let mut hit_root = false;
    let mut done = false;
    while !done && s <= end && d <= end {
        if win {
            for k in [s, s + 1] {
                if k <= end && buf[k] == b'\\' {
                    buf[k] = b'/';
                }
            }
        }
        // Only the end of a segment (or of the input) is normalised.
        let at_segment_end = if s == end {
            done = true;
            true
        } else {
            buf[s + 1] == b'/'
        };
        if at_segment_end && !(s != end && buf[s] == b'/') {
            if buf[s] == b'.' {
                if d > 0 && buf[d - 1] == b'.' {
                    if relative && (hit_root || d <= 2) {
                        // Nothing left to climb out of: keep the `..`.
                        hit_root = true;
                    } else {
                        // Drop the `..` and the segment before it.
                        let mut nd = d.saturating_sub(3);
                        while nd > 0 && buf[nd] != b'/' {
                            nd -= 1;
                        }
                        if nd == 0 {
                            hit_root = true;
                            if !relative && s == end {
                                nd = 1;
                            }
                        }
                        d = nd;
                        if done {
                            break;
                        }
                        s += 1;
                    }
                } else if d == 0 || buf[d - 1] == b'/' {
                    // A `.` segment.
                    if done {
                        break;
                    }
                    d = d.saturating_sub(1);
                    s += 1;
                }
            } else if d > 0 {
                hit_root = false;
            }
        }
        if buf[s] == b'/' {
            while s < end && is_sep(buf[s + 1]) {
                s += 1;
            }
            if relative && d == 0 {
                s += 1;
                continue;
            }
        }
        buf[d] = buf[s];
        d += 1;
        s += 1;
    }
    if !trailing && d > 0 && buf[d - 1] == b'/' {
        d -= 1;
    }
    buf.truncate(d);
    (buf != input).then_some(buf)
}

/// Rewrites each multi-byte UTF-8 sequence as `%uHHHH` (lowercase hex, at least four digits).
/// Malformed sequences follow ModSecurity: a lead byte without its continuation bytes is
/// dropped, stray bytes are copied, and overlong or surrogate sequences are followed by their
/// lead byte. NUL bytes are dropped, except a last one.
fn utf8_to_unicode(input: &[u8]) -> Option<Vec<u8>> {
    if !input.iter().any(|&b| b >= 0x80 || b == 0) {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() * 2);
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        let cont = |k: usize| input.get(i + k).is_some_and(|&b| b & 0xc0 == 0x80);
        let bits = |k: usize| u32::from(input[i + k] & 0x3f);
        let (len, cp) = if c & 0x80 == 0 {
            if c != 0 || i + 1 == input.len() {
                out.push(c);
            }
            (1, None)
        } else if c & 0xe0 == 0xc0 {
            if cont(1) {
                (2, Some((u32::from(c & 0x1f) << 6) | bits(1)))
            } else {
                (1, None)
            }
        } else if c & 0xf0 == 0xe0 {
            if cont(1) && cont(2) {
                (
                    3,
                    Some((u32::from(c & 0x0f) << 12) | (bits(1) << 6) | bits(2)),
                )
            } else {
                (1, None)
            }
        } else if c & 0xf8 == 0xf0 {
            if c >= 0xf5 {
                out.push(c);
            }
            if cont(1) && cont(2) && cont(3) {
                let cp = (u32::from(c & 0x07) << 18) | (bits(1) << 12) | (bits(2) << 6) | bits(3);
                (4, Some(cp))
            } else {
                (1, None)
            }
        } else {
            out.push(c);
            (1, None)
        };
        if let Some(cp) = cp {
            // Infallible: writing to a Vec cannot fail.
            let _ = write!(out, "%u{cp:04x}");
            let overlong = match len {
                2 => cp < 0x80,
                3 => cp < 0x800,
                _ => cp < 0x10000,
            };
            if (0xd800..=0xdfff).contains(&cp) {
                out.push(c);
            }
            if overlong {
                out.push(c);
            }
        }
        i += len;
    }
    Some(out)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_value(b: u8) -> Option<u32> {
    match b {
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

fn base64_encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (k, &b)| n | u32::from(b) << (16 - 8 * k));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * k)) & 0x3f) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

/// Strict decoding: any character outside the alphabet (spaces and line breaks between lines
/// aside), misplaced padding or a digit count no encoder produces makes the whole value decode
/// to nothing, and an unpadded last group is dropped. The value ends at its first NUL.
fn base64_decode_strict(input: &[u8]) -> Vec<u8> {
    let input = &input[..memchr_byte(0, input).unwrap_or(input.len())];
    let mut symbols: Vec<Option<u32>> = Vec::with_capacity(input.len());
    let mut pads = 0;
    let mut i = 0;
    while i < input.len() {
        let mut spaces = 0;
        while i < input.len() && input[i] == b' ' {
            i += 1;
            spaces += 1;
        }
        if i == input.len() {
            break;
        }
        if input[i] == b'\n' || input[i..].starts_with(b"\r\n") {
            i += if input[i] == b'\n' { 1 } else { 2 };
            continue;
        }
        if spaces > 0 {
            return Vec::new();
        }
        let b = input[i];
        if b == b'=' {
            pads += 1;
            if pads > 2 {
                return Vec::new();
            }
            symbols.push(None);
        } else {
            match b64_value(b) {
                Some(v) if pads == 0 => symbols.push(Some(v)),
                _ => return Vec::new(),
            }
        }
        i += 1;
    }
    // Digits must come in groups of four, or of two or three before padding.
    let digits = symbols.len() - pads;
    if digits % 4 == 1 || (pads != 0 && !symbols.len().is_multiple_of(4)) {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(symbols.len() / 4 * 3);
    for group in symbols.chunks_exact(4) {
        let n = group.iter().fold(0u32, |n, s| (n << 6) | s.unwrap_or(0));
        let real = group.iter().filter(|s| s.is_some()).count();
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..real.saturating_sub(1)]);
    }
    out
}

/// Forgiving decoding: characters outside the alphabet and `=` are skipped. As in
/// ModSecurity, a lone symbol before padding (or, by a quirk of its table, before a final `9`)
/// makes the value decode to nothing.
fn base64_decode_forgiving(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 2);
    let mut acc = 0u32;
    let mut bits = 0;
    let mut symbols = 0usize;
    for (i, &b) in input.iter().enumerate() {
        if b == b'=' {
            if input.get(i + 1) != Some(&b'=') && symbols % 4 == 1 {
                return Vec::new();
            }
            continue;
        }
        let Some(v) = b64_value(b) else { continue };
        symbols += 1;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if input.last() == Some(&b'9') && symbols % 4 == 1 {
        return Vec::new();
    }
    out
}

fn md5(input: &[u8]) -> Vec<u8> {
    use md5::Digest;
    md5::Md5::digest(input).to_vec()
}

fn sha1(input: &[u8]) -> Vec<u8> {
    use sha1::Digest;
    sha1::Sha1::digest(input).to_vec()
}

#[cfg(test)]
mod tests {
    //! Expected values follow ModSecurity's documented behaviour and its published
    //! transformation test cases.

    use std::borrow::Cow;

    use super::Transform;

    fn apply(name: &str, input: &[u8]) -> Vec<u8> {
        let t = Transform::parse(name).unwrap_or_else(|| panic!("t:{name} unknown"));
        t.apply(Cow::Borrowed(input)).into_owned()
    }

    fn check(name: &str, cases: &[(&[u8], &[u8])]) {
        for (input, want) in cases {
            let got = apply(name, input);
            assert_eq!(
                got.as_slice(),
                *want,
                "t:{name} on {:?}: got {:?}, want {:?}",
                String::from_utf8_lossy(input),
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(want)
            );
        }
    }

    #[test]
    fn names_parse_in_any_case_and_unknown_names_do_not() {
        assert_eq!(
            Transform::parse("urlDecodeUni"),
            Some(Transform::UrlDecodeUni)
        );
        assert_eq!(
            Transform::parse("base64decode"),
            Some(Transform::Base64Decode)
        );
        assert_eq!(
            Transform::parse("normalisePath"),
            Some(Transform::NormalizePath)
        );
        assert_eq!(
            Transform::parse("normalizePathWin"),
            Some(Transform::NormalizePathWin)
        );
        assert_eq!(Transform::parse("none"), None);
        assert_eq!(Transform::parse("urlDecodeUnicode"), None);
        assert_eq!(Transform::UrlDecodeUni.name(), "urlDecodeUni");
    }

    #[test]
    fn unchanged_input_is_borrowed_not_copied() {
        for name in [
            "lowercase",
            "urlDecodeUni",
            "htmlEntityDecode",
            "jsDecode",
            "cssDecode",
            "cmdLine",
            "removeNulls",
            "removeWhitespace",
            "compressWhitespace",
            "normalizePath",
            "normalizePathWin",
            "utf8toUnicode",
            "replaceComments",
            "trim",
            "escapeSeqDecode",
            "sqlHexDecode",
        ] {
            let t = Transform::parse(name).unwrap();
            assert!(
                matches!(t.apply(Cow::Borrowed(b"plain/text")), Cow::Borrowed(_)),
                "t:{name} copied unchanged input"
            );
        }
    }

    #[test]
    fn case_changes_touch_ascii_letters_only() {
        check(
            "lowercase",
            &[(b"TeSt CASE\xc9", b"test case\xc9"), (b"", b"")],
        );
        check("uppercase", &[(b"TeSt case\xe9", b"TEST CASE\xe9")]);
    }

    #[test]
    fn url_decode_leaves_invalid_escapes_alone() {
        check(
            "urlDecode",
            &[
                (b"a%20b+c", b"a b c"),
                (b"%41%42%4a%4A", b"ABJJ"),
                (b"%zz%4", b"%zz%4"),
                (b"%", b"%"),
                (b"100%", b"100%"),
                (b"%41%", b"A%"),
                (b"%u0041", b"%u0041"),
                (b"%00", b"\0"),
            ],
        );
    }

    #[test]
    fn url_decode_uni_takes_the_low_byte_and_folds_full_width_ascii() {
        check(
            "urlDecodeUni",
            &[
                (b"%u0041%U0042", b"AB"),
                (b"%uff41", b"a"),
                (b"%uFF0E%uff0e/", b"../"),
                (b"%u1234", b"\x34"),
                (b"%u12", b"%u12"),
                (b"%u004", b"%u004"),
                (b"%uzzzz", b"%uzzzz"),
                (b"%u", b"%u"),
                (b"%2e%2E+x", b".. x"),
                (b"%%41", b"%A"),
            ],
        );
    }

    #[test]
    fn html_entities_decode_with_or_without_semicolon() {
        check(
            "htmlEntityDecode",
            &[
                (b"&lt;script&gt;", b"<script>"),
                (b"&LT&quot&amp&gt;&nbsp;", b"<\"&>\xa0"),
                (b"&#x41;&#X42&#67;&#68", b"ABCD"),
                (b"&foo;&;&#;&#x;&", b"&foo;&;&#;&#x;&"),
                (b"&#x24;&#00000000000000000000123;", b"${"),
                (b"&#x4142;", b"A42;"),
                (b"&#1000;", b"d0;"),
                (b"&ltscript>", b"<script>"),
                (b"&#x0&#0", b"\0\0"),
            ],
        );
    }

    #[test]
    fn js_decode_handles_every_escape_form() {
        check(
            "jsDecode",
            &[
                (b"\\x41\\u0042\\103", b"ABC"),
                (b"\\uff41\\uFF0E", b"a."),
                (b"\\a\\b\\f\\n\\r\\t\\v", b"\x07\x08\x0c\n\r\t\x0b"),
                (b"\\'\\\"\\\\\\q", b"'\"\\q"),
                (b"\\400", b" 0"),
                (b"\\08", b"\x008"),
                (b"\\x4", b"x4"),
                (b"\\u004", b"u004"),
                (b"a\\", b"a\\"),
            ],
        );
    }

    #[test]
    fn css_decode_uses_the_last_two_hex_digits() {
        check(
            "cssDecode",
            &[
                (b"\\41", b"A"),
                (b"\\41 x", b"Ax"),
                (b"\\00041\\0000041", b"A\x041"),
                (b"\\ff21", b"A"),
                (b"\\1234", b"4"),
                (b"\\a", b"\x0a"),
                (b"ja\\vascr\\ipt", b"javascript"),
                (b"a\\\nb", b"ab"),
                (b"a\\", b"a"),
            ],
        );
    }

    #[test]
    fn cmd_line_normalises_shell_obfuscation() {
        check(
            "cmdLine",
            &[
                (b"C^OMMAND /C DIR", b"command/c dir"),
                (b"\"command\" /c DiR", b"command/c dir"),
                (b"cmd,/c DiR", b"cmd/c dir"),
                (b"w\"h'o\\a^mi", b"whoami"),
                (b"a;b\t\r\nc", b"a b c"),
                (b"echo  (x)", b"echo(x)"),
                (b"test", b"test"),
            ],
        );
    }

    #[test]
    fn whitespace_transformations() {
        check(
            "compressWhitespace",
            &[
                (b"a \t\n\x0b\x0c\r b", b"a b"),
                (b"a\xa0b", b"a\xa0b"),
                (b" x ", b" x "),
            ],
        );
        check("removeWhitespace", &[(b" a b\tc\xa0d\xc2e\n", b"abcde")]);
        check("trim", &[(b" \t a b \n\x0b", b"a b"), (b"   ", b"")]);
        check("trimLeft", &[(b" \t a b \n", b"a b \n")]);
        check("trimRight", &[(b" \t a b \n", b" \t a b")]);
    }

    #[test]
    fn nul_transformations() {
        check("removeNulls", &[(b"\0Test\0Case\0", b"TestCase")]);
        check("replaceNulls", &[(b"\0Test\0\0Case", b" Test  Case")]);
    }

    #[test]
    fn comment_transformations() {
        check(
            "removeComments",
            &[
                (b"a/*x*/b", b"ab"),
                (b"a<!--x-->b", b"ab"),
                (b"1 OR 1=1-- x", b"1 OR 1=1"),
                (b"a#b", b"a"),
                (b"a/*x", b"a "),
                (b"/* TestCase */", b"\0"),
            ],
        );
        check(
            "removeCommentsChar",
            &[(b"a/*b*/c--d#e<!--f-->g", b"abcdefg"), (b"---->", b"")],
        );
        check(
            "replaceComments",
            &[
                (b"a/*b*/c", b"a c"),
                (b"a/*b", b"a "),
                (b"a*/b", b"a*/b"),
                (b"/*/", b" "),
            ],
        );
    }

    #[test]
    fn normalize_path_resolves_dot_segments() {
        check(
            "normalizePath",
            &[
                (b"/foo/bar/baz", b"/foo/bar/baz"),
                (b".", b""),
                (b"./..", b".."),
                (b"../.", b".."),
                (b"../../", b"../../"),
                (b"/dir/foo//bar", b"/dir/foo/bar"),
                (b"dir/foo//bar/", b"dir/foo/bar/"),
                (b"dir/../foo", b"foo"),
                (b"a/../../b", b"../b"),
                (b"dir/./.././../../foo/bar/..", b"../../foo"),
                (b"dir//.//..//.//..//..//foo//bar//", b"../../foo/bar/"),
                (b"/dir/./subdir/../subsubdir/../subsubsubdir/../", b"/dir/"),
                (
                    b"/./.././../../../../../../../\0/../etc/./passwd",
                    b"/etc/passwd",
                ),
                (b"/a/b/../../../../etc/passwd", b"/etc/passwd"),
                (b"a\\..\\b", b"a\\..\\b"),
            ],
        );
        check(
            "normalizePathWin",
            &[
                (b"\\foo\\bar\\baz", b"/foo/bar/baz"),
                (b"dir\\..\\..\\foo", b"../foo"),
                (b"C:\\Windows\\..\\boot.ini", b"C:/boot.ini"),
                (
                    b"\\dir\\.\\subdir\\..\\subsubdir\\..\\subsubsubdir\\..\\",
                    b"/dir/",
                ),
                (
                    b"dir\\\\.\\\\..\\\\.\\\\..\\\\..\\\\foo\\\\bar",
                    b"../../foo/bar",
                ),
            ],
        );
    }

    #[test]
    fn utf8_to_unicode_escapes_multibyte_sequences() {
        check(
            "utf8toUnicode",
            &[
                ("é".as_bytes(), b"%u00e9"),
                ("€x".as_bytes(), b"%u20acx"),
                ("😀".as_bytes(), b"%u1f600"),
                (b"\xc3(", b"("),
                (b"\xc0\xaf", b"%u002f\xc0"),
                (b"a\xffb", b"a\xffb"),
                (b"plain", b"plain"),
                (b"a\0b\0", b"ab\0"),
            ],
        );
    }

    #[test]
    fn base64_decoding_strict_and_forgiving() {
        check(
            "base64Decode",
            &[
                (b"VGVzdENhc2U=", b"TestCase"),
                (b"VGVzdENhc2Ux", b"TestCase1"),
                (b"VGVzdENhc2UxMg==", b"TestCase12"),
                (b"VGVzdABDYXNl", b"Test\0Case"),
                (b"VGVzdENhc2U=\0VGVzdENhc2U=", b"TestCase"),
                (b"VGV$zdENhc2U=", b""),
                (b"VGVzdENhc2U===", b""),
                (b"QUJDR", b""),
                (b"QUJDRA=", b""),
                (b"QUJDRA", b"ABC"),
                (b"QUJD\r\nRA==", b"ABCD"),
            ],
        );
        check(
            "base64DecodeExt",
            &[
                (b"VGVzdENhc2U=", b"TestCase"),
                (
                    b"P.HNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
                    b"<script>alert(1)</script>",
                ),
                (b"VGV$zd ENh\nc2U", b"TestCase"),
                (b"Q=", b""),
            ],
        );
        check(
            "base64Encode",
            &[(b"TestCase", b"VGVzdENhc2U="), (b"Te", b"VGU="), (b"", b"")],
        );
    }

    #[test]
    fn hex_transformations() {
        check(
            "hexDecode",
            &[(b"414243", b"ABC"), (b"41424", b"AB"), (b"", b"")],
        );
        check("hexEncode", &[(b"AB\xff\0", b"4142ff00")]);
        check(
            "sqlHexDecode",
            &[
                (b"SELECT 0x414243 x", b"SELECT ABC x"),
                (b"0x4", b"0x4"),
                (b"0X41g", b"Ag"),
                (b"0x4142a", b"ABa"),
            ],
        );
    }

    #[test]
    fn escape_seq_decode_follows_ansi_c() {
        check(
            "escapeSeqDecode",
            &[
                (b"\\a\\x41\\101\\\\\\?", b"\x07AA\\?"),
                (b"\\q\\xZ", b"qxZ"),
                (b"\\777", b"\xff"),
                (b"a\\", b"a\\"),
            ],
        );
    }

    #[test]
    fn url_encode_keeps_only_alphanumerics_and_star() {
        check(
            "urlEncode",
            &[(b"a b&c*~", b"a+b%26c*%7e"), (b"abc", b"abc")],
        );
    }

    #[test]
    fn digests_and_length() {
        check("length", &[(b"abc", b"3"), (b"", b"0")]);
        assert_eq!(
            apply("hexEncode", &apply("md5", b"")),
            b"d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(
            apply("hexEncode", &apply("sha1", b"abc")),
            b"a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    #[test]
    fn parity_transformations() {
        check("parityZero7bit", &[(b"\xc1A", b"AA")]);
        check("parityEven7bit", &[(b"AC", b"A\xc3")]);
        check("parityOdd7bit", &[(b"AC", b"\xc1C")]);
    }
}
