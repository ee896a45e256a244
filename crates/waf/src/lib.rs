//! A web application firewall engine for SecLang rule sets, built to run the OWASP Core Rule
//! Set unmodified. It has no I/O beyond reading rule files: the gateway feeds it requests and
//! acts on its verdicts.

#![forbid(unsafe_code)]

pub mod operator;
pub mod transform;
