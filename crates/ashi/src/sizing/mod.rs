//! Sizing rules: pure functions from foot dimensions to sizes, shapes and fits. No I/O here, so
//! every rule is unit-tested on its own.

pub mod arch;
pub mod diagnose;
pub mod hallux;
pub mod jis;
pub mod recommend;
pub mod toe;
