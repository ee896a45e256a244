//! `@detectSQLi` and `@detectXSS`, backed by libinjection's tokenizers and fingerprint
//! tables.

use std::panic::{AssertUnwindSafe, catch_unwind};

use libinjectionrs::{SqliFlags, SqliState};

/// The libinjection fingerprint of `input` when it looks like SQL injection; ModSecurity
/// reports it in TX.0.
pub(super) fn sqli_fingerprint(input: &[u8]) -> Option<Vec<u8>> {
    // The detector runs on hostile input; should it ever panic, the request is treated as an
    // attack rather than taking the worker down or letting the input through.
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut state = SqliState::new(input, SqliFlags::FLAG_NONE);
        // The fingerprint kept is the one of the quoting context that matched.
        state
            .detect()
            .then(|| state.fingerprint_string().into_bytes())
    }));
    result.unwrap_or_else(|_| Some(Vec::new()))
}

/// Whether `input` looks like cross-site scripting in any HTML context.
pub(super) fn is_xss(input: &[u8]) -> bool {
    catch_unwind(AssertUnwindSafe(|| {
        libinjectionrs::detect_xss(input).is_injection()
    }))
    .unwrap_or(true)
}
