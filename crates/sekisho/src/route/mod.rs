//! The compiled route table: conditions checked in file order, first match wins.

mod matcher;

use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use rand::Rng;

pub use matcher::{Matcher, RequestFacts};

use crate::adapt::transcode::Transcoding;
use crate::config::model;
use crate::policy::ip_acl::IpAcl;
use crate::policy::jwt::{Providers, RouteJwt};
use crate::policy::rate_limit::{RateLimit, Stores};
use crate::policy::waf::Waf;
use crate::proxy::cors::Cors;
use crate::proxy::mirror::MirrorPolicy;
use crate::upstream::Cluster;
use crate::upstream::retry::RetryPolicy;

/// Default bound on waiting for an upstream's response headers.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// One route, ready to match and act on.
pub struct Route {
    /// As configured; shows in logs and metrics.
    pub name: Arc<str>,
    matcher: Matcher,
    target: Target,
    /// The path prefix to replace and its replacement.
    pub rewrite: Option<(String, String)>,
    /// Edits to the request sent upstream.
    pub request_headers: HeaderEdits,
    /// Edits to the response sent to the client.
    pub response_headers: HeaderEdits,
    /// Bound on waiting for the upstream's response headers; `None` waits forever.
    pub timeout: Option<Duration>,
    /// Which failed attempts are tried again.
    pub retry: Option<RetryPolicy>,
    /// Copies of requests for a shadow cluster.
    pub mirror: Option<MirrorPolicy>,
    /// REST/JSON callers translated to gRPC.
    pub transcode: Option<Transcoding>,
    /// The token a request must carry.
    pub jwt: Option<RouteJwt>,
    /// gRPC-Web requests are translated to gRPC (else passed through as they are).
    pub grpc_web: bool,
    /// Which other sites' pages may call the route; `None` allows none.
    pub cors: Option<Cors>,
    /// Clients allowed on the route.
    pub ip_acl: Option<IpAcl>,
    /// Requests per key over time.
    pub rate_limit: Option<RateLimit>,
    /// Largest request body.
    pub max_body_bytes: Option<u64>,
    /// Bound on the whole exchange.
    pub max_duration: Option<Duration>,
    /// The web application firewall; set by the snapshot, which shares rule sets
    /// between routes.
    pub waf: Option<Arc<Waf>>,
}

enum Target {
    One(Arc<Cluster>),
    /// Clusters with the running sum of weights up to and including each.
    Weighted(Vec<(Arc<Cluster>, u64)>),
}

impl Target {
    /// Whether every cluster speaks HTTP/2, as gRPC needs.
    fn speaks_http2(&self) -> bool {
        let h2 = |c: &Cluster| c.protocol != model::Protocol::Http1;
        match self {
            Target::One(cluster) => h2(cluster),
            Target::Weighted(list) => list.iter().all(|(cluster, _)| h2(cluster)),
        }
    }
}

/// Headers to set and to remove.
#[derive(Default)]
pub struct HeaderEdits {
    /// Set, replacing earlier values.
    pub add: Vec<(HeaderName, HeaderValue)>,
    /// Removed.
    pub remove: Vec<HeaderName>,
}

impl HeaderEdits {
    /// Applies the edits: removals first, so `add` wins for a header named in both.
    pub fn apply(&self, headers: &mut http::HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.add {
            headers.insert(name.clone(), value.clone());
        }
    }

    fn compile(edits: &model::HeaderEdits) -> Result<Self, String> {
        let add = edits
            .add
            .iter()
            .map(|(name, value)| {
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
                let value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
                Ok((name, value))
            })
            .collect::<Result<_, String>>()?;
        let remove = edits
            .remove
            .iter()
            .map(|name| HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string()))
            .collect::<Result<_, String>>()?;
        Ok(HeaderEdits { add, remove })
    }
}

