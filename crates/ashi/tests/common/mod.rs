//! Starting real ashi servers for tests: SQLite with the local store in a temporary directory,
//! or PostgreSQL with an S3-compatible server named by the environment (started by `scripts/test`).
//! The ready-made clients call as the service principal [`TEST_SERVICE`]; tests of identity
//! build their own clients on [`Running::channel`].
#![allow(dead_code)]

use ashi::config::{ObjectsConfig, S3Config};
use ashi::pb::catalog_service_client::CatalogServiceClient;
use ashi::pb::measurement_service_client::MeasurementServiceClient;
use ashi::pb::sizing_service_client::SizingServiceClient;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// The service principal the ready-made clients call as (`x-ashi-service`).
pub const TEST_SERVICE: &str = "test";

/// Names every call's caller as the service [`TEST_SERVICE`].
pub fn as_test_service(mut request: Request<()>) -> Result<Request<()>, Status> {
    request.metadata_mut().insert(
        ashi::service::SERVICE_HEADER,
        tonic::metadata::MetadataValue::from_static(TEST_SERVICE),
    );
    Ok(request)
}

/// A channel whose calls go out as [`TEST_SERVICE`].
pub type AsService = InterceptedService<Channel, fn(Request<()>) -> Result<Request<()>, Status>>;

/// A running server and clients for it.
pub struct Running {
    pub config: ashi::Config,
    /// Where the gRPC side listens, for tests that speak HTTP/2 themselves.
    pub grpc_addr: std::net::SocketAddr,
    /// The plain channel: calls on it carry no identity unless the test adds one.
    pub channel: Channel,
    pub measurements: MeasurementServiceClient<AsService>,
    pub sizing: SizingServiceClient<AsService>,
    pub catalog: CatalogServiceClient<AsService>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ashi::Error>>,
    temp_dir: Option<PathBuf>,
}

impl Running {
    /// Asks the server to shut down, without waiting for it.
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops the server, checks that it stopped cleanly, and removes its temporary files.
    pub async fn stop(mut self) {
        self.begin_stop();
        (&mut self.task).await.unwrap().unwrap();
        if let Some(dir) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A fresh, unique name for ids and directories.
pub fn unique(prefix: &str) -> String {
    use rand::RngCore;
    format!("{prefix}-{:016x}", rand::rng().next_u64())
}

/// Where a server keeps its data.
pub enum Backend {
    SqliteLocal,
    PostgresS3(External),
}

/// PostgreSQL and S3 from the environment.
#[derive(Clone)]
pub struct External {
    pub database_url: String,
    pub s3: S3Config,
}

const EXTERNAL_VARS: [&str; 4] = [
    "ASHI_TEST_DATABASE_URL",
    "ASHI_TEST_S3_ENDPOINT",
    "ASHI_TEST_S3_ACCESS_KEY",
    "ASHI_TEST_S3_SECRET_KEY",
];

/// PostgreSQL and S3 settings. When they are not set the test fails, unless the caller opted
/// out of the services (`SEKISHO_TEST_SKIP=services`): then `None`, and the test returns.
pub fn external() -> Option<External> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let missing: Vec<&str> = EXTERNAL_VARS
        .iter()
        .copied()
        .filter(|v| get(v).is_none())
        .collect();
    if !missing.is_empty() {
        prerequisite::missing(
            prerequisite::SERVICES,
            &format!(
                "PostgreSQL and S3 settings ({}) are not set; scripts/test starts both",
                missing.join(", ")
            ),
        );
        return None;
    }
    let var = |name: &str| get(name).unwrap_or_default();
    Some(External {
        database_url: var("ASHI_TEST_DATABASE_URL"),
        s3: S3Config {
            endpoint: var("ASHI_TEST_S3_ENDPOINT"),
            bucket: get("ASHI_TEST_S3_BUCKET").unwrap_or_else(|| "ashi-test".into()),
            region: get("ASHI_TEST_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
            access_key_id: var("ASHI_TEST_S3_ACCESS_KEY"),
            secret_access_key: var("ASHI_TEST_S3_SECRET_KEY"),
        },
    })
}

/// A config for `backend` with the demo catalog loaded.
pub fn config(backend: &Backend) -> (ashi::Config, Option<PathBuf>) {
    match backend {
        Backend::SqliteLocal => {
            let dir = std::env::temp_dir().join(unique("ashi-test"));
            let mut config = ashi::Config::local(&dir);
            config.demo_catalog = true;
            (config, Some(dir))
        }
        Backend::PostgresS3(ext) => {
            let mut config = ashi::Config::local("unused");
            config.database_url = ext.database_url.clone();
            config.objects = ObjectsConfig::S3(ext.s3.clone());
            config.demo_catalog = true;
            (config, None)
        }
    }
}

/// Starts ashi with `config` on ephemeral loopback ports.
pub async fn start(config: ashi::Config, temp_dir: Option<PathBuf>) -> Running {
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = grpc.local_addr().unwrap();
    let grpc_url = format!("http://{grpc_addr}");
    // Fix the URL base and signing key so that `objects()` signs URLs this server accepts.
    let mut config = config;
    config.public_url = Some(format!("http://{}", http.local_addr().unwrap()));
    config.signing_key = Some(unique("key").into_bytes());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(ashi::serve(config.clone(), grpc, http, async {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Endpoint::from_shared(grpc_url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let as_service: fn(Request<()>) -> Result<Request<()>, Status> = as_test_service;
    Running {
        config,
        grpc_addr,
        measurements: MeasurementServiceClient::with_interceptor(channel.clone(), as_service),
        sizing: SizingServiceClient::with_interceptor(channel.clone(), as_service),
        catalog: CatalogServiceClient::with_interceptor(channel.clone(), as_service),
        channel,
        stop: Some(stop),
        task,
        temp_dir,
    }
}

/// The object store a started server uses, opened separately (with the server's URL base and
/// signing key), to look behind the API.
pub fn objects(config: &ashi::Config) -> ashi::objects::Objects {
    ashi::objects::Objects::open(
        &config.objects,
        config.public_url.as_deref().unwrap(),
        config.signing_key.clone().unwrap(),
    )
    .unwrap()
}

/// Asserts that a call failed with `code` and a message starting with `prefix` (the field or
/// thing that was wrong).
pub fn assert_status(err: &tonic::Status, code: tonic::Code, prefix: &str) {
    assert_eq!(err.code(), code, "{}", err.message());
    assert!(
        err.message().starts_with(prefix),
        "message {:?} should start with {prefix:?}",
        err.message()
    );
}

/// Sends one HTTP/1.1 request over a fresh connection; returns the status and body.
pub async fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let uri: http::Uri = url.parse().unwrap();
    let authority = uri.authority().unwrap().clone();
    let stream = TcpStream::connect(authority.as_str()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri.path_and_query().unwrap().as_str())
        .header("host", authority.as_str());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let response = sender
        .send_request(req.body(Full::new(Bytes::copy_from_slice(body))).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}
