//! Scalar values of the config file: strings that may name secrets, and the typed
//! values parsed from them.
//!
//! Any string may be written `${env:NAME}` or `${file:/path}` (also inside a longer
//! string). Expansion happens while the file is parsed, so a missing variable is reported
//! at its line and column like any other error, and a value that came from a secret
//! remembers it: it serializes as `<redacted>` and its `Debug` form hides it too.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer};
use serde::ser::{Serialize, Serializer};

/// What `/config` and logs show in place of a value that came from a secret reference.
pub const REDACTED: &str = "<redacted>";

/// A string from the config, with `${env:..}` and `${file:..}` references expanded.
///
/// It has no `Display`: `to_string()` and `&*text` give the value, which is what matching and
/// verification compare against; what may be shown (logs, `/config`) is [`Text::display`].
#[derive(Clone, PartialEq, Eq)]
pub struct Text {
    value: String,
    secret: bool,
}

impl Text {
    /// Expands the secret references in `raw`.
    pub fn expand(raw: &str) -> Result<Self, String> {
        if SECRETS_REFUSED.get() && (raw.contains("${env:") || raw.contains("${file:")) {
            return Err(
                "a team file cannot read the gateway's environment or files (`${env:..}`, \
                 `${file:..}`); secrets a team's routes need are set by the root config"
                    .into(),
            );
        }
        let mut value = String::with_capacity(raw.len());
        let mut secret = false;
        let mut rest = raw;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let reference = ["env:", "file:"]
                .iter()
                .find(|kind| after.starts_with(*kind))
                .copied();
            let (Some(kind), Some(end)) = (reference, after.find('}')) else {
                value.push_str(&rest[..start + 2]);
                rest = after;
                continue;
            };
            value.push_str(&rest[..start]);
            let name = &after[kind.len()..end];
            value.push_str(&resolve(kind, name)?);
            secret = true;
            rest = &after[end + 1..];
        }
        value.push_str(rest);
        Ok(Text { value, secret })
    }

    /// A plain value, for defaults written in code.
    pub fn plain(value: &str) -> Self {
        Text {
            value: value.to_owned(),
            secret: false,
        }
    }

    /// Whether any part of the value came from a secret reference.
    pub fn is_secret(&self) -> bool {
        self.secret
    }

    /// The value, or [`REDACTED`] when it came from a secret: what may be shown or logged.
    pub fn display(&self) -> &str {
        if self.secret { REDACTED } else { &self.value }
    }
}

thread_local! {
    /// Set while a team's file is parsed: a team must not read what the gateway can.
    static SECRETS_REFUSED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `parse` with `${env:..}` and `${file:..}` refused, for files the root config does
/// not own: their values would reach a team's backend, headers or logs.
pub fn without_secrets<R>(parse: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SECRETS_REFUSED.set(self.0);
        }
    }
    let _restore = Restore(SECRETS_REFUSED.replace(true));
    parse()
}

fn resolve(kind: &str, name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err(format!("empty name in ${{{kind}}}"));
    }
    match kind {
        "env:" => std::env::var(name)
            .map_err(|_| format!("environment variable {name} is not set (from ${{env:{name}}})")),
        _ => std::fs::read_to_string(name)
            .map(|text| text.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(|e| format!("cannot read secret file {name}: {e}")),
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.display(), f)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Text::expand(&raw).map_err(de::Error::custom)
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.display())
    }
}

/// A typed value written as a string: parsed while the file is read, so a bad value is
/// reported where it stands, and shown back as written (redacted if it was a secret).
#[derive(Clone)]
pub struct Parsed<T> {
    text: Text,
    value: T,
}

impl<T> Parsed<T> {
    /// The parsed value.
    pub fn get(&self) -> &T {
        &self.value
    }
}

impl<T> Deref for Parsed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> fmt::Debug for Parsed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl<'de, T: FromStr> Deserialize<'de> for Parsed<T>
where
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Text::deserialize(deserializer)?;
        let value = text.parse().map_err(|e: T::Err| {
            if text.is_secret() {
                de::Error::custom(format!("invalid value from secret reference: {e}"))
            } else {
                de::Error::custom(format!("invalid value {:?}: {e}", &*text))
            }
        })?;
        Ok(Parsed { text, value })
    }
}

impl<T> Serialize for Parsed<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.text.serialize(serializer)
    }
}

/// A span of time written the human way: `250ms`, `5s`, `1m 30s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Duration(pub std::time::Duration);

impl FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        humantime::parse_duration(s.trim())
            .map(Duration)
            .map_err(|e| format!("{e} (write e.g. 500ms, 5s, 2m)"))
    }
}

/// A regular expression, compiled when the file is read.
#[derive(Clone, Debug)]
pub struct Pattern(pub regex::Regex);

impl FromStr for Pattern {
    type Err = regex::Error;
    fn from_str(s: &str) -> Result<Self, regex::Error> {
        regex::Regex::new(s).map(Pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_reference_is_expanded_and_marked_secret() {
        let path = std::env::var("PATH").expect("PATH is set for tests");
        let text = Text::expand("p=${env:PATH}").expect("expands");
        assert_eq!(&*text, format!("p={path}"));
        assert!(text.is_secret());
        assert_eq!(format!("{text:?}"), format!("{REDACTED:?}"));
        assert_eq!(text.display(), REDACTED);
        // What policies compare against is the value itself, never its shown form.
        assert_eq!(text.to_string(), format!("p={path}"));
    }

    #[test]
    fn missing_env_is_an_error_naming_the_variable() {
        let err = Text::expand("${env:SEKISHO_SURELY_UNSET_VAR}").expect_err("must fail");
        assert!(err.contains("SEKISHO_SURELY_UNSET_VAR"), "{err}");
    }

    #[test]
    fn plain_strings_and_other_braces_stay_literal() {
        let text = Text::expand("a ${not:this} b").expect("literal");
        assert_eq!(&*text, "a ${not:this} b");
        assert!(!text.is_secret());
    }

    #[test]
    fn file_reference_reads_the_file_without_its_newline() {
        let path = std::env::temp_dir().join(format!("sekisho-secret-{}", std::process::id()));
        std::fs::write(&path, "from-file\n").expect("write");
        let text = Text::expand(&format!("${{file:{}}}", path.display())).expect("expands");
        assert_eq!(&*text, "from-file");
        assert!(text.is_secret());
        let _ = std::fs::remove_file(path);
    }
}
