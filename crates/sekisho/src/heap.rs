//! Futures put on the heap without a trip through the stack.
//!
//! `Box::pin(make())` builds the value in a stack temporary and then copies all of it into
//! the new allocation: for the request path's future, 7 KiB per request. Allocating first
//! and building the value afterwards lets the compiler write it into the allocation
//! directly.

use std::pin::Pin;

/// Allocates room for what `make` returns, then builds it in that room.
#[inline(always)]
pub fn pin<T>(make: impl FnOnce() -> T) -> Pin<Box<T>> {
    Box::into_pin(Box::write(Box::new_uninit(), make()))
}
