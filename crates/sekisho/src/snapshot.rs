//! One immutable, compiled config: everything a request meets. A reload compiles a new
//! snapshot off the request path and swaps it in; requests in flight finish on theirs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;

use crate::config::model;
use crate::config::model::{Http1, Http2, PathPolicy};
use crate::config::team::{self, Source};
use crate::config::{Config, ConfigError, Problem};
use crate::listener::proxy_protocol::ProxyProtocol;
use crate::listener::tls;
use crate::observe::access_log::AccessLog;
use crate::observe::trace::Tracing;
use crate::policy::cidr::CidrSet;
use crate::policy::client_ip::ClientIp;
use crate::policy::identity::InternalHeaders;
use crate::policy::ip_acl::IpAcl;
use crate::policy::jwt::Providers;
use crate::policy::rate_limit::Stores;
use crate::policy::waf::{RuleSets, Waf};
use crate::route::{Route, RouteTable};
use crate::teams::{TeamStatus, Version};
use crate::upstream::Cluster;
use crate::upstream::discovery::Resolve;

/// How long a drain may take when the config does not say.
const DEFAULT_DRAIN: Duration = Duration::from_secs(30);

/// A listener's settings that apply per connection.
pub struct ListenerSettings {
    /// TLS termination, if any; picked up by the next handshake after a reload.
    pub tls: Option<TlsAcceptor>,
    /// HTTP/2 limits.
    pub http2: Http2,
    /// HTTP/1.1 limits.
    pub http1: Http1,
    /// PROXY protocol, if the listener takes it.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// How the client's address is derived.
    pub client_ip: ClientIp,
    /// Clients allowed on the listener.
    pub ip_acl: Option<IpAcl>,
    /// Longest request target accepted.
    pub max_uri_bytes: usize,
    /// How request paths are normalized.
    pub paths: PathPolicy,
}

/// The compiled config.
pub struct Snapshot {
    /// As parsed; `/config` shows it with secrets redacted.
    pub config: Config,
    /// By name.
    pub listeners: HashMap<String, Arc<ListenerSettings>>,
    /// In file order.
    pub routes: RouteTable,
    /// In file order.
    pub clusters: Vec<Arc<Cluster>>,
    /// Bound on a graceful shutdown.
    pub drain_timeout: Duration,
    /// Where access log entries go, when on.
    pub access_log: Option<AccessLog>,
    /// Files the config names (certificates, CAs): a change to one reloads.
    pub files: Vec<PathBuf>,
    /// JWT issuers by name, with their keys.
    pub jwt_providers: Providers,
    /// Stores of shared rate limits by name, with their connections.
    pub rate_limit_stores: Stores,
    /// The tracer, when tracing is on (and a runtime is there to export).
    pub tracing: Option<Arc<Tracing>>,
    /// Headers no client may send.
    pub internal_headers: InternalHeaders,
    /// Each team of the root's grants, in grant order: what serves and what was refused.
    pub teams: Vec<TeamStatus>,
    /// Directories of team files: a file added to or removed from one reloads.
    pub watch_dirs: Vec<PathBuf>,
}

/// How team files are treated while compiling.
#[derive(Clone, Debug, Default)]
pub struct CompileOptions {
    /// A refused team version fails the whole config (for `validate`), instead of leaving
    /// the team on its last good version.
    pub strict: bool,
    /// A team whose files are these instead of what its grant's globs match (a team's CI
    /// checking a change before it merges).
    pub team_files: Option<(String, Vec<PathBuf>)>,
}

impl Snapshot {
    /// Compiles `config` (read from `file`). Clusters named in `previous` keep their
    /// connections where the way of connecting is unchanged.
    pub fn compile(
        config: Config,
        file: &Path,
        previous: Option<&Snapshot>,
        log: Option<&AccessLog>,
        resolver: &Arc<dyn Resolve>,
    ) -> Result<Snapshot, ConfigError> {
        Self::compile_with(
            config,
            file,
            previous,
            log,
            resolver,
            &CompileOptions::default(),
        )
    }

    /// The status of the team named `name`.
    pub fn team(&self, name: &str) -> Option<&TeamStatus> {
        self.teams.iter().find(|t| t.name == name)
    }

