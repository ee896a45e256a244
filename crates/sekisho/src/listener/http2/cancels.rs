//! A connection's budget of cancelled streams.
//!
//! A client that opens a stream, waits until the gateway has sent it upstream and then
//! resets it frees its stream slot at once while the backend's work goes on (an HTTP/1.1
//! backend learns of the cancel only when its connection closes). Batch after batch, that
//! costs the backend a request per stream at the rate the gateway accepts them, with no
//! response ever waited for: h2's rapid-reset guard counts only streams reset before the
//! gateway took them, so it never sees these. The budget counts cancellations in excess
//! of the streams the client let finish: a client that cancels a share of its requests
//! (deadlines, navigation) never gathers an excess, while one that cancels nearly
//! everything reaches the bound within a few batches.

use super::stream::Outcome;

/// Cancelled streams counted against those that finished.
pub struct CancelBudget {
    /// The excess allowed; `None`: no bound.
    limit: Option<u32>,
    excess: u32,
}

impl CancelBudget {
    /// A budget of `limit` cancellations beyond the streams that finished; 0: no bound.
    pub fn new(limit: u32) -> Self {
        CancelBudget {
            limit: (limit > 0).then_some(limit),
            excess: 0,
        }
    }

    /// Counts one stream's end; `false` once the client has cancelled more streams than
    /// the limit beyond those it let finish.
    pub fn record(&mut self, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Finished => self.excess = self.excess.saturating_sub(1),
            Outcome::Cancelled => self.excess = self.excess.saturating_add(1),
        }
        self.limit.is_none_or(|limit| self.excess <= limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(budget: &mut CancelBudget, outcomes: impl IntoIterator<Item = Outcome>) -> bool {
        outcomes.into_iter().all(|outcome| budget.record(outcome))
    }

    #[test]
    fn a_client_that_cancels_nearly_everything_runs_out_just_past_the_limit() {
        let mut budget = CancelBudget::new(200);
        assert!(run(&mut budget, [Outcome::Cancelled; 200]));
        assert!(!budget.record(Outcome::Cancelled));
    }

    #[test]
    fn a_long_good_history_banks_no_credit_for_a_later_burst() {
        let mut budget = CancelBudget::new(200);
        assert!(run(&mut budget, [Outcome::Finished; 100_000]));
        assert!(run(&mut budget, [Outcome::Cancelled; 200]));
        assert!(!budget.record(Outcome::Cancelled));
    }

    #[test]
    fn cancelling_a_share_of_requests_never_runs_out() {
        let mut budget = CancelBudget::new(200);
        // One in three cancelled (deadlines under a slow backend), for a long time.
        let mix = (0..300_000).map(|i| {
            if i % 3 == 0 {
                Outcome::Cancelled
            } else {
                Outcome::Finished
            }
        });
        assert!(run(&mut budget, mix));
        // And even one in two.
        let half = (0..300_000).map(|i| {
            if i % 2 == 0 {
                Outcome::Cancelled
            } else {
                Outcome::Finished
            }
        });
        assert!(run(&mut budget, half));
    }

    #[test]
    fn zero_is_no_bound() {
        let mut budget = CancelBudget::new(0);
        assert!(run(&mut budget, [Outcome::Cancelled; 100_000]));
    }
}
