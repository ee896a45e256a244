//! Signature algorithms and the check of one signature with one key.
//!
//! Only asymmetric algorithms exist here: a gateway holds public keys, and a public key
//! used as an HMAC secret is no secret at all, so `HS*` and `none` cannot even be named.
//! jsonwebtoken (on aws-lc-rs) verifies every algorithm it knows; it has no ES512, so
//! P-521 signatures go to aws-lc-rs directly.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::signature::{ECDSA_P521_SHA512_FIXED, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::crypto::{JwtVerifier, aws_lc};
use jsonwebtoken::{Algorithm as Jwa, DecodingKey};

/// A JWS signature algorithm the gateway accepts (RFC 7518 names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// ECDSA on P-521 with SHA-512.
    ES512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// Ed25519.
    EdDSA,
}

impl Algorithm {
    /// Every accepted algorithm: the default allow list.
    pub const ALL: [Algorithm; 10] = [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::EdDSA,
    ];

    /// The RFC 7518 name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::ES512 => "ES512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// The key a signature of this algorithm needs.
    pub fn key_kind(self) -> KeyKind {
        match self {
            Algorithm::ES256 => KeyKind::P256,
            Algorithm::ES384 => KeyKind::P384,
            Algorithm::ES512 => KeyKind::P521,
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => KeyKind::Rsa,
            Algorithm::EdDSA => KeyKind::Ed25519,
        }
    }

    /// jsonwebtoken's name for it, where jsonwebtoken implements it.
    fn in_jsonwebtoken(self) -> Option<Jwa> {
        Some(match self {
            Algorithm::ES256 => Jwa::ES256,
            Algorithm::ES384 => Jwa::ES384,
            Algorithm::ES512 => return None,
            Algorithm::RS256 => Jwa::RS256,
            Algorithm::RS384 => Jwa::RS384,
            Algorithm::RS512 => Jwa::RS512,
            Algorithm::PS256 => Jwa::PS256,
            Algorithm::PS384 => Jwa::PS384,
            Algorithm::PS512 => Jwa::PS512,
            Algorithm::EdDSA => Jwa::EdDSA,
        })
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        if let Some(alg) = Algorithm::ALL.into_iter().find(|a| a.as_str() == name) {
            return Ok(alg);
        }
        Err(match name {
            "none" | "None" | "NONE" => "unsigned tokens (`none`) are never accepted".into(),
            "HS256" | "HS384" | "HS512" => {
                format!(
                    "{name} is never accepted: HMAC needs a shared secret, and the gateway holds only public keys"
                )
            }
            _ => format!(
                "unknown algorithm {name:?}; expected one of {}",
                Algorithm::ALL.map(Algorithm::as_str).join(", ")
            ),
        })
    }
}

/// The type of a public key, which decides the one algorithm family it may verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA, 2048 bits or more.
    Rsa,
    /// EC on P-256.
    P256,
    /// EC on P-384.
    P384,
    /// EC on P-521.
    P521,
    /// Ed25519.
    Ed25519,
}

/// A public key ready to verify signatures of its kind.
pub enum PublicKey {
    /// Verified by jsonwebtoken (RSA, P-256, P-384, Ed25519).
    Jwt(KeyKind, DecodingKey),
    /// A P-521 point (SEC1 uncompressed), verified by aws-lc-rs.
    P521(Vec<u8>),
}

impl PublicKey {
    /// Its kind.
    pub fn kind(&self) -> KeyKind {
        match self {
            PublicKey::Jwt(kind, _) => *kind,
            PublicKey::P521(_) => KeyKind::P521,
        }
    }

    /// Whether `signature` (base64url, as in the token) signs `message` under `alg`.
    /// A key of another kind never verifies.
    pub fn verifies(&self, alg: Algorithm, message: &[u8], signature: &str) -> bool {
        if alg.key_kind() != self.kind() {
            return false;
        }
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        match (self, alg.in_jsonwebtoken()) {
            (PublicKey::Jwt(_, key), Some(jwa)) => {
                match (aws_lc::DEFAULT_PROVIDER.verifier_factory)(&jwa, key) {
                    Ok(verifier) => verify_with(verifier.as_ref(), message, &signature),
                    Err(_) => false,
                }
            }
            (PublicKey::P521(point), None) => {
                UnparsedPublicKey::new(&ECDSA_P521_SHA512_FIXED, point)
                    .verify(message, &signature)
                    .is_ok()
            }
            _ => false,
        }
    }
}

fn verify_with(verifier: &dyn JwtVerifier, message: &[u8], signature: &[u8]) -> bool {
    verifier.verify(message, &signature.to_vec()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_and_hmac_cannot_be_named() {
        let none = "none".parse::<Algorithm>().expect_err("none");
        assert!(none.contains("never"), "{none}");
        let hmac = "HS256".parse::<Algorithm>().expect_err("HS256");
        assert!(hmac.contains("HMAC"), "{hmac}");
        assert_eq!("ES512".parse::<Algorithm>(), Ok(Algorithm::ES512));
    }
}
