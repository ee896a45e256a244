//! JSON Web Token authentication: a route names a provider, and a request passes only
//! with a token that provider signed, that is in date, for the right issuer and audience,
//! and whose claims meet the route's requirements. Chosen claims go upstream as headers.
//!
//! Missing or bad tokens are refused as unauthenticated (401 / UNAUTHENTICATED), tokens
//! whose claims fall short as forbidden (403 / PERMISSION_DENIED). The reason is logged;
//! the token never is.

mod claims;
mod jwks;
mod keys;
mod token;
mod verify;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::HeaderName;
use http::request::Parts;
use serde_json::{Map, Value};

pub use verify::Algorithm;

use crate::config::Problem;
use crate::config::jwt::{JwtKeys, JwtProvider, RouteJwt as RouteSpec};
use crate::observe::metrics;
use crate::policy::identity::Vouched;
use crate::proxy::GatewayError;
use claims::{Registered, Requirement};
use jwks::{RemoteKeys, RemoteSpec};
use keys::{KeySet, Lookup};
use token::{Jws, Place};

const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request was refused.
#[derive(Debug)]
pub struct Denial {
    /// The provider's name, told to HTTP clients as the realm.
    pub realm: Arc<str>,
    /// What kind of refusal.
    pub kind: DenialKind,
    /// In words, without any part of the token.
    pub reason: String,
}

/// The kinds of refusal, which clients are told apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenialKind {
    /// No token where the provider looks.
    Missing,
    /// A token that does not verify or is out of date, or for someone else.
    Invalid,
    /// A good token whose claims do not meet the route's requirements.
    Forbidden,
}

impl DenialKind {
    fn as_str(self) -> &'static str {
        match self {
            DenialKind::Missing => "missing",
            DenialKind::Invalid => "invalid",
            DenialKind::Forbidden => "forbidden",
        }
    }
}

impl From<Denial> for GatewayError {
    fn from(denial: Denial) -> Self {
        match denial.kind {
            DenialKind::Forbidden => GatewayError::Forbidden {
                realm: denial.realm,
                reason: denial.reason,
            },
            kind => GatewayError::Unauthenticated {
                realm: denial.realm,
                reason: denial.reason,
                token_given: kind == DenialKind::Invalid,
            },
        }
    }
}

/// Where a provider's keys are now.
enum Keys {
    /// Read from a file when the config was compiled (the file is watched).
    Fixed(Arc<KeySet>),
    /// Fetched from a URL and kept fresh.
    Remote(Arc<RemoteKeys>),
}

impl Keys {
    /// Reads the key files (adding them to `files`), or sets up fetching from a URL; a URL
    /// fetched before (`previous`) with the same settings keeps its keys. An error names
    /// the `keys` field at fault.
    fn compile(
        name: &Arc<str>,
        keys: &JwtKeys,
        previous: Option<&Keys>,
        files: &mut Vec<PathBuf>,
    ) -> Result<Keys, (&'static str, String)> {
        if let Some(pem) = &keys.pem {
            let path = Path::new(&*pem.value);
            files.push(path.to_path_buf());
            let text = std::fs::read_to_string(path)
                .map_err(|e| ("pem", format!("cannot read {}: {e}", path.display())))?;
            let set =
                KeySet::from_pem(&text).map_err(|e| ("pem", format!("{}: {e}", path.display())))?;
            Ok(Keys::Fixed(Arc::new(set)))
        } else if let Some(file) = &keys.jwks_file {
            let path = Path::new(&*file.value);
            files.push(path.to_path_buf());
            let bytes = std::fs::read(path)
                .map_err(|e| ("jwks_file", format!("cannot read {}: {e}", path.display())))?;
            let (set, skipped) = KeySet::from_jwks(&bytes)
                .map_err(|e| ("jwks_file", format!("{}: {e}", path.display())))?;
            for note in skipped {
                tracing::warn!(provider = %name, "JWKS key passed over: {note}");
            }
            Ok(Keys::Fixed(Arc::new(set)))
        } else if let Some(url) = &keys.jwks_url {
            let ca_pem = match &keys.ca {
                Some(ca) => {
                    let path = Path::new(&*ca.value);
                    files.push(path.to_path_buf());
                    let pem = std::fs::read(path)
                        .map_err(|e| ("ca", format!("cannot read {}: {e}", path.display())))?;
                    Some(pem)
                }
                None => None,
            };
            let spec = RemoteSpec::new(
                &url.value,
                keys.refresh.as_ref().map_or(DEFAULT_REFRESH, |d| d.get().0),
                keys.timeout
                    .as_ref()
                    .map_or(DEFAULT_FETCH_TIMEOUT, |d| d.get().0),
                ca_pem,
            )
            .map_err(|e| ("jwks_url", e))?;
            match previous {
                Some(Keys::Remote(old)) if old.spec == spec => Ok(Keys::Remote(old.clone())),
                _ => Ok(Keys::Remote(
                    RemoteKeys::new(name.clone(), spec).map_err(|e| ("ca", e))?,
                )),
            }
        } else {
            Err(("", "give one of `pem`, `jwks_file` or `jwks_url`".into()))
        }
    }
}

