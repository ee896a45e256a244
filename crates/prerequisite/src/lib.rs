//! What a test does when something it needs from outside the workspace is missing: a
//! Python package, Chromium, a database. By default it fails and names what is missing, so
//! a run that lacks a prerequisite cannot pass unnoticed. A caller who knows it lacks one
//! opts out by naming it in `SEKISHO_TEST_SKIP`; the test then skips, and the skip is
//! recorded where the test runner (`scripts/test`) counts it at the end of the run.
//!
//! ```no_run
//! if let Err(why) = std::process::Command::new("python3").arg("-c").arg("import jwt").status() {
//!     prerequisite::missing(prerequisite::PYJWT, &why.to_string());
//!     return;
//! }
//! ```

use std::io::Write;

/// The comma-separated prerequisite names a caller may go without (or `all`).
pub const OPT_OUT: &str = "SEKISHO_TEST_SKIP";

/// The file each skip is appended to, one line per skipped test; set by `scripts/test`.
pub const SKIP_LOG: &str = "SEKISHO_TEST_SKIP_LOG";

/// PyJWT and `cryptography`, which mint tokens independently of the gateway's JWT code.
pub const PYJWT: &str = "pyjwt";

/// Chromium and the test page's Node packages, for the browser tests.
pub const BROWSER: &str = "browser";

/// The PostgreSQL server and the S3-compatible server ashi's storage tests run against.
pub const SERVICES: &str = "services";

/// Debian's `redis-server`, the store of rate limits shared by gateway replicas.
pub const REDIS: &str = "redis";

/// The `openapi-spec-validator` Python package.
pub const OPENAPI_VALIDATOR: &str = "openapi-validator";

/// Whether the caller opted out of `prerequisite`.
pub fn may_skip(prerequisite: &str) -> bool {
    std::env::var(OPT_OUT).is_ok_and(|list| {
        list.split(',')
            .map(str::trim)
            .any(|name| name == prerequisite || name == "all")
    })
}

/// Fails the calling test because `prerequisite` is missing (`why` says how it showed),
/// unless the caller opted out of it; then notes the skip on stderr and in the skip log,
/// and the test should return.
///
/// # Panics
///
/// When the caller did not opt out of `prerequisite`: that is the failure.
pub fn missing(prerequisite: &str, why: &str) {
    // The test harness names each test's thread after the test.
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    if !may_skip(prerequisite) {
        panic!(
            "{test} needs {prerequisite}, which is missing: {why}. `bash scripts/test` \
             installs it; to run without it, set {OPT_OUT}={prerequisite}"
        );
    }
    // Straight to the process's stderr: the harness captures eprintln! of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs {prerequisite} ({why})"
    );
    if let Some(path) = std::env::var_os(SKIP_LOG) {
        let line = format!("{test}\t{prerequisite}\t{}\n", why.replace('\n', " "));
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(e) = appended {
            panic!(
                "cannot record the skip of {test} in {}: {e}",
                path.display()
            );
        }
    }
}