impl Route {
    /// Compiles a route; `cluster` looks up clusters by name, `providers` are the JWT
    /// providers a route's `jwt` may name, `stores` the stores its `rate_limit` may share.
    pub fn compile(
        spec: &model::Route,
        cluster: impl Fn(&str) -> Option<Arc<Cluster>>,
        providers: &Providers,
        stores: &Stores,
        files: &mut Vec<std::path::PathBuf>,
    ) -> Result<Self, String> {
        let find = |name: &str| cluster(name).ok_or_else(|| format!("unknown cluster {name:?}"));
        let target = match &spec.to.value {
            model::Target::Cluster(name) => Target::One(find(name)?),
            model::Target::Weighted(weights) => {
                let mut sum = 0u64;
                let mut list = Vec::new();
                for (name, weight) in weights.iter().filter(|(_, w)| **w > 0) {
                    sum += u64::from(*weight);
                    list.push((find(name)?, sum));
                }
                Target::Weighted(list)
            }
        };
        let m = &spec.matches;
        let rewrite = spec.rewrite.as_ref().and_then(|r| {
            let from = m.path_prefix.as_ref().or(m.path.as_ref())?;
            Some((from.to_string(), r.path_prefix.value.to_string()))
        });
        let timeout = match &spec.timeout {
            None => Some(DEFAULT_TIMEOUT),
            Some(d) if d.get().0.is_zero() => None,
            Some(d) => Some(d.get().0),
        };
        let grpc_web = spec
            .grpc_web
            .as_ref()
            .map_or_else(|| target.speaks_http2(), |g| g.enabled);
        let transcode = match &spec.transcode {
            Some(t) => {
                let clusters: Vec<&Arc<Cluster>> = match &target {
                    Target::One(c) => vec![c],
                    Target::Weighted(list) => list.iter().map(|(c, _)| c).collect(),
                };
                if let Some(c) = clusters
                    .iter()
                    .find(|c| c.protocol == model::Protocol::Http1)
                {
                    return Err(format!(
                        "transcoding sends gRPC: cluster {:?} must use `protocol: h2c` or `h2`",
                        &*c.name
                    ));
                }
                let compiled = Transcoding::compile(&spec.name.value, t)
                    .map_err(|e| format!("transcode: {e}"))?;
                Some(compiled)
            }
            None => None,
        };
        let jwt = match &spec.jwt {
            Some(rule) => Some(RouteJwt::compile(rule, providers)?),
            None => None,
        };
        Ok(Route {
            name: Arc::from(&*spec.name.value),
            matcher: Matcher::compile(m)?,
            target,
            rewrite,
            request_headers: HeaderEdits::compile(&spec.request_headers)?,
            response_headers: HeaderEdits::compile(&spec.response_headers)?,
            timeout,
            transcode,
            jwt,
            ip_acl: spec
                .ip_acl
                .as_ref()
                .map(|acl| IpAcl::compile(acl, files))
                .transpose()
                .map_err(|e| format!("ip_acl: {e}"))?,
            rate_limit: spec
                .rate_limit
                .as_ref()
                .map(|limit| RateLimit::compile(&spec.name.value, limit, stores))
                .transpose()
                .map_err(|e| format!("rate_limit: {e}"))?,
            max_body_bytes: spec.max_body_bytes,
            max_duration: spec
                .max_duration
                .as_ref()
                .map(|d| d.get().0)
                .filter(|d| !d.is_zero()),
            retry: spec.retry.as_ref().map(RetryPolicy::from_config),
            mirror: match &spec.mirror {
                Some(m) => Some(MirrorPolicy {
                    cluster: find(&m.cluster.value)?,
                    ratio: m.percent / 100.0,
                }),
                None => None,
            },
            grpc_web,
            cors: spec.cors.as_ref().map(Cors::compile).transpose()?,
            waf: None,
        })
    }

    /// Whether the route's WAF runs the response phases.
    pub fn waf_inspects_responses(&self) -> bool {
        self.waf.as_ref().is_some_and(|w| w.inspects_responses())
    }

    /// The cluster for one request (a weighted route draws one by weight).
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        match &self.target {
            Target::One(cluster) => Some(cluster),
            Target::Weighted(list) => {
                let total = list.last()?.1;
                let ticket = rand::rng().random_range(0..total);
                let index = list.partition_point(|(_, sum)| *sum <= ticket);
                list.get(index).map(|(cluster, _)| cluster)
            }
        }
    }

    /// The upstream path after any prefix rewrite, joined with one slash where the
    /// replacement and the rest meet (`/api` -> `/` on `/api/x` is `/x`, not `//x`).
    pub fn rewrite_path<'a>(&self, path: &'a str) -> std::borrow::Cow<'a, str> {
        match &self.rewrite {
            Some((from, to)) if path.starts_with(from.as_str()) => {
                let rest = &path[from.len()..];
                let rest = match (to.ends_with('/'), rest.strip_prefix('/')) {
                    (true, Some(rest)) => rest,
                    _ => rest,
                };
                let lead = if to.starts_with('/') || rest.starts_with('/') {
                    ""
                } else {
                    "/"
                };
                std::borrow::Cow::Owned(format!("{lead}{to}{rest}"))
            }
            _ => std::borrow::Cow::Borrowed(path),
        }
    }
}

/// All routes in file order.
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// A table of compiled routes.
    pub fn new(routes: Vec<Route>) -> Self {
        RouteTable { routes }
    }

    /// The first route whose conditions all hold.
    pub fn find(&self, facts: &RequestFacts<'_>) -> Option<&Route> {
        self.routes.iter().find(|r| r.matcher.matches(facts))
    }
}
