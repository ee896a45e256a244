//! Where a token travels in a request (a header, a cookie, a query parameter), how it is
//! taken out, and the parts of a compact JWS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::uri::{self, PathAndQuery};
use serde_json::{Map, Value};

use super::verify::Algorithm;

/// One place a provider looks for its token.
pub enum Place {
    /// A header, with text before the token (`Bearer `) compared without regard to case.
    Header {
        /// Header name.
        name: HeaderName,
        /// Text before the token.
        prefix: String,
    },
    /// A cookie of this name.
    Cookie(String),
    /// A query parameter of this name.
    Query(String),
}

impl Place {
    /// The token at this place, if the request carries one.
    pub fn find(&self, parts: &Parts) -> Option<String> {
        match self {
            Place::Header { name, prefix } => {
                let value = parts.headers.get(name)?.to_str().ok()?;
                let head = value.get(..prefix.len())?;
                head.eq_ignore_ascii_case(prefix)
                    .then(|| value[prefix.len()..].trim().to_owned())
                    .filter(|t| !t.is_empty())
            }
            Place::Cookie(name) => parts
                .headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .find_map(|pair| {
                    let (key, value) = pair.trim().split_once('=')?;
                    (key == name).then(|| value.trim_matches('"').to_owned())
                }),
            Place::Query(name) => parts.uri.query()?.split('&').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                (key == name).then(|| value.to_owned())
            }),
        }
    }

    /// Removes the token from this place, so the upstream never sees it.
    pub fn strip(&self, parts: &mut Parts) {
        match self {
            Place::Header { name, .. } => {
                parts.headers.remove(name);
            }
            Place::Cookie(name) => {
                let kept: Vec<String> = parts
                    .headers
                    .get_all(header::COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(';'))
                    .map(str::trim)
                    .filter(|pair| !pair.is_empty())
                    .filter(|pair| pair.split_once('=').is_none_or(|(key, _)| key != name))
                    .map(str::to_owned)
                    .collect();
                parts.headers.remove(header::COOKIE);
                if !kept.is_empty()
                    && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
                {
                    parts.headers.insert(header::COOKIE, value);
                }
            }
            Place::Query(name) => {
                let Some(query) = parts.uri.query() else {
                    return;
                };
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| pair.split('=').next() != Some(name.as_str()))
                    .collect();
                let path_and_query = if kept.is_empty() {
                    parts.uri.path().to_owned()
                } else {
                    format!("{}?{}", parts.uri.path(), kept.join("&"))
                };
                let mut uri = uri::Parts::from(parts.uri.clone());
                match PathAndQuery::try_from(path_and_query) {
                    Ok(pq) => uri.path_and_query = Some(pq),
                    Err(_) => return,
                }
                if let Ok(rebuilt) = http::Uri::from_parts(uri) {
                    parts.uri = rebuilt;
                }
            }
        }
    }
}

/// A compact JWS taken apart; nothing in it is trusted until the signature verifies.
pub struct Jws<'a> {
    /// The header's `alg`, already known to be one the gateway accepts.
    pub alg: Algorithm,
    /// The header's `kid`.
    pub kid: Option<String>,
    /// `header.payload`, the bytes signed.
    pub signing_input: &'a str,
    /// The signature, base64url.
    pub signature: &'a str,
    payload: &'a str,
}

impl<'a> Jws<'a> {
    /// Splits and reads the header. The reason for a refusal names no part of the token.
    pub fn parse(token: &'a str) -> Result<Jws<'a>, String> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("token is not a compact JWS (three dot-separated parts)".into());
        };
        let header = decode_object(header).map_err(|e| format!("token header {e}"))?;
        let alg = match header.get("alg") {
            // A long name is not repeated: it is the client's text, bound for logs.
            Some(Value::String(alg)) => alg.parse::<Algorithm>().map_err(|e| match alg.len() {
                0..=16 => format!("token algorithm refused: {e}"),
                _ => "token algorithm refused: not one the gateway knows".to_owned(),
            })?,
            _ => return Err("token header has no `alg`".into()),
        };
        if header.contains_key("crit") {
            return Err("token header has critical extensions (`crit`), none are supported".into());
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err("token header `kid` is not a string".into()),
        };
        Ok(Jws {
            alg,
            kid,
            signing_input: &token[..header_len(token, payload)],
            signature,
            payload,
        })
    }

    /// The claims: read only after the signature verified.
    pub fn claims(&self) -> Result<Map<String, Value>, String> {
        decode_object(self.payload).map_err(|e| format!("token claims {e}"))
    }
}

/// Length of `header.payload` within the token.
fn header_len(token: &str, payload: &str) -> usize {
    token.find('.').map_or(0, |dot| dot + 1 + payload.len())
}

fn decode_object(part: &str) -> Result<Map<String, Value>, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| "are not base64url".to_owned())?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err("are not a JSON object".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = http::Request::get(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).expect("request").into_parts().0
    }

    #[test]
    fn bearer_prefix_is_case_insensitive() {
        let place = Place::Header {
            name: header::AUTHORIZATION,
            prefix: "Bearer ".into(),
        };
        let p = parts("/", &[("authorization", "bearer abc.def.ghi")]);
        assert_eq!(place.find(&p).as_deref(), Some("abc.def.ghi"));
        let p = parts("/", &[("authorization", "Basic dXNlcjpwYXNz")]);
        assert_eq!(place.find(&p), None);
    }

    #[test]
    fn cookie_strip_keeps_the_others() {
        let place = Place::Cookie("session".into());
        let mut p = parts("/", &[("cookie", "a=1; session=t.o.k; b=2")]);
        assert_eq!(place.find(&p).as_deref(), Some("t.o.k"));
        place.strip(&mut p);
        assert_eq!(p.headers[header::COOKIE], "a=1; b=2");
    }

    #[test]
    fn query_strip_keeps_the_others() {
        let place = Place::Query("access_token".into());
        let mut p = parts("/x?a=1&access_token=t.o.k&b=2", &[]);
        assert_eq!(place.find(&p).as_deref(), Some("t.o.k"));
        place.strip(&mut p);
        assert_eq!(p.uri.to_string(), "/x?a=1&b=2");
        let mut p = parts("/x?access_token=t.o.k", &[]);
        place.strip(&mut p);
        assert_eq!(p.uri.to_string(), "/x");
    }

    #[test]
    fn unsigned_tokens_are_refused_before_any_key_is_looked_at() {
        // {"alg":"none"}.{"sub":"x"}.
        let err = Jws::parse("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
            .err()
            .expect("refused");
        assert!(err.contains("never accepted"), "{err}");
    }
}
