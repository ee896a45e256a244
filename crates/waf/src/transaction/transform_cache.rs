//! Remembers transformation results within a transaction.

use std::borrow::Cow;
use std::sync::Arc;

use super::Transaction;
use crate::fasthash::FastMap;
use crate::rule::Rule;

/// A value after transformation: the input itself, or a shared cached result.
pub(super) enum Transformed<'a> {
    Same(Cow<'a, [u8]>),
    Cached(Arc<[u8]>),
}

impl std::ops::Deref for Transformed<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Transformed::Same(v) => v,
            Transformed::Cached(v) => v,
        }
    }
}

/// Bytes of inputs and results one transaction may keep in its transformation cache.
pub(super) const TRANSFORM_CACHE_BUDGET: usize = 1 << 20;

/// Transformation results by chain id, then input (`None`: the input is unchanged).
pub(super) type TransformCache = FastMap<u32, FastMap<Box<[u8]>, Option<Arc<[u8]>>>>;

impl Transaction<'_> {
    /// Applies the rule's transformations. CRS applies the same few chains to the same
    /// values in rule after rule, so results are remembered per chain and input.
    pub(super) fn transformed<'a>(&self, rule: &Rule, value: Cow<'a, [u8]>) -> Transformed<'a> {
        if rule.transforms.is_empty() {
            return Transformed::Same(value);
        }
        let mut cache = self.transform_cache.borrow_mut();
        let per_chain = cache.entry(rule.transform_chain).or_default();
        if let Some(hit) = per_chain.get(&value[..]) {
            return match hit {
                Some(out) => Transformed::Cached(Arc::clone(out)),
                None => Transformed::Same(value),
            };
        }
        let mut current = Cow::Borrowed(&value[..]);
        for t in &rule.transforms {
            current = t.apply(current);
        }
        let out: Option<Arc<[u8]>> = match current {
            Cow::Borrowed(_) => None,
            Cow::Owned(v) => Some(v.into()),
        };
        let cost = value.len() + out.as_ref().map_or(0, |o| o.len());
        if self.transform_cache_bytes.get() + cost <= TRANSFORM_CACHE_BUDGET {
            self.transform_cache_bytes
                .set(self.transform_cache_bytes.get() + cost);
            per_chain.insert(value.to_vec().into_boxed_slice(), out.clone());
        }
        match out {
            Some(out) => Transformed::Cached(out),
            None => Transformed::Same(value),
        }
    }
}
