//! Headers the gateway vouches for: who the caller is, as a backend may trust it.
//!
//! A backend behind the gateway believes `x-user-id` (or whatever the config names) only
//! because no client can set it. Two rules keep that true. Internal headers are removed from
//! every client request on arrival, before routing, so a client copy never reaches a route,
//! a policy or a backend. And the values policy earns for a request (forwarded claims) are
//! written onto the upstream request last, after hop-by-hop headers are stripped and after
//! every adapter rebuilt the head, so neither a `Connection` header nor an adapter can drop
//! them.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

use crate::config::model::Config;
use serde_saphyr::Spanned;

use crate::config::Problem;
use crate::config::text::Text;

/// Header names only the gateway may give a value.
#[derive(Clone, Debug, Default)]
pub struct InternalHeaders {
    names: Vec<HeaderName>,
}

impl InternalHeaders {
    /// The config's `internal_headers` and every header a route's `jwt.forward_claims`
    /// names; a name that is not a header name is a problem at its line.
    pub fn compile(config: &Config, problems: &mut Vec<Problem>) -> Self {
        let mut names: Vec<HeaderName> = Vec::new();
        for (i, name) in config.internal_headers.iter().enumerate() {
            match header_name(name) {
                Ok(name) => names.push(name),
                Err(e) => problems.push(Problem::on(name, format!("internal_headers[{i}]"), e)),
            }
        }
        let forwarded = config
            .routes
            .iter()
            .filter_map(|route| route.jwt.as_ref())
            .flat_map(|jwt| jwt.forward_claims.values())
            .filter_map(|header| HeaderName::from_bytes(header.as_bytes()).ok());
        names.extend(forwarded);
        names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        names.dedup();
        // A condition on an internal header would only ever see it absent: a route written
        // to admit a client by it would admit everyone (`present: false`) or no one.
        for (i, route) in config.routes.iter().enumerate() {
            for (j, condition) in route.matches.headers.iter().enumerate() {
                let name = HeaderName::from_bytes(condition.name.value.as_bytes()).ok();
                if name.is_some_and(|name| names.contains(&name)) {
                    problems.push(Problem::on(
                        &condition.name,
                        format!("routes[{i}].match.headers[{j}].name"),
                        "an internal header: clients cannot send it, so no route condition \
                         can see it",
                    ));
                }
            }
        }
        InternalHeaders { names }
    }

    /// Removes every client copy of an internal header, and look-alikes written with `_`
    /// for `-` (`x_user_id`): CGI-style backends (nginx variables, WSGI, PHP) read both
    /// as the same variable.
    pub fn strip(&self, headers: &mut HeaderMap) {
        if self.names.is_empty() {
            return;
        }
        for name in &self.names {
            headers.remove(name);
        }
        let lookalikes: Vec<HeaderName> = headers
            .keys()
            .filter(|key| key.as_str().contains('_'))
            .filter(|key| {
                self.names
                    .iter()
                    .any(|name| same_but_underscores(name, key))
            })
            .cloned()
            .collect();
        for key in lookalikes {
            headers.remove(key);
        }
    }
}

/// Whether `key` is `name` with some `-` written `_`.
fn same_but_underscores(name: &HeaderName, key: &HeaderName) -> bool {
    let (name, key) = (name.as_str().as_bytes(), key.as_str().as_bytes());
    name.len() == key.len()
        && name
            .iter()
            .zip(key)
            .all(|(n, k)| n == k || (*n == b'-' && *k == b'_'))
}

fn header_name(name: &Spanned<Text>) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.value.as_bytes())
        .map_err(|_| format!("{:?} is not a header name", name.value.display()))
}

/// The headers policy earned for one request, written onto its upstream request last.
#[derive(Clone, Debug, Default)]
pub struct Vouched {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Vouched {
    /// Adds a header to write.
    pub fn push(&mut self, name: HeaderName, value: HeaderValue) {
        self.headers.push((name, value));
    }

    /// Writes the headers, replacing whatever the request holds under those names.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(yaml: &str) -> (InternalHeaders, Vec<Problem>) {
        let config = crate::config::parse(yaml).expect("parses");
        let mut problems = Vec::new();
        (InternalHeaders::compile(&config, &mut problems), problems)
    }

    #[test]
    fn listed_and_forwarded_headers_are_stripped_and_others_stay() {
        let (internal, problems) = compile(
            r#"
internal_headers: [X-Ashi-Service]
routes:
  - name: app
    jwt: { provider: p, forward_claims: { sub: x-user-id } }
    to: a
"#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let mut headers = HeaderMap::new();
        headers.append("x-user-id", HeaderValue::from_static("alice"));
        headers.append("x-user-id", HeaderValue::from_static("bob"));
        headers.insert("x-ashi-service", HeaderValue::from_static("partner"));
        headers.insert("x-tenant", HeaderValue::from_static("acme"));
        headers.insert("x_user_id", HeaderValue::from_static("alice"));
        headers.insert("x-ashi_service", HeaderValue::from_static("partner"));
        headers.insert("x_tenant", HeaderValue::from_static("acme"));
        internal.strip(&mut headers);
        assert!(headers.get("x-user-id").is_none());
        assert!(headers.get("x_user_id").is_none(), "a CGI look-alike");
        assert!(headers.get("x-ashi_service").is_none(), "a CGI look-alike");
        assert_eq!(headers["x_tenant"], "acme");
        assert!(headers.get("x-ashi-service").is_none());
        assert_eq!(headers["x-tenant"], "acme");
    }

    #[test]
    fn a_route_condition_on_an_internal_header_is_a_config_error() {
        let (_, problems) = compile(
            r#"
internal_headers: [x-ashi-service]
routes:
  - name: gate
    match: { headers: [{ name: X-Ashi-Service, exact: partner }] }
    to: a
"#,
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field, "routes[0].match.headers[0].name");
        assert_eq!(problems[0].line, 5);

        let (_, problems) = compile("internal_headers: [\"not a name\"]\n");
        assert_eq!(problems[0].field, "internal_headers[0]");
    }
}
