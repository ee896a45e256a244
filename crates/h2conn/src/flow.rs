//! Flow-control windows (RFC 9113 section 6.9), one type per direction.
//!
//! Windows are `i64` because a SETTINGS_INITIAL_WINDOW_SIZE change can drive a
//! window below zero (section 6.9.2), while the legal maximum is 2^31 - 1.

use h2frame::MAX_WINDOW_SIZE;

/// The window would pass 2^31 - 1: FLOW_CONTROL_ERROR in the caller's scope.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Overflow;

/// How much we may still send.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SendWindow(i64);

impl SendWindow {
    pub(crate) fn new(size: u32) -> Self {
        Self(i64::from(size))
    }

    /// Bytes that may be sent now.
    pub(crate) fn available(self) -> usize {
        usize::try_from(self.0.max(0)).unwrap_or(usize::MAX)
    }

    /// Adds credit from WINDOW_UPDATE, or a (possibly negative) SETTINGS delta.
    pub(crate) fn adjust(&mut self, delta: i64) -> Result<(), Overflow> {
        let next = self.0.saturating_add(delta);
        if next > i64::from(MAX_WINDOW_SIZE) {
            return Err(Overflow);
        }
        self.0 = next;
        Ok(())
    }

    /// Spends `n` bytes the caller checked against [`SendWindow::available`].
    pub(crate) fn consume(&mut self, n: usize) {
        self.0 = self.0.saturating_sub(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// How much the peer may still send, and what the application has consumed but
/// not yet handed back as WINDOW_UPDATE credit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecvWindow {
    /// Credit the peer holds.
    window: i64,
    /// Bytes received and not yet released by the application.
    held: u64,
    /// Bytes released but not yet announced: updates are batched so a stream of
    /// small DATA frames does not cost one WINDOW_UPDATE each.
    pending: u64,
    /// The window we aim to keep open; an update goes out once half of it is
    /// pending.
    target: u32,
}

impl RecvWindow {
    pub(crate) fn new(window: u32, target: u32) -> Self {
        Self {
            window: i64::from(window),
            held: 0,
            pending: 0,
            target,
        }
    }

    /// Charges a received DATA frame; `Err` when it exceeds the credit we gave.
    pub(crate) fn receive(&mut self, n: u32) -> Result<(), Overflow> {
        let n = i64::from(n);
        if n > self.window {
            return Err(Overflow);
        }
        self.window -= n;
        self.held += n as u64;
        Ok(())
    }

    /// Changes the credit by a SETTINGS_INITIAL_WINDOW_SIZE delta once the peer
    /// acknowledged it, and the target with it.
    pub(crate) fn retarget(&mut self, target: u32) {
        self.window += i64::from(target) - i64::from(self.target);
        self.target = target;
    }

    /// The application consumed up to `n` held bytes; returns the increment to
    /// announce when enough is pending. Never releases more than was received,
    /// so an application bug cannot push the peer's window past its maximum.
    pub(crate) fn release(&mut self, n: usize) -> Option<u32> {
        let n = (n as u64).min(self.held);
        self.held -= n;
        self.pending += n;
        if self.pending > 0 && self.pending >= u64::from(self.target / 2).max(1) {
            self.flush()
        } else {
            None
        }
    }

    /// Announces everything pending at once.
    pub(crate) fn flush(&mut self) -> Option<u32> {
        let room = i64::from(MAX_WINDOW_SIZE) - self.window;
        let inc = i64::try_from(self.pending).unwrap_or(i64::MAX).min(room);
        if inc <= 0 {
            return None;
        }
        self.pending -= inc as u64;
        self.window += inc;
        u32::try_from(inc).ok()
    }

    /// Bytes received and not released yet.
    pub(crate) fn held(&self) -> u64 {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_window_overflow_and_negative() {
        let mut w = SendWindow::new(65_535);
        assert_eq!(w.adjust(i64::from(MAX_WINDOW_SIZE)), Err(Overflow));
        w.adjust(-70_000).unwrap();
        assert_eq!(w.available(), 0);
        w.adjust(10_000).unwrap();
        assert_eq!(w.available(), 5_535);
        w.consume(535);
        assert_eq!(w.available(), 5_000);
    }

    #[test]
    fn receive_beyond_window_fails() {
        let mut w = RecvWindow::new(100, 100);
        w.receive(60).unwrap();
        assert_eq!(w.receive(41), Err(Overflow));
        w.receive(40).unwrap();
    }

    #[test]
    fn release_is_batched_and_bounded() {
        let mut w = RecvWindow::new(100, 100);
        w.receive(100).unwrap();
        assert_eq!(w.release(10), None);
        assert_eq!(w.release(45), Some(55));
        // Releasing more than was received credits only what was.
        assert_eq!(w.release(1_000), None);
        assert_eq!(w.flush(), Some(45));
        assert_eq!(w.held(), 0);
        assert_eq!(w.release(1_000), None);
    }
}
