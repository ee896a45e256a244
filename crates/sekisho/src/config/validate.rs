//! Checks that need the whole file: unique names, references between sections, and
//! combinations of settings that cannot work together.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use http::header::{HeaderName, HeaderValue};
use rustls_pki_types::ServerName;

use super::Problem;
use super::jwt;
use super::model::{
    Cluster, Config, Listener, Protocol, RateLimitStore, RedisMode, RetryOn, Route, Target,
};

/// Every problem in the file, in file order; empty when the config is good.
pub fn check(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    if config.listeners.is_empty() {
        problems.push(Problem {
            file: None,
            line: 0,
            column: 0,
            field: "listeners".into(),
            message: "at least one listener is needed".into(),
        });
    }
    let mut names = HashSet::new();
    for (i, listener) in config.listeners.iter().enumerate() {
        check_listener(i, listener, &mut names, &mut problems);
    }
    let mut clusters = HashSet::new();
    for (i, cluster) in config.clusters.iter().enumerate() {
        check_cluster(i, cluster, &mut clusters, &mut problems);
    }
    let providers = jwt::check_providers(&config.jwt_providers, &mut problems);
    super::grant::check(config, &providers, &mut problems);
    let mut routes = HashSet::new();
    let protocols: HashMap<&str, Protocol> = config
        .clusters
        .iter()
        .map(|c| (&*c.name.value, c.protocol))
        .collect();
    let stores = check_stores(&config.rate_limit_stores, &mut problems);
    for (i, grant) in config.teams.iter().enumerate() {
        if let Some(limit) = &grant.policy.rate_limit {
            let at = format!("teams[{i}].policy.rate_limit.shared");
            check_shared(&at, limit, &stores, &mut problems);
        }
    }
    for (i, route) in config.routes.iter().enumerate() {
        check_route(i, route, &clusters, &mut routes, &mut problems);
        if let Some(limit) = &route.rate_limit {
            let at = format!("routes[{i}].rate_limit.shared");
            check_shared(&at, limit, &stores, &mut problems);
        }
        if let Some(rule) = &route.jwt {
            jwt::check_route(&format!("routes[{i}].jwt"), rule, &providers, &mut problems);
        }
        check_browser_access(i, route, &protocols, &mut problems);
    }
    problems.sort_by_key(|p| (p.line, p.column));
    problems
}

/// `host:port`, with a host and a port number.
fn is_host_port(address: &str) -> bool {
    address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

/// Checks the stores of shared rate limits; their names.
fn check_stores(stores: &[RateLimitStore], problems: &mut Vec<Problem>) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, store) in stores.iter().enumerate() {
        let at = |field: &str| format!("rate_limit_stores[{i}].{field}");
        if !names.insert(store.name.value.to_string()) {
            problems.push(Problem::on(
                &store.name,
                at("name"),
                format!("duplicate store name {:?}", &*store.name.value),
            ));
        }
        let redis = &store.redis;
        let address = &redis.address.value;
        if !is_host_port(address) {
            problems.push(Problem::on(
                &redis.address,
                at("redis.address"),
                format!("{:?} is not host:port", &**address),
            ));
        }
        if let Some(tls) = &redis.tls
            && tls.cert.is_some() != tls.key.is_some()
        {
            problems.push(Problem::on(
                &store.name,
                at("redis.tls"),
                "a client certificate needs both `cert` and `key`",
            ));
        }
        match (redis.mode, &redis.sentinel) {
            (RedisMode::Sentinel, None) => problems.push(Problem::on(
                &store.name,
                at("redis.sentinel"),
                "`mode: sentinel` needs `sentinel: { master: <name> }`",
            )),
            (RedisMode::Standalone | RedisMode::Cluster, Some(_)) => problems.push(Problem::on(
                &store.name,
                at("redis.sentinel"),
                "`sentinel` is for `mode: sentinel` only",
            )),
            (RedisMode::Sentinel, Some(sentinel)) => {
                for (j, other) in sentinel.others.iter().enumerate() {
                    if !is_host_port(other) {
                        problems.push(Problem::on(
                            &store.name,
                            at(&format!("redis.sentinel.others[{j}]")),
                            format!("{:?} is not host:port", &**other),
                        ));
                    }
                }
            }
            (RedisMode::Standalone | RedisMode::Cluster, None) => {}
        }
        if redis.mode == RedisMode::Cluster && redis.database != 0 {
            problems.push(Problem::on(
                &store.name,
                at("redis.database"),
                "a Redis Cluster has database 0 only",
            ));
        }
        if redis.connections == 0 || redis.connections > 64 {
            problems.push(Problem::on(
                &store.name,
                at("redis.connections"),
                "between 1 and 64 connections",
            ));
        }
        if redis.timeout.as_ref().is_some_and(|t| t.get().0.is_zero()) {
            problems.push(Problem::on(
                &store.name,
                at("redis.timeout"),
                "a store's calls need a timeout longer than 0",
            ));
        }
    }
    names
}

