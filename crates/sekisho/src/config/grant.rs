//! Grants: the parts of the URL space the root config hands to teams.
//!
//! A platform team owns the root config (listeners, certificates, global policy); each
//! application team owns the routes of its own services, in its own files. A grant names
//! the team, where its files are, and what its routes may claim. A grant's region is the
//! requests whose host is one of `hosts` (any host when none is listed) and whose path lies
//! under one of `path_prefixes`, `grpc_packages` or `grpc_services` (any path when none is
//! listed). Two grants' regions may not overlap, so a request can only ever match routes
//! of one team, and the order of teams never decides who serves it.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::Problem;
use super::jwt::RouteJwt;
use super::model::{Config, IpAcl, Match, RateLimit, Waf};
use super::text::Text;

/// One team's part of the URL space.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The team; its route and cluster names show as `team/name` in logs and metrics.
    pub name: Spanned<Text>,
    /// The team's files: paths or globs (`*` and `?` in the file name), read in path
    /// order. The directories are watched, so a file added or removed reloads.
    pub files: Vec<Spanned<Text>>,
    /// Hosts the team's routes may match (`api.example.com`, `*.shop.example.com`); every
    /// team route must name one. Empty: any host.
    #[serde(default)]
    pub hosts: Vec<Spanned<Text>>,
    /// Path prefixes the team's routes must stay under.
    #[serde(default)]
    pub path_prefixes: Vec<Spanned<Text>>,
    /// gRPC packages (`shop.v1`) whose services the team's routes may match.
    #[serde(default)]
    pub grpc_packages: Vec<Spanned<Text>>,
    /// gRPC services (`shop.v1.Cart`) the team's routes may match.
    #[serde(default)]
    pub grpc_services: Vec<Spanned<Text>>,
    /// Where the team's clusters may send: networks or addresses (`10.20.0.0/16`) for
    /// `address` endpoints, DNS names (`*.shop.svc.cluster.local`) for `dns` endpoints.
    /// A team cluster with an endpoint anywhere else is refused, so a team cannot point
    /// the gateway at another team's backend or the platform's. Empty: no cluster at all.
    #[serde(default)]
    pub upstreams: Vec<Spanned<Text>>,
    /// JWT providers of the root the team's routes may require by name.
    #[serde(default)]
    pub jwt_providers: Vec<Spanned<Text>>,
    /// Policy on every route of the team, which no team route can remove or replace.
    #[serde(default)]
    pub policy: GrantPolicy,
}

/// What the root enforces on all of a team's routes.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrantPolicy {
    /// Clients allowed on the team's routes.
    #[serde(default)]
    pub ip_acl: Option<IpAcl>,
    /// The token every request to the team must carry.
    #[serde(default)]
    pub jwt: Option<RouteJwt>,
    /// The WAF every request to the team passes.
    #[serde(default)]
    pub waf: Option<Waf>,
    /// A rate limit on each of the team's routes.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// A grant's region, ready to compare routes and other grants against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// Lower case; `*.example.com` kept as written. Empty: any host.
    hosts: Vec<String>,
    /// Path prefixes, gRPC packages and services as the paths they cover (`/shop.v1.`,
    /// `/shop.v1.Cart/`). Empty: any path.
    paths: Vec<String>,
}

impl Region {
    /// The region a grant claims.
    pub fn of(grant: &Grant) -> Region {
        let hosts = grant
            .hosts
            .iter()
            .map(|h| h.value.to_ascii_lowercase())
            .collect();
        let paths = grant
            .path_prefixes
            .iter()
            .map(|p| p.value.to_string())
            .chain(
                grant
                    .grpc_packages
                    .iter()
                    .map(|p| format!("/{}.", &*p.value)),
            )
            .chain(
                grant
                    .grpc_services
                    .iter()
                    .map(|s| format!("/{}/", &*s.value)),
            )
            .collect();
        Region { hosts, paths }
    }

    /// Whether some request could fall in both regions.
    pub fn overlaps(&self, other: &Region) -> bool {
        let hosts = self.hosts.is_empty()
            || other.hosts.is_empty()
            || self
                .hosts
                .iter()
                .any(|a| other.hosts.iter().any(|b| hosts_overlap(a, b)));
        let paths = self.paths.is_empty()
            || other.paths.is_empty()
            || self.paths.iter().any(|a| {
                other
                    .paths
                    .iter()
                    .any(|b| a.starts_with(b) || b.starts_with(a))
            });
        hosts && paths
    }

