//! The demo identity provider: one ES256 key made on first run, its public half as a JWKS
//! file the gateway's JWT provider reads, and tokens for the demo account. It stands in for
//! the real identity provider a deployment would point `jwks_url` at.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::Error;

/// Who the demo tokens say issued them; the gateway's provider requires it.
pub const ISSUER: &str = "https://localhost/sekisho-demo";
/// The audience the gateway's provider requires.
pub const AUDIENCE: &str = "ashi";
/// The key id in the JWKS and in every token's header.
const KEY_ID: &str = "demo-es256";
/// How long a demo token stays valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// Signs demo tokens with the key kept in the data directory.
pub struct Identity {
    key: EncodingKey,
    jwks_path: PathBuf,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    name: &'a str,
    role: &'a str,
    iat: u64,
    exp: u64,
}

impl Identity {
    /// Loads the signing key from `dir`, or makes one (and its JWKS) on first run.
    pub fn load_or_create(dir: &Path) -> Result<Identity, Error> {
        let key_path = dir.join("signing-key.pem");
        let jwks_path = dir.join("jwks.json");
        let pair = if key_path.exists() {
            let pem = std::fs::read_to_string(&key_path).map_err(|e| Error::io(&key_path, e))?;
            rcgen::KeyPair::from_pem(&pem)
                .map_err(|e| Error::Setup(format!("{}: {e}", key_path.display())))?
        } else {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(|e| Error::Setup(format!("cannot make a signing key: {e}")))?;
            crate::cert::write_private(&key_path, pair.serialize_pem().as_bytes())
                .map_err(|e| Error::Setup(e.to_string()))?;
            pair
        };
        // The JWKS is derived from the key every start, so the two can never disagree.
        let jwks = jwks(pair.public_key_raw())?;
        std::fs::write(&jwks_path, jwks).map_err(|e| Error::io(&jwks_path, e))?;
        let key = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes())
            .map_err(|e| Error::Setup(format!("{}: {e}", key_path.display())))?;
        Ok(Identity { key, jwks_path })
    }

    /// The JWKS file holding the public key, for the gateway's JWT provider.
    pub fn jwks_path(&self) -> &Path {
        &self.jwks_path
    }

    /// A token for user `sub` with the `user` role, valid for [`TOKEN_LIFETIME`].
    pub fn token(&self, sub: &str, name: &str) -> Result<String, Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| Error::Setup(format!("the clock is before 1970: {e}")))?
            .as_secs();
        let claims = Claims {
            iss: ISSUER,
            aud: AUDIENCE,
            sub,
            name,
            role: "user",
            iat: now,
            exp: now + TOKEN_LIFETIME.as_secs(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(KEY_ID.to_owned());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| Error::Setup(format!("cannot sign a token: {e}")))
    }
}

/// A JWKS with the P-256 public key given as an uncompressed point (0x04 || x || y).
fn jwks(point: &[u8]) -> Result<String, Error> {
    let (x, y) = match point {
        [0x04, rest @ ..] if rest.len() == 64 => rest.split_at(32),
        _ => return Err(Error::Setup("the signing key is not a P-256 key".into())),
    };
    let jwks = serde_json::json!({
        "keys": [{
            "kty": "EC",
            "crv": "P-256",
            "alg": "ES256",
            "use": "sig",
            "kid": KEY_ID,
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
        }]
    });
    Ok(jwks.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_against_the_written_jwks_and_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("sekisho-identity-{}", std::process::id()));
        let first = Identity::load_or_create(&dir).unwrap();
        let token = first.token("demo", "Demo").unwrap();
        // A second start reuses the key: tokens handed out before still verify.
        let second = Identity::load_or_create(&dir).unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet =
            serde_json::from_str(&std::fs::read_to_string(second.jwks_path()).unwrap()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        let data = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).unwrap();
        assert_eq!(data.claims["sub"], "demo");
        assert_eq!(data.claims["role"], "user");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
