//! A Redis server holding the buckets that the gateway's replicas share.
//!
//! Every call is one round trip: a pipeline of one script run per bucket. The script
//! reads the server's clock, adds the requests a replica let through on its own, takes
//! one more when a request waits on the answer and it fits, and stores the TAT with an
//! expiry at the moment the bucket is full again, so a key nobody uses leaves the server
//! by itself. The answer is how far the TAT runs ahead of the server's clock, which a
//! replica adds to its own clock: no two clocks ever have to agree.
//!
//! A call that fails or takes longer than `timeout` marks the store down; while down, no
//! request waits on it and a probe (a PING every [`PROBE_EVERY`]) brings it back up.
//!
//! In a Redis Cluster the buckets spread over the primaries by key slot. A call there is
//! one script run per bucket, all sent at once over the cluster connection (which writes
//! them to each node's connection back to back): a pipeline may only hold the keys of one
//! slot, and a report's keys are nearly all in different ones.
//!
//! A Sentinel-managed primary is found by asking the Sentinels ([`super::sentinel`]) on
//! first use and on every probe while the store is down, so a failover is followed.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{
    Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo,
    TlsCertificates,
};

use super::gcra::Gcra;
use super::sentinel::Sentinels;
use crate::config::model;
use crate::observe::metrics::{self, StoreSeries};

/// How often a store that is down is probed.
pub const PROBE_EVERY: Duration = Duration::from_millis(250);

/// The longest a call may take when the config says nothing.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);

/// The longest opening a connection may take when the config says nothing.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The bucket arithmetic of [`Gcra`] in microseconds of the server's clock. Replies the
/// request taken (1 or 0) and how many microseconds the TAT is ahead of the server's now.
const SCRIPT: &str = r"
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local spent = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
tat = tat + spent * interval
local taken = 0
if ARGV[4] == '1' and tat + interval - now <= tolerance then
  tat = tat + interval
  taken = 1
end
local ahead = tat - now
if ahead > 0 then
  redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(ahead / 1000))
end
return {taken, math.ceil(ahead)}
";

/// One bucket's part of a call.
pub(super) struct Call {
    /// The bucket's key on the server.
    pub key: String,
    /// Requests let through by the replica that the server has not counted.
    pub spent: u32,
    /// A request waits on this call: take one for it if it fits.
    pub want: bool,
}

/// The server's answer for one bucket.
#[derive(Clone, Copy, Debug)]
pub(super) struct Answer {
    /// The waiting request was taken.
    pub taken: bool,
    /// How far the bucket's TAT runs ahead of the server's clock.
    pub ahead: Duration,
}

/// Why a call got no answer.
#[derive(Debug)]
pub(super) enum Failure {
    /// The store is down (a probe has not succeeded since a call failed).
    Down,
    /// The call failed or took too long.
    Failed,
}

/// A connection to the store; each carries many calls at once and reconnects by itself.
#[derive(Clone)]
enum Link {
    /// One server (or a primary behind an address that follows failovers).
    Standalone(ConnectionManager),
    /// A Redis Cluster: a connection to each node, routed by key slot, following the
    /// cluster's MOVED and ASK redirections.
    Cluster(ClusterConnection),
}

/// An open store: a few multiplexed connections, each reconnecting by itself.
pub struct Store {
    name: Arc<str>,
    settings: Settings,
    connector: Connector,
    /// Empty outside a runtime (nothing is served), and in sentinel mode until the
    /// Sentinels have named a primary.
    links: ArcSwap<Box<[Link]>>,
    /// In sentinel mode, the primary the links go to.
    primary: Mutex<Option<String>>,
    /// Made inside a runtime: calls and probes may connect.
    serving: bool,
    next: AtomicUsize,
    timeout: Duration,
    prefix: Arc<str>,
    up: AtomicBool,
    series: StoreSeries,
    script: redis::Script,
}

/// What a store was opened with: a reload that leaves it alone keeps the open store.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Settings {
    address: String,
    mode: model::RedisMode,
    username: Option<String>,
    password: Option<String>,
    database: u16,
    /// The PEM contents of the TLS files, so a reload after a rotation reconnects.
    tls: Option<TlsFiles>,
    connect_timeout: Duration,
    timeout: Duration,
    connections: usize,
    prefix: String,
    sentinel: Option<SentinelSettings>,
}

