//! AWS Signature Version 4 for presigned URLs (query-string authentication), with extra signed
//! headers so that the URL only accepts the content type and length it was made for.

use super::time::amz_date;
use aws_lc_rs::{digest, hmac};
use std::time::{Duration, SystemTime};

/// Credentials and scope of one bucket.
pub struct Credentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
}

/// One request to presign.
pub struct Request<'a> {
    pub method: &'a str,
    /// `host` or `host:port` exactly as the client will send it.
    pub host: &'a str,
    /// Path before encoding, e.g. `/bucket/scans/u/1.ply`.
    pub path: &'a str,
    /// Signed headers besides `host`, names in lower case.
    pub headers: &'a [(&'a str, String)],
}

/// Returns the path and query string (`/bucket/key?X-Amz-...`) of a presigned URL.
pub fn presign(
    creds: &Credentials<'_>,
    req: &Request<'_>,
    now: SystemTime,
    expires_in: Duration,
) -> String {
    let (date, stamp) = amz_date(now);
    let scope = format!("{date}/{}/s3/aws4_request", creds.region);
    let mut headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|(n, v)| (*n, v.trim()))
        .chain([("host", req.host)])
        .collect();
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();

    let mut query = [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_owned()),
        (
            "X-Amz-Credential",
            format!("{}/{scope}", creds.access_key_id),
        ),
        ("X-Amz-Date", stamp.clone()),
        ("X-Amz-Expires", expires_in.as_secs().to_string()),
        ("X-Amz-SignedHeaders", signed_headers.clone()),
    ];
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k, true), encode(v, true)))
        .collect::<Vec<_>>()
        .join("&");
    let canonical_path = encode(req.path, false);
    let canonical_request = format!(
        "{}\n{canonical_path}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\nUNSIGNED-PAYLOAD",
        req.method
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref())
    );
    let mut key = format!("AWS4{}", creds.secret_access_key).into_bytes();
    for part in [date.as_str(), creds.region, "s3", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
    format!("{canonical_path}?{canonical_query}&X-Amz-Signature={signature}")
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, data).as_ref().to_vec()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// URI-encodes as SigV4 wants: unreserved characters stay, everything else is `%XX`; `/` stays
/// in paths.
pub fn encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    /// The presigned GET example of the Amazon S3 SigV4 documentation ("Authenticating
    /// Requests: Using Query Parameters"), which publishes its signature.
    #[test]
    fn matches_the_published_example() {
        let creds = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
        };
        let req = Request {
            method: "GET",
            host: "examplebucket.s3.amazonaws.com",
            path: "/test.txt",
            headers: &[],
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_369_353_600); // 2013-05-24T00:00:00Z
        let url = presign(&creds, &req, now, Duration::from_secs(86_400));
        assert!(
            url.ends_with(
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            ),
            "{url}"
        );
    }

    #[test]
    fn encodes_like_sigv4() {
        assert_eq!(encode("a b/c~d+e", false), "a%20b/c~d%2Be");
        assert_eq!(encode("a/b", true), "a%2Fb");
    }
}
