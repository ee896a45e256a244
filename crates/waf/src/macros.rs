//! `%{...}` macros in action arguments, parsed once at load time.

use crate::variable::Var;

/// A text with macros, split into literal and variable parts.
#[derive(Debug, Clone, Default)]
pub(crate) struct MacroText {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
pub(crate) enum Part {
    Literal(String),
    /// A variable with an optional member name (`%{tx.score}`, `%{MATCHED_VAR}`).
    Var(Var, Option<String>),
}

impl MacroText {
    /// Parses `text`; an unknown variable inside `%{}` is an error.
    pub(crate) fn parse(text: &str) -> Result<MacroText, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("%{") {
            let Some(len) = rest[start + 2..].find('}') else {
                break;
            };
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let inner = &rest[start + 2..start + 2 + len];
            let (name, key) = match inner.split_once('.') {
                Some((name, key)) => (name, Some(key.to_string())),
                None => (inner, None),
            };
            let var = Var::from_name(name)
                .ok_or_else(|| format!("unknown variable `{name}` in macro `%{{{inner}}}`"))?;
            parts.push(Part::Var(var, key));
            rest = &rest[start + 3 + len..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(MacroText { parts })
    }

    /// Whether the text is a constant (so callers can skip expansion).
    pub(crate) fn literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Literal(s)] => Some(s),
            _ => None,
        }
    }

    pub(crate) fn parts(&self) -> &[Part] {
        &self.parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_literals_and_variables() {
        let m = MacroText::parse("score %{tx.a_b} for %{MATCHED_VAR}.").unwrap();
        assert_eq!(m.parts().len(), 5);
        assert!(matches!(&m.parts()[1], Part::Var(Var::Tx, Some(k)) if k == "a_b"));
        assert!(matches!(&m.parts()[3], Part::Var(Var::MatchedVar, None)));
        assert_eq!(MacroText::parse("plain").unwrap().literal(), Some("plain"));
        assert!(MacroText::parse("%{nope.x}").is_err());
    }
}
