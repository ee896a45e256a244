//! Regular fields a peer has already sent on this connection, kept validated.
//!
//! A peer repeats most of its fields on every message (`user-agent`, `accept`,
//! `server`, `content-type`, `grpc-status`), and HPACK hands them over as raw
//! bytes each time. Checking them again and copying them into a fresh
//! `HeaderValue` cost about a third of the work of receiving a small message; a
//! field found here is a reference-count increment instead.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery};

use crate::headers::{Fault, regular};

/// How many fields are kept: more than the repeating fields of a typical message,
/// few enough that a miss costs a short scan of lengths.
const SLOTS: usize = 16;

/// Fields longer than this (name and value) are not kept: long values rarely
/// repeat verbatim, and the bound keeps the cache's memory small per connection.
const MAX_KEPT_LEN: usize = 128;

/// A small set of validated fields with second-chance (CLOCK) replacement, so
/// fields that repeat survive the one-off values (`date`, request ids) passing
/// through.
#[derive(Debug, Default)]
pub(crate) struct Known {
    slots: Vec<Slot>,
    hand: usize,
    /// The last `:authority` (or `Host` standing in for it) parsed: a client sends
    /// one on every request, nearly always the same.
    authority: Option<Authority>,
    /// The last `:path` parsed: a gRPC client calls few methods, often one.
    path: Option<PathAndQuery>,
}

#[derive(Debug)]
struct Slot {
    /// Name and value lengths, compared before any bytes.
    lens: (u32, u32),
    name: HeaderName,
    value: HeaderValue,
    used: bool,
}

impl Known {
    /// Validates and converts a regular field (as [`regular`] does), reusing the
    /// conversion of an identical earlier field. Fields the peer marked
    /// never-indexed are not kept.
    pub(crate) fn regular(
        &mut self,
        name: &[u8],
        value: &[u8],
        sensitive: bool,
    ) -> Result<(HeaderName, HeaderValue), Fault> {
        let lens = (name.len() as u32, value.len() as u32);
        if let Some(slot) = self.slots.iter_mut().find(|slot| {
            slot.lens == lens
                && slot.value.as_bytes() == value
                && slot.name.as_str().as_bytes() == name
        }) {
            slot.used = true;
            return Ok((slot.name.clone(), slot.value.clone()));
        }
        let (name, value) = regular(name, value)?;
        if !sensitive && name.as_str().len() + value.len() <= MAX_KEPT_LEN {
            self.keep(lens, &name, &value);
        }
        Ok((name, value))
    }

    /// Parses a request's authority, reusing the last one when it is the same.
    pub(crate) fn authority(&mut self, value: &[u8]) -> Result<Authority, Fault> {
        if let Some(last) = &self.authority
            && last.as_str().as_bytes() == value
        {
            return Ok(last.clone());
        }
        let authority = Authority::try_from(value).map_err(|_| "invalid :authority")?;
        if value.len() <= MAX_KEPT_LEN {
            self.authority = Some(authority.clone());
        }
        Ok(authority)
    }

    /// Parses a request's path, reusing the last one when it is the same.
    pub(crate) fn path(&mut self, value: &[u8]) -> Result<PathAndQuery, Fault> {
        if let Some(last) = &self.path
            && last.as_str().as_bytes() == value
        {
            return Ok(last.clone());
        }
        let path = PathAndQuery::from_maybe_shared(Bytes::copy_from_slice(value))
            .map_err(|_| "invalid :path")?;
        if value.len() <= MAX_KEPT_LEN {
            self.path = Some(path.clone());
        }
        Ok(path)
    }

    fn keep(&mut self, lens: (u32, u32), name: &HeaderName, value: &HeaderValue) {
        let slot = Slot {
            lens,
            name: name.clone(),
            value: value.clone(),
            used: false,
        };
        if self.slots.len() < SLOTS {
            self.slots.push(slot);
            return;
        }
        // Each full turn clears every flag, so this ends within two turns.
        loop {
            let hand = self.hand;
            self.hand = (hand + 1) % SLOTS;
            let candidate = &mut self.slots[hand];
            if candidate.used {
                candidate.used = false;
            } else {
                *candidate = slot;
                return;
            }
        }
    }

