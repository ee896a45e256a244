//! What one gateway knows of a bucket it shares with its replicas through a store, and how
//! it decides on that knowledge without asking the store every time.
//!
//! The store holds the bucket's TAT (see [`Gcra`]). A gateway keeps a *view*, the TAT the
//! store last told it, and counts the requests it let through that the store has not
//! acknowledged yet (*unacknowledged*: pending, plus reported with no answer back). A
//! request is let through here, with no call, when the view with every unacknowledged
//! request added still has room and fewer than `batch` requests are unacknowledged;
//! when the view has no room it is refused here; otherwise (a full batch) it waits for
//! the store's own decision. Unacknowledged requests are reported in the background,
//! early once half a batch has gathered, and at every sync tick.
//!
//! # How far the shared limit can overshoot
//!
//! A view only ever lags the store (replicas only add to the TAT, and an answer is turned
//! into a view as if it arrived with no delay after the store's clock read it, which
//! overstates the TAT). So what a gateway lets through beyond the limit is what it let
//! through on a view that missed requests the others had not reported yet, and a gateway
//! never holds more than `batch` unacknowledged requests. With `n` gateways, in any
//! window of time a key is let through at most
//!
//! ```text
//!     burst + rate × window + n × batch
//! ```
//!
//! requests, however late the reports arrive, counting each request when it was decided:
//! here, or at the store for one that waited on it. (The store's answers travel back over
//! the network, so answers held up unevenly can reach gateways together; that is the
//! same for every remote limiter.) The store counts every request (a report
//! adds to the TAT even beyond the tolerance), so an overshoot is paid back by refusals
//! right after it and the long-run rate is the configured one. `the_overshoot_is_bounded`
//! below plays random interleavings of gateways, reports and answers against that bound.

use std::time::Duration;

use super::gcra::Gcra;

/// One gateway's knowledge of one shared bucket, on the table's clock.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Share {
    /// The bucket's TAT as the store last told it (0: never told, a full bucket).
    view: u64,
    /// Requests let through here that are not reported yet.
    pending: u32,
    /// Requests reported whose answer has not come back.
    in_flight: u32,
}

/// What a request may do, by a gateway's share of the bucket.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Let it through now, and count it as pending.
    Admit,
    /// The bucket is empty as far as anyone here knows: refuse, retry after this long.
    Refuse(Duration),
    /// A batch is unacknowledged: the store must decide.
    Ask,
}

impl Share {
    /// Requests let through here that the store has not acknowledged.
    pub fn unacknowledged(&self) -> u32 {
        self.pending.saturating_add(self.in_flight)
    }

    /// What a request at `now` may do.
    pub fn decide(&self, gcra: Gcra, batch: u32, now: u64) -> Step {
        let known = gcra.spend(self.view, now, self.unacknowledged());
        match gcra.admit(known, now) {
            Err(wait) => Step::Refuse(wait),
            Ok(_) if self.unacknowledged() < batch => Step::Admit,
            Ok(_) => Step::Ask,
        }
    }

    /// Counts a request let through by [`Step::Admit`]; true when it is the first pending
    /// one (the key must be put on the list of keys to report).
    pub fn admitted(&mut self) -> bool {
        self.pending += 1;
        self.pending == 1
    }

    /// True when half a batch is unacknowledged and nothing is reported yet: worth
    /// reporting now, so the answer is back before the batch is full.
    pub fn worth_reporting(&self, batch: u32) -> bool {
        self.in_flight == 0 && self.pending > 0 && self.pending.saturating_mul(2) >= batch
    }

    /// Takes the pending requests for a report.
    pub fn send(&mut self) -> u32 {
        let n = self.pending;
        self.pending = 0;
        self.in_flight += n;
        n
    }

    /// A report of `sent` requests came back: with the store's TAT (already on this
    /// table's clock), or with nothing when the call failed.
    pub fn answered(&mut self, sent: u32, tat: Option<u64>) {
        self.in_flight = self.in_flight.saturating_sub(sent);
        if let Some(tat) = tat {
            self.view = self.view.max(tat);
        }
    }