/// Checks that a shared rate limit names a store and counts in batches of at least one.
fn check_shared(
    at: &str,
    limit: &super::model::RateLimit,
    stores: &HashSet<String>,
    problems: &mut Vec<Problem>,
) {
    let Some(shared) = &limit.shared else { return };
    if !stores.contains(&*shared.store.value) {
        problems.push(Problem::on(
            &shared.store,
            format!("{at}.store"),
            format!(
                "no rate_limit_stores entry is named {:?}",
                &*shared.store.value
            ),
        ));
    }
    if shared.batch == Some(0) {
        problems.push(Problem::on(
            &shared.store,
            format!("{at}.batch"),
            "a batch of at least 1",
        ));
    }
    if shared
        .sync_every
        .as_ref()
        .is_some_and(|d| d.get().0.is_zero())
    {
        problems.push(Problem::on(
            &shared.store,
            format!("{at}.sync_every"),
            "must be longer than 0",
        ));
    }
}

fn check_listener(
    i: usize,
    listener: &Listener,
    names: &mut HashSet<String>,
    problems: &mut Vec<Problem>,
) {
    let name = &listener.name;
    if !names.insert(name.value.to_string()) {
        problems.push(Problem::on(
            name,
            format!("listeners[{i}].name"),
            format!("duplicate listener name {:?}", &*name.value),
        ));
    }
    if let Some(tls) = &listener.tls
        && tls.certificates.is_empty()
    {
        problems.push(Problem::on(
            name,
            format!("listeners[{i}].tls.certificates"),
            "a TLS listener needs at least one certificate",
        ));
    }
    let h2 = &listener.http2;
    if !(65_535..=(1 << 31) - 1).contains(&h2.initial_stream_window_size)
        || !(65_535..=(1 << 31) - 1).contains(&h2.initial_connection_window_size)
    {
        problems.push(Problem::on(
            name,
            format!("listeners[{i}].http2"),
            "window sizes must be between 65535 and 2147483647",
        ));
    }
}