    /// Drops every kept field, for a connection gone quiet.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_field_is_the_same_value_shared() {
        let mut known = Known::default();
        let (_, first) = known.regular(b"server", b"backend/1", false).unwrap();
        let (name, second) = known.regular(b"server", b"backend/1", false).unwrap();
        assert_eq!(name, http::header::SERVER);
        assert_eq!(second, "backend/1");
        // Shared, not copied: both point at the same bytes.
        assert_eq!(first.as_bytes().as_ptr(), second.as_bytes().as_ptr());
    }

    #[test]
    fn faults_are_found_whether_or_not_a_field_was_kept() {
        let mut known = Known::default();
        known.regular(b"te", b"trailers", false).unwrap();
        assert!(known.regular(b"te", b"gzip", false).is_err());
        assert!(known.regular(b"Server", b"x", false).is_err());
        assert!(known.regular(b"connection", b"close", false).is_err());
        assert!(known.regular(b"connection", b"close", false).is_err());
        assert!(known.regular(b"x-a", b" padded", false).is_err());
    }

    #[test]
    fn same_lengths_different_bytes_are_different_fields() {
        let mut known = Known::default();
        known.regular(b"x-a", b"one", false).unwrap();
        let (name, value) = known.regular(b"x-b", b"two", false).unwrap();
        assert_eq!((name.as_str(), value.as_bytes()), ("x-b", &b"two"[..]));
        let (name, value) = known.regular(b"x-a", b"two", false).unwrap();
        assert_eq!((name.as_str(), value.as_bytes()), ("x-a", &b"two"[..]));
    }

    #[test]
    fn a_repeated_authority_is_the_same_value_shared() {
        let mut known = Known::default();
        let first = known.authority(b"api.example.com:8443").unwrap();
        let second = known.authority(b"api.example.com:8443").unwrap();
        assert_eq!(second.as_str(), "api.example.com:8443");
        assert_eq!(
            first.as_str().as_ptr(),
            second.as_str().as_ptr(),
            "shared, not parsed again"
        );
        let other = known.authority(b"other.example.com").unwrap();
        assert_eq!(other.as_str(), "other.example.com");
        assert!(known.authority(b"bad host").is_err());
        assert!(known.authority(b"").is_err());
        // A bad one does not displace the good one kept.
        let again = known.authority(b"other.example.com").unwrap();
        assert_eq!(again.as_str().as_ptr(), other.as_str().as_ptr());
    }

    #[test]
    fn a_repeated_path_is_the_same_value_shared() {
        let mut known = Known::default();
        let first = known.path(b"/grpc.testing.TestService/UnaryCall").unwrap();
        let second = known.path(b"/grpc.testing.TestService/UnaryCall").unwrap();
        assert_eq!(
            first.as_str().as_ptr(),
            second.as_str().as_ptr(),
            "shared, not parsed again"
        );
        let other = known.path(b"/v1/shoes?size=42").unwrap();
        assert_eq!(
            (other.path(), other.query()),
            ("/v1/shoes", Some("size=42"))
        );
        assert!(known.path(b"/a b").is_err());
        let again = known.path(b"/v1/shoes?size=42").unwrap();
        assert_eq!(again.as_str().as_ptr(), other.as_str().as_ptr());
    }

    #[test]
    fn sensitive_and_long_fields_are_not_kept() {
        let mut known = Known::default();
        known.regular(b"authorization", b"Bearer x", true).unwrap();
        known.regular(b"x-long", &[b'a'; 200], false).unwrap();
        assert!(known.slots.is_empty());
    }

    #[test]
    fn fields_in_use_outlive_one_off_values() {
        let mut known = Known::default();
        // Held so the first value's bytes cannot be freed and their address reused.
        let (_, first) = known.regular(b"server", b"backend/1", false).unwrap();
        for round in 0..100 {
            let id = format!("{round:08}");
            known
                .regular(b"x-request-id", id.as_bytes(), false)
                .unwrap();
            let (_, again) = known.regular(b"server", b"backend/1", false).unwrap();
            assert_eq!(
                again.as_bytes().as_ptr(),
                first.as_bytes().as_ptr(),
                "round {round}: the repeating field was evicted by one-off values"
            );
        }
        assert_eq!(known.slots.len(), SLOTS);
    }
}
