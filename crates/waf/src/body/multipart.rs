//! `multipart/form-data` bodies, with the strictness flags rules use to refuse
//! ambiguous encodings (which different back ends would parse differently).

use super::{BodyError, Budget, Limit, Pair};

/// One uploaded file.
#[derive(Debug, Clone)]
pub(crate) struct FilePart {
    /// The form field name.
    pub name: String,
    pub filename: Vec<u8>,
    pub size: usize,
}

/// Deviations from a clean encoding; each is a MULTIPART_* variable.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Flags {
    pub boundary_quoted: bool,
    pub boundary_whitespace: bool,
    pub data_before: bool,
    pub data_after: bool,
    pub header_folding: bool,
    pub lf_line: bool,
    pub crlf_lf_lines: bool,
    pub missing_semicolon: bool,
    pub invalid_quoting: bool,
    pub invalid_part: bool,
    pub invalid_header_folding: bool,
    pub unmatched_boundary: bool,
}

impl Flags {
    /// MULTIPART_STRICT_ERROR: any deviation at all.
    pub(crate) fn strict_error(&self) -> bool {
        self.boundary_quoted
            || self.boundary_whitespace
            || self.data_before
            || self.data_after
            || self.header_folding
            || self.lf_line
            || self.missing_semicolon
            || self.invalid_quoting
            || self.invalid_part
            || self.invalid_header_folding
            || self.unmatched_boundary
    }
}

/// What a multipart body holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Multipart {
    pub args: Vec<Pair>,
    pub files: Vec<FilePart>,
    /// Every part's header lines, keyed by the part's field name.
    pub part_headers: Vec<Pair>,
    pub flags: Flags,
}

/// Extracts the boundary from a Content-Type value, noting quoting and whitespace.
fn boundary(content_type: &str, flags: &mut Flags) -> Result<String, String> {
    let lower = content_type.to_ascii_lowercase();
    let at = lower
        .find("boundary")
        .ok_or("multipart content type without boundary")?;
    let rest = content_type[at + "boundary".len()..].trim_start();
    let rest = rest
        .strip_prefix('=')
        .ok_or("multipart boundary without `=`")?;
    if rest.starts_with(char::is_whitespace) {
        flags.boundary_whitespace = true;
    }
    let rest = rest.trim_start();
    let value = if let Some(q) = rest.strip_prefix('"') {
        flags.boundary_quoted = true;
        q.split('"').next().unwrap_or("")
    } else {
        rest.split([';', ',']).next().unwrap_or("").trim_end()
    };
    if value.is_empty() {
        return Err("multipart boundary is empty".into());
    }
    Ok(value.to_string())
}

/// Part header lines a body may yield per argument it may yield: a part has one to three
/// (Content-Disposition, Content-Type, Content-Transfer-Encoding).
const PART_HEADERS_PER_ARGUMENT: usize = 4;

/// Parses a multipart body within `budget` into `m`: each field and each file is one
/// value, and part headers are bounded too. An error means the body could not be read at
/// all, or yields more than the budget allows; `m` then holds the parts read before it.
pub(crate) fn parse(
    content_type: &str,
    body: &[u8],
    budget: &mut Budget,
    m: &mut Multipart,
) -> Result<(), BodyError> {
    let boundary = boundary(content_type, &mut m.flags).map_err(BodyError::Malformed)?;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut headers_left = budget
        .values_left()
        .saturating_mul(PART_HEADERS_PER_ARGUMENT);
    let mut lines = Lines::new(body);
    // Preamble.
    loop {
        match lines.peek() {
            None => {
                return Err(BodyError::Malformed(
                    "multipart body without a boundary".into(),
                ));
            }
            Some(l) if l.starts_with(&delimiter) => break,
            Some(l) => {
                if !l.is_empty() {
                    m.flags.data_before = true;
                }
                lines.next();
            }
        }
    }
    let mut finished = false;
    // Each turn starts at a delimiter line.
    while let Some(line) = lines.next() {
        let tail = &line[delimiter.len()..];
        if tail.starts_with(b"--") {
            finished = true;
            break;
        }
        if !tail.iter().all(|b| b.is_ascii_whitespace()) {
            m.flags.unmatched_boundary = true;
        }
        // Headers.
        let mut headers: Vec<Vec<u8>> = Vec::new();
        while let Some(l) = lines.peek().filter(|l| !l.is_empty()) {
            if l[0] == b' ' || l[0] == b'\t' {
                m.flags.header_folding = true;
                match headers.last_mut() {
                    Some(h) => h.extend_from_slice(l),
                    None => m.flags.invalid_header_folding = true,
                }
            } else {
                headers_left = headers_left.checked_sub(1).ok_or(Limit::Arguments)?;
                headers.push(l.to_vec());
            }
            lines.next();
        }
        if lines.next().is_none() {
            m.flags.invalid_part = true;
            break;
        }
        add_part(m, headers, &mut lines, &delimiter, budget)?;
    }
    if !finished {
        m.flags.invalid_part = true;
    }
    while let Some(l) = lines.next() {
        if !l.is_empty() {
            m.flags.data_after = true;
        }
    }
    if lines.lf {
        m.flags.lf_line = true;
        m.flags.crlf_lf_lines = lines.crlf;
    }
    Ok(())
}

