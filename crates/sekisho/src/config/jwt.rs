//! The config of JSON Web Token checks: who issues tokens (`jwt_providers`) and what a
//! route asks of them (a route's `jwt`), with the checks that need the whole file.

use std::collections::{BTreeMap, HashSet};

use http::header::HeaderName;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::Problem;
use super::text::{Duration, Parsed, Text};
use crate::policy::jwt::Algorithm;

/// An issuer of tokens: where a token is found, which keys sign it and what it must say.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtProvider {
    /// Unique; routes refer to it, and it is the realm named to clients.
    pub name: Spanned<Text>,
    /// The `iss` a token must carry; not checked when absent.
    #[serde(default)]
    pub issuer: Option<Text>,
    /// A token's `aud` must name one of these; not checked when empty.
    #[serde(default)]
    pub audiences: Vec<Text>,
    /// Algorithms accepted; every supported asymmetric one when empty.
    #[serde(default)]
    pub algorithms: Vec<Parsed<Algorithm>>,
    /// Clock difference tolerated when checking `exp` and `nbf` (default 30s).
    #[serde(default)]
    pub leeway: Option<Parsed<Duration>>,
    /// Where the token is looked for, in order; `Authorization: Bearer` by default.
    #[serde(default = "JwtProvider::default_from")]
    pub from: Vec<TokenSource>,
    /// The public keys tokens are verified with.
    pub keys: Spanned<JwtKeys>,
}

impl JwtProvider {
    fn default_from() -> Vec<TokenSource> {
        vec![TokenSource {
            header: Some(Text::plain("authorization")),
            prefix: Some(Text::plain("Bearer ")),
            cookie: None,
            query: None,
        }]
    }
}

/// One place a token may travel: a header (with an optional prefix such as `Bearer `), a
/// cookie or a query parameter.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSource {
    /// A request header, e.g. `authorization` or `x-testbed-token`.
    #[serde(default)]
    pub header: Option<Text>,
    /// Text before the token in the header's value, compared without regard to case.
    #[serde(default)]
    pub prefix: Option<Text>,
    /// A cookie name.
    #[serde(default)]
    pub cookie: Option<Text>,
    /// A query parameter name.
    #[serde(default)]
    pub query: Option<Text>,
}

/// Where a provider's public keys come from: exactly one of the three.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtKeys {
    /// A PEM file of one or more public keys (`PUBLIC KEY` or `RSA PUBLIC KEY` blocks).
    #[serde(default)]
    pub pem: Option<Spanned<Text>>,
    /// A JWKS document on disk, watched and re-read when it changes.
    #[serde(default)]
    pub jwks_file: Option<Spanned<Text>>,
    /// A JWKS document fetched over HTTPS (plain HTTP only from loopback addresses).
    #[serde(default)]
    pub jwks_url: Option<Spanned<Text>>,
    /// How often `jwks_url` is fetched again (default 5m).
    #[serde(default)]
    pub refresh: Option<Parsed<Duration>>,
    /// Bound on one fetch of `jwks_url` (default 5s).
    #[serde(default)]
    pub timeout: Option<Parsed<Duration>>,
    /// PEM bundle of CAs trusted for `jwks_url` instead of the system roots (a private
    /// issuer); watched like certificates.
    #[serde(default)]
    pub ca: Option<Spanned<Text>>,
}

/// What a route asks of a request's token.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteJwt {
    /// The provider whose tokens the route accepts.
    pub provider: Spanned<Text>,
    /// Claims that must hold one of the listed values (an array claim: contain one).
    #[serde(default)]
    pub require: BTreeMap<String, Vec<Text>>,
    /// Claims sent upstream as request headers, claim name to header name.
    #[serde(default)]
    pub forward_claims: BTreeMap<String, Text>,
    /// Remove the token from the request before it goes upstream.
    #[serde(default)]
    pub strip_token: bool,
}

/// Checks providers: unique names, one key source each, usable token sources.
pub fn check_providers(providers: &[JwtProvider], problems: &mut Vec<Problem>) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, provider) in providers.iter().enumerate() {
        let name = &provider.name;
        let at = |field: &str| format!("jwt_providers[{i}].{field}");
        if !names.insert(name.value.to_string()) {
            problems.push(Problem::on(
                name,
                at("name"),
                format!("duplicate provider name {:?}", &*name.value),
            ));
        }
        if provider.from.is_empty() {
            problems.push(Problem::on(name, at("from"), "list at least one place"));
        }
        for (j, source) in provider.from.iter().enumerate() {
            let field = at(&format!("from[{j}]"));
            let kinds = [
                source.header.is_some(),
                source.cookie.is_some(),
                source.query.is_some(),
            ];
            if kinds.iter().filter(|k| **k).count() != 1 {
                problems.push(Problem::on(
                    name,
                    field.clone(),
                    "give exactly one of `header`, `cookie` or `query`",
                ));
            }
            if source.prefix.is_some() && source.header.is_none() {
                problems.push(Problem::on(
                    name,
                    format!("{field}.prefix"),
                    "a prefix applies to a `header` only",
                ));
            }
            if let Some(header) = &source.header
                && HeaderName::from_bytes(header.as_bytes()).is_err()
            {
                problems.push(Problem::on(
                    name,
                    format!("{field}.header"),
                    format!("not a header name: {:?}", &**header),
                ));
            }
        }
        let keys = &provider.keys;
        let given = [
            keys.value.pem.is_some(),
            keys.value.jwks_file.is_some(),
            keys.value.jwks_url.is_some(),
        ];
        if given.iter().filter(|k| **k).count() != 1 {
            problems.push(Problem::on(
                keys,
                at("keys"),
                "give exactly one of `pem`, `jwks_file` or `jwks_url`",
            ));
        }
        if keys.value.jwks_url.is_none()
            && (keys.value.refresh.is_some()
                || keys.value.timeout.is_some()
                || keys.value.ca.is_some())
        {
            problems.push(Problem::on(
                keys,
                at("keys"),
                "`refresh`, `timeout` and `ca` apply to `jwks_url` only",
            ));
        }
        for (field, duration) in [
            ("refresh", &keys.value.refresh),
            ("timeout", &keys.value.timeout),
        ] {
            if duration.as_ref().is_some_and(|d| d.get().0.is_zero()) {
                problems.push(Problem::on(
                    keys,
                    at(&format!("keys.{field}")),
                    "must not be 0",
                ));
            }
        }
    }
    names
}

/// Checks a route's `jwt`: the provider exists and forwarded claims name valid headers.
pub fn check_route(
    field: &str,
    jwt: &RouteJwt,
    providers: &HashSet<String>,
    problems: &mut Vec<Problem>,
) {
    if !providers.contains(&*jwt.provider.value) {
        problems.push(Problem::on(
            &jwt.provider,
            format!("{field}.provider"),
            format!("unknown JWT provider {:?}", &*jwt.provider.value),
        ));
    }
    for (claim, header) in &jwt.forward_claims {
        if HeaderName::from_bytes(header.as_bytes()).is_err() {
            problems.push(Problem::on(
                &jwt.provider,
                format!("{field}.forward_claims.{claim}"),
                format!("not a header name: {:?}", &**header),
            ));
        }
    }
    for (claim, values) in &jwt.require {
        if values.is_empty() {
            problems.push(Problem::on(
                &jwt.provider,
                format!("{field}.require.{claim}"),
                "list at least one accepted value",
            ));
        }
    }
}