/// A compiled `jwt_providers` entry.
pub struct Provider {
    /// As configured.
    pub name: Arc<str>,
    algorithms: Vec<Algorithm>,
    registered: Registered,
    places: Vec<Place>,
    keys: Keys,
}

impl Provider {
    /// Compiles a provider; an error names the `keys` field at fault and what is wrong.
    fn compile(
        spec: &JwtProvider,
        previous: Option<&Provider>,
        files: &mut Vec<PathBuf>,
    ) -> Result<Provider, (&'static str, String)> {
        let name: Arc<str> = Arc::from(&*spec.name.value);
        let keys = Keys::compile(&name, &spec.keys.value, previous.map(|p| &p.keys), files)?;
        let places = spec
            .from
            .iter()
            .filter_map(|source| {
                if let Some(header) = &source.header {
                    let name = HeaderName::from_bytes(header.as_bytes()).ok()?;
                    let prefix = source.prefix.as_deref().unwrap_or_default().to_owned();
                    Some(Place::Header { name, prefix })
                } else if let Some(cookie) = &source.cookie {
                    Some(Place::Cookie(cookie.to_string()))
                } else {
                    source.query.as_ref().map(|q| Place::Query(q.to_string()))
                }
            })
            .collect();
        let algorithms = if spec.algorithms.is_empty() {
            Algorithm::ALL.to_vec()
        } else {
            spec.algorithms.iter().map(|a| *a.get()).collect()
        };
        Ok(Provider {
            name,
            algorithms,
            registered: Registered {
                issuer: spec.issuer.as_ref().map(|i| i.to_string()),
                audiences: spec.audiences.iter().map(|a| a.to_string()).collect(),
                leeway: spec.leeway.as_ref().map_or(DEFAULT_LEEWAY, |d| d.get().0),
            },
            places,
            keys,
        })
    }

    /// The first place holding a token, and the token.
    fn find(&self, parts: &Parts) -> Option<(&Place, String)> {
        self.places
            .iter()
            .find_map(|place| place.find(parts).map(|token| (place, token)))
    }

    /// The verified claims of `token`, or why there are none.
    async fn verify(&self, token: &str) -> Result<Map<String, Value>, String> {
        let jws = Jws::parse(token)?;
        if !self.algorithms.contains(&jws.alg) {
            return Err(format!(
                "token algorithm {} is not allowed for this provider",
                jws.alg
            ));
        }
        let set = match &self.keys {
            Keys::Fixed(set) => set.clone(),
            Keys::Remote(remote) => remote
                .current()
                .ok_or("no keys yet: the JWKS could not be fetched")?,
        };
        let mut outcome = check_signature(&set, &jws);
        if let (Signature::UnknownKid, Keys::Remote(remote)) = (&outcome, &self.keys)
            && remote.refetch_for_unknown_kid(&set).await
            && let Some(fresh) = remote.current()
        {
            outcome = check_signature(&fresh, &jws);
        }
        match outcome {
            Signature::Verified => {}
            Signature::Bad => return Err("token signature does not verify".into()),
            Signature::NoKey => {
                return Err(format!(
                    "no key of this provider verifies {} (for the token's `kid`)",
                    jws.alg
                ));
            }
            Signature::UnknownKid => {
                return Err("token names a key (`kid`) this provider does not have".into());
            }
        }
        let claims = jws.claims()?;
        self.registered.check(&claims, SystemTime::now())?;
        Ok(claims)
    }
}

/// What the key set says about a token's signature.
enum Signature {
    /// A key that fits the token verifies it.
    Verified,
    /// Keys fit, none verifies.
    Bad,
    /// No key fits the token's algorithm (and `kid`).
    NoKey,
    /// The token names a `kid` the set lacks.
    UnknownKid,
}

fn check_signature(set: &KeySet, jws: &Jws<'_>) -> Signature {
    match set.lookup(jws.kid.as_deref(), jws.alg) {
        Lookup::Keys(keys) => {
            let message = jws.signing_input.as_bytes();
            if keys
                .iter()
                .any(|key| key.public.verifies(jws.alg, message, jws.signature))
            {
                Signature::Verified
            } else {
                Signature::Bad
            }
        }
        Lookup::NoKey => Signature::NoKey,
        Lookup::UnknownKid => Signature::UnknownKid,
    }
}

