//! The template grammar of google/api/http.proto:
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = IDENT { "." IDENT } ;
//! Verb     = ":" LITERAL ;
//! ```

use std::fmt;

/// One path segment of a template, with variables flattened into the segments they match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Segment {
    Literal(String),
    /// `*`: exactly one non-empty segment.
    Single,
    /// `**`: zero or more segments; only allowed last.
    Multi,
}

/// A `{field.path=...}` binding: which segments it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Variable {
    /// Field names from the request message down to the bound field.
    pub field_path: Vec<String>,
    /// Index of its first segment.
    pub start: usize,
    /// One past its last segment; `None` when it ends with `**` and so takes the rest.
    pub end: Option<usize>,
}

impl Variable {
    /// A variable of exactly one segment decodes `%2F`; a longer one keeps it, per the spec.
    pub fn is_single_segment(&self) -> bool {
        self.end == Some(self.start + 1)
    }
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pub segments: Vec<Segment>,
    pub variables: Vec<Variable>,
    pub verb: Option<String>,
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError(pub String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(message: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(message.into()))
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let Some(rest) = text.strip_prefix('/') else {
            return err("a path template must start with `/`");
        };
        let (body, verb) = split_verb(rest)?;
        let mut template = Template {
            segments: Vec::new(),
            variables: Vec::new(),
            verb,
        };
        for part in split_top_level(body) {
            template.push_segment(part)?;
        }
        if let Some(pos) = template.segments.iter().position(|s| *s == Segment::Multi)
            && pos + 1 != template.segments.len()
        {
            return err("`**` must be the last segment of a path template");
        }
        Ok(template)
    }

    fn push_segment(&mut self, part: &str) -> Result<(), TemplateError> {
        if let Some(inner) = part.strip_prefix('{') {
            let Some(inner) = inner.strip_suffix('}') else {
                return err(format!("unclosed variable `{part}`"));
            };
            let (path, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
            let field_path = parse_field_path(path)?;
            if self.variables.iter().any(|v| v.field_path == field_path) {
                return err(format!("the variable `{path}` appears twice"));
            }
            let start = self.segments.len();
            if pattern.is_empty() {
                return err(format!("the variable `{path}` has an empty pattern"));
            }
            for sub in pattern.split('/') {
                if sub.starts_with('{') {
                    return err(format!("the variable `{path}` contains another variable"));
                }
                self.segments.push(plain_segment(sub)?);
            }
            let end = if self.segments.last() == Some(&Segment::Multi) {
                None
            } else {
                Some(self.segments.len())
            };
            self.variables.push(Variable {
                field_path,
                start,
                end,
            });
            Ok(())
        } else {
            let segment = plain_segment(part)?;
            self.segments.push(segment);
            Ok(())
        }
    }
}

fn plain_segment(text: &str) -> Result<Segment, TemplateError> {
    match text {
        "" => err("a path template has an empty segment"),
        "*" => Ok(Segment::Single),
        "**" => Ok(Segment::Multi),
        _ if text.contains(['{', '}', '*', ':']) => {
            err(format!("`{text}` is not a valid literal segment"))
        }
        _ => Ok(Segment::Literal(text.to_owned())),
    }
}

fn parse_field_path(text: &str) -> Result<Vec<String>, TemplateError> {
    let parts: Vec<String> = text.split('.').map(str::to_owned).collect();
    let valid = |ident: &String| {
        let mut chars = ident.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if parts.iter().all(valid) {
        Ok(parts)
    } else {
        err(format!("`{text}` is not a field path"))
    }
}

/// Splits off `:verb` when the last `:` outside braces comes after the last `/`.
fn split_verb(rest: &str) -> Result<(&str, Option<String>), TemplateError> {
    let mut depth = 0i32;
    let mut last_slash = None;
    let mut last_colon = None;
    for (i, c) in rest.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            '/' if depth == 0 => last_slash = Some(i),
            ':' if depth == 0 => last_colon = Some(i),
            _ => {}
        }
        if depth < 0 {
            return err("unbalanced `}` in path template");
        }
    }
    if depth != 0 {
        return err("unbalanced `{` in path template");
    }
    match last_colon {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            let verb = &rest[colon + 1..];
            if verb.is_empty() || verb.contains(['*', '{', '}']) {
                return err(format!("`{verb}` is not a valid verb"));
            }
            Ok((&rest[..colon], Some(verb.to_owned())))
        }
        _ => Ok((rest, None)),
    }
}

/// Splits on `/` outside braces.
fn split_top_level(body: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            '/' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_cover_their_segments() {
        let t = Template::parse("/v1/{name=shelves/*/books/*}:move").unwrap();
        assert_eq!(t.verb.as_deref(), Some("move"));
        assert_eq!(t.segments.len(), 5);
        assert_eq!(t.variables[0].start, 1);
        assert_eq!(t.variables[0].end, Some(5));
        assert!(!t.variables[0].is_single_segment());

        let t = Template::parse("/v1/archive/{path=**}").unwrap();
        assert_eq!(t.variables[0].end, None);

        let t = Template::parse("/v1/shelves/{ref.shelf}/books/{ref.book}").unwrap();
        assert_eq!(t.variables[1].field_path, vec!["ref", "book"]);
        assert!(t.variables[1].is_single_segment());
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        for (text, problem) in [
            ("v1/x", "must start with `/`"),
            ("/v1/**/x", "`**` must be the last"),
            ("/v1/{name", "unbalanced"),
            ("/v1//x", "empty segment"),
            ("/v1/{a}/{a}", "appears twice"),
            ("/v1/{a={b}}", "contains another variable"),
            ("/v1/{9a}", "not a field path"),
            ("/v1/x:", "not a valid verb"),
        ] {
            let error = Template::parse(text).unwrap_err();
            assert!(error.0.contains(problem), "{text}: {}", error.0);
        }
    }
}
