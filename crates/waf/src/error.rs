//! The one error a rule set can fail to load with.

use std::fmt;
use std::path::PathBuf;

/// Why a rule set did not load, pointing at the line to fix: a rule set that loads only
/// in part would silently protect less than its author believes, so every unsupported or
/// malformed construct stops the load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The rule file holding the offending directive.
    pub file: PathBuf,
    /// The 1-based line where the directive starts.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

impl std::error::Error for LoadError {}
