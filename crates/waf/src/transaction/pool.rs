//! Storage that finished transactions leave for the next ones on the same thread.
//!
//! A transaction through CRS sets about a hundred TX variables, caches a hundred or so
//! transformation results and matches dozens of rules: its tables are a few kilobytes each.
//! Allocating them afresh per request costs more than the small allocations around them
//! (with glibc, every large request also consolidates the small free chunks), so a finished
//! transaction hands its emptied tables to the next one instead of freeing them.

use std::cell::RefCell;

use super::members::Members;
use super::reused::Reused;
use super::transform_cache::TransformCache;
use super::{Match, Pair};

/// Tables kept per thread at most: enough for the transactions one worker has in flight
/// when load drops, bounded so a burst does not pin its peak memory.
const KEPT_PER_THREAD: usize = 64;

/// Entries past which a table is freed rather than kept: a request with thousands of
/// arguments should not leave tables that size behind for every later one.
const LARGEST_KEPT: usize = 1024;

/// The emptied tables of one transaction.
#[derive(Default)]
pub(super) struct Storage {
    pub(super) tx: Members,
    pub(super) transform_cache: TransformCache,
    pub(super) matches: Reused<Match>,
    pub(super) matched_vars: Reused<Pair>,
    pub(super) request_headers: Vec<Pair>,
    pub(super) args_post: Vec<Pair>,
}

thread_local! {
    static KEPT: RefCell<Vec<Storage>> = const { RefCell::new(Vec::new()) };
}

impl Storage {
    /// Tables left by an earlier transaction, or new ones.
    pub(super) fn take() -> Storage {
        KEPT.try_with(|kept| kept.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Empties the tables (keeping their capacity) and leaves them for the next
    /// transaction on this thread.
    pub(super) fn give_back(mut self) {
        if self.tx.capacity() > LARGEST_KEPT
            || self.transform_cache.capacity() > LARGEST_KEPT
            || self.request_headers.capacity() > LARGEST_KEPT
            || self.args_post.capacity() > LARGEST_KEPT
        {
            return;
        }
        self.tx.clear();
        self.transform_cache.clear();
        self.matches.clear();
        self.matched_vars.clear();
        self.request_headers.clear();
        self.args_post.clear();
        // During thread teardown the storage is simply dropped.
        let _ = KEPT.try_with(|kept| {
            let mut kept = kept.borrow_mut();
            if kept.len() < KEPT_PER_THREAD {
                kept.push(self);
            }
        });
    }
}