    /// True when forgetting this share loses nothing: the view has refilled and nothing
    /// is waiting to be reported or answered.
    pub fn settled(&self, now: u64) -> bool {
        self.view <= now && self.pending == 0 && self.in_flight == 0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BinaryHeap;
    use std::num::NonZeroU32;

    use proptest::prelude::*;

    use super::*;

    /// The store's script, in Rust: `spent` requests are added whatever the TAT, then one
    /// more is taken when `want` and it fits. Returns the TAT and whether it was taken.
    fn store_call(gcra: Gcra, tat: &mut u64, now: u64, spent: u32, want: bool) -> bool {
        *tat = gcra.spend(*tat, now, spent);
        if want && let Ok(next) = gcra.admit(*tat, now) {
            *tat = next;
            return true;
        }
        false
    }

    #[derive(PartialEq, Eq, PartialOrd, Ord, Debug)]
    enum Event {
        /// A report reaches the store: gateway, requests, whether a request waits on it.
        AtStore(usize, u32, bool),
        /// The answer reaches the gateway: gateway, requests, TAT, whether one was taken,
        /// and when the store took it.
        Answer(usize, u32, u64, bool, bool, u64),
    }

    /// Plays `arrivals` (time, gateway) against `gateways` gateways sharing one bucket;
    /// every message takes one of `delays`. Returns the times requests were let through:
    /// when a gateway decided, or when the store did for a request that asked it.
    fn play(
        gcra: Gcra,
        batch: u32,
        gateways: usize,
        arrivals: &[(u64, usize)],
        delays: &[u64],
        sync_every: u64,
    ) -> Vec<u64> {
        let mut shares = vec![Share::default(); gateways];
        let mut floors = vec![0u64; gateways];
        let mut store = 0u64;
        let mut admitted = Vec::new();
        // Min-heap of (time, seq, event).
        let mut queue: BinaryHeap<std::cmp::Reverse<(u64, usize, Event)>> = BinaryHeap::new();
        let mut seq = 0;
        let mut delay = delays.iter().copied().cycle();
        let mut send = |queue: &mut BinaryHeap<_>, at: u64, event: Event| {
            seq += 1;
            queue.push(std::cmp::Reverse((
                at + delay.next().unwrap_or(0),
                seq,
                event,
            )));
        };
        let mut next_sync = sync_every;
        let mut arrivals = arrivals.iter().peekable();
        loop {
            let next_event = queue.peek().map(|e| e.0.0);
            let next_arrival = arrivals.peek().map(|a| a.0);
            let now = match (next_event, next_arrival) {
                (None, None) => break,
                (Some(e), Some(a)) => e.min(a).min(next_sync),
                (Some(t), None) | (None, Some(t)) => t.min(next_sync),
            };
            if now == next_sync {
                for (g, share) in shares.iter_mut().enumerate() {
                    let n = share.send();
                    if n > 0 {
                        send(&mut queue, now, Event::AtStore(g, n, false));
                    }
                }
                next_sync += sync_every;
                continue;
            }
            if Some(now) == next_event {
                let std::cmp::Reverse((_, _, event)) = queue.pop().unwrap();
                match event {
                    Event::AtStore(g, n, want) => {
                        let taken = store_call(gcra, &mut store, now, n, want);
                        send(
                            &mut queue,
                            now,
                            Event::Answer(g, n, store, want, taken, now),
                        );
                    }
                    Event::Answer(g, n, tat, want, taken, at_store) => {
                        // The view is the TAT as if no time had passed since the store.
                        shares[g].answered(n, Some(tat.max(now)));
                        if want
                            && taken
                            && let Ok(next) = gcra.admit(floors[g], now)
                        {
                            floors[g] = next;
                            admitted.push(at_store);
                        }
                    }
                }
                continue;
            }
            let (_, g) = *arrivals.next().unwrap();
            let Ok(floor) = gcra.admit(floors[g], now) else {
                continue;
            };
            match shares[g].decide(gcra, batch, now) {
                Step::Refuse(_) => {}
                Step::Admit => {
                    floors[g] = floor;
                    shares[g].admitted();
                    admitted.push(now);
                    if shares[g].worth_reporting(batch) {
                        let n = shares[g].send();
                        send(&mut queue, now, Event::AtStore(g, n, false));
                    }
                }
                Step::Ask => {
                    let n = shares[g].send();
                    send(&mut queue, now, Event::AtStore(g, n, true));
                }
            }
        }
        admitted.sort_unstable();
        admitted
    }

    /// The most requests let through in any window, beyond `burst + rate × window`.
    fn worst_excess(gcra: Gcra, admitted: &[u64]) -> i64 {
        let burst = (gcra.tolerance / gcra.interval) as i64;
        let mut worst = i64::MIN;
        for (i, &start) in admitted.iter().enumerate() {
            for (j, &end) in admitted.iter().enumerate().skip(i) {
                let allowed = burst + ((end - start) / gcra.interval) as i64;
                worst = worst.max((j - i + 1) as i64 - allowed);
            }
        }
        worst
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the interleaving of requests, reports and answers, and however late
        /// the answers, no window lets through more than `burst + rate × window + n × batch`.
        #[test]
        fn the_overshoot_is_bounded(
            gateways in 1usize..5,
            batch in 1u32..8,
            burst in 1u32..20,
            gaps in proptest::collection::vec((0u64..3_000_000, 0usize..5), 1..400),
            delays in proptest::collection::vec(0u64..40_000_000, 1..16),
            sync_every in 1_000_000u64..50_000_000,
        ) {
            // 100 requests a second: an interval of 10 ms.
            let gcra = Gcra::new(Duration::from_millis(10), NonZeroU32::new(burst).unwrap()).unwrap();
            let mut now = 0;
            let arrivals: Vec<(u64, usize)> = gaps
                .iter()
                .map(|&(gap, g)| { now += gap; (now, g % gateways) })
                .collect();
            let admitted = play(gcra, batch, gateways, &arrivals, &delays, sync_every);
            let bound = gateways as i64 * i64::from(batch);
            let excess = worst_excess(gcra, &admitted);
            prop_assert!(excess <= bound, "excess {excess} over a bound of {bound}");
        }
    }

    #[test]
    fn a_batch_is_let_through_then_the_store_decides() {
        let gcra = Gcra::new(Duration::from_millis(10), NonZeroU32::new(100).unwrap()).unwrap();
        let mut share = Share::default();
        for _ in 0..4 {
            assert_eq!(share.decide(gcra, 4, 0), Step::Admit);
            share.admitted();
        }
        assert!(share.worth_reporting(4));
        assert_eq!(share.decide(gcra, 4, 0), Step::Ask);
        let sent = share.send();
        assert_eq!((sent, share.unacknowledged()), (4, 4));
        // The store says the bucket is 990 ms ahead: one more fits, then it is full.
        share.answered(sent, Some(990_000_000));
        assert_eq!(share.decide(gcra, 4, 0), Step::Admit);
        share.admitted();
        assert_eq!(
            share.decide(gcra, 4, 0),
            Step::Refuse(Duration::from_millis(10))
        );
        assert!(!share.settled(0));
        share.send();
        share.answered(1, Some(1_000_000_000));
        assert!(share.settled(1_000_000_000));
    }
}
