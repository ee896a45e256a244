//! The config file: schema, parsing with located errors, and the checks that need the
//! whole file (names that refer to each other). No sockets here, only file reads, so
//! `sekisho validate` needs no runtime.

mod doubts;
mod error;
pub mod grant;
pub mod jwt;
pub mod model;
pub mod team;
pub mod text;
mod validate;
pub mod watch;

use std::path::Path;

pub use doubts::doubts;
pub use error::{ConfigError, Problem};
pub use model::Config;

/// Reads, parses and checks the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::one(
            path,
            Problem::whole_file(format!("cannot read config file: {e}")),
        )
    })?;
    let config = parse(&source).map_err(|p| ConfigError::one(path, p))?;
    let problems = validate::check(&config);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError {
            file: path.to_owned(),
            problems,
        })
    }
}

/// Parses YAML text into the typed config, naming the field path of a failure.
pub fn parse(source: &str) -> Result<Config, Problem> {
    parse_as(source)
}

/// Parses the YAML text of a team's file.
pub fn parse_team(source: &str) -> Result<team::TeamFile, Problem> {
    parse_as(source)
}

fn parse_as<T: serde::de::DeserializeOwned>(source: &str) -> Result<T, Problem> {
    let mut field = String::new();
    let result = serde_saphyr::with_deserializer_from_str(source, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            field = field_path(e.path());
            e.into_inner()
        })
    });
    result.map_err(|e| {
        let location = e.location().unwrap_or(serde_saphyr::Location::UNKNOWN);
        Problem::at(location, field, bare_message(&e))
    })
}

/// The dotted field path, without the internal steps `Spanned` values take.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if key == "value" || key.starts_with("__serde_saphyr") {
                    continue;
                }
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// The parser's message without its own location suffix or source snippet.
fn bare_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or_default().trim();
    match first.rfind(" at line ") {
        Some(at) => first[..at].to_owned(),
        None => first.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_names_its_place() {
        let yaml = "listeners:\n  - name: a\n    address: 127.0.0.1:1\n    adress: x\n";
        let p = parse(yaml).expect_err("unknown field");
        assert_eq!((p.line, p.column), (4, 5), "{p:?}");
        assert_eq!(p.field, "listeners[0].adress", "{p:?}");
        assert!(p.message.contains("adress"), "{p:?}");
    }

    #[test]
    fn bad_address_names_the_field() {
        let yaml = "listeners:\n  - name: a\n    address: nowhere\n";
        let p = parse(yaml).expect_err("bad address");
        assert_eq!(p.field, "listeners[0].address", "{p:?}");
        assert_eq!(p.line, 3, "{p:?}");
        assert!(p.message.contains("nowhere"), "{p:?}");
    }
}