/// What a store in sentinel mode was opened with.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SentinelSettings {
    master: String,
    /// `address` and the others, in the order they are asked.
    addresses: Vec<String>,
    password: Option<String>,
}

/// The contents of a store's `tls` files.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TlsFiles {
    ca: Option<Vec<u8>>,
    cert: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
}

impl Settings {
    fn from(spec: &model::RedisStore) -> Result<Settings, String> {
        let read =
            |field: &str, path: &Option<serde_saphyr::Spanned<crate::config::text::Text>>| {
                path.as_ref()
                    .map(|p| {
                        std::fs::read(&*p.value)
                            .map_err(|e| format!("tls.{field}: cannot read {:?}: {e}", &*p.value))
                    })
                    .transpose()
            };
        let tls = match &spec.tls {
            Some(t) => Some(TlsFiles {
                ca: read("ca", &t.ca)?,
                cert: read("cert", &t.cert)?,
                key: read("key", &t.key)?,
            }),
            None => None,
        };
        Ok(Settings {
            address: spec.address.value.to_string(),
            mode: spec.mode,
            username: spec.username.as_ref().map(|u| u.to_string()),
            password: spec.password.as_ref().map(|p| p.to_string()),
            database: spec.database,
            tls,
            connect_timeout: spec
                .connect_timeout
                .as_ref()
                .map_or(DEFAULT_CONNECT_TIMEOUT, |d| d.get().0),
            timeout: spec.timeout.as_ref().map_or(DEFAULT_TIMEOUT, |d| d.get().0),
            connections: spec.connections.max(1),
            prefix: spec.key_prefix.to_string(),
            sentinel: spec.sentinel.as_ref().map(|s| SentinelSettings {
                master: s.master.to_string(),
                addresses: std::iter::once(spec.address.value.to_string())
                    .chain(s.others.iter().map(|o| o.to_string()))
                    .collect(),
                password: s.password.as_ref().map(|p| p.to_string()),
            }),
        })
    }
}

impl Store {
    /// Opens the store `spec` describes (connections are made on first use, so a server
    /// that is down does not stop the gateway from starting), or keeps `previous` when
    /// its settings are the same. Outside a tokio runtime (`validate`, which serves
    /// nothing) the settings are checked and no connection is made.
    pub fn open(
        name: &str,
        spec: &model::RedisStore,
        previous: Option<&Arc<Store>>,
    ) -> Result<Arc<Store>, String> {
        let settings = Settings::from(spec)?;
        if let Some(kept) = previous.filter(|p| p.settings == settings) {
            return Ok(kept.clone());
        }
        let connector = Connector::new(&settings)?;
        let runtime = tokio::runtime::Handle::try_current().ok();
        let links = match runtime {
            Some(_) => connector
                .links(settings.connections)
                .map_err(|e| format!("cannot open: {e}"))?,
            None => Box::new([]),
        };
        let series = metrics::store_series(name);
        series.up.set(1.0);
        let store = Arc::new(Store {
            name: Arc::from(name),
            timeout: settings.timeout,
            prefix: Arc::from(settings.prefix.as_str()),
            settings,
            connector,
            links: ArcSwap::from_pointee(links),
            primary: Mutex::new(None),
            serving: runtime.is_some(),
            next: AtomicUsize::new(0),
            up: AtomicBool::new(true),
            series,
            script: redis::Script::new(SCRIPT),
        });
        if let Some(runtime) = runtime {
            runtime.spawn(probe_forever(Arc::downgrade(&store)));
        }
        Ok(store)
    }

    /// The key of a bucket: the prefix, the route, and a digest of the bucket's key.
    pub(super) fn key(&self, route: &str, digest: &[u8]) -> String {
        let mut key = String::with_capacity(self.prefix.len() + route.len() + 34);
        key.push_str(&self.prefix);
        key.push_str(route);
        key.push(':');
        for byte in digest {
            let _ = write!(key, "{byte:02x}");
        }
        key
    }

