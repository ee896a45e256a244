//! Waking connections that wait: an HTTP/1.1 connection's header deadline, and every
//! connection's drain.
//!
//! An idle keep-alive connection waits for two things besides its client: the deadline for
//! its next head, and its listener closing. A tokio timer and a watch wait in every
//! connection's task cost about 250 bytes of it, a sixth of what an idle HTTP/1.1
//! connection holds. Instead each connection holds a [`Waiter`], one small slot shared with
//! its listener's [`WaitList`]; the accept loop, which starts every connection anyway,
//! sweeps the slots on a coarse tick and wakes those whose deadline has passed, and wakes
//! them all when the listener drains. A deadline fires up to one [`TICK`] late, which a head
//! timeout counted in seconds does not notice.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

/// How often a listener sweeps its waiting connections.
pub const TICK: Duration = Duration::from_millis(100);

/// The instant deadlines are counted from, so one fits in an atomic.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// A slot's deadline: none set.
const UNARMED: u64 = 0;
/// A slot's deadline: passed, seen by a sweep.
const EXPIRED: u64 = u64::MAX;

/// A listener's side: a weak hold on each of its connections' slots.
#[derive(Default)]
pub struct WaitList {
    slots: Vec<Weak<Slot>>,
}

impl WaitList {
    /// A slot for a connection the listener has just accepted.
    pub fn join(&mut self) -> Waiter {
        let slot = Arc::new(Slot::default());
        self.slots.push(Arc::downgrade(&slot));
        Waiter(slot)
    }

    /// Whether no connection is held (the sweep can rest).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Wakes each connection whose deadline has passed, and forgets those that ended.
    pub fn sweep(&mut self) {
        let now = nanos(Instant::now());
        self.slots.retain(|slot| {
            let Some(slot) = slot.upgrade() else {
                return false;
            };
            let deadline = slot.deadline.load(Ordering::Acquire);
            // A connection that armed a new deadline meanwhile keeps it.
            if deadline != UNARMED
                && deadline <= now
                && slot
                    .deadline
                    .compare_exchange(deadline, EXPIRED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                slot.wake();
            }
            true
        });
    }

    /// Tells every connection that the listener is closing.
    pub fn close(&mut self) {
        for slot in self.slots.drain(..).filter_map(|slot| slot.upgrade()) {
            slot.closing.store(true, Ordering::Release);
            slot.wake();
        }
    }
}

/// What a wait ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Woke {
    /// The deadline passed.
    Deadline,
    /// The listener is closing.
    Closing,
}

/// A connection's side: its deadline, and whether its listener is closing.
pub struct Waiter(Arc<Slot>);

#[derive(Default)]
struct Slot {
    /// Nanoseconds after [`EPOCH`] ([`UNARMED`] or [`EXPIRED`] aside).
    deadline: AtomicU64,
    closing: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Slot {
    fn wake(&self) {
        let waker = self.waker.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(waker) = waker.as_ref() {
            waker.wake_by_ref();
        }
    }
}

impl Waiter {
    /// Sets the deadline of the next wait; `None`: no deadline.
    pub fn arm(&self, deadline: Option<Instant>) {
        let at = deadline.map_or(UNARMED, |at| nanos(at).clamp(1, EXPIRED - 1));
        self.0.deadline.store(at, Ordering::Release);
    }

    /// Whether the listener is closing.
    pub fn closing(&self) -> bool {
        self.0.closing.load(Ordering::Acquire)
    }

    /// Ready once the armed deadline has passed, or (with `drain`) once the listener is
    /// closing.
    pub fn poll(&self, cx: &mut Context<'_>, drain: bool) -> Poll<Woke> {
        if let Some(woke) = self.woke(drain) {
            return Poll::Ready(woke);
        }
        {
            let mut waker = self.0.waker.lock().unwrap_or_else(PoisonError::into_inner);
            match waker.as_mut() {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
        }
        // A sweep between the look above and the waker's registration has woken the old
        // waker (or none): look again.
        match self.woke(drain) {
            Some(woke) => Poll::Ready(woke),
            None => Poll::Pending,
        }
    }

    /// Waits until the listener is closing.
    pub async fn closed(&self) {
        std::future::poll_fn(|cx| self.poll(cx, true).map(drop)).await;
    }

    fn woke(&self, drain: bool) -> Option<Woke> {
        if drain && self.closing() {
            Some(Woke::Closing)
        } else if self.0.deadline.load(Ordering::Acquire) == EXPIRED {
            Some(Woke::Deadline)
        } else {
            None
        }
    }
}

fn nanos(at: Instant) -> u64 {
    let since = at.saturating_duration_since(*EPOCH).as_nanos();
    // Past the epoch by at least one, so no deadline reads as `UNARMED`.
    u64::try_from(since)
        .unwrap_or(EXPIRED - 1)
        .saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    #[tokio::test]
    async fn a_passed_deadline_wakes_its_waiter_at_the_next_sweep() {
        let mut list = WaitList::default();
        let waiter = list.join();
        waiter.arm(Some(Instant::now() + Duration::from_millis(30)));
        let sweeps = async {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                list.sweep();
            }
        };
        let started = Instant::now();
        let woke = tokio::select! {
            woke = poll_fn(|cx| waiter.poll(cx, false)) => woke,
            () = sweeps => unreachable!("the sweeps never end"),
        };
        assert_eq!(woke, Woke::Deadline);
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[tokio::test]
    async fn a_new_deadline_is_not_taken_for_an_old_one() {
        let mut list = WaitList::default();
        let waiter = list.join();
        waiter.arm(Some(Instant::now()));
        list.sweep();
        assert!(
            poll_fn(|cx| Poll::Ready(waiter.poll(cx, false)))
                .await
                .is_ready()
        );
        // Re-armed for later: the earlier expiry is forgotten.
        waiter.arm(Some(Instant::now() + Duration::from_secs(60)));
        list.sweep();
        assert!(
            poll_fn(|cx| Poll::Ready(waiter.poll(cx, false)))
                .await
                .is_pending()
        );
        waiter.arm(None);
        list.sweep();
        assert!(
            poll_fn(|cx| Poll::Ready(waiter.poll(cx, false)))
                .await
                .is_pending()
        );
    }

    #[tokio::test]
    async fn closing_wakes_every_waiter_that_drains_and_only_those() {
        let mut list = WaitList::default();
        let (a, b) = (list.join(), list.join());
        let closed = tokio::spawn(async move { a.closed().await });
        tokio::task::yield_now().await;
        list.close();
        closed.await.expect("the waiter saw the close");
        assert!(b.closing());
        assert!(
            poll_fn(|cx| Poll::Ready(b.poll(cx, false)))
                .await
                .is_pending()
        );
        assert_eq!(poll_fn(|cx| b.poll(cx, true)).await, Woke::Closing);
    }

    #[test]
    fn ended_connections_are_forgotten() {
        let mut list = WaitList::default();
        let kept = list.join();
        drop(list.join());
        list.sweep();
        assert_eq!(list.slots.len(), 1);
        drop(kept);
        list.sweep();
        assert!(list.is_empty());
    }
}