pub(super) fn check_cluster(
    i: usize,
    cluster: &Cluster,
    names: &mut HashSet<String>,
    problems: &mut Vec<Problem>,
) {
    let name = &cluster.name;
    if !names.insert(name.value.to_string()) {
        problems.push(Problem::on(
            name,
            format!("clusters[{i}].name"),
            format!("duplicate cluster name {:?}", &*name.value),
        ));
    }
    if cluster.endpoints.is_empty() {
        problems.push(Problem::on(
            name,
            format!("clusters[{i}].endpoints"),
            "a cluster needs at least one endpoint",
        ));
    }
    for (j, endpoint) in cluster.endpoints.iter().enumerate() {
        let field = format!("clusters[{i}].endpoints[{j}]");
        match (&endpoint.address, &endpoint.dns) {
            (Some(_), None) => {}
            (None, Some(dns)) => {
                if split_host_port(&dns.value).is_none() {
                    problems.push(Problem::on(
                        dns,
                        format!("{field}.dns"),
                        format!("expected host:port, got {:?}", &*dns.value),
                    ));
                }
            }
            _ => problems.push(Problem::on(
                name,
                field.clone(),
                "each endpoint needs exactly one of `address` or `dns`",
            )),
        }
        if endpoint.weight == 0 {
            problems.push(Problem::on(
                name,
                format!("{field}.weight"),
                "weight must be at least 1",
            ));
        }
    }
    if cluster.tls.is_some() && cluster.protocol != super::model::Protocol::H2 {
        problems.push(Problem::on(
            name,
            format!("clusters[{i}].tls"),
            "upstream TLS needs `protocol: h2`",
        ));
    }
    if cluster.protocol == Protocol::H2 {
        check_tls_name(i, cluster, problems);
    }
    let at = |field: &str| format!("clusters[{i}].{field}");
    if let Some(health) = &cluster.health {
        let kinds = [
            health.grpc.is_some(),
            health.http.is_some(),
            health.tcp.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            problems.push(Problem::on(
                name,
                at("health"),
                "give exactly one of `grpc`, `http` or `tcp`",
            ));
        }
        if health.grpc.is_some() && cluster.protocol == super::model::Protocol::Http1 {
            problems.push(Problem::on(
                name,
                at("health.grpc"),
                "gRPC health checks need `protocol: h2c` or `h2`",
            ));
        }
        if let Some(http) = &health.http {
            if !http.path.value.starts_with('/') {
                problems.push(Problem::on(
                    &http.path,
                    at("health.http.path"),
                    "must start with '/'",
                ));
            }
            let [low, high] = http.expect;
            if !(100..=599).contains(&low) || !(low..=599).contains(&high) {
                problems.push(Problem::on(
                    &http.path,
                    at("health.http.expect"),
                    "expected [lowest, highest] statuses between 100 and 599",
                ));
            }
        }
        if health.unhealthy == 0 || health.healthy == 0 {
            problems.push(Problem::on(
                name,
                at("health"),
                "`unhealthy` and `healthy` thresholds must be at least 1",
            ));
        }
        if health
            .interval
            .as_ref()
            .is_some_and(|d| d.get().0.is_zero())
        {
            problems.push(Problem::on(name, at("health.interval"), "must not be 0"));
        }
    }
    if let Some(outlier) = &cluster.outlier {
        if outlier.consecutive_failures == 0 {
            problems.push(Problem::on(
                name,
                at("outlier.consecutive_failures"),
                "must be at least 1",
            ));
        }
        if outlier.max_ejected_percent > 100 {
            problems.push(Problem::on(
                name,
                at("outlier.max_ejected_percent"),
                "must be between 0 and 100",
            ));
        }
    }
    let limits = &cluster.limits;
    if limits.max_connections == 0 || limits.max_requests == 0 {
        problems.push(Problem::on(
            name,
            at("limits"),
            "`max_connections` and `max_requests` must be at least 1",
        ));
    }
    if !(0.0..=100.0).contains(&cluster.retry_budget.percent) {
        problems.push(Problem::on(
            name,
            at("retry_budget.percent"),
            "must be between 0 and 100",
        ));
    }
}

/// An `h2` cluster's connections are verified against one name per endpoint, never the
/// client's `Host` (a connection carries requests for every host): `tls.server_name`, else
/// the endpoint's DNS name. Endpoints written as IP addresses have no name to verify but
/// the address itself, which service certificates rarely carry and the operator never
/// chose, so such a cluster must say which name it expects.
fn check_tls_name(i: usize, cluster: &Cluster, problems: &mut Vec<Problem>) {
    let field = format!("clusters[{i}].tls.server_name");
    if let Some(name) = cluster.tls.as_ref().and_then(|t| t.server_name.as_ref()) {
        if ServerName::try_from(&*name.value).is_err() {
            problems.push(Problem::on(
                name,
                field,
                format!(
                    "{:?} is neither a DNS name nor an IP address",
                    name.value.display()
                ),
            ));
        }
        return;
    }
    for (j, endpoint) in cluster.endpoints.iter().enumerate() {
        // Where the problem points: the `dns` value, or (addresses carry no location)
        // the cluster's name.
        let (ip, at) = match (&endpoint.address, &endpoint.dns) {
            (Some(address), _) => (Some(address.get().ip().to_string()), &cluster.name),
            (None, Some(dns)) => (
                split_host_port(&dns.value)
                    .filter(|(host, _)| host.parse::<IpAddr>().is_ok())
                    .map(|(host, _)| host.to_owned()),
                dns,
            ),
            (None, None) => (None, &cluster.name),
        };
        if let Some(ip) = ip {
            problems.push(Problem::on(
                at,
                field,
                format!(
                    "endpoints[{j}] is the IP address {ip}: an h2 (TLS) cluster with address \
                     endpoints needs `tls.server_name`, the name their certificates are \
                     verified against (the client's Host is never used)"
                ),
            ));
            return;
        }
    }
}