    /// True unless a call failed and no probe has succeeded since.
    pub(super) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Runs `calls` in one round trip; answers in the same order.
    pub(super) async fn call(&self, gcra: Gcra, calls: &[Call]) -> Result<Vec<Answer>, Failure> {
        if !self.is_up() || !self.serving {
            return Err(Failure::Down);
        }
        let start = Instant::now();
        let result = tokio::time::timeout(self.timeout, self.run(gcra, calls)).await;
        self.series.latency.record(start.elapsed().as_secs_f64());
        match result {
            Ok(Ok(answers)) => Ok(answers),
            Ok(Err(e)) => {
                self.series.errors.increment(1);
                self.down(&e.to_string());
                Err(Failure::Failed)
            }
            Err(_) => {
                self.series.timeouts.increment(1);
                self.down(&format!("no answer within {:?}", self.timeout));
                Err(Failure::Failed)
            }
        }
    }

    async fn run(&self, gcra: Gcra, calls: &[Call]) -> redis::RedisResult<Vec<Answer>> {
        // Microseconds as decimals: the server's clock counts microseconds.
        let interval = format!("{:.3}", gcra.interval as f64 / 1000.0);
        let tolerance = format!("{:.3}", gcra.tolerance as f64 / 1000.0);
        let commands: Vec<redis::Cmd> = calls
            .iter()
            .map(|call| {
                let mut cmd = redis::cmd("EVALSHA");
                cmd.arg(self.script.get_hash())
                    .arg(1)
                    .arg(&call.key)
                    .arg(&interval)
                    .arg(&tolerance)
                    .arg(call.spent)
                    .arg(u8::from(call.want));
                cmd
            })
            .collect();
        let replies: Vec<(i64, i64)> = match self.link().await? {
            Link::Standalone(mut conn) => {
                let mut pipe = redis::pipe();
                for cmd in commands {
                    pipe.add_command(cmd);
                }
                match pipe.query_async(&mut conn).await {
                    Err(e) if e.code() == Some("NOSCRIPT") => {
                        // A restarted or flushed server: load the script and go again, once.
                        self.script.prepare_invoke().load_async(&mut conn).await?;
                        pipe.query_async(&mut conn).await?
                    }
                    other => other?,
                }
            }
            Link::Cluster(mut conn) => match run_each(&conn, &commands).await {
                Err(e) if e.code() == Some("NOSCRIPT") => {
                    // A node that restarted, joined or was flushed: SCRIPT LOAD goes to
                    // every primary.
                    self.script.prepare_invoke().load_async(&mut conn).await?;
                    run_each(&conn, &commands).await?
                }
                other => other?,
            },
        };
        Ok(replies
            .into_iter()
            .map(|(taken, ahead)| Answer {
                taken: taken == 1,
                ahead: Duration::from_micros(u64::try_from(ahead).unwrap_or(0)),
            })
            .collect())
    }

    /// One of the links, in turn; `None` while there are none.
    fn pick(&self) -> Option<Link> {
        let links = self.links.load();
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        links.get(i % links.len().max(1)).cloned()
    }

    async fn link(&self) -> redis::RedisResult<Link> {
        match self.pick() {
            Some(link) => Ok(link),
            None => self.follow_primary().await,
        }
    }

    /// In sentinel mode: asks the Sentinels for the primary and, on first use or when it
    /// has moved, connects to it instead.
    async fn follow_primary(&self) -> redis::RedisResult<Link> {
        let Connector::Sentinel(sentinels, config) = &self.connector else {
            return self.pick().ok_or_else(no_link);
        };
        let (host, port) = sentinels.primary(self.timeout).await?;
        let address = format!("{host}:{port}");
        let known = self
            .primary
            .lock()
            .is_ok_and(|p| p.as_deref() == Some(address.as_str()));
        if !known || self.links.load().is_empty() {
            let (info, certificates) = connection_info(
                host,
                port,
                credentials(&self.settings),
                self.settings.tls.as_ref(),
            )
            .map_err(client_error)?;
            let client = client(info, certificates).map_err(client_error)?;
            let links = managers(&client, config, self.settings.connections)?;
            self.links.store(Arc::new(links));
            if let Ok(mut primary) = self.primary.lock() {
                *primary = Some(address.clone());
            }
            tracing::info!(store = %self.name, primary = %address, "rate limit store: the Sentinels name its primary");
        }
        self.pick().ok_or_else(no_link)
    }

