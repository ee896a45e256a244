//! One immutable, compiled config: everything a request meets. A reload compiles a new
//! snapshot off the request path and swaps it in; requests in flight finish on theirs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;

use crate::config::model::{Http1, Http2, PathPolicy};
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
use crate::policy::waf::{RuleSets, Waf};
use crate::route::{Route, RouteTable};
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
    /// The tracer, when tracing is on (and a runtime is there to export).
    pub tracing: Option<Arc<Tracing>>,
    /// Headers no client may send.
    pub internal_headers: InternalHeaders,
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
        let mut clusters = Vec::new();
        for (i, spec) in config.clusters.iter().enumerate() {
            let ca = spec.tls.as_ref().and_then(|t| t.ca.as_ref());
            let ca_file = ca.map(|c| Path::new(&*c.value));
            if let Some(path) = ca_file {
                files.push(path.to_path_buf());
            }
            let prior = old.get(&*spec.name.value).map(|c| c.as_ref());
            match Cluster::build(spec, ca_file, prior, resolver) {
                Ok(cluster) => clusters.push(Arc::new(cluster)),
                Err(e) => {
                    let at = ca.unwrap_or(&spec.name);
                    problems.push(Problem::on(at, format!("clusters[{i}]"), e));
                }
            }
        }

        let internal_headers = InternalHeaders::compile(&config, &mut problems);
        let jwt_providers = Providers::compile(
            &config.jwt_providers,
            previous.map(|p| &p.jwt_providers),
            &mut files,
            &mut problems,
        );

        let by_name: HashMap<&str, &Arc<Cluster>> =
            clusters.iter().map(|c| (&*c.name, c)).collect();
        let mut routes = Vec::new();
        let mut rule_sets = RuleSets::new();
        for (i, spec) in config.routes.iter().enumerate() {
            let cluster = |name: &str| by_name.get(name).map(|c| (*c).clone());
            let waf = match &spec.waf {
                Some(w) if w.rules.is_empty() => {
                    problems.push(Problem::on(
                        &spec.name,
                        format!("routes[{i}].waf.rules"),
                        "names no rule file",
                    ));
                    None
                }
                Some(w) => match Waf::compile(w, &mut rule_sets, &mut files) {
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
            match Route::compile(spec, cluster, &jwt_providers, &mut files) {
                Ok(mut route) => {
                    route.waf = waf;
                    if let Some(transcoding) = &route.transcode {
                        files.extend(transcoding.files().iter().cloned());
                    }
                    routes.push(route)
                }
                Err(e) => problems.push(Problem::on(&spec.to, format!("routes[{i}]"), e)),
            }
        }

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
                            line: 0,
                            column: 0,
                            field: "tracing".into(),
                            message: e,
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
            internal_headers,
            clusters,
            drain_timeout,
            access_log,
            files,
            jwt_providers,
            tracing,
        })
    }
}
