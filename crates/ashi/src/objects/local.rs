//! Signed URLs for the local directory store, checked by ashi's own HTTP side
//! ([`super::http`]). They work like S3's presigned URLs: an HMAC-SHA256 over the method, the
//! object key, the expiry and, for uploads, the content type and length, so a URL cannot be
//! reused for another object, after its time, or for a different file.

use super::sigv4::{encode, hex};
use aws_lc_rs::hmac;
use std::time::SystemTime;

/// Signs and checks local object URLs with one key.
pub struct UrlSigner {
    /// Base URL of ashi's HTTP side, without a trailing slash.
    base: String,
    key: hmac::Key,
}

/// Why a signed URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the URL has no valid expires or signature parameter")]
    Malformed,
    #[error("the URL has expired")]
    Expired,
    #[error("the signature does not match the request")]
    BadSignature,
}

/// The path prefix under which the HTTP side serves objects.
pub const PATH_PREFIX: &str = "/objects/";

impl UrlSigner {
    pub fn new(base: &str, key: Vec<u8>) -> Self {
        UrlSigner {
            base: base.trim_end_matches('/').to_owned(),
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
        }
    }

    fn string_to_sign(method: &str, key: &str, expires: u64, ct: &str, len: &str) -> String {
        format!("ashi-object-url-v1\n{method}\n{key}\n{expires}\n{ct}\n{len}")
    }

    fn url(&self, method: &str, key: &str, expires: u64, ct: &str, len: &str) -> String {
        let data = Self::string_to_sign(method, key, expires, ct, len);
        let signature = hex(hmac::sign(&self.key, data.as_bytes()).as_ref());
        format!(
            "{}{PATH_PREFIX}{}?expires={expires}&signature={signature}",
            self.base,
            encode(key, false)
        )
    }

    /// A PUT URL for exactly `content_length` bytes of `content_type`.
    pub fn sign_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        expires_at: SystemTime,
    ) -> String {
        let expires = super::time::unix_secs(expires_at);
        self.url(
            "PUT",
            key,
            expires,
            content_type,
            &content_length.to_string(),
        )
    }

    /// A GET URL.
    pub fn sign_get(&self, key: &str, expires_at: SystemTime) -> String {
        self.url("GET", key, super::time::unix_secs(expires_at), "", "")
    }

    /// Checks a request: `query` is the URL's query string, `content_type` and
    /// `content_length` the request's headers (empty for GET).
    pub fn verify(
        &self,
        method: &str,
        key: &str,
        query: &str,
        content_type: &str,
        content_length: &str,
        now: SystemTime,
    ) -> Result<(), Refusal> {
        let mut expires = None;
        let mut signature = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("expires", v)) => expires = v.parse::<u64>().ok(),
                Some(("signature", v)) => signature = unhex(v),
                _ => {}
            }
        }
        let (Some(expires), Some(signature)) = (expires, signature) else {
            return Err(Refusal::Malformed);
        };
        let data = Self::string_to_sign(method, key, expires, content_type, content_length);
        hmac::verify(&self.key, data.as_bytes(), &signature).map_err(|_| Refusal::BadSignature)?;
        if super::time::unix_secs(now) > expires {
            return Err(Refusal::Expired);
        }
        Ok(())
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parts(url: &str) -> (&str, &str) {
        let rest = url.strip_prefix("http://ashi.test/objects/").unwrap();
        rest.split_once('?').unwrap()
    }

    #[test]
    fn a_url_verifies_only_for_what_it_was_made_for() {
        let signer = UrlSigner::new("http://ashi.test/", b"k".to_vec());
        let now = SystemTime::now();
        let url = signer.sign_put(
            "scans/u/1.ply",
            "model/ply",
            42,
            now + Duration::from_secs(60),
        );
        let (key, query) = parts(&url);
        assert_eq!(key, "scans/u/1.ply");
        assert_eq!(
            signer.verify("PUT", key, query, "model/ply", "42", now),
            Ok(())
        );
        assert_eq!(
            signer.verify("PUT", key, query, "model/ply", "43", now),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            signer.verify("PUT", key, query, "image/png", "42", now),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            signer.verify("PUT", "scans/u/2.ply", query, "model/ply", "42", now),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            signer.verify("GET", key, query, "", "", now),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            signer.verify(
                "PUT",
                key,
                query,
                "model/ply",
                "42",
                now + Duration::from_secs(120)
            ),
            Err(Refusal::Expired)
        );
        let later = query.replace("expires=", "expires=9");
        assert_eq!(
            signer.verify("PUT", key, &later, "model/ply", "42", now),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            signer.verify("PUT", key, "expires=1", "model/ply", "42", now),
            Err(Refusal::Malformed)
        );
        let other = UrlSigner::new("http://ashi.test", b"other".to_vec());
        assert_eq!(
            other.verify("PUT", key, query, "model/ply", "42", now),
            Err(Refusal::BadSignature)
        );
    }
}
