//! What a verified token's claims must say: the registered claims every provider checks
//! (`exp`, `nbf`, `iss`, `aud`), a route's own requirements, and claims sent upstream.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::HeaderValue;
use serde_json::{Map, Value};

/// The registered-claim checks of one provider.
pub struct Registered {
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// `aud` must name one of these, when any.
    pub audiences: Vec<String>,
    /// Clock difference tolerated for `exp` and `nbf`.
    pub leeway: Duration,
}

impl Registered {
    /// Checks the claims at `now`. `exp` is required: a token that never expires cannot be
    /// taken back.
    pub fn check(&self, claims: &Map<String, Value>, now: SystemTime) -> Result<(), String> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let leeway = self.leeway.as_secs_f64();
        match claims.get("exp") {
            None => return Err("token has no `exp` claim".into()),
            Some(exp) => match exp.as_f64() {
                Some(exp) if now >= exp + leeway => return Err("token has expired".into()),
                Some(_) => {}
                None => return Err("token `exp` is not a number".into()),
            },
        }
        if let Some(nbf) = claims.get("nbf") {
            match nbf.as_f64() {
                Some(nbf) if now + leeway < nbf => return Err("token is not valid yet".into()),
                Some(_) => {}
                None => return Err("token `nbf` is not a number".into()),
            }
        }
        if let Some(issuer) = &self.issuer
            && claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str())
        {
            return Err("token is from another issuer (`iss`)".into());
        }
        if !self.audiences.is_empty() {
            let matches = |v: &Value| {
                v.as_str()
                    .is_some_and(|a| self.audiences.iter().any(|x| x == a))
            };
            let ok = match claims.get("aud") {
                Some(Value::Array(list)) => list.iter().any(matches),
                Some(aud) => matches(aud),
                None => false,
            };
            if !ok {
                return Err("token is for another audience (`aud`)".into());
            }
        }
        Ok(())
    }
}

/// A route's condition on one claim: it must hold one of `values` (or, as an array,
/// contain one of them).
pub struct Requirement {
    /// Claim name.
    pub claim: String,
    /// Accepted values, compared as text.
    pub values: Vec<String>,
}

impl Requirement {
    /// Checks the condition; the reason names the claim, never its value.
    pub fn check(&self, claims: &Map<String, Value>) -> Result<(), String> {
        let Some(value) = claims.get(&self.claim) else {
            return Err(format!("token has no {:?} claim", self.claim));
        };
        let accepted = |v: &Value| scalar_text(v).is_some_and(|t| self.values.contains(&t));
        let ok = match value {
            Value::Array(list) => list.iter().any(accepted),
            v => accepted(v),
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "token claim {:?} holds none of the values this route requires",
                self.claim
            ))
        }
    }
}

/// A string, number or boolean claim as text.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Claims RFC 7519 defines as strings: forwarded only when they are one.
const STRING_CLAIMS: [&str; 3] = ["sub", "iss", "jti"];

/// A claim as the header value a backend will read, or why it cannot be one: scalars as
/// text, arrays and objects as compact JSON. Refused: a missing claim, an empty value, a
/// value with bytes a header cannot carry (controls, tabs, non-ASCII), and one with leading
/// or trailing spaces, which HTTP trims, so the backend would read another value than
/// the token holds.
pub fn forwarded_value(claim: &str, value: Option<&Value>) -> Result<HeaderValue, &'static str> {
    let value = value.ok_or("is missing")?;
    if STRING_CLAIMS.contains(&claim) && !value.is_string() {
        return Err("is not a string");
    }
    let text = scalar_text(value).unwrap_or_else(|| value.to_string());
    if text.is_empty() {
        return Err("is empty");
    }
    if text.starts_with(' ') || text.ends_with(' ') {
        return Err("starts or ends with white space");
    }
    // Visible ASCII and inner spaces only: `HeaderValue` would also take bytes past ASCII,
    // which backends read differently (or not at all).
    if !text.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err("holds characters a header value cannot carry");
    }
    HeaderValue::from_str(&text).map_err(|_| "holds characters a header value cannot carry")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn forwarded_claims_fail_closed() {
        let ok = |claim: &str, v: Value| forwarded_value(claim, Some(&v));
        assert_eq!(ok("sub", json!("alice")).expect("a plain subject"), "alice");
        assert_eq!(ok("tenant", json!(42)).expect("a number"), "42");
        assert_eq!(
            ok("roles", json!(["a", "b"])).expect("JSON"),
            r#"["a","b"]"#
        );
        assert_eq!(forwarded_value("sub", None), Err("is missing"));
        for bad in [
            json!(""),
            json!(" alice"),
            json!("alice\t"),
            json!("alice\nx-admin: 1"),
            json!("al\u{0}ice"),
            json!("ålice"),
            json!({"id": "alice"}),
            json!(7),
        ] {
            assert!(ok("sub", bad.clone()).is_err(), "sub {bad} must be refused");
        }
    }

    #[test]
    fn leeway_covers_a_small_clock_difference() {
        let registered = Registered {
            issuer: None,
            audiences: vec![],
            leeway: Duration::from_secs(30),
        };
        let at = UNIX_EPOCH + Duration::from_secs(1_000);
        assert!(registered.check(&claims(json!({"exp": 990})), at).is_ok());
        assert!(registered.check(&claims(json!({"exp": 960})), at).is_err());
        assert!(
            registered
                .check(&claims(json!({"exp": 2000, "nbf": 1020})), at)
                .is_ok()
        );
        assert!(
            registered
                .check(&claims(json!({"exp": 2000, "nbf": 1040})), at)
                .is_err()
        );
        assert!(registered.check(&claims(json!({})), at).is_err());
    }

    #[test]
    fn array_claims_need_one_accepted_value() {
        let rule = Requirement {
            claim: "role".into(),
            values: vec!["admin".into()],
        };
        assert!(
            rule.check(&claims(json!({"role": ["user", "admin"]})))
                .is_ok()
        );
        assert!(rule.check(&claims(json!({"role": "user"}))).is_err());
        assert!(rule.check(&claims(json!({}))).is_err());
    }
}
