//! The state a running gateway shares between its listeners, admin and reloader.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;

use crate::observe::access_log::AccessLog;
use crate::snapshot::Snapshot;

/// Shared by every connection.
pub struct State {
    snapshot: ArcSwap<Snapshot>,
    /// The config file as named on the command line.
    pub config_path: PathBuf,
    /// The access log writer (whether a snapshot uses it is up to its config).
    pub access_log: AccessLog,
    draining: AtomicBool,
}

impl State {
    /// State serving `snapshot`.
    pub fn new(snapshot: Snapshot, config_path: PathBuf, access_log: AccessLog) -> Self {
        State {
            snapshot: ArcSwap::from_pointee(snapshot),
            config_path,
            access_log,
            draining: AtomicBool::new(false),
        }
    }

    /// The snapshot new requests use.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Makes `snapshot` the one new requests use. Reloads take turns from reading the file
    /// to this swap (`Gateway`'s reload lock), so an older config is never swapped in after
    /// a newer one.
    pub fn swap(&self, snapshot: Snapshot) -> Arc<Snapshot> {
        self.snapshot.swap(Arc::new(snapshot))
    }

    /// Whether a shutdown has begun (`/ready` then says no).
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Marks the start of a shutdown.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
}