    /// [`Snapshot::compile`], with a choice of how team files are treated.
    pub fn compile_with(
        config: Config,
        file: &Path,
        previous: Option<&Snapshot>,
        log: Option<&AccessLog>,
        resolver: &Arc<dyn Resolve>,
        options: &CompileOptions,
    ) -> Result<Snapshot, ConfigError> {
        let mut problems = Vec::new();
        let mut files = Vec::new();

        let mut listeners = HashMap::new();
        for (i, spec) in config.listeners.iter().enumerate() {
            let tls = match &spec.tls {
                None => None,
                Some(t) => {
                    let mut keys = Vec::new();
                    for (j, pair) in t.certificates.iter().enumerate() {
                        let cert = Path::new(&*pair.cert.value);
                        let key = Path::new(&*pair.key.value);
                        files.push(cert.to_path_buf());
                        files.push(key.to_path_buf());
                        match tls::load_certified_key(cert, key) {
                            Ok(k) => keys.push(k),
                            Err(e) => problems.push(Problem::on(
                                &pair.cert,
                                format!("listeners[{i}].tls.certificates[{j}]"),
                                e,
                            )),
                        }
                    }
                    if keys.len() < t.certificates.len() {
                        None
                    } else {
                        match tls::SniResolver::new(keys).and_then(tls::server_config) {
                            Ok(server) => Some(TlsAcceptor::from(server)),
                            Err(e) => {
                                problems.push(Problem::on(
                                    &spec.name,
                                    format!("listeners[{i}].tls"),
                                    e,
                                ));
                                None
                            }
                        }
                    }
                }
            };
            let at = |field: &str| format!("listeners[{i}].{field}");
            let proxy_protocol = match &spec.proxy_protocol {
                Some(pp) => match CidrSet::parse(pp.from.iter().map(|t| &**t)) {
                    Ok(from) => Some(ProxyProtocol {
                        from,
                        required: pp.required,
                    }),
                    Err(e) => {
                        problems.push(Problem::on(&spec.name, at("proxy_protocol.from"), e));
                        None
                    }
                },
                None => None,
            };
            let client_ip = match &spec.client_ip {
                None => ClientIp::Peer,
                Some(c) => match c.xff_trusted_hops {
                    Some(hops) => ClientIp::Hops(hops),
                    None => match CidrSet::parse(c.trusted_proxies.iter().map(|t| &**t)) {
                        Ok(set) => ClientIp::TrustedProxies(set),
                        Err(e) => {
                            problems.push(Problem::on(
                                &spec.name,
                                at("client_ip.trusted_proxies"),
                                e,
                            ));
                            ClientIp::Peer
                        }
                    },
                },
            };
            let ip_acl = match &spec.ip_acl {
                Some(acl) => match IpAcl::compile(acl, &mut files) {
                    Ok(acl) => Some(acl),
                    Err(e) => {
                        problems.push(Problem::on(&spec.name, at("ip_acl"), e));
                        None
                    }
                },
                None => None,
            };
            let settings = ListenerSettings {
                tls,
                http2: spec.http2.clone(),
                http1: spec.http1.clone(),
                proxy_protocol,
                client_ip,
                ip_acl,
                max_uri_bytes: spec.max_uri_bytes,
                paths: spec.paths,
            };
            listeners.insert(spec.name.value.to_string(), Arc::new(settings));
        }

        let old: HashMap<&str, &Arc<Cluster>> = previous
            .map(|p| p.clusters.iter().map(|c| (&*c.name, c)).collect())
            .unwrap_or_default();
        let rate_limit_stores = Stores::open(
            &config.rate_limit_stores,
            previous.map(|p| &p.rate_limit_stores),
            &mut problems,
        );
        let mut build = Build {
            old,
            resolver,
            files: &mut files,
            rule_sets: RuleSets::new(),
            stores: &rate_limit_stores,
        };
        let mut clusters = build.clusters(&config.clusters, &mut problems);

        let internal_headers = InternalHeaders::compile(&config, &mut problems);
        let jwt_providers = Providers::compile(
            &config.jwt_providers,
            previous.map(|p| &p.jwt_providers),
            build.files,
            &mut problems,
        );

        // Root routes send only to root clusters; a team's routes only to the team's.
        let root_routes = {
            let by_name: HashMap<&str, &Arc<Cluster>> =
                clusters.iter().map(|c| (&*c.name, c)).collect();
            build.routes(&config.routes, &by_name, &jwt_providers, &mut problems)
        };
        let mut routes = Vec::new();
        let mut teams = Vec::new();
        if problems.is_empty() {
            for grant in &config.teams {
                let before = previous.and_then(|p| p.team(&grant.name.value));
                let team = build.team(grant, &config, &jwt_providers, before, options)?;
                if let Some(refused) = team.status.refused.as_ref().filter(|_| options.strict) {
                    problems.push(Problem::on(
                        &grant.name,
                        "teams",
                        format!("team {:?} refused:\n{}", team.status.name, refused.error),
                    ));
                }
                routes.extend(team.compiled.routes);
                clusters.extend(team.compiled.clusters);
                teams.push(team.status);
            }
        }
        // Team routes first: a root's catch-all must not shadow them, and grants never
        // overlap, so no two teams compete for a request.
        routes.extend(root_routes);
        let watch_dirs = config.teams.iter().flat_map(team::directories).collect();

        if !problems.is_empty() {
            problems.sort_by_key(|p| (p.line, p.column));
            return Err(ConfigError {
                file: file.to_owned(),
                problems,
            });
        }
        let drain_timeout = config
            .drain_timeout
            .as_ref()
            .map_or(DEFAULT_DRAIN, |d| d.get().0);
        let access_log = match (&config.access_log.path, config.access_log.enabled) {
            (_, false) => None,
            // `validate` passes no log: it checks the config and writes nothing.
            (None, true) | (Some(_), true) if log.is_none() => None,
            (None, true) => log.cloned(),
            (Some(path), true) => {
                let target = Path::new(&*path.value);
                let kept = previous
                    .and_then(|p| p.access_log.clone())
                    .filter(|l| l.path() == Some(target));
                match kept {
                    Some(kept) => Some(kept),
                    None => Some(AccessLog::to_file(target).map_err(|e| {
                        ConfigError::one(
                            file,
                            Problem::on(path, "access_log.path", format!("cannot open: {e}")),
                        )
                    })?),
                }
            }
        };
        // Kept across reloads that leave its settings alone; `validate` has no runtime and
        // only checks the settings.
        let tracing = match &config.tracing {
            Some(spec) if tokio::runtime::Handle::try_current().is_ok() => {
                match previous
                    .and_then(|p| p.tracing.clone())
                    .filter(|t| t.built_from(spec))
                {
                    Some(kept) => Some(kept),
                    None => Some(Arc::new(Tracing::start(spec).map_err(|e| ConfigError {
                        file: file.to_owned(),
                        problems: vec![Problem {
                            field: "tracing".into(),
                            ..Problem::whole_file(e)
                        }],
                    })?)),
                }
            }
            _ => None,
        };
        Ok(Snapshot {
            config,
            listeners,
            routes: RouteTable::new(routes),
            teams,
            watch_dirs,
            internal_headers,
            clusters,
            drain_timeout,
            access_log,
            files,
            jwt_providers,
            rate_limit_stores,
            tracing,
        })
    }
}

