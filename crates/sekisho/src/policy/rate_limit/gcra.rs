//! The arithmetic of one bucket: the generic cell rate algorithm, the same on the gateway
//! and, in Lua, on the shared store.

use std::num::NonZeroU32;
use std::time::Duration;

/// A bucket is a single instant, its theoretical arrival time (TAT): the time at which it
/// is full again. A request at `now` moves it one `interval` on from `max(tat, now)` and is
/// allowed when that lands at most `tolerance` (`burst` intervals) ahead of `now`. A
/// bucket whose TAT is not after `now` is full, the same as no bucket at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Gcra {
    /// Nanoseconds per request at the sustained rate.
    pub interval: u64,
    /// How far ahead of now the TAT may run: `burst` intervals.
    pub tolerance: u64,
}

impl Gcra {
    pub fn new(period: Duration, burst: NonZeroU32) -> Option<Gcra> {
        let interval = u64::try_from(period.as_nanos()).ok()?;
        Some(Gcra {
            interval,
            tolerance: interval.checked_mul(u64::from(burst.get()))?,
        })
    }

    /// The bucket's next TAT when a request at `now` is allowed, else how long until one
    /// would be.
    pub fn admit(self, tat: u64, now: u64) -> Result<u64, Duration> {
        let next = tat.max(now).saturating_add(self.interval);
        let ahead = next - now;
        if ahead <= self.tolerance {
            Ok(next)
        } else {
            Err(Duration::from_nanos(ahead - self.tolerance))
        }
    }

    /// The TAT after `n` more requests on top of `tat`, allowed or not.
    pub fn spend(self, tat: u64, now: u64, n: u32) -> u64 {
        tat.max(now)
            .saturating_add(self.interval.saturating_mul(u64::from(n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn the_bucket_follows_gcra() {
        let gcra = Gcra::new(Duration::from_secs(1), NonZeroU32::new(3).unwrap()).unwrap();
        let mut tat = 0;
        for _ in 0..3 {
            tat = gcra.admit(tat, 0).expect("within the burst");
        }
        assert_eq!(gcra.admit(tat, 0), Err(Duration::from_secs(1)));
        assert_eq!(gcra.admit(tat, SECOND / 2), Err(Duration::from_millis(500)));
        tat = gcra
            .admit(tat, SECOND)
            .expect("one interval later, one more");
        assert!(gcra.admit(tat, SECOND).is_err());
        assert_eq!(gcra.spend(0, 5 * SECOND, 2), 7 * SECOND);
    }
}
