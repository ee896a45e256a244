//! Scan objects: where they live and how clients upload them. Both backends hand out URLs the
//! client PUTs the file to directly, so scans never pass through the gRPC side.

pub mod http;
pub mod local;
pub mod s3;
mod sigv4;
mod time;

use crate::config::ObjectsConfig;
use crate::trace::Tracer;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use opentelemetry::KeyValue;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Errors of the object store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("object store setting {setting}: {problem}")]
    Config {
        setting: &'static str,
        problem: String,
    },
}

/// A presigned upload.
#[derive(Debug, Clone)]
pub struct PresignedPut {
    pub url: String,
    /// Headers the PUT must carry exactly: they are part of the signature.
    pub headers: BTreeMap<String, String>,
    pub expires_at: SystemTime,
}

enum Signer {
    Local(Box<local::UrlSigner>),
    S3(s3::Presigner),
}

/// The scan store with its URL signer.
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    signer: Signer,
    tracer: Tracer,
}

impl Objects {
    /// Opens the store. `public_url` is where ashi's HTTP side is reached, for local URLs.
    pub fn open(
        config: &ObjectsConfig,
        public_url: &str,
        signing_key: Vec<u8>,
    ) -> Result<Self, Error> {
        match config {
            ObjectsConfig::Local { dir } => {
                std::fs::create_dir_all(dir).map_err(|e| Error::Config {
                    setting: "objects directory",
                    problem: format!("{}: {e}", dir.display()),
                })?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
                Ok(Objects {
                    store: Arc::new(store),
                    signer: Signer::Local(Box::new(local::UrlSigner::new(public_url, signing_key))),
                    tracer: Tracer::off(),
                })
            }
            ObjectsConfig::S3(s3) => Ok(Objects {
                store: Arc::new(s3::store(s3)?),
                signer: Signer::S3(s3::Presigner::new(s3)?),
                tracer: Tracer::off(),
            }),
        }
    }

    /// The same store, with a span per call made inside a traced RPC.
    pub fn traced(self, tracer: Tracer) -> Self {
        Objects { tracer, ..self }
    }

    /// A span's name and attributes for `operation` on this store.
    fn describe(&self, operation: &str) -> (String, Vec<KeyValue>) {
        let backend = match self.signer {
            Signer::Local(_) => "local",
            Signer::S3(_) => "s3",
        };
        (
            format!("objects {operation}"),
            vec![
                KeyValue::new("ashi.objects.backend", backend),
                KeyValue::new("ashi.objects.operation", operation.to_owned()),
            ],
        )
    }

    /// Signs a PUT of exactly `content_length` bytes of `content_type` to `key`.
    pub fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        expires_in: Duration,
    ) -> PresignedPut {
        // Ends when dropped, once the URL is signed.
        let _span = self.tracer.child(|| self.describe("presign PUT"));
        let now = SystemTime::now();
        let url = match &self.signer {
            Signer::Local(s) => s.sign_put(key, content_type, content_length, now + expires_in),
            Signer::S3(s) => s.presign_put(key, content_type, content_length, now, expires_in),
        };
        let headers = BTreeMap::from([
            ("content-type".to_owned(), content_type.to_owned()),
            ("content-length".to_owned(), content_length.to_string()),
        ]);
        PresignedPut {
            url,
            headers,
            expires_at: now + expires_in,
        }
    }

    /// Signs a GET of `key`, for downloading a scan.
    pub fn presign_get(&self, key: &str, expires_in: Duration) -> String {
        let now = SystemTime::now();
        match &self.signer {
            Signer::Local(s) => s.sign_get(key, now + expires_in),
            Signer::S3(s) => s.presign_get(key, now, expires_in),
        }
    }

    /// Whether `key` has been uploaded.
    pub async fn exists(&self, key: &str) -> Result<bool, Error> {
        let head = async {
            match self.store.head(&ObjectPath::from(key)).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(Error::from(e)),
            }
        };
        self.tracer.run(|| self.describe("HEAD"), head).await
    }

    /// Deletes `key`; deleting what is not there succeeds, so a failed delete can be retried.
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        let delete = async {
            match self.store.delete(&ObjectPath::from(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(Error::from(e)),
            }
        };
        self.tracer.run(|| self.describe("DELETE"), delete).await
    }

    /// The store itself, for the HTTP side of the local backend.
    pub(crate) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The local signer, when ashi serves the object URLs itself.
    pub(crate) fn local_signer(&self) -> Option<&local::UrlSigner> {
        match &self.signer {
            Signer::Local(s) => Some(s),
            Signer::S3(_) => None,
        }
    }
}
