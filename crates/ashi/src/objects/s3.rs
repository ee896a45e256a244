//! An S3-compatible bucket: `object_store` for HEAD and DELETE, and SigV4-presigned URLs the
//! phone uploads to directly.

use super::{Error, sigv4};
use crate::config::S3Config;
use std::time::{Duration, SystemTime};

/// Builds the object store client for `config` (path-style requests, so any S3-compatible
/// server works).
pub fn store(config: &S3Config) -> Result<object_store::aws::AmazonS3, Error> {
    Ok(object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&config.endpoint)
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        .with_access_key_id(&config.access_key_id)
        .with_secret_access_key(&config.secret_access_key)
        .with_allow_http(config.endpoint.starts_with("http://"))
        .with_virtual_hosted_style_request(false)
        .build()?)
}

/// Presigns URLs for one bucket.
pub struct Presigner {
    /// `http://host:port` without a trailing slash.
    origin: String,
    host: String,
    bucket: String,
    region: String,
    access_key_id: String,
    secret_access_key: String,
}

impl Presigner {
    pub fn new(config: &S3Config) -> Result<Self, Error> {
        let uri: http::Uri = config.endpoint.parse().map_err(|e| Error::Config {
            setting: "S3 endpoint",
            problem: format!("{:?}: {e}", config.endpoint),
        })?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(Error::Config {
                setting: "S3 endpoint",
                problem: format!("{:?} needs a scheme and a host", config.endpoint),
            });
        };
        let host = match (scheme, authority.port_u16()) {
            ("http", Some(80)) | ("https", Some(443)) => authority.host().to_owned(),
            _ => authority.as_str().to_owned(),
        };
        Ok(Presigner {
            origin: format!("{scheme}://{host}"),
            host,
            bucket: config.bucket.clone(),
            region: config.region.clone(),
            access_key_id: config.access_key_id.clone(),
            secret_access_key: config.secret_access_key.clone(),
        })
    }

    fn presign(
        &self,
        method: &str,
        key: &str,
        headers: &[(&str, String)],
        now: SystemTime,
        expires_in: Duration,
    ) -> String {
        let creds = sigv4::Credentials {
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret_access_key,
            region: &self.region,
        };
        let path = format!("/{}/{key}", self.bucket);
        let req = sigv4::Request {
            method,
            host: &self.host,
            path: &path,
            headers,
        };
        format!(
            "{}{}",
            self.origin,
            sigv4::presign(&creds, &req, now, expires_in)
        )
    }

    /// A PUT URL that only accepts `content_length` bytes of `content_type`.
    pub fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        now: SystemTime,
        expires_in: Duration,
    ) -> String {
        let headers = [
            ("content-length", content_length.to_string()),
            ("content-type", content_type.to_owned()),
        ];
        self.presign("PUT", key, &headers, now, expires_in)
    }

    /// A GET URL.
    pub fn presign_get(&self, key: &str, now: SystemTime, expires_in: Duration) -> String {
        self.presign("GET", key, &[], now, expires_in)
    }
}
