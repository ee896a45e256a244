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
        InternalHeaders { names }
    }

    /// Removes every client copy of an internal header.
    pub fn strip(&self, headers: &mut HeaderMap) {
        for name in &self.names {
            headers.remove(name);
        }
    }

    /// Whether `name` is internal.
    pub fn contains(&self, name: &HeaderName) -> bool {
        self.names.contains(name)
    }
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
