//! A team's files: its routes and the clusters they send to, read under its grant.
//!
//! A team file can do what the root's `routes` and `clusters` do, inside the team's
//! region and no further: every route must stay inside the grant, may send only to the
//! team's own clusters, may require only the JWT providers the grant offers, and cannot
//! set a policy the grant sets. It cannot read the gateway's secrets or environment, and
//! the files it names (descriptor sets, `.proto` files, CA bundles, address lists) are
//! relative paths inside the team file's directory. Once checked, the team's routes and
//! clusters are renamed `team/name` and carry the grant's policy, and from there on they
//! are compiled like the root's own.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::grant::{Grant, Region, Upstreams};
use super::model::{Cluster, Config, Protocol, Route, Target};
use super::text::Text;
use super::{ConfigError, Problem, jwt, validate};

/// What a team file holds.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TeamFile {
    /// Matched in file order, before the root's routes.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Named within the team; only the team's routes can send to them.
    #[serde(default)]
    pub clusters: Vec<Cluster>,
}

/// One team file as read: a team's version is the text of all its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// As matched by the grant's globs.
    pub path: PathBuf,
    /// The whole file.
    pub text: String,
}

/// A team file checked against its grant, in the form the root's routes take.
pub struct Checked {
    /// The file it came from.
    pub path: PathBuf,
    /// Renamed `team/name`, with the grant's policy.
    pub file: TeamFile,
}

/// Reads the files the grant's globs match now, in path order.
pub fn read(grant: &Grant) -> Result<Vec<Source>, ConfigError> {
    let mut paths = Vec::new();
    for pattern in &grant.files {
        let at = Path::new(&*pattern.value);
        let matched = expand(at).map_err(|e| ConfigError::one(at, Problem::whole_file(e)))?;
        paths.extend(matched);
    }
    paths.sort();
    paths.dedup();
    read_files(&paths)
}

/// Reads team files named one by one (a team's CI checking its candidate files).
pub fn read_files(paths: &[PathBuf]) -> Result<Vec<Source>, ConfigError> {
    paths
        .iter()
        .map(|path| match std::fs::read_to_string(path) {
            Ok(text) => Ok(Source {
                path: path.clone(),
                text,
            }),
            Err(e) => Err(ConfigError::one(
                path,
                Problem::whole_file(format!("cannot read team file: {e}")),
            )),
        })
        .collect()
}

/// The files a pattern names: wildcards in the file name only; hidden entries (such as
/// the `..data` links of a mounted ConfigMap) and directories never match a wildcard.
fn expand(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let name = pattern.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !name.contains(['*', '?']) {
        return Ok(vec![pattern.to_path_buf()]);
    }
    let dir = match pattern.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // A directory not there yet (the team's ConfigMap, optional in the volume, is not
    // created) holds no file, as a shell pattern matching nothing.
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot list {}: {e}", dir.display())),
    };
    Ok(entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name().to_str().is_some_and(|n| {
                !n.starts_with('.') && waf::wildcard(name.as_bytes(), n.as_bytes())
            })
        })
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect())
}

/// The directories a grant's files are in, watched so a file added or removed reloads.
pub fn directories(grant: &Grant) -> Vec<PathBuf> {
    grant
        .files
        .iter()
        .map(|pattern| match Path::new(&*pattern.value).parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        })
        .collect()
}

