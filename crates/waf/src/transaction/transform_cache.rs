//! Remembers transformation results within a transaction.
//!
//! CRS applies the same few transformation chains to the same request values in rule after
//! rule. A value read from the request (a header, an argument, the URI, the body) sits in the
//! transaction's own buffers, which do not change while rules run; such a value is known by
//! where it lies, so finding its cached result costs three words of hashing, not a hash and a
//! comparison of its bytes, and remembering it copies nothing. The cache is emptied whenever
//! those buffers change ([`Transaction::forget_transforms`]). Values that rules can rewrite
//! while they run (TX, MATCHED_VAR, ...) and values made on the fly are transformed afresh.

use std::borrow::Cow;
use std::sync::Arc;

use super::Transaction;
use crate::fasthash::FastMap;
use crate::rule::Rule;
use crate::variable::Var;

/// A value after transformation: the input itself, a shared cached result, or a result
/// made for this use only.
pub(super) enum Transformed<'a> {
    Same(Cow<'a, [u8]>),
    Cached(Arc<[u8]>),
    Fresh(Vec<u8>),
}

impl std::ops::Deref for Transformed<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Transformed::Same(v) => v,
            Transformed::Cached(v) => v,
            Transformed::Fresh(v) => v,
        }
    }
}

/// Bytes of results one transaction may keep in its transformation cache.
const TRANSFORM_CACHE_BUDGET: usize = 1 << 20;

/// Entries a transaction's cache starts with room for: a small request through CRS fills
/// about a hundred, so the table is not regrown several times per request.
const TRANSFORM_CACHE_CAPACITY: usize = 256;

/// A transformation chain's id and the address and length of its input.
type Key = (u32, usize, usize);

/// Results by [`Key`] of a value in the transaction's request buffers; `None`: the chain
/// leaves the value unchanged.
#[derive(Default)]
pub(super) struct TransformCache {
    results: FastMap<Key, Option<Arc<[u8]>>>,
    bytes: usize,
}

/// Whether a variable's values lie in buffers that stay put while rules run.
fn is_request_data(var: Var) -> bool {
    !matches!(
        var,
        Var::Tx
            | Var::Env
            | Var::Ip
            | Var::Global
            | Var::Session
            | Var::User
            | Var::Resource
            | Var::Rule
            | Var::MatchedVar
            | Var::MatchedVarName
            | Var::MatchedVars
            | Var::MatchedVarsNames
    )
}

impl Transaction<'_> {
    /// Applies the rule's transformations to a value, from the cache when it can.
    pub(super) fn transformed<'a>(
        &self,
        rule: &Rule,
        var: Var,
        value: Cow<'a, [u8]>,
    ) -> Transformed<'a> {
        if rule.transforms.is_empty() {
            return Transformed::Same(value);
        }
        let key = match &value {
            Cow::Borrowed(bytes) if is_request_data(var) => {
                Some((rule.transform_chain, bytes.as_ptr() as usize, bytes.len()))
            }
            _ => None,
        };
        let Some(key) = key else {
            return match apply(rule, &value) {
                Some(out) => Transformed::Fresh(out),
                None => Transformed::Same(value),
            };
        };
        let mut cache = self.transform_cache.borrow_mut();
        if let Some(hit) = cache.results.get(&key) {
            return match hit {
                Some(out) => Transformed::Cached(Arc::clone(out)),
                None => Transformed::Same(value),
            };
        }
        let out: Option<Arc<[u8]>> = apply(rule, &value).map(Arc::from);
        let cost = out.as_ref().map_or(0, |o| o.len());
        if cache.bytes + cost <= TRANSFORM_CACHE_BUDGET {
            if cache.results.capacity() == 0 {
                cache.results.reserve(TRANSFORM_CACHE_CAPACITY);
            }
            cache.bytes += cost;
            cache.results.insert(key, out.clone());
        }
        match out {
            Some(out) => Transformed::Cached(out),
            None => Transformed::Same(value),
        }
    }

    /// Empties the cache: to be called before the request buffers change, since a result
    /// is known by the address of its input.
    pub(super) fn forget_transforms(&mut self) {
        self.transform_cache.get_mut().clear();
    }
}

impl TransformCache {
    /// How many results the table has room for.
    pub(super) fn capacity(&self) -> usize {
        self.results.capacity()
    }

    /// Forgets every result, keeping the table's capacity.
    pub(super) fn clear(&mut self) {
        self.results.clear();
        self.bytes = 0;
    }
}

/// The rule's chain applied to `value`; `None` when it changes nothing.
fn apply(rule: &Rule, value: &[u8]) -> Option<Vec<u8>> {
    let mut current = Cow::Borrowed(value);
    for t in &rule.transforms {
        current = t.apply(current);
    }
    match current {
        Cow::Borrowed(_) => None,
        Cow::Owned(v) => Some(v),
    }
}