/// Reads one part's content (up to the next delimiter line) and stores the part: a field
/// as an argument, a file by its name and size (its content is only measured).
fn add_part(
    m: &mut Multipart,
    headers: Vec<Vec<u8>>,
    lines: &mut Lines<'_>,
    delimiter: &[u8],
    budget: &mut Budget,
) -> Result<(), BodyError> {
    let mut name = None;
    let mut filename = None;
    for h in &headers {
        let Some(colon) = h.iter().position(|&b| b == b':') else {
            m.flags.invalid_part = true;
            continue;
        };
        if !h[..colon].eq_ignore_ascii_case(b"content-disposition") {
            continue;
        }
        let value = String::from_utf8_lossy(&h[colon + 1..]).into_owned();
        let (n, f) = disposition(&value, &mut m.flags);
        name = n;
        filename = f;
    }
    // Content lines are joined with CRLF, whatever ended them.
    let mut content = Vec::new();
    let mut size = 0;
    let mut first = true;
    while let Some(l) = lines.peek().filter(|l| !l.starts_with(delimiter)) {
        if !first {
            size += 2;
            if filename.is_none() {
                content.extend_from_slice(b"\r\n");
            }
        }
        first = false;
        size += l.len();
        if filename.is_none() {
            content.extend_from_slice(l);
        }
        lines.next();
    }
    let Some(name) = name else {
        m.flags.invalid_part = true;
        return Ok(());
    };
    for h in headers {
        budget.take_bytes(name.len() + h.len())?;
        m.part_headers.push((name.clone(), h));
    }
    match filename {
        Some(filename) => {
            budget.take(name.len() + filename.len())?;
            m.files.push(FilePart {
                name,
                filename: filename.into_bytes(),
                size,
            });
        }
        None => {
            budget.take(name.len() + content.len())?;
            m.args.push((name, content));
        }
    }
    Ok(())
}

/// Reads `name` and `filename` from a Content-Disposition value.
fn disposition(value: &str, flags: &mut Flags) -> (Option<String>, Option<String>) {
    let mut name = None;
    let mut filename = None;
    let mut rest = value.trim();
    let Some(semi) = rest.find(';') else {
        if !rest.eq_ignore_ascii_case("form-data") {
            flags.invalid_part = true;
        }
        return (None, None);
    };
    if !rest[..semi].trim().eq_ignore_ascii_case("form-data") {
        flags.invalid_part = true;
    }
    rest = &rest[semi + 1..];
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let Some(eq) = rest.find('=') else {
            flags.invalid_part = true;
            break;
        };
        let key = rest[..eq].trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            let mut closed = false;
            while let Some((i, c)) = chars.next() {
                match c {
                    // Only `\"` and `\\` are escapes; other backslashes stay.
                    '\\' => match q[i + 1..].chars().next() {
                        Some(n @ ('"' | '\\')) => {
                            chars.next();
                            v.push(n);
                        }
                        _ => v.push('\\'),
                    },
                    '"' => {
                        end = i + 1;
                        closed = true;
                        break;
                    }
                    _ => v.push(c),
                }
            }
            if !closed {
                flags.invalid_quoting = true;
            }
            value = v;
            rest = &q[end..];
        } else {
            if rest.starts_with('\'') {
                flags.invalid_quoting = true;
            }
            let end = rest.find(';').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        match key.as_str() {
            "name" => name = Some(value),
            "filename" | "filename*" => filename = Some(value),
            _ => {}
        }
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix(';') {
            rest = r;
        } else if !rest.is_empty() {
            flags.missing_semicolon = true;
        }
    }
    (name, filename)
}