pub(super) fn check_route(
    i: usize,
    route: &Route,
    clusters: &HashSet<String>,
    names: &mut HashSet<String>,
    problems: &mut Vec<Problem>,
) {
    let name = &route.name;
    let at = |field: &str| format!("routes[{i}].{field}");
    if !names.insert(name.value.to_string()) {
        problems.push(Problem::on(
            name,
            at("name"),
            format!("duplicate route name {:?}", &*name.value),
        ));
    }
    match &route.to.value {
        Target::Cluster(cluster) => {
            if !clusters.contains(cluster) {
                problems.push(Problem::on(
                    &route.to,
                    at("to"),
                    format!("unknown cluster {cluster:?}"),
                ));
            }
        }
        Target::Weighted(weights) => {
            for cluster in weights.keys().filter(|c| !clusters.contains(*c)) {
                problems.push(Problem::on(
                    &route.to,
                    at("to"),
                    format!("unknown cluster {cluster:?}"),
                ));
            }
            let total: u64 = weights.values().map(|w| u64::from(*w)).sum();
            if total == 0 {
                problems.push(Problem::on(
                    &route.to,
                    at("to"),
                    "weights must not all be 0",
                ));
            }
        }
    }
    let m = &route.matches;
    let paths = [
        m.path.is_some(),
        m.path_prefix.is_some(),
        m.path_regex.is_some(),
    ];
    if paths.iter().filter(|p| **p).count() > 1 {
        problems.push(Problem::on(
            name,
            at("match"),
            "use only one of `path`, `path_prefix` and `path_regex`",
        ));
    }
    for (field, path) in [("path", &m.path), ("path_prefix", &m.path_prefix)] {
        if let Some(path) = path
            && !path.starts_with('/')
        {
            problems.push(Problem::on(
                name,
                at(&format!("match.{field}")),
                format!("must start with '/', got {:?}", &**path),
            ));
        }
    }
    if let Some(method) = &m.method
        && http::Method::from_bytes(method.as_bytes()).is_err()
    {
        problems.push(Problem::on(
            name,
            at("match.method"),
            format!("not an HTTP method: {:?}", &**method),
        ));
    }
    for (j, header) in m.headers.iter().enumerate() {
        let field = at(&format!("match.headers[{j}]"));
        if HeaderName::from_bytes(header.name.value.as_bytes()).is_err() {
            problems.push(Problem::on(
                &header.name,
                format!("{field}.name"),
                format!("not a header name: {:?}", &*header.name.value),
            ));
        }
        let kinds = [
            header.exact.is_some(),
            header.present.is_some(),
            header.regex.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            problems.push(Problem::on(
                &header.name,
                field,
                "give exactly one of `exact`, `present` or `regex`",
            ));
        }
    }
    if let Some(rewrite) = &route.rewrite {
        if m.path_prefix.is_none() && m.path.is_none() {
            problems.push(Problem::on(
                &rewrite.path_prefix,
                at("rewrite.path_prefix"),
                "a prefix rewrite needs `match.path_prefix` or `match.path`",
            ));
        } else if !rewrite.path_prefix.value.starts_with('/') {
            problems.push(Problem::on(
                &rewrite.path_prefix,
                at("rewrite.path_prefix"),
                "must start with '/'",
            ));
        }
    }
    if let Some(retry) = &route.retry {
        if !(1..=10).contains(&retry.attempts) {
            problems.push(Problem::on(
                name,
                at("retry.attempts"),
                "must be between 1 and 10 (the first attempt included)",
            ));
        }
        if retry.on.is_empty() {
            problems.push(Problem::on(
                name,
                at("retry.on"),
                "list at least one condition",
            ));
        }
        let wants_codes = retry.on.contains(&RetryOn::RetriableStatusCodes);
        if wants_codes == retry.retriable_status_codes.is_empty() {
            problems.push(Problem::on(
                name,
                at("retry.retriable_status_codes"),
                "give `retriable_status_codes` exactly when `on` lists `retriable_status_codes`",
            ));
        }
        if let Some(code) = retry
            .retriable_status_codes
            .iter()
            .find(|c| !(100..=599).contains(*c))
        {
            problems.push(Problem::on(
                name,
                at("retry.retriable_status_codes"),
                format!("not an HTTP status: {code}"),
            ));
        }
    }
    if let Some(limit) = &route.rate_limit
        && matches!(limit.key, super::model::RateKey::Claim(_))
        && route.jwt.is_none()
    {
        problems.push(Problem::on(
            name,
            at("rate_limit.key"),
            "a rate limit keyed by a claim needs the route's `jwt`",
        ));
    }
    if let Some(transcode) = &route.transcode {
        if transcode.descriptors.is_some() != transcode.protos.is_empty() {
            problems.push(Problem::on(
                name,
                at("transcode"),
                "give either `descriptors` (a FileDescriptorSet) or `protos` (.proto files)",
            ));
        }
        if route.rewrite.is_some() {
            problems.push(Problem::on(
                name,
                at("rewrite"),
                "a transcoding route sends to the gRPC method's path; a rewrite cannot apply",
            ));
        }
        if let Some(path) = &transcode.openapi
            && !path.starts_with('/')
        {
            problems.push(Problem::on(
                name,
                at("transcode.openapi"),
                "must start with '/'",
            ));
        }
    }
    if let Some(mirror) = &route.mirror {
        if !clusters.contains(&*mirror.cluster.value) {
            problems.push(Problem::on(
                &mirror.cluster,
                at("mirror.cluster"),
                format!("unknown cluster {:?}", &*mirror.cluster.value),
            ));
        }
        if !(0.0..=100.0).contains(&mirror.percent) {
            problems.push(Problem::on(
                &mirror.cluster,
                at("mirror.percent"),
                "must be between 0 and 100",
            ));
        }
    }
    for (section, edits) in [
        ("request_headers", &route.request_headers),
        ("response_headers", &route.response_headers),
    ] {
        for (header, value) in &edits.add {
            if HeaderName::from_bytes(header.as_bytes()).is_err()
                || HeaderValue::from_str(value).is_err()
            {
                problems.push(Problem::on(
                    name,
                    at(&format!("{section}.add.{header}")),
                    "not a valid header name and value",
                ));
            }
        }
        for header in &edits.remove {
            if HeaderName::from_bytes(header.as_bytes()).is_err() {
                problems.push(Problem::on(
                    name,
                    at(&format!("{section}.remove")),
                    format!("not a header name: {:?}", &**header),
                ));
            }
        }
    }
}

