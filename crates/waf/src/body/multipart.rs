//! `multipart/form-data` bodies, with the strictness flags rules use to refuse
//! ambiguous encodings (which different back ends would parse differently).

use super::Pair;

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

/// Parses a multipart body. An error means the body could not be read at all.
pub(crate) fn parse(content_type: &str, body: &[u8]) -> Result<Multipart, String> {
    let mut m = Multipart::default();
    let boundary = boundary(content_type, &mut m.flags)?;
    let delimiter = format!("--{boundary}").into_bytes();
    let lines = split_lines(body, &mut m.flags);
    let mut i = 0;
    // Preamble.
    while i < lines.len() && !lines[i].starts_with(&delimiter) {
        if !lines[i].is_empty() {
            m.flags.data_before = true;
        }
        i += 1;
    }
    if i == lines.len() {
        return Err("multipart body without a boundary".into());
    }
    let mut finished = false;
    while i < lines.len() {
        let line = lines[i];
        let tail = &line[delimiter.len()..];
        if tail.starts_with(b"--") {
            finished = true;
            i += 1;
            break;
        }
        if !tail.iter().all(|b| b.is_ascii_whitespace()) {
            m.flags.unmatched_boundary = true;
        }
        i += 1;
        // Headers.
        let mut headers: Vec<Vec<u8>> = Vec::new();
        while i < lines.len() && !lines[i].is_empty() {
            let l = lines[i];
            if l[0] == b' ' || l[0] == b'\t' {
                m.flags.header_folding = true;
                match headers.last_mut() {
                    Some(h) => h.extend_from_slice(l),
                    None => m.flags.invalid_header_folding = true,
                }
            } else {
                headers.push(l.to_vec());
            }
            i += 1;
        }
        if i >= lines.len() {
            m.flags.invalid_part = true;
            break;
        }
        i += 1;
        // Content until the next delimiter line.
        let start = i;
        while i < lines.len() && !lines[i].starts_with(&delimiter) {
            i += 1;
        }
        let content = join(&lines[start..i]);
        add_part(&mut m, headers, content);
    }
    if !finished {
        m.flags.invalid_part = true;
    }
    if lines[i.min(lines.len())..].iter().any(|l| !l.is_empty()) {
        m.flags.data_after = true;
    }
    Ok(m)
}

fn add_part(m: &mut Multipart, headers: Vec<Vec<u8>>, content: Vec<u8>) {
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
    let Some(name) = name else {
        m.flags.invalid_part = true;
        return;
    };
    for h in headers {
        m.part_headers.push((name.clone(), h));
    }
    match filename {
        Some(filename) => m.files.push(FilePart {
            name,
            filename: filename.into_bytes(),
            size: content.len(),
        }),
        None => m.args.push((name, content)),
    }
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

/// Splits on CRLF, noting lines that end in a bare LF.
fn split_lines<'a>(body: &'a [u8], flags: &mut Flags) -> Vec<&'a [u8]> {
    let mut lines = Vec::new();
    let mut crlf = false;
    let mut lf = false;
    let mut start = 0;
    for (i, &b) in body.iter().enumerate() {
        if b == b'\n' {
            if i > start && body[i - 1] == b'\r' {
                crlf = true;
                lines.push(&body[start..i - 1]);
            } else {
                lf = true;
                lines.push(&body[start..i]);
            }
            start = i + 1;
        }
    }
    if start < body.len() {
        lines.push(&body[start..]);
    }
    if lf {
        flags.lf_line = true;
        flags.crlf_lf_lines = crlf;
    }
    lines
}

fn join(lines: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(l);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=XX";

    #[test]
    fn fields_and_files() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nline1\r\nline2\r\n--XX\r\n\
Content-Disposition: form-data; name=\"f\"; filename=\"x.php\"\r\nContent-Type: text/plain\r\n\r\n<?php\r\n--XX--\r\n";
        let m = parse(CT, body).unwrap();
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
        )
        .unwrap();
        assert!(m.flags.boundary_quoted && m.flags.data_before && m.flags.lf_line);
        let m = parse(
            CT,
            b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n",
        )
        .unwrap();
        assert!(m.flags.invalid_part);
    }
}
