//! sekisho: an edge gateway for gRPC platforms.
//!
//! One listener serves gRPC (HTTP/2), REST (HTTP/1.1) and gRPC-Web; routes pick an
//! upstream cluster by host, path, gRPC service and method, or headers. Everything a
//! request meets comes from one immutable snapshot of the compiled config, swapped
//! atomically on reload.
#![forbid(unsafe_code)]

pub mod adapt;
pub mod admin;
pub mod body;
pub mod cert;
pub mod config;
pub(crate) mod h2socket;
pub(crate) mod h2stream;
pub(crate) mod heap;
pub mod keep_alive;
pub mod listener;
pub mod observe;
pub mod policy;
pub mod proxy;
pub mod route;
pub mod snapshot;
pub mod state;
pub mod teams;
#[cfg(feature = "up")]
pub mod up;
pub mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};

use config::ConfigError;
use config::watch::FileWatch;
use observe::access_log::AccessLog;
use observe::metrics;
use snapshot::Snapshot;
use state::State;
use upstream::discovery::{Resolve, SystemResolver};

/// Why the gateway could not start or take a new config.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file is wrong; each problem names file, line, column and field.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A listener's address could not be bound.
    #[error("listener {listener:?}: cannot bind {address}: {source}")]
    Bind {
        /// Listener name.
        listener: String,
        /// Address asked for.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A certificate could not be made.
    #[error("certificate: {0}")]
    Cert(String),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
}

/// DNS names get this long to resolve before a config is served.
const FIRST_RESOLVE: Duration = Duration::from_secs(5);

/// A running gateway.
pub struct Gateway {
    inner: Arc<Inner>,
    admin: Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
    reloader: tokio::task::JoinHandle<()>,
}

struct Inner {
    state: Arc<State>,
    resolver: Arc<dyn Resolve>,
    listeners: Mutex<HashMap<String, listener::Running>>,
    /// Bound addresses by listener name, readable while a reload holds `listeners`.
    bound: std::sync::RwLock<HashMap<String, SocketAddr>>,
    watch: std::sync::Mutex<Option<FileWatch>>,
    /// Held by a reload from before it reads the config file until its snapshot is in
    /// place: reloads (SIGHUP, the watcher, [`Gateway::reload`]) take turns in the order
    /// they were asked for, so the config read last is the one swapped in last.
    reloading: Mutex<()>,
}

impl Gateway {
    /// Loads, validates and serves the config file: binds the listeners and the admin
    /// listener and starts watching the config and the files it names.
    pub async fn start(config_path: impl AsRef<Path>) -> Result<Gateway, Error> {
        Self::start_with(config_path, Options::default()).await
    }

    /// [`Gateway::start`] with non-default parts.
    pub async fn start_with(
        config_path: impl AsRef<Path>,
        options: Options,
    ) -> Result<Gateway, Error> {
        metrics::install();
        let path = config_path.as_ref().to_path_buf();
        let log = AccessLog::start();
        let resolver = options.resolver;
        let snapshot = compile(path.clone(), None, Some(log.clone()), resolver.clone()).await?;
        resolve_new_dns(&snapshot).await;
        snapshot.jwt_providers.start().await;
        activate(&snapshot);
        let admin_address = snapshot.config.admin.as_ref().map(|a| *a.address.get());
        let state = Arc::new(State::new(snapshot, path.clone(), log));

        let mut listeners = HashMap::new();
        for spec in &state.snapshot().config.listeners {
            let name = spec.name.value.to_string();
            let address = *spec.address.get();
            let running = start_listener(&name, address, &state).await?;
            tracing::info!(listener = %name, address = %running.local_addr, tls = spec.tls.is_some(), "listening");
            listeners.insert(name, running);
        }
        let admin = match admin_address {
            Some(address) => {
                let socket = listener::bind(address)
                    .await
                    .map_err(|source| Error::Bind {
                        listener: "admin".into(),
                        address,
                        source,
                    })?;
                let bound = admin::local_addr(&socket).unwrap_or(address);
                tracing::info!(address = %bound, "admin listening");
                Some((bound, admin::spawn(socket, state.clone())))
            }
            None => None,
        };

        let inner = Arc::new(Inner {
            state,
            resolver,
            bound: std::sync::RwLock::new(bound_addresses(&listeners)),
            listeners: Mutex::new(listeners),
            watch: std::sync::Mutex::new(None),
            reloading: Mutex::new(()),
        });
        let (changed, mut changes) = mpsc::unbounded_channel();
        match FileWatch::start(changed) {
            Ok(watch) => {
                if let Ok(mut slot) = inner.watch.lock() {
                    *slot = Some(watch);
                }
                inner.watch_files();
            }
            Err(e) => tracing::warn!(error = %e, "config file watching is off"),
        }
        let weak = Arc::downgrade(&inner);
        let reloader = tokio::spawn(async move {
            while changes.recv().await.is_some() {
                // Changes that queued up while the last reload ran are all seen by the next.
                while changes.try_recv().is_ok() {}
                let Some(inner) = weak.upgrade() else { return };
                let _ = inner.reload().await;
            }
        });
        metrics::config_reload(true);
        Ok(Gateway {
            inner,
            admin,
            reloader,
        })
    }