/// What compiling clusters and routes shares: the clusters they may carry state over
/// from, the resolver, the files to watch and the WAF rule sets already loaded.
struct Build<'a> {
    old: HashMap<&'a str, &'a Arc<Cluster>>,
    resolver: &'a Arc<dyn Resolve>,
    files: &'a mut Vec<PathBuf>,
    rule_sets: RuleSets,
    stores: &'a Stores,
}

/// One version of a team's files, compiled.
struct Compiled {
    routes: Vec<Route>,
    clusters: Vec<Arc<Cluster>>,
}

/// A team's part of a snapshot: the version that serves (none when no version ever
/// compiled) and what was decided.
struct TeamPart {
    compiled: Compiled,
    status: TeamStatus,
}

impl Build<'_> {
    fn clusters(
        &mut self,
        specs: &[model::Cluster],
        problems: &mut Vec<Problem>,
    ) -> Vec<Arc<Cluster>> {
        let mut clusters = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let ca = spec.tls.as_ref().and_then(|t| t.ca.as_ref());
            let ca_file = ca.map(|c| Path::new(&*c.value));
            if let Some(path) = ca_file {
                self.files.push(path.to_path_buf());
            }
            let prior = self.old.get(&*spec.name.value).map(|c| c.as_ref());
            match Cluster::build(spec, ca_file, prior, self.resolver) {
                Ok(cluster) => clusters.push(Arc::new(cluster)),
                Err(e) => {
                    let at = ca.unwrap_or(&spec.name);
                    problems.push(Problem::on(at, format!("clusters[{i}]"), e));
                }
            }
        }
        clusters
    }

    fn routes(
        &mut self,
        specs: &[model::Route],
        clusters: &HashMap<&str, &Arc<Cluster>>,
        providers: &Providers,
        problems: &mut Vec<Problem>,
    ) -> Vec<Route> {
        let mut routes = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let cluster = |name: &str| clusters.get(name).map(|c| (*c).clone());
            let waf = match &spec.waf {
                Some(w) if w.rules.is_empty() => {
                    problems.push(Problem::on(
                        &spec.name,
                        format!("routes[{i}].waf.rules"),
                        "names no rule file",
                    ));
                    None
                }
                Some(w) => match Waf::compile(w, &mut self.rule_sets, self.files) {
                    Ok(waf) => Some(Arc::new(waf)),
                    Err(e) => {
                        problems.push(Problem::on(
                            &w.rules[e.entry],
                            format!("routes[{i}].waf.rules[{}]", e.entry),
                            e.message,
                        ));
                        None
                    }
                },
                None => None,
            };
            match Route::compile(spec, cluster, providers, self.stores, self.files) {
                Ok(mut route) => {
                    route.waf = waf;
                    if let Some(transcoding) = &route.transcode {
                        self.files.extend(transcoding.files().iter().cloned());
                    }
                    routes.push(route)
                }
                Err(e) => problems.push(Problem::on(&spec.to, format!("routes[{i}]"), e)),
            }
        }
        routes
    }

    /// The team's latest files if they check and compile, else its last good version;
    /// an error only when neither compiles under this root (the root is then refused, so
    /// a root change cannot silently take a serving team's routes away).
    fn team(
        &mut self,
        grant: &crate::config::grant::Grant,
        root: &Config,
        providers: &Providers,
        before: Option<&TeamStatus>,
        options: &CompileOptions,
    ) -> Result<TeamPart, ConfigError> {
        let name = grant.name.value.to_string();
        let latest = match &options.team_files {
            Some((team, paths)) if *team == name => team::read_files(paths),
            _ => team::read(grant),
        };
        let refusal = match latest {
            Ok(sources) => {
                let version: Version = Arc::new(sources);
                match self.team_version(grant, root, providers, &version) {
                    Ok(compiled) => {
                        let applied = before
                            .filter(|b| b.serving.as_ref() == Some(&version))
                            .and_then(|b| b.applied)
                            .or_else(|| Some(std::time::SystemTime::now()));
                        let status = TeamStatus {
                            name,
                            routes: compiled.routes.len(),
                            serving: Some(version),
                            applied,
                            refused: None,
                        };
                        return Ok(TeamPart { compiled, status });
                    }
                    Err(errors) => TeamStatus::refusing(version, errors, before),
                }
            }
            Err(e) => TeamStatus::refusing(Arc::new(Vec::new()), vec![e], before),
        };
        let Some(good) = before.and_then(|b| b.serving.clone()) else {
            let status = TeamStatus {
                name,
                serving: None,
                applied: None,
                routes: 0,
                refused: Some(refusal),
            };
            let compiled = Compiled {
                routes: Vec::new(),
                clusters: Vec::new(),
            };
            return Ok(TeamPart { compiled, status });
        };
        match self.team_version(grant, root, providers, &good) {
            Ok(compiled) => {
                let status = TeamStatus {
                    name,
                    routes: compiled.routes.len(),
                    serving: Some(good),
                    applied: before.and_then(|b| b.applied),
                    refused: Some(refusal),
                };
                Ok(TeamPart { compiled, status })
            }
            Err(errors) => {
                let mut merged = ConfigError::merged(Path::new(&*grant.name.value), errors);
                for problem in &mut merged.problems {
                    problem.message = format!(
                        "team {name:?} has no version that works with this config (its latest \
                         is refused too): {}",
                        problem.message
                    );
                }
                Err(merged)
            }
        }
    }

    /// Checks and compiles one version of a team's files.
    fn team_version(
        &mut self,
        grant: &crate::config::grant::Grant,
        root: &Config,
        providers: &Providers,
        version: &[Source],
    ) -> Result<Compiled, Vec<ConfigError>> {
        let checked = team::check(grant, root, version)?;
        let mut errors = Vec::new();
        let mut clusters = Vec::new();
        let mut watched = Vec::new();
        let files_before = self.files.len();
        for part in &checked {
            let mut problems = Vec::new();
            clusters.extend(self.clusters(&part.file.clusters, &mut problems));
            if !problems.is_empty() {
                errors.push(ConfigError {
                    file: part.path.clone(),
                    problems,
                });
            }
        }
        let by_name: HashMap<&str, &Arc<Cluster>> =
            clusters.iter().map(|c| (&*c.name, c)).collect();
        let mut routes = Vec::new();
        for part in &checked {
            let mut problems = Vec::new();
            routes.extend(self.routes(&part.file.routes, &by_name, providers, &mut problems));
            if !problems.is_empty() {
                errors.push(ConfigError {
                    file: part.path.clone(),
                    problems,
                });
            }
            watched.push(part.path.clone());
        }
        if !errors.is_empty() {
            self.files.truncate(files_before);
            return Err(errors);
        }
        self.files.extend(watched);
        Ok(Compiled { routes, clusters })
    }
}