/// The route's `grpc_web` and `cors` settings.
pub(super) fn check_browser_access(
    i: usize,
    route: &Route,
    protocols: &HashMap<&str, Protocol>,
    problems: &mut Vec<Problem>,
) {
    let at = |field: &str| format!("routes[{i}].{field}");
    let clusters: Vec<&str> = match &route.to.value {
        Target::Cluster(name) => vec![name.as_str()],
        Target::Weighted(weights) => weights.keys().map(String::as_str).collect(),
    };
    if route.grpc_web.as_ref().is_some_and(|g| g.enabled)
        && let Some(http1) = clusters
            .iter()
            .find(|c| protocols.get(*c) == Some(&Protocol::Http1))
    {
        problems.push(Problem::on(
            &route.name,
            at("grpc_web"),
            format!(
                "gRPC-Web is translated to gRPC, which needs HTTP/2: cluster {http1:?} has \
                 `protocol: http1` (use h2c or h2, or `enabled: false` to pass gRPC-Web through)"
            ),
        ));
    }
    let Some(cors) = &route.cors else {
        return;
    };
    if cors.allow_origins.is_empty() {
        problems.push(Problem::on(
            &route.name,
            at("cors.allow_origins"),
            "list at least one origin, or \"*\" for any",
        ));
    }
    for (j, origin) in cors.allow_origins.iter().enumerate() {
        let field = at(&format!("cors.allow_origins[{j}]"));
        if &*origin.value == "*" {
            if cors.allow_origins.len() > 1 {
                problems.push(Problem::on(origin, field, "\"*\" must be the only origin"));
            }
        } else if !is_origin(&origin.value) {
            problems.push(Problem::on(
                origin,
                field,
                format!(
                    "expected scheme://host[:port] as browsers send it, got {:?}",
                    &*origin.value
                ),
            ));
        }
    }
    for (list, names) in [
        ("allow_headers", &cors.allow_headers),
        ("expose_headers", &cors.expose_headers),
    ] {
        for (j, name) in names.iter().enumerate() {
            if HeaderName::from_bytes(name.value.as_bytes()).is_err() {
                problems.push(Problem::on(
                    name,
                    at(&format!("cors.{list}[{j}]")),
                    format!("not a header name: {:?}", &*name.value),
                ));
            }
        }
    }
}

/// Whether `origin` is written as browsers send `Origin`: `scheme://host[:port]`.
fn is_origin(origin: &str) -> bool {
    let Ok(uri) = origin.parse::<http::Uri>() else {
        return false;
    };
    matches!(uri.scheme_str(), Some("http" | "https"))
        && uri.authority().is_some()
        && !origin.ends_with('/')
        && uri.path() == "/"
        && uri.query().is_none()
}

