//! A web application firewall engine for SecLang rule sets, built to run the OWASP Core Rule
//! Set unmodified. It has no I/O beyond reading rule files: the gateway feeds it requests and
//! acts on its verdicts.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod action;
mod body;
mod error;
mod fasthash;
mod macros;
mod parse;
mod rule;
mod ruleset;
mod transaction;
mod variable;

pub mod operator;
pub mod transform;

pub use body::Limit;
pub use error::LoadError;
pub use parse::wildcard;
pub use ruleset::RuleSet;
pub use transaction::{InterruptAction, Interruption, MatchedRule, Transaction, Verdict};