    /// Why a route with these conditions could match a request outside the region, if it
    /// could.
    pub fn escaped_by(&self, m: &Match) -> Option<String> {
        if !self.hosts.is_empty() {
            match &m.host {
                None => {
                    return Some(format!(
                        "the route matches any host; the grant allows only {}",
                        self.hosts.join(", ")
                    ));
                }
                Some(host) => {
                    let host = host.to_ascii_lowercase();
                    if !self.hosts.iter().any(|claim| host_covers(claim, &host)) {
                        return Some(format!(
                            "host {host:?} is outside the grant ({})",
                            self.hosts.join(", ")
                        ));
                    }
                }
            }
        }
        if self.paths.is_empty() {
            return None;
        }
        // Conditions hold together, so one path condition inside the region is enough.
        let under = |path: &str| {
            self.paths
                .iter()
                .any(|claim| path.starts_with(claim.as_str()))
        };
        let grpc = m.grpc_service.as_ref().map(|s| format!("/{}/", &**s));
        let candidates = [m.path.as_deref(), m.path_prefix.as_deref(), grpc.as_deref()];
        if candidates.iter().flatten().any(|p| under(p)) {
            return None;
        }
        Some(format!(
            "the route's path{} is not under the grant's prefixes ({}); a route needs a \
             `path`, `path_prefix` or `grpc_service` inside them",
            match candidates.iter().flatten().next() {
                Some(p) => format!(" {p:?}"),
                None => String::new(),
            },
            self.paths.join(", ")
        ))
    }
}

/// Where a grant's team may send.
pub struct Upstreams {
    networks: Vec<ipnet::IpNet>,
    names: Vec<String>,
}

impl Upstreams {
    /// The grant's `upstreams`; an entry that is neither a network nor a DNS name is an
    /// error naming it.
    pub fn of(grant: &Grant) -> Result<Upstreams, (usize, String)> {
        let mut networks = Vec::new();
        let mut names = Vec::new();
        for (i, entry) in grant.upstreams.iter().enumerate() {
            let entry = entry.value.trim();
            if let Ok(net) = entry.parse::<ipnet::IpNet>() {
                networks.push(net);
            } else if let Ok(ip) = entry.parse::<std::net::IpAddr>() {
                networks.push(ipnet::IpNet::from(ip));
            } else if is_dns_pattern(entry) {
                names.push(entry.to_ascii_lowercase());
            } else {
                return Err((
                    i,
                    format!("{entry:?} is neither a network, an address nor a DNS name"),
                ));
            }
        }
        Ok(Upstreams { networks, names })
    }

    /// Allows nothing.
    pub fn none() -> Upstreams {
        Upstreams {
            networks: Vec::new(),
            names: Vec::new(),
        }
    }

    /// Whether an `address` endpoint is allowed.
    pub fn allow_address(&self, ip: std::net::IpAddr) -> bool {
        self.networks.iter().any(|net| net.contains(&ip))
    }

    /// Whether a `dns` endpoint's host name is allowed.
    pub fn allow_name(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.names.iter().any(|pattern| host_covers(pattern, &host))
    }
}