/// The lines of a body, split on CRLF or a bare LF as they are read (none are collected:
/// a body of line breaks would otherwise cost many times its size), noting which endings
/// were seen.
struct Lines<'a> {
    body: &'a [u8],
    at: usize,
    peeked: Option<Option<&'a [u8]>>,
    crlf: bool,
    lf: bool,
}

impl<'a> Lines<'a> {
    fn new(body: &'a [u8]) -> Self {
        Lines {
            body,
            at: 0,
            peeked: None,
            crlf: false,
            lf: false,
        }
    }

    fn peek(&mut self) -> Option<&'a [u8]> {
        *self.peeked.get_or_insert_with(|| {
            Self::read(self.body, &mut self.at, &mut self.crlf, &mut self.lf)
        })
    }

    fn next(&mut self) -> Option<&'a [u8]> {
        match self.peeked.take() {
            Some(line) => line,
            None => Self::read(self.body, &mut self.at, &mut self.crlf, &mut self.lf),
        }
    }

    fn read(body: &'a [u8], at: &mut usize, crlf: &mut bool, lf: &mut bool) -> Option<&'a [u8]> {
        let start = *at;
        if start >= body.len() {
            return None;
        }
        let Some(off) = memchr::memchr(b'\n', &body[start..]) else {
            *at = body.len();
            return Some(&body[start..]);
        };
        let i = start + off;
        *at = i + 1;
        if i > start && body[i - 1] == b'\r' {
            *crlf = true;
            Some(&body[start..i - 1])
        } else {
            *lf = true;
            Some(&body[start..i])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=XX";

    fn roomy() -> Budget {
        Budget::new(1000, 1 << 20, 1)
    }

    fn parse(content_type: &str, body: &[u8], budget: &mut Budget) -> Result<Multipart, BodyError> {
        let mut m = Multipart::default();
        super::parse(content_type, body, budget, &mut m).map(|()| m)
    }

    #[test]
    fn fields_and_files() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nline1\r\nline2\r\n--XX\r\n\
Content-Disposition: form-data; name=\"f\"; filename=\"x.php\"\r\nContent-Type: text/plain\r\n\r\n<?php\r\n--XX--\r\n";
        let m = parse(CT, body, &mut roomy()).unwrap();
        assert_eq!(m.args, vec![("a".to_string(), b"line1\r\nline2".to_vec())]);
        assert_eq!(m.files[0].filename, b"x.php");
        assert_eq!(m.files[0].size, 5);
        assert_eq!(m.part_headers.len(), 3);
        assert!(!m.flags.strict_error(), "{:?}", m.flags);
    }

    #[test]
    fn strict_flags() {
        let m = parse(
            "multipart/form-data; boundary=\"XX\"",
            b"junk\n--XX\nContent-Disposition: form-data; name=a\n\nv\n--XX--\n",
            &mut roomy(),
        )
        .unwrap();
        assert!(m.flags.boundary_quoted && m.flags.data_before && m.flags.lf_line);
        let m = parse(
            CT,
            b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n",
            &mut roomy(),
        )
        .unwrap();
        assert!(m.flags.invalid_part);
    }

    #[test]
    fn parts_and_their_headers_are_bounded() {
        let part = "--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n";
        let body = format!("{}--XX--\r\n", part.repeat(3));
        let mut budget = Budget::new(2, 1 << 20, 1);
        assert_eq!(
            parse(CT, body.as_bytes(), &mut budget).err(),
            Some(BodyError::Limit(Limit::Arguments))
        );
        // A long name over many header lines: each header is stored under the name, so the
        // bytes run out before the copies pile up.
        let name = "N".repeat(10_000);
        let body = format!(
            "--XX\r\nContent-Disposition: form-data; name=\"{name}\"\r\n{}\r\nv\r\n--XX--\r\n",
            "X-A: 1\r\n".repeat(3000)
        );
        let mut budget = Budget::new(1000, 1 << 20, 1);
        assert_eq!(
            parse(CT, body.as_bytes(), &mut budget).err(),
            Some(BodyError::Limit(Limit::ArgumentBytes))
        );
    }
}