    fn down(&self, why: &str) {
        if self.up.swap(false, Ordering::Relaxed) {
            self.series.up.set(0.0);
            tracing::warn!(store = %self.name, error = why, "rate limit store unreachable; shared limits follow their failure_mode until it answers again");
        }
    }

    async fn probe(&self) {
        if !self.serving {
            return;
        }
        let ping = redis::cmd("PING");
        let pinged = async {
            // A failure may have been a failover: the Sentinels say where the primary is.
            let link = match self.connector {
                Connector::Sentinel(..) => self.follow_primary().await?,
                _ => self.link().await?,
            };
            match link {
                Link::Standalone(mut conn) => ping.query_async::<String>(&mut conn).await,
                Link::Cluster(mut conn) => ping.query_async::<String>(&mut conn).await,
            }
        };
        let answered = tokio::time::timeout(self.timeout, pinged)
            .await
            .is_ok_and(|r| r.is_ok());
        if answered && !self.up.swap(true, Ordering::Relaxed) {
            self.series.up.set(1.0);
            tracing::info!(store = %self.name, "rate limit store answers again; shared limits resume");
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Settings changed or the store left the config: its series stops meaning anything.
        self.series.up.set(0.0);
    }
}

/// Probes the store while it is down; ends when the store is dropped.
async fn probe_forever(store: Weak<Store>) {
    let mut ticks = tokio::time::interval(PROBE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(store) = store.upgrade() else { return };
        if !store.is_up() {
            store.probe().await;
        }
    }
}

/// Runs `commands` at once on a cluster connection; the replies in the same order.
async fn run_each(
    conn: &ClusterConnection,
    commands: &[redis::Cmd],
) -> redis::RedisResult<Vec<(i64, i64)>> {
    let mut running = tokio::task::JoinSet::new();
    for (i, cmd) in commands.iter().enumerate() {
        let (mut conn, cmd) = (conn.clone(), cmd.clone());
        running.spawn(async move { (i, cmd.query_async::<(i64, i64)>(&mut conn).await) });
    }
    let mut replies = vec![(0, 0); commands.len()];
    while let Some(done) = running.join_next().await {
        let (i, reply) = done.map_err(|e| {
            redis::RedisError::from((redis::ErrorKind::Client, "call task", e.to_string()))
        })?;
        replies[i] = reply?;
    }
    Ok(replies)
}

/// Makes the connections of a store; none connects before its first call, so a server
/// that is down does not stop the gateway from starting.
enum Connector {
    Standalone(Client, ConnectionManagerConfig),
    Cluster(ClusterClient, ClusterConfig),
    /// The primary's connections are made once the Sentinels have named it.
    Sentinel(Sentinels, ConnectionManagerConfig),
}

impl Connector {
    fn new(settings: &Settings) -> Result<Connector, String> {
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_max_delay(Duration::from_secs(1))
            .set_number_of_retries(2);
        if settings.mode == model::RedisMode::Sentinel {
            let sentinel = settings
                .sentinel
                .as_ref()
                .ok_or("`mode: sentinel` needs `sentinel: { master: <name> }`")?;
            let mut asked = RedisConnectionInfo::default();
            if let Some(password) = &sentinel.password {
                asked = asked.set_password(password);
            }
            let sentinels = sentinel
                .addresses
                .iter()
                .map(|address| {
                    let (host, port) = host_port(address)?;
                    let (info, certificates) =
                        connection_info(host, port, asked.clone(), settings.tls.as_ref())?;
                    client(info, certificates)
                })
                .collect::<Result<Vec<_>, String>>()?;
            let sentinels = Sentinels::new(sentinel.master.clone(), sentinels);
            return Ok(Connector::Sentinel(sentinels, manager));
        }
        let (host, port) = host_port(&settings.address)?;
        let (info, certificates) =
            connection_info(host, port, credentials(settings), settings.tls.as_ref())?;
        Ok(match settings.mode {
            model::RedisMode::Cluster => {
                let mut builder = ClusterClientBuilder::new([info]).retries(2);
                if let Some(certificates) = certificates {
                    builder = builder.certs(certificates);
                }
                let client = builder.build().map_err(|e| e.to_string())?;
                let config = ClusterConfig::new()
                    .set_connection_timeout(settings.connect_timeout)
                    .set_response_timeout(settings.timeout);
                Connector::Cluster(client, config)
            }
            // Sentinel returned above.
            model::RedisMode::Standalone | model::RedisMode::Sentinel => {
                Connector::Standalone(client(info, certificates)?, manager)
            }
        })
    }