    /// The address a listener is bound to (configs in tests use port 0).
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.inner.bound.read().ok()?.get(name).copied()
    }

    /// The admin listener's address.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(addr, _)| *addr)
    }

    /// Reads the config file again, as SIGHUP does. On error the running config stays.
    /// Reloads take turns with each other and with the file watcher's, each reading the
    /// file when its turn comes, so the file as last written is what ends up running; the
    /// compilation runs on the blocking pool, not on the threads serving requests.
    pub async fn reload(&self) -> Result<(), Error> {
        self.inner.reload().await
    }

    /// Stops accepting, lets requests in flight finish up to the drain timeout, then
    /// closes what is left.
    pub async fn shutdown(self) {
        let state = &self.inner.state;
        state.start_draining();
        let drain = state.snapshot().drain_timeout;
        tracing::info!(?drain, "shutting down");
        self.reloader.abort();
        let listeners: Vec<_> = self.inner.listeners.lock().await.drain().collect();
        let stops = listeners.into_iter().map(|(_, l)| l.stop(drain));
        futures_join_all(stops).await;
        if let Some((_, task)) = self.admin {
            task.abort();
        }
        if let Ok(mut watch) = self.inner.watch.lock() {
            watch.take();
        }
        tracing::info!("shut down");
    }
}

impl Inner {
    async fn reload(&self) -> Result<(), Error> {
        let result = self.try_reload().await;
        metrics::config_reload(result.is_ok());
        match &result {
            Ok(()) => tracing::info!("config reloaded"),
            Err(e) => tracing::error!("config rejected, the running config stays:\n{e}"),
        }
        result
    }

