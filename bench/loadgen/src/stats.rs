//! Counting what happened: a latency histogram of the successful requests, messages and
//! errors by kind, per worker, merged at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Highest latency the histogram tells apart (60 s); slower requests count as 60 s.
const MAX_MICROS: u64 = 60_000_000;

/// One worker's counts (or the merged counts of all of them).
pub struct Recorder {
    latency: Histogram<u64>,
    ok: u64,
    messages: u64,
    errors: BTreeMap<String, u64>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            // Three significant digits: 0.1% resolution from 1 us to 60 s.
            latency: Histogram::new_with_bounds(1, MAX_MICROS, 3)
                .expect("constant histogram bounds are valid"),
            ok: 0,
            messages: 0,
            errors: BTreeMap::new(),
        }
    }

    /// A successful request (or call) that took `latency` and carried `messages` responses.
    pub fn ok(&mut self, latency: Duration, messages: u64) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS);
        self.latency.saturating_record(micros.clamp(1, MAX_MICROS));
        self.ok += 1;
        self.messages += messages;
    }

    /// A failed request, by kind (`transport`, `timeout`, `grpc_unavailable`, `http_503`, ...).
    pub fn error(&mut self, kind: String) {
        *self.errors.entry(kind).or_default() += 1;
    }

    pub fn merge(&mut self, other: Recorder) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        self.ok += other.ok;
        self.messages += other.messages;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The JSON fields of the results: counts, rates over `window` and latency percentiles.
    pub fn to_json(&self, window: Duration) -> Value {
        let seconds = window.as_secs_f64().max(1e-9);
        let quantile = |q: f64| {
            if self.ok == 0 {
                Value::Null
            } else {
                json!(self.latency.value_at_quantile(q))
            }
        };
        json!({
            "requests": self.ok + self.error_count(),
            "ok": self.ok,
            "errors": self.error_count(),
            "errors_by_kind": self.errors,
            "rps": self.ok as f64 / seconds,
            "messages": self.messages,
            "mps": self.messages as f64 / seconds,
            "latency_us": {
                "p50": quantile(0.5),
                "p90": quantile(0.9),
                "p99": quantile(0.99),
                "p999": quantile(0.999),
                "max": if self.ok == 0 { Value::Null } else { json!(self.latency.max()) },
                "mean": if self.ok == 0 { Value::Null } else { json!(self.latency.mean()) },
            },
        })
    }
}
