//! Starting ashi on listeners the caller has bound.
//!
//! ashi uses two listeners: gRPC (h2c) for the API, and a plain HTTP/1.1 + h2c one for the
//! signed object URLs of the local store. Keeping them apart lets the gateway route the API and
//! leave the bulk uploads to go straight to the object side, exactly as they go straight to S3
//! when S3 is configured.

use crate::config::Config;
use crate::objects::{self, Objects};
use crate::pb::catalog_service_server::CatalogServiceServer;
use crate::pb::measurement_service_server::MeasurementServiceServer;
use crate::pb::sizing_service_server::SizingServiceServer;
use crate::service::caller::{self, Identify};
use crate::service::catalog::Catalog;
use crate::service::measurement::Measurements;
use crate::service::sizing::Sizing;
use crate::service::{App, Shared};
use crate::{catalog_csv, store, trace};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rand::RngCore;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The demo shoe catalog that `Config::demo_catalog` loads.
pub const DEMO_CATALOG_CSV: &str = include_str!("../data/demo-catalog.csv");

/// Why ashi could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Objects(#[from] objects::Error),
    #[error("demo catalog: {0}")]
    DemoCatalog(#[from] catalog_csv::CsvError),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    #[error("tracing: {0}")]
    Tracing(String),
    #[error("anonymous service name {0}")]
    AnonymousService(String),
}

/// Runs ashi until `shutdown` completes: gRPC on `grpc`, signed object URLs on `http`. Opens
/// (and migrates) the database and the object store first; requests that arrive meanwhile wait
/// in the listeners' backlog. In-flight requests finish before this returns.
pub async fn serve(
    config: Config,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    if let Some(name) = &config.anonymous_service {
        caller::check_identity(name).map_err(Error::AnonymousService)?;
        tracing::warn!(
            service = %name,
            "calls without an identity are served as the anonymous service"
        );
    }
    let public_url = match &config.public_url {
        Some(url) => url.clone(),
        None => format!("http://{}", http.local_addr()?),
    };
    let signing_key = config.signing_key.clone().unwrap_or_else(|| {
        let mut key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut key);
        key
    });
    let (exporter, tracer) = match &config.tracing {
        Some(tracing) => {
            let (exporter, tracer) = trace::start(tracing).map_err(Error::Tracing)?;
            (Some(exporter), tracer)
        }
        None => (None, trace::Tracer::off()),
    };
    let store = store::Store::open(&config.database_url)
        .await?
        .traced(tracer.clone());
    let objects = Objects::open(&config.objects, &public_url, signing_key)?.traced(tracer.clone());
    if config.demo_catalog {
        let shoes = catalog_csv::parse(DEMO_CATALOG_CSV)?;
        store.upsert_shoes(&shoes).await?;
        tracing::info!(shoes = shoes.len(), "demo catalog loaded");
    }
    let app: Shared = Arc::new(App {
        store,
        objects,
        upload_expiry: config.upload_expiry,
        max_upload_bytes: config.max_upload_bytes,
        toe_tolerance_mm: config.toe_tolerance_mm,
    });

    // Either the caller's shutdown or one side failing stops both sides.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let forward = {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            shutdown.await;
            stop_tx.send_replace(true);
        })
    };

    let http_task = {
        let (app, stop_tx, stop_rx) = (app.clone(), stop_tx.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let result = serve_http(http, app, stop_rx).await;
            stop_tx.send_replace(true);
            result
        })
    };
    let identify = Identify::new(config.anonymous_service.as_deref());
    let grpc_result = serve_grpc(grpc, app.clone(), identify, tracer, stop_rx).await;
    stop_tx.send_replace(true);
    let http_result = http_task.await.map_err(std::io::Error::other)?;
    forward.abort();
    app.store.close().await;
    if let Some(exporter) = exporter {
        exporter.shutdown().await;
    }
    tracing::info!("ashi stopped");
    grpc_result?;
    http_result?;
    Ok(())
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn serve_grpc(
    listener: TcpListener,
    app: Shared,
    identify: Identify,
    tracer: trace::Tracer,
    stop: watch::Receiver<bool>,
) -> Result<(), Error> {
    tracing::info!(addr = %listener.local_addr()?, "gRPC listening");
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<MeasurementServiceServer<Measurements>>()
        .await;
    health.set_serving::<SizingServiceServer<Sizing>>().await;
    health.set_serving::<CatalogServiceServer<Catalog>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    tonic::transport::Server::builder()
        .layer(trace::RpcSpans::new(tracer))
        .add_service(health_service)
        .add_service(reflection)
        // Health and reflection answer anyone (probes send no identity); every ashi.v1 call
        // needs a caller.
        .add_service(MeasurementServiceServer::with_interceptor(
            Measurements(app.clone()),
            identify.clone(),
        ))
        .add_service(SizingServiceServer::with_interceptor(
            Sizing(app.clone()),
            identify.clone(),
        ))
        .add_service(CatalogServiceServer::with_interceptor(
            Catalog(app),
            identify,
        ))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            async move {
                stopped(stop).await;
                // Health watchers (the gateway's checks) see the drain before the listener
                // closes.
                health
                    .set_not_serving::<MeasurementServiceServer<Measurements>>()
                    .await;
                health
                    .set_not_serving::<SizingServiceServer<Sizing>>()
                    .await;
                health
                    .set_not_serving::<CatalogServiceServer<Catalog>>()
                    .await;
            },
        )
        .await?;
    Ok(())
}

async fn serve_http(
    listener: TcpListener,
    app: Shared,
    stop: watch::Receiver<bool>,
) -> Result<(), Error> {
    tracing::info!(addr = %listener.local_addr()?, "object URLs listening");
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    let stop_signal = stopped(stop);
    tokio::pin!(stop_signal);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            () = &mut stop_signal => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |req| {
            let app = app.clone();
            async move {
                Ok::<_, std::convert::Infallible>(objects::http::handle(&app.objects, req).await)
            }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "object connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
    Ok(())
}