    async fn try_reload(&self) -> Result<(), Error> {
        let _turn = self.reloading.lock().await;
        let state = &self.state;
        let snapshot = compile(
            state.config_path.clone(),
            Some(state.snapshot()),
            Some(state.access_log.clone()),
            self.resolver.clone(),
        )
        .await?;
        resolve_new_dns(&snapshot).await;
        snapshot.jwt_providers.start().await;

        // Bind new listeners before the swap, so a port in use rejects the whole config.
        let mut listeners = self.listeners.lock().await;
        let mut started = HashMap::new();
        for spec in &snapshot.config.listeners {
            let name = spec.name.value.to_string();
            let address = *spec.address.get();
            if listeners
                .get(&name)
                .is_some_and(|l| l.configured == address)
            {
                continue;
            }
            match start_listener(&name, address, state).await {
                Ok(running) => {
                    started.insert(name, running);
                }
                Err(e) => {
                    for (_, running) in started {
                        running.stop(Duration::ZERO).await;
                    }
                    return Err(e);
                }
            }
        }
        let drain = snapshot.drain_timeout;
        let keep: Vec<String> = snapshot
            .config
            .listeners
            .iter()
            .map(|l| l.name.value.to_string())
            .collect();
        state.swap(snapshot);
        activate(&state.snapshot());
        let mut retired = Vec::new();
        for (name, running) in started {
            if let Some(old) = listeners.insert(name, running) {
                retired.push(old);
            }
        }
        let gone: Vec<String> = listeners
            .keys()
            .filter(|name| !keep.contains(name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(old) = listeners.remove(&name) {
                retired.push(old);
            }
        }
        if let Ok(mut bound) = self.bound.write() {
            *bound = bound_addresses(&listeners);
        }
        drop(listeners);
        for old in retired {
            tokio::spawn(old.stop(drain));
        }
        self.watch_files();
        Ok(())
    }

    fn watch_files(&self) {
        let snapshot = self.state.snapshot();
        let mut files: Vec<PathBuf> = snapshot.files.clone();
        files.push(self.state.config_path.clone());
        if let Ok(mut watch) = self.watch.lock()
            && let Some(watch) = watch.as_mut()
        {
            watch.set_files(files, snapshot.watch_dirs.iter().cloned());
        }
    }
}

fn bound_addresses(listeners: &HashMap<String, listener::Running>) -> HashMap<String, SocketAddr> {
    listeners
        .iter()
        .map(|(name, l)| (name.clone(), l.local_addr))
        .collect()
}

async fn start_listener(
    name: &str,
    address: SocketAddr,
    state: &Arc<State>,
) -> Result<listener::Running, Error> {
    let bind_error = |source| Error::Bind {
        listener: name.to_owned(),
        address,
        source,
    };
    let socket = listener::bind(address).await.map_err(bind_error)?;
    listener::spawn(socket, Arc::from(name), address, state.clone()).map_err(bind_error)
}

/// Reads and compiles the config file on tokio's blocking pool. Reading files, compiling
/// the WAF's rules (the CRS is hundreds of regular expressions) and `.proto` sources take
/// from milliseconds to seconds; on the runtime's threads that would stall every request,
/// and all traffic on a single-threaded runtime. The blocking pool's threads are inside the
/// runtime, so what the snapshot starts (health checks, a rate limit's sweeper) is spawned
/// on it as before.
async fn compile(
    path: PathBuf,
    previous: Option<Arc<Snapshot>>,
    log: Option<AccessLog>,
    resolver: Arc<dyn Resolve>,
) -> Result<Snapshot, Error> {
    let compiled = tokio::task::spawn_blocking(move || {
        let config = config::load(&path)?;
        let doubts = config::doubts(&config);
        if !doubts.is_empty() {
            let doubts = config::ConfigError {
                file: path.clone(),
                problems: doubts,
            };
            for line in doubts.to_string().lines() {
                tracing::warn!("config: {line}");
            }
        }
        Snapshot::compile(config, &path, previous.as_deref(), log.as_ref(), &resolver)
    })
    .await;
    match compiled {
        Ok(result) => Ok(result?),
        Err(e) => Err(Error::Io(format!("compiling the config failed: {e}"))),
    }
}

/// Resolves DNS endpoints of clusters that have none yet, so a new config starts with
/// addresses to send to.
async fn resolve_new_dns(snapshot: &Snapshot) {
    for cluster in snapshot.clusters.iter().filter(|c| c.uses_dns()) {
        if cluster.endpoints().is_empty() {
            let _ = tokio::time::timeout(FIRST_RESOLVE, cluster.refresh_dns()).await;
        }
    }
}

/// Puts the clusters of a snapshot now in force into service, and says what it decided
/// for each team.
fn activate(snapshot: &Snapshot) {
    for cluster in &snapshot.clusters {
        cluster.activate();
    }
    for team in &snapshot.teams {
        team.report();
    }
}

/// Parts of a gateway that embedders and tests may replace.
pub struct Options {
    /// Resolves the `dns` endpoints of clusters.
    pub resolver: Arc<dyn Resolve>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            resolver: Arc::new(SystemResolver),
        }
    }
}

async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    futures: impl IntoIterator<Item = F>,
) {
    let mut set = tokio::task::JoinSet::new();
    for future in futures {
        set.spawn(future);
    }
    while set.join_next().await.is_some() {}
}
