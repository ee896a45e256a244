//! Sets of public keys, read from PEM or from a JWKS document.
//!
//! A key keeps what it may verify: its kind (RSA, a curve) and, from a JWKS, its `kid` and
//! declared `alg`. A token's `alg` and `kid` only choose among keys; they never change what a
//! key is, so a token cannot talk a key into another algorithm.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};

use super::verify::{Algorithm, KeyKind, PublicKey};

/// One public key.
pub struct Key {
    /// The JWKS `kid`; keys from PEM have none.
    pub kid: Option<String>,
    /// The JWKS `alg`: the one algorithm the key may verify, when given.
    pub alg: Option<Algorithm>,
    /// The key itself.
    pub public: PublicKey,
}

impl Key {
    fn fits(&self, alg: Algorithm) -> bool {
        self.public.kind() == alg.key_kind() && self.alg.is_none_or(|own| own == alg)
    }
}

/// The keys of one provider at one time.
pub struct KeySet {
    keys: Vec<Key>,
}

/// The keys that may verify one token.
pub enum Lookup<'a> {
    /// Try these, in order.
    Keys(Vec<&'a Key>),
    /// The token names a `kid` the set does not hold (a newer set might).
    UnknownKid,
    /// No key of the set can verify this algorithm (with this `kid`).
    NoKey,
}

impl KeySet {
    /// How many keys the set holds.
    pub fn count(&self) -> usize {
        self.keys.len()
    }

    /// The keys for a token signed with `alg`, naming `kid`. Keys without a `kid` (from
    /// PEM) serve every token; a `kid` that no key has is unknown only when every key has one.
    pub fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        let named: Vec<&Key> = match kid {
            Some(kid) if self.keys.iter().any(|k| k.kid.as_deref() == Some(kid)) => self
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect(),
            Some(_) => {
                let unnamed: Vec<&Key> = self.keys.iter().filter(|k| k.kid.is_none()).collect();
                if unnamed.is_empty() {
                    return Lookup::UnknownKid;
                }
                unnamed
            }
            None => self.keys.iter().collect(),
        };
        let fitting: Vec<&Key> = named.into_iter().filter(|k| k.fits(alg)).collect();
        if fitting.is_empty() {
            Lookup::NoKey
        } else {
            Lookup::Keys(fitting)
        }
    }

    /// Reads every `PUBLIC KEY` / `RSA PUBLIC KEY` block of a PEM text.
    pub fn from_pem(text: &str) -> Result<KeySet, String> {
        let mut keys = Vec::new();
        for (i, block) in pem_blocks(text).enumerate() {
            let public = pem_key(block).map_err(|e| format!("PEM block {}: {e}", i + 1))?;
            keys.push(Key {
                kid: None,
                alg: None,
                public,
            });
        }
        if keys.is_empty() {
            return Err("no PEM public key found".into());
        }
        Ok(KeySet { keys })
    }

    /// Reads the signing keys of a JWKS document. Keys for encryption, symmetric keys and
    /// keys of unsupported types are passed over (and named in the second value); a
    /// document with no usable key is an error, so it never replaces a good set.
    pub fn from_jwks(json: &[u8]) -> Result<(KeySet, Vec<String>), String> {
        let doc: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| format!("JWKS is not JSON: {e}"))?;
        let Some(entries) = doc.get("keys").and_then(|k| k.as_array()) else {
            return Err("JWKS has no `keys` array".into());
        };
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let kid = entry.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
            match jwk_key(entry) {
                Ok(public) => match declared_alg(entry, &public) {
                    Ok(alg) => keys.push(Key { kid, alg, public }),
                    Err(e) => skipped.push(format!("key {i} ({kid:?}): {e}")),
                },
                Err(e) => skipped.push(format!("key {i} ({kid:?}): {e}")),
            }
        }
        if keys.is_empty() {
            return Err(format!(
                "JWKS has no usable signing key{}",
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", skipped.join("; "))
                }
            ));
        }
        Ok((KeySet { keys }, skipped))
    }
}

/// The key's own `alg`, which must be one the gateway accepts and fit the key's kind.
fn declared_alg(
    entry: &serde_json::Value,
    public: &PublicKey,
) -> Result<Option<Algorithm>, String> {
    let Some(name) = entry.get("alg").and_then(|a| a.as_str()) else {
        return Ok(None);
    };
    let alg: Algorithm = name.parse()?;
    if alg.key_kind() != public.kind() {
        return Err(format!(
            "`alg` {alg} does not fit a {:?} key",
            public.kind()
        ));
    }
    Ok(Some(alg))
}