    /// The store's connections at open: none yet in sentinel mode.
    fn links(&self, n: usize) -> redis::RedisResult<Box<[Link]>> {
        match self {
            Connector::Standalone(client, config) => managers(client, config, n),
            Connector::Cluster(client, config) => Ok((0..n)
                .map(|_| {
                    Link::Cluster(client.get_pending_async_connection_with_config(config.clone()))
                })
                .collect()),
            Connector::Sentinel(..) => Ok(Box::new([])),
        }
    }
}

/// `n` connections to one server, each reconnecting by itself.
fn managers(
    client: &Client,
    config: &ConnectionManagerConfig,
    n: usize,
) -> redis::RedisResult<Box<[Link]>> {
    (0..n)
        .map(|_| {
            ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                .map(Link::Standalone)
        })
        .collect()
}

fn no_link() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Client, "no connection to the store"))
}

fn client_error(e: String) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Client, "cannot connect", e))
}

/// A client of one server, over TLS when `certificates` are given.
fn client(info: ConnectionInfo, certificates: Option<TlsCertificates>) -> Result<Client, String> {
    match certificates {
        Some(certificates) => {
            Client::build_with_tls(info, certificates).map_err(|e| format!("tls: {e}"))
        }
        None => Client::open(info).map_err(|e| e.to_string()),
    }
}

/// `host:port`, a bracketed IPv6 host unbracketed.
fn host_port(address: &str) -> Result<(String, u16), String> {
    let (host, port) = address
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("{address:?} is not host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_owned(), port))
}

/// The login and database of the store's data nodes.
fn credentials(settings: &Settings) -> RedisConnectionInfo {
    let mut redis = RedisConnectionInfo::default().set_db(i64::from(settings.database));
    if let Some(user) = &settings.username {
        redis = redis.set_username(user);
    }
    if let Some(password) = &settings.password {
        redis = redis.set_password(password);
    }
    redis
}

/// Where a server is and how to log in, and the TLS roots and client certificate.
fn connection_info(
    host: String,
    port: u16,
    redis: RedisConnectionInfo,
    tls: Option<&TlsFiles>,
) -> Result<(ConnectionInfo, Option<TlsCertificates>), String> {
    let Some(TlsFiles { ca, cert, key }) = tls else {
        let info = ConnectionAddr::Tcp(host, port)
            .into_connection_info()
            .map_err(|e| e.to_string())?
            .set_redis_settings(redis);
        return Ok((info, None));
    };
    let addr = ConnectionAddr::TcpTls {
        host,
        port,
        insecure: false,
        tls_params: None,
    };
    let info = addr
        .into_connection_info()
        .map_err(|e| e.to_string())?
        .set_redis_settings(redis);
    let client_tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: cert.clone(),
            client_key: key.clone(),
        }),
        (None, None) => None,
        _ => return Err("`tls.cert` and `tls.key` go together".into()),
    };
    let certificates = TlsCertificates {
        client_tls,
        root_cert: ca.clone(),
    };
    Ok((info, Some(certificates)))
}

/// The open stores of a config, by name.
#[derive(Default)]
pub struct Stores {
    by_name: std::collections::HashMap<String, Arc<Store>>,
}

impl Stores {
    /// Opens every store of the config, keeping from `previous` those whose settings are
    /// unchanged (their connections carry over a reload).
    pub fn open(
        specs: &[model::RateLimitStore],
        previous: Option<&Stores>,
        problems: &mut Vec<crate::config::Problem>,
    ) -> Stores {
        let mut by_name = std::collections::HashMap::new();
        for (i, spec) in specs.iter().enumerate() {
            let name = spec.name.value.to_string();
            let prior = previous.and_then(|p| p.by_name.get(&name));
            match Store::open(&name, &spec.redis, prior) {
                Ok(store) => {
                    by_name.insert(name, store);
                }
                Err(e) => problems.push(crate::config::Problem::on(
                    &spec.name,
                    format!("rate_limit_stores[{i}].redis"),
                    e,
                )),
            }
        }
        Stores { by_name }
    }

    /// The store called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Store>> {
        self.by_name.get(name)
    }
}
