//! The conditions of one route.

use http::header::HeaderName;
use http::{HeaderMap, Method};
use regex::Regex;

use crate::config::model;

/// What a route can be matched on, taken from the request once.
pub struct RequestFacts<'a> {
    /// Host without port, lower case.
    pub host: &'a str,
    /// Path without query.
    pub path: &'a str,
    /// Request method.
    pub method: &'a Method,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// Service and method of a gRPC (or gRPC-Web) call.
    pub grpc: Option<(&'a str, &'a str)>,
}

enum Host {
    Exact(String),
    /// `*.example.com` stored as `.example.com`: any name ending in it.
    Suffix(String),
}

enum PathCond {
    Exact(String),
    Prefix(String),
    Regex(Regex),
}

enum HeaderCond {
    Exact(String),
    Present(bool),
    Regex(Regex),
}

/// All conditions of a route; absent ones always hold.
pub struct Matcher {
    host: Option<Host>,
    path: Option<PathCond>,
    method: Option<Method>,
    headers: Vec<(HeaderName, HeaderCond)>,
    grpc_service: Option<String>,
    grpc_method: Option<String>,
}

impl Matcher {
    /// Compiles the match section of a route.
    pub fn compile(m: &model::Match) -> Result<Self, String> {
        let host = m.host.as_ref().map(|h| {
            let h = h.to_ascii_lowercase();
            match h.strip_prefix('*') {
                Some(suffix) => Host::Suffix(suffix.to_owned()),
                None => Host::Exact(h),
            }
        });
        let path = if let Some(p) = &m.path {
            Some(PathCond::Exact(p.to_string()))
        } else if let Some(p) = &m.path_prefix {
            Some(PathCond::Prefix(p.to_string()))
        } else {
            m.path_regex
                .as_ref()
                .map(|r| PathCond::Regex(anchored(&r.get().0)))
        };
        let method = m
            .method
            .as_ref()
            .map(|v| Method::from_bytes(v.as_bytes()).map_err(|e| e.to_string()))
            .transpose()?;
        let headers = m
            .headers
            .iter()
            .map(|h| {
                let name =
                    HeaderName::from_bytes(h.name.value.as_bytes()).map_err(|e| e.to_string())?;
                let cond = match (&h.exact, h.present, &h.regex) {
                    (Some(v), _, _) => HeaderCond::Exact(v.to_string()),
                    (None, Some(p), _) => HeaderCond::Present(p),
                    (None, None, Some(r)) => HeaderCond::Regex(anchored(&r.get().0)),
                    (None, None, None) => HeaderCond::Present(true),
                };
                Ok((name, cond))
            })
            .collect::<Result<_, String>>()?;
        Ok(Matcher {
            host,
            path,
            method,
            headers,
            grpc_service: m.grpc_service.as_ref().map(|s| s.to_string()),
            grpc_method: m.grpc_method.as_ref().map(|s| s.to_string()),
        })
    }

    /// Whether every condition holds for the request.
    pub fn matches(&self, facts: &RequestFacts<'_>) -> bool {
        let host = match &self.host {
            None => true,
            Some(Host::Exact(h)) => facts.host == h,
            Some(Host::Suffix(s)) => facts.host.len() > s.len() && facts.host.ends_with(s.as_str()),
        };
        let path = match &self.path {
            None => true,
            Some(PathCond::Exact(p)) => facts.path == p,
            Some(PathCond::Prefix(p)) => facts.path.starts_with(p.as_str()),
            Some(PathCond::Regex(r)) => r.is_match(facts.path),
        };
        let method = self.method.as_ref().is_none_or(|m| m == facts.method);
        let grpc = match (&self.grpc_service, &self.grpc_method, facts.grpc) {
            (None, None, _) => true,
            (_, _, None) => false,
            (service, method, Some((s, m))) => {
                service.as_deref().is_none_or(|want| want == s)
                    && method.as_deref().is_none_or(|want| want == m)
            }
        };
        host && path && method && grpc && self.headers_match(facts.headers)
    }

    fn headers_match(&self, headers: &HeaderMap) -> bool {
        self.headers.iter().all(|(name, cond)| {
            let value = headers.get(name).and_then(|v| v.to_str().ok());
            match cond {
                HeaderCond::Present(want) => headers.contains_key(name) == *want,
                HeaderCond::Exact(want) => value == Some(want.as_str()),
                HeaderCond::Regex(r) => value.is_some_and(|v| r.is_match(v)),
            }
        })
    }
}

/// The configured pattern must match the whole value, as operators of Envoy expect.
fn anchored(pattern: &Regex) -> Regex {
    Regex::new(&format!("^(?:{})$", pattern.as_str())).unwrap_or_else(|_| pattern.clone())
}