/// Splits `host:port` (IPv6 hosts in brackets); `None` when the port is missing or bad.
pub fn split_host_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The problems of a config with one listener and the cluster written in `cluster`.
    fn cluster_problems(cluster: &str) -> Vec<Problem> {
        let yaml =
            format!("listeners:\n  - name: plain\n    address: 127.0.0.1:0\nclusters:\n{cluster}");
        check(&super::super::parse(&yaml).expect("parses"))
    }

    #[test]
    fn a_shared_rate_limit_names_a_store_that_exists() {
        let yaml = r#"listeners:
  - name: plain
    address: 127.0.0.1:0
rate_limit_stores:
  - name: redis
    redis: { address: "redis:6379", tls: { cert: /c.pem } }
  - name: redis
    redis: { address: nowhere }
  - name: sharded
    redis: { address: "redis:6379", mode: cluster, database: 2 }
  - name: watched
    redis: { address: "sentinel:26379", mode: sentinel, sentinel: { master: m, others: [s2] } }
  - name: unwatched
    redis: { address: "sentinel:26379", mode: sentinel }
routes:
  - name: partner
    match: { path_prefix: / }
    rate_limit:
      requests: 10
      shared: { store: rdis, batch: 0 }
    to: web
clusters:
  - name: web
    endpoints: [{ address: 127.0.0.1:1 }]
"#;
        let problems = check(&super::super::parse(yaml).expect("parses"));
        let found: Vec<(&str, u64)> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.line))
            .collect();
        assert_eq!(
            found,
            [
                ("rate_limit_stores[0].redis.tls", 5),
                ("rate_limit_stores[1].name", 7),
                ("rate_limit_stores[1].redis.address", 8),
                ("rate_limit_stores[2].redis.database", 9),
                ("rate_limit_stores[3].redis.sentinel.others[0]", 11),
                ("rate_limit_stores[4].redis.sentinel", 13),
                ("routes[0].rate_limit.shared.store", 20),
                ("routes[0].rate_limit.shared.batch", 20),
            ],
            "{problems:?}"
        );
        assert!(problems[6].message.contains("\"rdis\""), "{problems:?}");
    }

    #[test]
    fn an_h2_cluster_of_addresses_needs_a_server_name() {
        let problems = cluster_problems(
            "  - name: secure\n    protocol: h2\n    endpoints: [{ address: 10.0.0.7:443 }]\n",
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field, "clusters[0].tls.server_name");
        assert_eq!(problems[0].line, 5, "points at the cluster: {problems:?}");
        assert!(problems[0].message.contains("10.0.0.7"), "{problems:?}");

        let literal = cluster_problems(
            "  - name: secure\n    protocol: h2\n    tls: {}\n    endpoints: [{ dns: \"[::1]:443\" }]\n",
        );
        assert_eq!(literal.len(), 1, "an IP written as a DNS name: {literal:?}");
        assert_eq!(literal[0].field, "clusters[0].tls.server_name");
        assert_eq!(literal[0].line, 8, "points at the dns value: {literal:?}");
    }

    #[test]
    fn an_h2_cluster_is_fine_with_a_server_name_or_dns_names() {
        for cluster in [
            "  - name: a\n    protocol: h2\n    tls: { server_name: api.internal }\n    endpoints: [{ address: 10.0.0.7:443 }]\n",
            "  - name: b\n    protocol: h2\n    endpoints: [{ dns: api.internal:443 }]\n",
            "  - name: c\n    protocol: h2c\n    endpoints: [{ address: 10.0.0.7:80 }]\n",
        ] {
            assert_eq!(cluster_problems(cluster), Vec::new(), "{cluster}");
        }
        let bad = cluster_problems(
            "  - name: d\n    protocol: h2\n    tls: { server_name: \"not a name\" }\n    endpoints: [{ address: 10.0.0.7:443 }]\n",
        );
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].field, "clusters[0].tls.server_name");
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert!(is_origin("https://app.example.com"));
        assert!(is_origin("http://127.0.0.1:8080"));
        assert!(!is_origin("https://app.example.com/"));
        assert!(!is_origin("https://app.example.com/page"));
        assert!(!is_origin("app.example.com"));
        assert!(!is_origin("ftp://app.example.com"));
    }
}
