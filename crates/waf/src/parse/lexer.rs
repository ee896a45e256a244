//! Splits SecLang text into directives: comments, line continuations and the
//! configuration quoting rules (only `\"` is unescaped inside a quoted argument; every
//! other backslash stays for the operator or action parser).

/// One directive with its raw arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Directive {
    pub name: String,
    pub args: Vec<String>,
    /// 1-based line where the directive starts.
    pub line: usize,
}

/// Lexes a whole file. The error carries the line number of the bad directive.
pub(crate) fn directives(text: &str) -> Result<Vec<Directive>, (usize, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut start = 0;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if pending.is_empty() {
            start = line_no;
            let trimmed = raw.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
        }
        if let Some(head) = raw.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(raw);
        let directive = lex_line(&pending).map_err(|message| (start, message))?;
        pending.clear();
        if let Some(directive) = directive {
            out.push(Directive {
                line: start,
                ..directive
            });
        }
    }
    if !pending.is_empty() {
        return Err((start, "the file ends inside a continued line".into()));
    }
    Ok(out)
}

fn lex_line(line: &str) -> Result<Option<Directive>, String> {
    let mut rest = line.trim();
    if rest.is_empty() || rest.starts_with('#') {
        return Ok(None);
    }
    let mut args = Vec::new();
    while !rest.is_empty() {
        let (arg, tail) = next_arg(rest)?;
        args.push(arg);
        rest = tail.trim_start();
    }
    let name = args.remove(0);
    Ok(Some(Directive {
        name,
        args,
        line: 0,
    }))
}

fn next_arg(s: &str) -> Result<(String, &str), String> {
    if let Some(body) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, '"')) => out.push('"'),
                    Some((_, other)) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => out.push('\\'),
                },
                '"' => return Ok((out, &body[i + 1..])),
                _ => out.push(c),
            }
        }
        Err("a quoted argument is not closed".into())
    } else {
        let end = s.find(char::is_whitespace).unwrap_or(s.len());
        Ok((s[..end].to_string(), &s[end..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_comments_and_quotes() {
        let text = "# comment\nSecRule ARGS \"@rx a\\\"b\\d\" \\\n    \"id:1,\\\n    pass\"\n\n  SecMarker END\n";
        let d = directives(text).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].name, "SecRule");
        assert_eq!(d[0].line, 2);
        assert_eq!(d[0].args, vec!["ARGS", "@rx a\"b\\d", "id:1,    pass"]);
        assert_eq!(d[1].args, vec!["END"]);
        assert_eq!(d[1].line, 6);
    }

    #[test]
    fn unclosed_quote_names_the_line() {
        let err = directives("SecMarker A\nSecRule ARGS \"@rx a").unwrap_err();
        assert_eq!(err.0, 2);
    }
}
