//! Self-signed certificates for trying the gateway out and for tests.

use std::path::{Path, PathBuf};

use crate::Error;

/// A PEM certificate and its PEM private key.
pub struct CertPair {
    /// PEM certificate.
    pub cert_pem: String,
    /// PEM private key (PKCS#8).
    pub key_pem: String,
}

/// A self-signed certificate valid for `names` (DNS names or IP addresses).
pub fn self_signed(names: &[&str]) -> Result<CertPair, Error> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let certified =
        rcgen::generate_simple_self_signed(names).map_err(|e| Error::Cert(e.to_string()))?;
    Ok(CertPair {
        cert_pem: certified.cert.pem(),
        key_pem: certified.signing_key.serialize_pem(),
    })
}

/// Writes `DIR/HOST.crt` and `DIR/HOST.key` for `host`; returns the two paths.
pub fn write_self_signed(host: &str, dir: &Path) -> Result<(PathBuf, PathBuf), Error> {
    write_self_signed_for(host, &[host], dir)
}

/// Writes `DIR/STEM.crt` and `DIR/STEM.key`, one certificate valid for all of `names`;
/// returns the two paths.
pub fn write_self_signed_for(
    stem: &str,
    names: &[&str],
    dir: &Path,
) -> Result<(PathBuf, PathBuf), Error> {
    let pair = self_signed(names)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?;
    let cert = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    std::fs::write(&cert, pair.cert_pem)
        .map_err(|e| Error::Io(format!("{}: {e}", cert.display())))?;
    write_private(&key, pair.key_pem.as_bytes())?;
    Ok((cert, key))
}

/// Writes a private key readable by its owner only.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    file.write_all(bytes)
        .map_err(|e| Error::Io(format!("{}: {e}", path.display())))
}
