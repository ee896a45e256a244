//! `sekisho up`: the whole system on one machine, for a first look. ashi runs in this
//! process with SQLite and scans on local disk, a demo identity signs tokens for the demo
//! account, a small site serves the browser page, and the gateway in front of them serves
//! gRPC, REST and gRPC-Web on one TLS port, with the same config file format as in
//! production (written to the data directory).

mod gateway_config;
mod identity;
mod seed;
mod site;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Gateway;

/// What `up` needs to be told; everything else has a default.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the database, scans, keys, certificate and config are kept.
    pub data: PathBuf,
    /// The gateway's public TLS listener.
    pub listen: SocketAddr,
    /// The gateway's admin listener (metrics, clusters, config).
    pub admin: SocketAddr,
}

/// Why the system could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory of the data directory.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A key, certificate or token could not be made.
    #[error("{0}")]
    Setup(String),
    /// The gateway refused the config or could not listen.
    #[error("gateway: {0}")]
    Gateway(#[from] crate::Error),
    /// ashi could not start or the demo data could not be stored.
    #[error("ashi: {0}")]
    Ashi(String),
}

impl Error {
    fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The running system.
pub struct System {
    /// Held while running: a second `up` on the same data directory would rewrite the
    /// config this gateway watches.
    _lock: std::fs::File,
    gateway: Gateway,
    stop: watch::Sender<bool>,
    ashi: JoinHandle<Result<(), ashi::Error>>,
    site: JoinHandle<()>,
    /// What to tell the person who started it.
    pub banner: Banner,
}

/// The addresses and commands printed at start.
pub struct Banner {
    pub url: String,
    pub admin: SocketAddr,
    pub data: PathBuf,
    pub cert: PathBuf,
    pub token: String,
    pub measurement_id: String,
    pub shoe_id: String,
}

impl System {
    /// Prepares the data directory on first run, then starts ashi, the site and the gateway.
    pub async fn start(options: Options) -> Result<System, Error> {
        let data = &options.data;
        std::fs::create_dir_all(data).map_err(|e| Error::io(data, e))?;
        let data = std::fs::canonicalize(data).map_err(|e| Error::io(data, e))?;
        let lock = lock(&data)?;

        let (cert, key) = certificate(&data.join("tls"))?;
        let identity = Arc::new(identity::Identity::load_or_create(&data.join("identity"))?);
        let descriptors = data.join("ashi.binpb");
        std::fs::write(&descriptors, ashi::FILE_DESCRIPTOR_SET)
            .map_err(|e| Error::io(&descriptors, e))?;

        let (stop, stopped) = watch::channel(false);
        let bind = |addr: &str| {
            let addr = addr.to_owned();
            async move {
                TcpListener::bind(&addr)
                    .await
                    .map_err(|e| Error::Setup(format!("cannot listen on {addr}: {e}")))
            }
        };
        let ashi_grpc = bind("127.0.0.1:0").await?;
        let ashi_http = bind("127.0.0.1:0").await?;
        let site_listener = bind("127.0.0.1:0").await?;
        let (ashi_grpc_addr, ashi_http_addr, site_addr) = (
            local_addr(&ashi_grpc)?,
            local_addr(&ashi_http)?,
            local_addr(&site_listener)?,
        );

        // The gateway binds its port before ashi hands out upload URLs that name it.
        let config_path = data.join("gateway.yaml");
        let text = gateway_config::render(&gateway_config::Layout {
            listen: options.listen,
            admin: options.admin,
            cert: &cert,
            key: &key,
            jwks: identity.jwks_path(),
            descriptors: &descriptors,
            ashi_grpc: ashi_grpc_addr,
            ashi_http: ashi_http_addr,
            site: site_addr,
            partners: &["127.0.0.0/8", "::1/128"],
        });
        std::fs::write(&config_path, text).map_err(|e| Error::io(&config_path, e))?;
        let gateway = Gateway::start(&config_path).await?;
        let listen = gateway
            .listener_addr("public")
            .ok_or_else(|| Error::Setup("the gateway has no public listener".into()))?;
        let url = format!("https://localhost:{}", listen.port());

        let mut config = ashi::Config::local(data.join("ashi"));
        std::fs::create_dir_all(data.join("ashi")).map_err(|e| Error::io(&data, e))?;
        config.public_url = Some(url.clone());
        config.signing_key = Some(signing_key(&data.join("ashi").join("url-signing.key"))?);
        config.demo_catalog = true;
        let mut ashi_stopped = stopped.clone();
        let ashi = tokio::spawn(ashi::serve(config, ashi_grpc, ashi_http, async move {
            let _ = ashi_stopped.wait_for(|stop| *stop).await;
        }));
        let site = tokio::spawn(site::serve(site_listener, identity.clone(), stopped));

        let seeded = match seed::demo_data(ashi_grpc_addr, ashi_http_addr, site::DEMO_USER).await {
            Ok(seeded) => seeded,
            Err(e) => {
                let _ = stop.send(true);
                gateway.shutdown().await;
                // ashi's own error says more than the failed call when it has stopped.
                if ashi.is_finished()
                    && let Ok(Err(ashi_error)) = ashi.await
                {
                    return Err(Error::Ashi(ashi_error.to_string()));
                }
                return Err(e);
            }
        };
        let banner = Banner {
            url,
            admin: gateway.admin_addr().unwrap_or(options.admin),
            data,
            cert,
            token: identity.token(site::DEMO_USER, "Demo user")?,
            measurement_id: seeded.measurement_id,
            shoe_id: seeded.shoe_id,
        };
        Ok(System {
            _lock: lock,
            gateway,
            stop,
            ashi,
            site,
            banner,
        })
    }

