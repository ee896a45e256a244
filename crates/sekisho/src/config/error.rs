//! Config errors that point at the file, line, column and field at fault.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};

/// One thing wrong with a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file at fault, when it is not the one the whole error is about (a team's file
    /// named by the root config).
    pub file: Option<PathBuf>,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
    /// Dotted path of the field, e.g. `routes[2].to`.
    pub field: String,
    /// What is wrong, in words an operator can act on.
    pub message: String,
}

impl Problem {
    /// A problem with the value at `location`.
    pub fn at(location: Location, field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            file: None,
            line: location.line(),
            column: location.column(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// A problem with a file as a whole (it cannot be read, listed or found).
    pub fn whole_file(message: impl Into<String>) -> Self {
        Problem {
            file: None,
            line: 0,
            column: 0,
            field: String::new(),
            message: message.into(),
        }
    }

    /// A problem with a spanned value.
    pub fn on<T>(value: &Spanned<T>, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::at(value.referenced, field, message)
    }
}

/// Why a config file was not accepted: every problem found, in file order.
#[derive(Clone, Debug)]
pub struct ConfigError {
    /// The file as the operator named it.
    pub file: PathBuf,
    /// At least one.
    pub problems: Vec<Problem>,
}

impl ConfigError {
    /// A single problem in `file`.
    pub fn one(file: &Path, problem: Problem) -> Self {
        ConfigError {
            file: file.to_owned(),
            problems: vec![problem],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}", p.file.as_ref().unwrap_or(&self.file).display())?;
            if p.line > 0 {
                write!(f, ":{}:{}", p.line, p.column)?;
            }
            if p.field.is_empty() {
                write!(f, ": {}", p.message)?;
            } else {
                write!(f, ": {}: {}", p.field, p.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// Every problem of several errors as one, each naming its own file.
    pub fn merged(file: &Path, errors: impl IntoIterator<Item = ConfigError>) -> ConfigError {
        let problems = errors
            .into_iter()
            .flat_map(|e| {
                let at = e.file;
                e.problems.into_iter().map(move |mut p| {
                    p.file.get_or_insert_with(|| at.clone());
                    p
                })
            })
            .collect();
        ConfigError {
            file: file.to_owned(),
            problems,
        }
    }
}