/// A verified token's claims, for the stages after authentication (rate limits by claim).
pub type Claims = Map<String, Value>;

/// What a request that passed a route's JWT check carries on.
#[derive(Debug)]
pub struct Verified {
    /// The token's claims.
    pub claims: Claims,
    /// The forwarded claims, written onto the upstream request last.
    pub vouched: Vouched,
}

/// The compiled providers of one snapshot, by name.
#[derive(Default)]
pub struct Providers {
    by_name: HashMap<String, Arc<Provider>>,
}

impl Providers {
    /// Compiles every provider. Files they read join `files` (watched for changes); a
    /// JWKS URL unchanged since `previous` keeps its fetched set.
    pub fn compile(
        specs: &[JwtProvider],
        previous: Option<&Providers>,
        files: &mut Vec<PathBuf>,
        problems: &mut Vec<Problem>,
    ) -> Providers {
        let mut by_name = HashMap::new();
        for (i, spec) in specs.iter().enumerate() {
            let name = spec.name.value.to_string();
            let prior = previous.and_then(|p| p.by_name.get(&name)).map(Arc::as_ref);
            match Provider::compile(spec, prior, files) {
                Ok(provider) => {
                    by_name.insert(name, Arc::new(provider));
                }
                Err((field, e)) => {
                    let at = format!("jwt_providers[{i}].keys.{field}");
                    problems.push(Problem::on(&spec.keys, at.trim_end_matches('.'), e));
                }
            }
        }
        Providers { by_name }
    }

    /// The provider called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Provider>> {
        self.by_name.get(name)
    }

    /// Fetches JWKS URLs not fetched yet (each waits at most its fetch timeout) and starts
    /// their refreshing; before a snapshot serves, so the first requests find keys.
    pub async fn start(&self) {
        for provider in self.by_name.values() {
            if let Keys::Remote(remote) = &provider.keys {
                remote.start().await;
            }
        }
    }
}

/// A route's JWT check, compiled.
pub struct RouteJwt {
    provider: Arc<Provider>,
    require: Vec<Requirement>,
    forward: Vec<(String, HeaderName)>,
    strip_token: bool,
}

impl RouteJwt {
    /// Compiles a route's `jwt` against the snapshot's providers.
    pub fn compile(spec: &RouteSpec, providers: &Providers) -> Result<RouteJwt, String> {
        let provider = providers
            .get(&spec.provider.value)
            .ok_or_else(|| format!("unknown JWT provider {:?}", &*spec.provider.value))?
            .clone();
        let require = spec
            .require
            .iter()
            .map(|(claim, values)| Requirement {
                claim: claim.clone(),
                values: values.iter().map(|v| v.to_string()).collect(),
            })
            .collect();
        let forward = spec
            .forward_claims
            .iter()
            .map(|(claim, header)| {
                HeaderName::from_bytes(header.as_bytes())
                    .map(|h| (claim.clone(), h))
                    .map_err(|e| format!("jwt.forward_claims.{claim}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(RouteJwt {
            provider,
            require,
            forward,
            strip_token: spec.strip_token,
        })
    }

    /// Lets the request through, with the token stripped as the route says and the
    /// forwarded claims to write upstream, or tells why not. Fails closed: a claim the
    /// route forwards that is missing or cannot be a header value refuses the token, so a
    /// request never goes on without the identity the route promises its backend.
    pub async fn check(&self, parts: &mut Parts) -> Result<Verified, Denial> {
        let result = self.decide(parts).await;
        let outcome = match &result {
            Ok(_) => "allowed",
            Err(denial) => denial.kind.as_str(),
        };
        metrics::jwt_decision(&self.provider.name, outcome);
        result
    }

    async fn decide(&self, parts: &mut Parts) -> Result<Verified, Denial> {
        let provider = &self.provider;
        let deny = |kind, reason| Denial {
            realm: provider.name.clone(),
            kind,
            reason,
        };
        let Some((place, token)) = provider.find(parts) else {
            return Err(deny(DenialKind::Missing, "no token in the request".into()));
        };
        let claims = provider
            .verify(&token)
            .await
            .map_err(|reason| deny(DenialKind::Invalid, reason))?;
        for requirement in &self.require {
            requirement
                .check(&claims)
                .map_err(|reason| deny(DenialKind::Forbidden, reason))?;
        }
        let mut vouched = Vouched::default();
        for (claim, header) in &self.forward {
            let value = claims::forwarded_value(claim, claims.get(claim)).map_err(|why| {
                let reason = format!("token claim {claim:?}, forwarded as {header}, {why}");
                deny(DenialKind::Invalid, reason)
            })?;
            vouched.push(header.clone(), value);
        }
        if self.strip_token {
            place.strip(parts);
        }
        Ok(Verified { claims, vouched })
    }
}