fn jwk_key(entry: &serde_json::Value) -> Result<PublicKey, String> {
    let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|e| format!("not a JWK: {e}"))?;
    if let Some(use_) = &jwk.common.public_key_use
        && *use_ != PublicKeyUse::Signature
    {
        return Err("not a signing key (`use` is not `sig`)".into());
    }
    let bad = |e: jsonwebtoken::errors::Error| format!("bad key parameters: {e}");
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Ok(PublicKey::Jwt(
            KeyKind::Rsa,
            DecodingKey::from_jwk(&jwk).map_err(bad)?,
        )),
        AlgorithmParameters::EllipticCurve(params) => {
            let kind = match params.curve {
                EllipticCurve::P256 => KeyKind::P256,
                EllipticCurve::P384 => KeyKind::P384,
                EllipticCurve::P521 => {
                    return p521_point(&params.x, &params.y).map(PublicKey::P521);
                }
                _ => return Err("`EC` key on an unsupported curve".into()),
            };
            let key = DecodingKey::from_jwk(&jwk).map_err(bad)?;
            let point = key.try_get_as_bytes().map_err(bad)?;
            if point.len() != point_len(kind) {
                return Err("coordinates have the wrong length for the curve".into());
            }
            Ok(PublicKey::Jwt(kind, key))
        }
        AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => Ok(
            PublicKey::Jwt(KeyKind::Ed25519, DecodingKey::from_jwk(&jwk).map_err(bad)?),
        ),
        AlgorithmParameters::OctetKey(_) => Err(
            "symmetric (`oct`) keys are never used: tokens must be signed with a private key"
                .into(),
        ),
        _ => Err("unsupported key type".into()),
    }
}

/// The SEC1 uncompressed point of a P-521 JWK.
fn p521_point(x: &str, y: &str) -> Result<Vec<u8>, String> {
    let x = URL_SAFE_NO_PAD
        .decode(x)
        .map_err(|e| format!("`x` is not base64url: {e}"))?;
    let y = URL_SAFE_NO_PAD
        .decode(y)
        .map_err(|e| format!("`y` is not base64url: {e}"))?;
    if x.len() != 66 || y.len() != 66 {
        return Err("P-521 coordinates must be 66 bytes each".into());
    }
    let mut point = Vec::with_capacity(133);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}

/// Bytes of an uncompressed point on each curve.
fn point_len(kind: KeyKind) -> usize {
    match kind {
        KeyKind::P256 => 65,
        KeyKind::P384 => 97,
        KeyKind::P521 => 133,
        KeyKind::Rsa | KeyKind::Ed25519 => 0,
    }
}

/// Each `-----BEGIN ...-----` to `-----END ...-----` block, markers included.
fn pem_blocks(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let start = rest.find("-----BEGIN ")?;
        let end_marker = rest[start..].find("-----END ")? + start;
        let end = rest[end_marker + 9..]
            .find("-----")
            .map_or(rest.len(), |i| end_marker + 9 + i + 5);
        let block = &rest[start..end];
        rest = &rest[end..];
        Some(block)
    })
}

fn pem_key(block: &str) -> Result<PublicKey, String> {
    if block.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
        return DecodingKey::from_rsa_pem(block.as_bytes())
            .map(|k| PublicKey::Jwt(KeyKind::Rsa, k))
            .map_err(|e| format!("bad RSA public key: {e}"));
    }
    if !block.starts_with("-----BEGIN PUBLIC KEY-----") {
        let label = block
            .lines()
            .next()
            .unwrap_or_default()
            .trim_matches('-')
            .trim_start_matches("BEGIN ");
        return Err(if label.contains("PRIVATE") {
            format!("holds a private key ({label}); give the public key only")
        } else {
            format!("expected PUBLIC KEY, found {label}")
        });
    }
    let pem = block.as_bytes();
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok(PublicKey::Jwt(KeyKind::Rsa, key));
    }
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        if key.try_get_as_bytes().is_ok_and(|k| k.len() == 32) {
            return Ok(PublicKey::Jwt(KeyKind::Ed25519, key));
        }
        return Err("not an Ed25519 key".into());
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        let point = key.try_get_as_bytes().map_err(|e| e.to_string())?;
        return match point.len() {
            65 => Ok(PublicKey::Jwt(KeyKind::P256, key)),
            97 => Ok(PublicKey::Jwt(KeyKind::P384, key)),
            133 => Ok(PublicKey::P521(point.to_vec())),
            _ => Err("EC key on an unsupported curve".into()),
        };
    }
    Err("not an RSA, EC (P-256, P-384, P-521) or Ed25519 public key".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_split_a_bundle() {
        let text = "junk\n-----BEGIN PUBLIC KEY-----\nAAA\n-----END PUBLIC KEY-----\n\
                    -----BEGIN RSA PUBLIC KEY-----\nBBB\n-----END RSA PUBLIC KEY-----\n";
        let blocks: Vec<&str> = pem_blocks(text).collect();
        assert_eq!(blocks.len(), 2);
        assert!(
            blocks[0].ends_with("-----END PUBLIC KEY-----"),
            "{}",
            blocks[0]
        );
        assert!(blocks[1].contains("BBB"));
    }

    #[test]
    fn a_private_key_is_refused_by_name() {
        let err = KeySet::from_pem("-----BEGIN PRIVATE KEY-----\nAA\n-----END PRIVATE KEY-----\n")
            .err()
            .expect("private key refused");
        assert!(err.contains("private key"), "{err}");
    }

    #[test]
    fn symmetric_jwks_keys_are_never_used() {
        let jwks = br#"{"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"HS256","kid":"h"}]}"#;
        let err = KeySet::from_jwks(jwks).err().expect("no usable key");
        assert!(err.contains("no usable signing key"), "{err}");
    }
}