/// Parses and checks a team's files against its grant and the root, and turns them into
/// routes and clusters of the root's form. Every problem is reported, each in its file.
pub fn check(
    grant: &Grant,
    root: &Config,
    sources: &[Source],
) -> Result<Vec<Checked>, Vec<ConfigError>> {
    let team = &*grant.name.value;
    let mut errors = Vec::new();
    let mut parsed = Vec::new();
    for source in sources {
        match super::text::without_secrets(|| super::parse_team(&source.text)) {
            Ok(file) => parsed.push((source.path.clone(), file)),
            Err(problem) => errors.push(ConfigError::one(&source.path, problem)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let region = Region::of(grant);
    // The root's checks refused a bad entry already.
    let upstreams = Upstreams::of(grant).unwrap_or(Upstreams::none());
    let offered: HashSet<String> = grant
        .jwt_providers
        .iter()
        .map(|p| p.value.to_string())
        .collect();
    let internal: HashSet<String> = root
        .internal_headers
        .iter()
        .map(|h| identity_key(&h.value))
        .chain(
            root.routes
                .iter()
                .filter_map(|r| r.jwt.as_ref())
                .chain(grant.policy.jwt.as_ref())
                .flat_map(|j| j.forward_claims.values())
                .map(|h| identity_key(h)),
        )
        .collect();
    let providers: HashSet<String> = root
        .jwt_providers
        .iter()
        .map(|p| p.name.value.to_string())
        .collect();

    // Names are the team's own: unique across all its files, then prefixed.
    let mut cluster_names = HashSet::new();
    let mut route_names = HashSet::new();
    let mut protocols: HashMap<String, Protocol> = HashMap::new();
    for (_, file) in &parsed {
        for cluster in &file.clusters {
            protocols.insert(cluster.name.value.to_string(), cluster.protocol);
        }
    }
    let own: HashSet<String> = protocols.keys().cloned().collect();
    let by_name = protocols.iter().map(|(k, v)| (k.as_str(), *v)).collect();

    let mut checked = Vec::new();
    for (path, mut file) in parsed {
        let mut problems = Vec::new();
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        for (i, cluster) in file.clusters.iter_mut().enumerate() {
            validate::check_cluster(i, cluster, &mut cluster_names, &mut problems);
            check_endpoints(i, cluster, &upstreams, root, &mut problems);
            confine_cluster(i, cluster, &dir, &mut problems);
        }
        for (i, route) in file.routes.iter_mut().enumerate() {
            let at = |field: &str| format!("routes[{i}].{field}");
            if let Some(why) = region.escaped_by(&route.matches) {
                problems.push(Problem::on(&route.name, at("match"), why));
            }
            for (kind, set) in [
                (
                    "ip_acl",
                    route.ip_acl.is_some() && grant.policy.ip_acl.is_some(),
                ),
                ("jwt", route.jwt.is_some() && grant.policy.jwt.is_some()),
                (
                    "rate_limit",
                    route.rate_limit.is_some() && grant.policy.rate_limit.is_some(),
                ),
            ] {
                if set {
                    problems.push(Problem::on(
                        &route.name,
                        at(kind),
                        format!(
                            "the grant of team {team:?} sets `{kind}` for all its routes; a \
                             team route cannot replace it"
                        ),
                    ));
                }
            }
            if let Some(shared) = route.rate_limit.as_ref().and_then(|l| l.shared.as_ref()) {
                problems.push(Problem::on(
                    &shared.store,
                    at("rate_limit.shared"),
                    "a team route cannot use the gateway's rate limit stores; a limit shared \
                     across replicas on a team's routes is the grant's `policy.rate_limit`",
                ));
            }
            if route.waf.is_some() {
                problems.push(Problem::on(
                    &route.name,
                    at("waf"),
                    "a team route cannot load WAF rules; the WAF on a team's routes is the \
                     grant's `policy.waf`",
                ));
            }
            if let Some(rule) = &route.jwt {
                if !offered.contains(&*rule.provider.value) {
                    problems.push(Problem::on(
                        &rule.provider,
                        at("jwt.provider"),
                        format!(
                            "the grant of team {team:?} does not offer JWT provider {:?}",
                            &*rule.provider.value
                        ),
                    ));
                }
                for (claim, header) in &rule.forward_claims {
                    if !internal.contains(&identity_key(header)) {
                        problems.push(Problem::on(
                            &rule.provider,
                            at(&format!("jwt.forward_claims.{claim}")),
                            format!(
                                "{:?} is not one of the root's `internal_headers`; a team may \
                                 only forward claims in headers the root strips from clients",
                                &**header
                            ),
                        ));
                    }
                }
            }
            for header in route.request_headers.add.keys() {
                if internal.contains(&identity_key(header)) {
                    problems.push(Problem::on(
                        &route.name,
                        at(&format!("request_headers.add.{header}")),
                        "an internal header: only the root's policy may give it a value",
                    ));
                }
            }
            for (j, condition) in route.matches.headers.iter().enumerate() {
                if internal.contains(&identity_key(&condition.name.value)) {
                    problems.push(Problem::on(
                        &condition.name,
                        at(&format!("match.headers[{j}].name")),
                        "an internal header: clients cannot send it, so no route condition \
                         can see it",
                    ));
                }
            }
            confine_route(i, route, &dir, &mut problems);
            apply_policy(route, grant);
            validate::check_route(i, route, &own, &mut route_names, &mut problems);
            if let Some(rule) = &route.jwt {
                jwt::check_route(&at("jwt"), rule, &providers, &mut problems);
            }
            validate::check_browser_access(i, route, &by_name, &mut problems);
        }
        if problems.is_empty() {
            rename(team, &mut file);
            checked.push(Checked { path, file });
        } else {
            problems.sort_by_key(|p| (p.line, p.column));
            errors.push(ConfigError {
                file: path,
                problems,
            });
        }
    }
    if errors.is_empty() {
        Ok(checked)
    } else {
        Err(errors)
    }
}

/// A header name as identity headers are compared: case-insensitive, and `_` read as `-`,
/// as CGI-style backends read `x_user_id` as `x-user-id` (the look-alikes the gateway strips
/// from clients).
fn identity_key(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// Every endpoint of a team's cluster must be one the grant allows, and never the
/// gateway's own listeners (the admin listener shows the config and drains the gateway).
fn check_endpoints(
    i: usize,
    cluster: &Cluster,
    upstreams: &Upstreams,
    root: &Config,
    problems: &mut Vec<Problem>,
) {
    let own: Vec<std::net::SocketAddr> = root
        .admin
        .iter()
        .map(|a| *a.address.get())
        .chain(root.listeners.iter().map(|l| *l.address.get()))
        .collect();
    let is_gateway = |target: std::net::SocketAddr| {
        own.iter().any(|own| {
            own.port() == target.port()
                && (own.ip() == target.ip()
                    || own.ip().is_unspecified()
                    || (own.ip().is_loopback() && target.ip().is_loopback()))
        })
    };
    for (j, endpoint) in cluster.endpoints.iter().enumerate() {
        let field = format!("clusters[{i}].endpoints[{j}]");
        if let Some(address) = &endpoint.address {
            let target = *address.get();
            if is_gateway(target) {
                problems.push(Problem::on(
                    &cluster.name,
                    field.clone(),
                    format!("{target} is the gateway's own listener"),
                ));
            } else if !upstreams.allow_address(target.ip()) {
                problems.push(Problem::on(
                    &cluster.name,
                    field.clone(),
                    format!("{target} is not among the grant's `upstreams`"),
                ));
            }
        }
        if let Some(dns) = &endpoint.dns {
            let host = validate::split_host_port(&dns.value).map_or(&*dns.value, |(h, _)| h);
            if !upstreams.allow_name(host) {
                problems.push(Problem::on(
                    dns,
                    format!("{field}.dns"),
                    format!("{host:?} is not among the grant's `upstreams`"),
                ));
            }
        }
    }
}

/// Gives the route the grant's policy (the checks above made sure it had none of its own).
fn apply_policy(route: &mut Route, grant: &Grant) {
    let policy = &grant.policy;
    if policy.ip_acl.is_some() {
        route.ip_acl = policy.ip_acl.clone();
    }
    if policy.jwt.is_some() {
        route.jwt = policy.jwt.clone();
    }
    if policy.waf.is_some() {
        route.waf = policy.waf.clone();
    }
    if policy.rate_limit.is_some() {
        route.rate_limit = policy.rate_limit.clone();
    }
}

/// `team/name` for the team's routes and clusters and every reference between them.
fn rename(team: &str, file: &mut TeamFile) {
    let scoped = |name: &str| format!("{team}/{name}");
    let retext = |text: &mut Spanned<Text>| text.value = Text::plain(&scoped(&text.value));
    for cluster in &mut file.clusters {
        retext(&mut cluster.name);
    }
    for route in &mut file.routes {
        retext(&mut route.name);
        route.to.value = match &route.to.value {
            Target::Cluster(name) => Target::Cluster(scoped(name)),
            Target::Weighted(weights) => {
                Target::Weighted(weights.iter().map(|(n, w)| (scoped(n), *w)).collect())
            }
        };
        if let Some(mirror) = &mut route.mirror {
            retext(&mut mirror.cluster);
        }
    }
}

/// A file a team names: a relative path that stays inside the team file's directory.
fn confine(text: &Text, dir: &Path) -> Result<Text, String> {
    let path = Path::new(&**text);
    let inside = path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !inside || path.as_os_str().is_empty() {
        return Err(format!(
            "{:?}: a team file names files by relative paths inside its own directory",
            &**text
        ));
    }
    Ok(Text::plain(&dir.join(path).to_string_lossy()))
}

fn confine_spanned(
    text: &mut Spanned<Text>,
    dir: &Path,
    field: String,
    problems: &mut Vec<Problem>,
) {
    match confine(&text.value, dir) {
        Ok(inside) => text.value = inside,
        Err(e) => problems.push(Problem::on(text, field, e)),
    }
}

fn confine_cluster(i: usize, cluster: &mut Cluster, dir: &Path, problems: &mut Vec<Problem>) {
    if let Some(ca) = cluster.tls.as_mut().and_then(|t| t.ca.as_mut()) {
        confine_spanned(ca, dir, format!("clusters[{i}].tls.ca"), problems);
    }
}

fn confine_route(i: usize, route: &mut Route, dir: &Path, problems: &mut Vec<Problem>) {
    let name = route.name.clone();
    let plain =
        |text: &mut Text, field: String, problems: &mut Vec<Problem>| match confine(text, dir) {
            Ok(inside) => *text = inside,
            Err(e) => problems.push(Problem::on(&name, field, e)),
        };
    if let Some(t) = &mut route.transcode {
        if let Some(d) = &mut t.descriptors {
            confine_spanned(
                d,
                dir,
                format!("routes[{i}].transcode.descriptors"),
                problems,
            );
        }
        for (j, p) in t.protos.iter_mut().enumerate() {
            confine_spanned(
                p,
                dir,
                format!("routes[{i}].transcode.protos[{j}]"),
                problems,
            );
        }
        for (j, p) in t.includes.iter_mut().enumerate() {
            plain(p, format!("routes[{i}].transcode.includes[{j}]"), problems);
        }
    }
    if let Some(acl) = &mut route.ip_acl {
        for (j, p) in acl.allow_files.iter_mut().enumerate() {
            plain(p, format!("routes[{i}].ip_acl.allow_files[{j}]"), problems);
        }
        for (j, p) in acl.deny_files.iter_mut().enumerate() {
            plain(p, format!("routes[{i}].ip_acl.deny_files[{j}]"), problems);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = r#"
listeners: [{ name: a, address: 127.0.0.1:0 }]
internal_headers: [x-user-id]
jwt_providers:
  - name: users
    keys: { jwks_file: /nonexistent/jwks.json }
    from: [{ header: authorization, prefix: "Bearer " }]
teams:
  - name: shop
    files: [shop.yaml]
    path_prefixes: [/shop/]
    upstreams: [10.0.0.0/8]
    jwt_providers: [users]
    policy:
      ip_acl: { allow: [10.0.0.0/8] }
      jwt: { provider: users, forward_claims: { sub: x-user-id } }
      waf: { rules: [/etc/sekisho/crs/*.conf] }
      rate_limit: { requests: 10 }
"#;

    fn source(text: &str) -> Vec<Source> {
        vec![Source {
            path: PathBuf::from("/teams/shop.yaml"),
            text: text.to_owned(),
        }]
    }

    #[test]
    fn every_route_of_a_team_carries_the_grants_policy_and_cannot_replace_it() {
        let root = crate::config::parse(ROOT).expect("root parses");
        let grant = &root.teams[0];
        let file = "routes:\n  - name: r\n    match: { path_prefix: /shop/ }\n    to: c\nclusters:\n  - name: c\n    endpoints: [{ address: 10.0.0.7:80 }]\n";
        let checked = check(grant, &root, &source(file)).expect("the file is good");
        let route = &checked[0].file.routes[0];
        assert_eq!(&*route.name.value, "shop/r");
        assert!(matches!(&route.to.value, Target::Cluster(c) if c == "shop/c"));
        assert!(route.ip_acl.is_some() && route.waf.is_some() && route.rate_limit.is_some());
        assert_eq!(
            route.jwt.as_ref().map(|j| &*j.provider.value),
            Some("users")
        );

        for (kind, setting) in [
            ("ip_acl", "ip_acl: { allow: [0.0.0.0/0] }"),
            ("jwt", "jwt: { provider: users }"),
            ("rate_limit", "rate_limit: { requests: 100000 }"),
            ("waf", "waf: { rules: [rules.conf], mode: detect }"),
        ] {
            let own = file.replace("    to: c\n", &format!("    to: c\n    {setting}\n"));
            let errors = check(grant, &root, &source(&own)).err().expect(kind);
            let text = errors.iter().map(ToString::to_string).collect::<String>();
            assert!(
                text.contains(&format!("routes[0].{kind}")),
                "{kind}: {text}"
            );
        }
    }

    #[test]
    fn a_team_route_cannot_use_the_gateways_rate_limit_stores() {
        let root = ROOT.replace("      rate_limit: { requests: 10 }\n", "");
        let root = crate::config::parse(&root).expect("root parses");
        let file = "routes:\n  - name: r\n    match: { path_prefix: /shop/ }\n    to: c\n    rate_limit: { requests: 5, shared: { store: redis } }\nclusters:\n  - name: c\n    endpoints: [{ address: 10.0.0.7:80 }]\n";
        let errors = check(&root.teams[0], &root, &source(file))
            .err()
            .expect("refused");
        let text = errors.iter().map(ToString::to_string).collect::<String>();
        assert!(text.contains("routes[0].rate_limit.shared"), "{text}");
        let local = file.replace(", shared: { store: redis }", "");
        assert!(
            check(&root.teams[0], &root, &source(&local)).is_ok(),
            "a team's own local limit is fine"
        );
    }

    #[test]
    fn a_team_file_cannot_read_the_gateways_secrets() {
        let root = crate::config::parse(ROOT).expect("root parses");
        let file = "routes:\n  - name: r\n    match: { path_prefix: /shop/ }\n    to: c\n    request_headers: { add: { x-k: \"${env:PATH}\" } }\nclusters:\n  - name: c\n    endpoints: [{ address: 10.0.0.7:80 }]\n";
        let errors = check(&root.teams[0], &root, &source(file))
            .err()
            .expect("refused");
        assert!(
            errors[0]
                .to_string()
                .contains("cannot read the gateway's environment")
        );
        // The root itself still may.
        assert!(
            crate::config::parse("listeners: []\ninternal_headers: [\"${env:PATH}\"]\n").is_ok()
        );
    }
}
