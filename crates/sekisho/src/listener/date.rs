//! The `date` field every response carries (RFC 9110, section 6.6.1), formatted once a
//! second per thread rather than once per response.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderValue;

/// The current time as an HTTP date.
pub fn now() -> HeaderValue {
    thread_local! {
        static CACHED: RefCell<(u64, HeaderValue)> =
            const { RefCell::new((u64::MAX, HeaderValue::from_static(""))) };
    }
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            let text = bytes::Bytes::from(httpdate::fmt_http_date(now));
            // An HTTP date is visible ASCII and spaces, always a valid field value.
            if let Ok(value) = HeaderValue::from_maybe_shared(text) {
                *cached = (second, value);
            }
        }
        cached.1.clone()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_date_is_an_http_date_of_now() {
        let value = super::now();
        let parsed = httpdate::parse_http_date(value.to_str().expect("ASCII")).expect("a date");
        let off = std::time::SystemTime::now()
            .duration_since(parsed)
            .expect("not in the future");
        assert!(off.as_secs() <= 1, "{value:?} is {off:?} old");
    }
}
