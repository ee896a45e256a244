//! TLS handshakes: each request opens a new TCP and TLS connection, sends one HTTP/1.1 GET
//! with `Connection: close` and drops the connection.
//!
//! The client offers TLS 1.3 and 1.2 with the key exchanges X25519 (preferred, the only key
//! share sent) and P-256 (TLS 1.2 servers need it listed to use a P-256 certificate); a
//! post-quantum hybrid, which rustls would offer first, is left out because not every proxy
//! under test has it. ALPN is `http/1.1`, and no session is ever resumed, so every connection
//! is a full handshake.

use std::path::Path;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use rustls::client::Resumption;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::Error;
use crate::run::{Op, Outcome};
use crate::setup::Setup;

/// A client config trusting the certificates in the PEM file `ca`.
pub fn client_config(ca: &Path) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)
        .map_err(|e| format!("cannot read {}: {e}", ca.display()))?
    {
        let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots.add(cert)?;
    }
    if roots.is_empty() {
        return Err(format!("{} holds no certificate", ca.display()).into());
    }
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups = vec![
        rustls::crypto::aws_lc_rs::kx_group::X25519,
        rustls::crypto::aws_lc_rs::kx_group::SECP256R1,
    ];
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// A full handshake and one GET per call.
pub struct Handshake {
    setup: Arc<Setup>,
}

impl Handshake {
    pub fn new(setup: Arc<Setup>) -> Handshake {
        Handshake { setup }
    }
}

impl Op for Handshake {
    async fn call(&mut self) -> Outcome {
        let Some((connector, name)) = &self.setup.tls else {
            return Err("no_tls_config".to_owned());
        };
        let tcp = self.setup.connect_tcp().await?;
        let tls = connector
            .connect(name.clone(), tcp)
            .await
            .map_err(|_| "tls".to_owned())?;
        let (mut sender, _driver) = crate::h1::handshake(TokioIo::new(tls)).await?;
        crate::h1::get(&self.setup, &mut sender, true).await?;
        Ok(1)
    }
}