    /// Drains the gateway, then stops ashi and the site.
    pub async fn stop(self) -> Result<(), Error> {
        self.gateway.shutdown().await;
        let _ = self.stop.send(true);
        let _ = self.site.await;
        match self.ashi.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Ashi(e.to_string())),
            Err(e) => Err(Error::Ashi(e.to_string())),
        }
    }
}

impl std::fmt::Display for Banner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cert = self.cert.display();
        let url = &self.url;
        let host = url.trim_start_matches("https://");
        writeln!(f)?;
        writeln!(
            f,
            "sekisho is up: gRPC, REST and gRPC-Web on {url}, ashi behind it."
        )?;
        writeln!(
            f,
            "Data, keys and the gateway config: {}",
            self.data.display()
        )?;
        writeln!(f)?;
        writeln!(f, "  Browser   {url}/  (sign in as demo / demo)")?;
        writeln!(f, "            the certificate is self-signed: {cert}")?;
        writeln!(f, "  REST      curl --cacert {cert} {url}/v1/shoes")?;
        writeln!(
            f,
            "            curl --cacert {cert} {url}/v1/sizing:recommend -d '{{\"measurement\": {{\"user_id\": \"demo\", \"measurement_id\": \"{}\"}}, \"shoe_id\": \"{}\"}}'",
            self.measurement_id, self.shoe_id
        )?;
        writeln!(f, "  gRPC      export TOKEN={}", self.token)?;
        writeln!(
            f,
            "            grpcurl -cacert {cert} -H \"authorization: Bearer $TOKEN\" -d '{{\"user_id\": \"demo\"}}' {host} ashi.v1.MeasurementService/ListMeasurements"
        )?;
        writeln!(
            f,
            "  Metrics   curl http://{}/metrics   (clusters: /clusters)",
            self.admin
        )?;
        writeln!(f)?;
        write!(f, "Access log lines follow. Ctrl-C stops everything.")
    }
}

/// Takes the data directory for this process alone.
fn lock(data: &Path) -> Result<std::fs::File, Error> {
    let path = data.join("lock");
    let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Setup(format!(
            "{} is in use by another `sekisho up`; stop it or pass another --data",
            data.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, Error> {
    listener
        .local_addr()
        .map_err(|e| Error::Setup(format!("cannot read a listener's address: {e}")))
}

/// The self-signed certificate for localhost, made on first run.
fn certificate(dir: &Path) -> Result<(PathBuf, PathBuf), Error> {
    let (cert, key) = (dir.join("localhost.crt"), dir.join("localhost.key"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    crate::cert::write_self_signed_for("localhost", &["localhost", "127.0.0.1", "::1"], dir)
        .map_err(|e| Error::Setup(e.to_string()))
}

/// The key ashi signs upload URLs with, kept so URLs stay good across restarts.
fn signing_key(path: &Path) -> Result<Vec<u8>, Error> {
    match std::fs::read(path) {
        Ok(key) if key.len() >= 32 => return Ok(key),
        Ok(_) => return Err(Error::Setup(format!("{}: key too short", path.display()))),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(path, e)),
        Err(_) => {}
    }
    let mut key = vec![0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
    crate::cert::write_private(path, &key).map_err(|e| Error::Setup(e.to_string()))?;
    Ok(key)
}
