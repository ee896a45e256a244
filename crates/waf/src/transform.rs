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
    Base64Decode,
    Base64DecodeExt,
    Base64Encode,
    CmdLine,
    CompressWhitespace,
    CssDecode,
    EscapeSeqDecode,
    HexDecode,
    HexEncode,
    HtmlEntityDecode,
    JsDecode,
    Length,
    Lowercase,
    Md5,
    NormalizePath,
    NormalizePathWin,
    ParityEven7bit,
    ParityOdd7bit,
    ParityZero7bit,
    RemoveComments,
    RemoveCommentsChar,
    RemoveNulls,
    RemoveWhitespace,
    ReplaceComments,
    ReplaceNulls,
    Sha1,
    SqlHexDecode,
    Trim,
    TrimLeft,
    TrimRight,
    Uppercase,
    UrlDecode,
    UrlDecodeUni,
    UrlEncode,
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
    memchr_byte(b'&', input)?;
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'&'
            && let Some((byte, next)) = html_entity_at(input, i + 1)
        {
            out.push(byte);
            i = next;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The entity whose body starts at `k` (just after `&`), if it decodes: its byte and where
/// decoding goes on.
fn html_entity_at(input: &[u8], mut k: usize) -> Option<(u8, usize)> {
    let end = if input.get(k) == Some(&b'#') {
        k += 1;
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
        return Some((value as u8, skip_semicolon(input, k + digits)));
    } else {
        k
    };
    let word = &input[end..];
    let word = &word[..word
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count()];
    const KNOWN: &[(&[u8], u8)] = &[
        (b"quot", b'"'),
        (b"amp", b'&'),
        (b"lt", b'<'),
        (b"gt", b'>'),
        (b"nbsp", 0xa0),
    ];
    KNOWN.iter().find_map(|&(name, byte)| {
        let prefix = word.get(..name.len())?;
        prefix
            .eq_ignore_ascii_case(name)
            .then(|| (byte, skip_semicolon(input, end + name.len())))
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
    haystack.iter().position(|&b| b == needle)
}

/// JavaScript escapes: `\uHHHH` (low byte), `\xHH`, octal `\OOO` (at most one byte), the C
/// letter escapes, and `\C` to `C`.
fn js_decode(input: &[u8]) -> Option<Vec<u8>> {
    memchr_byte(b'\\', input)?;
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let rest = &input[i + 1..];
        match rest {
            [b'u', h @ ..] if h.len() >= 4 && h[..4].iter().all(u8::is_ascii_hexdigit) => {
                out.push(unicode_low_byte(&h[..4]));
                i += 6;
            }
            [b'x', h, l, ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                out.push(x2c(*h, *l));
                i += 4;
            }
            [o, ..] if is_odigit(*o) => {
                let mut n = rest.iter().take(3).take_while(|b| is_odigit(**b)).count();
                // Three digits only when the value fits a byte.
                if n == 3 && rest[0] > b'3' {
                    n = 2;
                }
                out.push(octal(&rest[..n]));
                i += 1 + n;
            }
            [c, ..] => {
                out.push(c_escape(*c).unwrap_or(*c));
                i += 2;
            }
            [] => {
                out.push(b'\\');
                i += 1;
            }
        }
    }
    Some(out)
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
    memchr_byte(b'\\', input)?;
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let rest = &input[i + 1..];
        if input[i] != b'\\' || rest.is_empty() {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let c = rest[0];
        if let Some(b) =
            c_escape(c).or_else(|| matches!(c, b'\\' | b'?' | b'\'' | b'"').then_some(c))
        {
            out.push(b);
            i += 2;
        } else if let [b'x' | b'X', h, l, ..] = rest
            && h.is_ascii_hexdigit()
            && l.is_ascii_hexdigit()
        {
            out.push(x2c(*h, *l));
            i += 4;
        } else if is_odigit(c) {
            let n = rest.iter().take(3).take_while(|b| is_odigit(**b)).count();
            out.push(octal(&rest[..n]));
            i += 1 + n;
        } else {
            out.push(c);
            i += 2;
        }
    }
    Some(out)
}

/// CSS 2.x escapes: `\` and one to six hex digits (low byte, full-width ASCII folded, one
/// following whitespace swallowed), `\` newline as a line continuation, `\C` to `C`.
fn css_decode(input: &[u8]) -> Option<Vec<u8>> {
    memchr_byte(b'\\', input)?;
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        i += 1;
        let Some(&next) = input.get(i) else {
            break;
        };
        let h = &input[i..];
        let j = h
            .iter()
            .take(6)
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        if j == 0 {
            if next != b'\n' {
                out.push(next);
            }
            i += 1;
            continue;
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
        i += j + usize::from(skip_space);
    }
    Some(out)
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
/// lead byte. NUL bytes are dropped.
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
            if c != 0 {
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
/// aside) or misplaced padding makes the whole value decode to nothing, and an unpadded last
/// group is dropped. The value ends at its first NUL.
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