fn is_dns_pattern(entry: &str) -> bool {
    let name = entry.strip_prefix("*.").unwrap_or(entry);
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Whether host claim `claim` covers every host route condition `host` matches.
fn host_covers(claim: &str, host: &str) -> bool {
    if claim == host {
        return true;
    }
    match claim.strip_prefix('*') {
        // `*.example.com` matches names longer than `.example.com` ending in it, so it
        // covers `a.example.com` and `*.a.example.com`.
        Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        None => false,
    }
}

fn hosts_overlap(a: &str, b: &str) -> bool {
    host_covers(a, b)
        || host_covers(b, a)
        || match (a.strip_prefix('*'), b.strip_prefix('*')) {
            (Some(x), Some(y)) => x.ends_with(y) || y.ends_with(x),
            _ => false,
        }
}

/// Checks the root's grants: unique team names, a region each, no two regions that
/// overlap, offered providers that exist, and root names that cannot pass for a team's.
pub fn check(config: &Config, providers: &HashSet<String>, problems: &mut Vec<Problem>) {
    let mut names = HashSet::new();
    let mut regions: Vec<(usize, Region)> = Vec::new();
    for (i, grant) in config.teams.iter().enumerate() {
        let name = &grant.name;
        let at = |field: &str| format!("teams[{i}].{field}");
        if !is_team_name(&name.value) {
            problems.push(Problem::on(
                name,
                at("name"),
                "a team name is lower-case letters, digits and `-`, starting with a letter",
            ));
        }
        if !names.insert(name.value.to_string()) {
            problems.push(Problem::on(
                name,
                at("name"),
                format!("duplicate team {:?}", &*name.value),
            ));
        }
        if grant.files.is_empty() {
            problems.push(Problem::on(
                name,
                at("files"),
                "name at least one file or glob",
            ));
        }
        for (j, file) in grant.files.iter().enumerate() {
            let path = std::path::Path::new(&*file.value);
            let dir = path
                .parent()
                .map(|d| d.to_string_lossy())
                .unwrap_or_default();
            if dir.contains(['*', '?']) {
                problems.push(Problem::on(
                    file,
                    at(&format!("files[{j}]")),
                    "wildcards belong in the file name only",
                ));
            }
        }
        for (j, prefix) in grant.path_prefixes.iter().enumerate() {
            if !prefix.value.starts_with('/') {
                problems.push(Problem::on(
                    prefix,
                    at(&format!("path_prefixes[{j}]")),
                    "a path prefix starts with `/`",
                ));
            }
        }
        let grpc = grant.grpc_packages.iter().chain(&grant.grpc_services);
        for name in grpc {
            if name.value.is_empty()
                || name.value.starts_with('.')
                || name.value.ends_with('.')
                || name.value.contains(['/', '*'])
            {
                problems.push(Problem::on(
                    name,
                    at("grpc"),
                    "a gRPC package or service is a dotted name, such as `shop.v1`",
                ));
            }
        }
        for (j, host) in grant.hosts.iter().enumerate() {
            let h = &*host.value;
            if h.is_empty() || h.contains(['/', ':', ' ']) || h[1..].contains('*') {
                problems.push(Problem::on(
                    host,
                    at(&format!("hosts[{j}]")),
                    "a host is a name such as `api.example.com` or `*.example.com`",
                ));
            }
        }
        let region = Region::of(grant);
        if region.hosts.is_empty() && region.paths.is_empty() {
            problems.push(Problem::on(
                name,
                at("hosts"),
                "the grant claims everything: give it hosts, path prefixes or gRPC names",
            ));
        }
        for (other, theirs) in &regions {
            if region.overlaps(theirs) {
                problems.push(Problem::on(
                    name,
                    at("name"),
                    format!(
                        "the grant overlaps the grant of team {:?}: a request could match \
                         routes of both",
                        &*config.teams[*other].name.value
                    ),
                ));
            }
        }
        regions.push((i, region));
        for (j, offered) in grant.jwt_providers.iter().enumerate() {
            if !providers.contains(&*offered.value) {
                problems.push(Problem::on(
                    offered,
                    at(&format!("jwt_providers[{j}]")),
                    format!("unknown JWT provider {:?}", &*offered.value),
                ));
            }
        }
        if let Err((j, e)) = Upstreams::of(grant) {
            problems.push(Problem::on(
                &grant.upstreams[j],
                at(&format!("upstreams[{j}]")),
                e,
            ));
        }
        if let Some(jwt) = &grant.policy.jwt {
            super::jwt::check_route(&at("policy.jwt"), jwt, providers, problems);
        }
        if let Some(waf) = &grant.policy.waf
            && waf.rules.is_empty()
        {
            problems.push(Problem::on(
                name,
                at("policy.waf.rules"),
                "names no rule file",
            ));
        }
        if let Some(limit) = &grant.policy.rate_limit
            && matches!(limit.key, super::model::RateKey::Claim(_))
            && grant.policy.jwt.is_none()
        {
            problems.push(Problem::on(
                name,
                at("policy.rate_limit.key"),
                "a limit keyed by a claim needs the grant's `policy.jwt`",
            ));
        }
    }
    // A root cluster or route named `team/...` would pass for one of the team's own.
    let reserved = |n: &str| {
        n.split_once('/')
            .is_some_and(|(team, _)| names.contains(team))
    };
    for (i, cluster) in config.clusters.iter().enumerate() {
        if reserved(&cluster.name.value) {
            problems.push(Problem::on(
                &cluster.name,
                format!("clusters[{i}].name"),
                "names starting with a team's name and `/` belong to that team",
            ));
        }
    }
    for (i, route) in config.routes.iter().enumerate() {
        if reserved(&route.name.value) {
            problems.push(Problem::on(
                &route.name,
                format!("routes[{i}].name"),
                "names starting with a team's name and `/` belong to that team",
            ));
        }
    }
}

/// Team names become the prefix of metric labels and file-safe identifiers.
fn is_team_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(hosts: &[&str], paths: &[&str]) -> Region {
        Region {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn regions_overlap_only_where_a_request_could_be_in_both() {
        let shop = region(&["shop.example.com"], &[]);
        let pay = region(&["pay.example.com"], &[]);
        assert!(!shop.overlaps(&pay));
        assert!(region(&["*.example.com"], &[]).overlaps(&shop));
        assert!(region(&["*.example.com"], &[]).overlaps(&region(&["*.a.example.com"], &[])));
        assert!(!region(&["*.example.com"], &[]).overlaps(&region(&["example.com"], &[])));
        let a = region(&[], &["/a/"]);
        assert!(!a.overlaps(&region(&[], &["/b/"])));
        assert!(a.overlaps(&region(&[], &["/a/x/"])));
        // A path grant and a host grant share the requests to that host under the path.
        assert!(a.overlaps(&shop));
        assert!(!region(&["x.com"], &["/a/"]).overlaps(&region(&["y.com"], &["/a/"])));
    }

    #[test]
    fn a_route_must_stay_inside_every_dimension_the_grant_claims() {
        let grant = region(&["*.shop.example.com"], &["/shop/", "/shop.v1."]);
        let mut m = Match {
            host: Some(Text::plain("eu.shop.example.com")),
            path_prefix: Some(Text::plain("/shop/cart")),
            ..Match::default()
        };
        assert_eq!(grant.escaped_by(&m), None);
        m.host = None;
        assert!(
            grant.escaped_by(&m).is_some(),
            "any host escapes a host grant"
        );
        m.host = Some(Text::plain("shop.example.com"));
        assert!(
            grant.escaped_by(&m).is_some(),
            "the bare domain is outside *.domain"
        );
        m.host = Some(Text::plain("EU.Shop.Example.com"));
        m.path_prefix = Some(Text::plain("/"));
        assert!(grant.escaped_by(&m).is_some(), "a shorter prefix escapes");
        m.path_prefix = None;
        m.grpc_service = Some(Text::plain("shop.v1.Cart"));
        assert_eq!(grant.escaped_by(&m), None, "a service in a claimed package");
        m.grpc_service = Some(Text::plain("shopping.v1.Cart"));
        assert!(grant.escaped_by(&m).is_some());
    }

    /// Whether the region holds a request, decided as a reader of the grant would.
    fn holds(region: &Region, host: &str, path: &str) -> bool {
        let host_in = region.hosts.is_empty()
            || region
                .hosts
                .iter()
                .any(|claim| match claim.strip_prefix('*') {
                    Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
                    None => claim == host,
                });
        let path_in =
            region.paths.is_empty() || region.paths.iter().any(|p| path.starts_with(p.as_str()));
        host_in && path_in
    }

    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "ab"]), 1..4)
            .prop_map(|labels| labels.join("."))
    }

    fn host_claim() -> impl Strategy<Value = String> {
        (any::<bool>(), name()).prop_map(|(wild, n)| if wild { format!("*.{n}") } else { n })
    }

    fn path() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "a.", "", "ab"]), 0..4)
            .prop_map(|segments| format!("/{}", segments.join("/")))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// A route the grant accepts never matches a request outside the grant: whatever the
        /// hosts, prefixes and gRPC names, no request slips out through a route.
        #[test]
        fn an_accepted_route_matches_only_requests_inside_the_grant(
            claim_hosts in prop::collection::vec(host_claim(), 0..3),
            claim_paths in prop::collection::vec(path(), 0..3),
            claim_packages in prop::collection::vec(name(), 0..2),
            route_host in prop::option::of(host_claim()),
            route_prefix in prop::option::of(path()),
            route_service in prop::option::of(name()),
            request_host in name(),
            request_path in path(),
            request_service in prop::option::of((name(), name())),
        ) {
            let region = Region {
                hosts: claim_hosts,
                paths: claim_paths
                    .into_iter()
                    .chain(claim_packages.iter().map(|p| format!("/{p}.")))
                    .collect(),
            };
            let m = Match {
                host: route_host.map(|h| Text::plain(&h)),
                path_prefix: route_prefix.map(|p| Text::plain(&p)),
                grpc_service: route_service.map(|s| Text::plain(&s)),
                ..Match::default()
            };
            if region.escaped_by(&m).is_some() {
                return Ok(());
            }
            let matcher = crate::route::Matcher::compile(&m).expect("compiles");
            let (path, grpc) = match &request_service {
                Some((service, method)) => (format!("/{service}/{method}"), Some((service.as_str(), method.as_str()))),
                None => (request_path, None),
            };
            let headers = http::HeaderMap::new();
            let facts = crate::route::RequestFacts {
                host: &request_host,
                path: &path,
                method: &http::Method::GET,
                headers: &headers,
                grpc,
            };
            if matcher.matches(&facts) {
                prop_assert!(holds(&region, &request_host, &path), "{region:?} {m:?} {request_host} {path}");
            }
        }
    }
}
