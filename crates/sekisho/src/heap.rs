//! Futures put on the heap without a trip through the stack, and the request path's
//! storage reused from one request to the next.
//!
//! `Box::pin(make())` builds the value in a stack temporary and then copies all of it into
//! the new allocation: for the request path's future, 3.3 KiB per request. Allocating first
//! and building the value afterwards lets the compiler write it into the allocation
//! directly.
//!
//! That allocation is also the allocator's worst case: a multiplexed connection starts its
//! streams in batches of dozens and ends them together, so each batch overflows the
//! thread cache's bin for that size and goes back to the arena, slab by slab, and the next
//! batch takes it out again (about 1,000 instructions per request). [`Recycled`] keeps a
//! bounded number of those blocks per thread instead.

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Allocates room for what `make` returns, then builds it in that room.
#[inline(always)]
pub fn pin<T>(make: impl FnOnce() -> T) -> Pin<Box<T>> {
    Box::into_pin(Box::write(Box::new_uninit(), make()))
}

/// How many spare blocks of a type a thread keeps: enough for the streams a batch of
/// multiplexed connections starts together (16 connections of 16 streams), at about
/// 3.3 KiB each for the request path, so under 1 MiB per worker thread.
const SPARE_MAX: usize = 256;

/// A block: a value pinned in place, or the room for one.
type Block<T> = Pin<Box<Option<T>>>;

thread_local! {
    /// For each type recycled on this thread, a `Vec<Block<T>>` of empty blocks.
    static SPARE: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// A pinned, boxed value whose block goes back to a per-thread list when it is dropped,
/// and is taken from there by the next [`Recycled::new`] of the same type.
pub struct Recycled<T: 'static> {
    /// Holds a value from `new` until `drop` takes it.
    block: Option<Block<T>>,
}

impl<T: 'static> Recycled<T> {
    /// Builds what `make` returns in a spare block of this thread, or a new one.
    #[inline(always)]
    pub fn new(make: impl FnOnce() -> T) -> Self {
        let block = match with_spare(Vec::pop) {
            Some(mut block) => {
                block.set(Some(make()));
                block
            }
            None => pin(|| Some(make())),
        };
        Self { block: Some(block) }
    }

    /// The value, pinned.
    pub fn as_mut(&mut self) -> Pin<&mut T> {
        match self
            .block
            .as_mut()
            .and_then(|block| block.as_mut().as_pin_mut())
        {
            Some(value) => value,
            None => unreachable!("a recycled block holds its value until it is dropped"),
        }
    }
}

impl<T: Future + 'static> Future for Recycled<T> {
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        self.get_mut().as_mut().poll(cx)
    }
}

impl<T: 'static> Drop for Recycled<T> {
    fn drop(&mut self) {
        let Some(mut block) = self.block.take() else {
            return;
        };
        // Dropped in place, as pinning requires; the empty block is kept for the next.
        block.set(None);
        with_spare(|spare| (spare.len() < SPARE_MAX).then(|| spare.push(block)));
    }
}

/// Runs `f` on this thread's spare blocks of `T`; `None` while the thread is ending.
fn with_spare<T: 'static, R>(f: impl FnOnce(&mut Vec<Block<T>>) -> Option<R>) -> Option<R> {
    SPARE
        .try_with(|lists| {
            let mut lists = lists.try_borrow_mut().ok()?;
            let found = lists.iter_mut().position(|list| list.is::<Vec<Block<T>>>());
            let list = match found {
                Some(at) => &mut lists[at],
                None => {
                    lists.push(Box::new(Vec::<Block<T>>::new()));
                    lists.last_mut()?
                }
            };
            f(list.downcast_mut()?)
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// A value whose drop shows in the count of its `Rc`'s holders.
    struct Counted {
        _alive: Rc<()>,
        bytes: [u8; 4096],
    }

    #[test]
    fn a_dropped_value_is_dropped_once_and_its_block_reused() {
        let alive = Rc::new(());
        let mut first = Recycled::new(|| Counted {
            _alive: alive.clone(),
            bytes: [1; 4096],
        });
        let address = std::ptr::from_ref::<Counted>(&first.as_mut()).addr();
        assert_eq!(Rc::strong_count(&alive), 2);
        drop(first);
        assert_eq!(Rc::strong_count(&alive), 1, "dropped with its box");
        let mut second = Recycled::new(|| Counted {
            _alive: alive.clone(),
            bytes: [2; 4096],
        });
        assert_eq!(
            std::ptr::from_ref::<Counted>(&second.as_mut()).addr(),
            address,
            "the same block"
        );
        assert_eq!(second.as_mut().bytes[4095], 2, "holding the new value");
        drop(second);
        assert_eq!(Rc::strong_count(&alive), 1);
    }

    #[test]
    fn a_block_is_taken_by_its_own_type_only() {
        let mut first = Recycled::new(|| [7u64; 512]);
        let address = std::ptr::from_ref::<[u64; 512]>(&first.as_mut()).addr();
        drop(first);
        let mut other = Recycled::new(|| 5u8);
        assert_eq!(*other.as_mut(), 5);
        let mut reused = Recycled::new(|| [9u64; 512]);
        assert_eq!(
            std::ptr::from_ref::<[u64; 512]>(&reused.as_mut()).addr(),
            address,
            "the block the other type left alone"
        );
        assert!(reused.as_mut().iter().all(|&x| x == 9));
    }

    #[test]
    fn the_spare_list_is_bounded() {
        let many: Vec<_> = (0..SPARE_MAX + 10)
            .map(|i| Recycled::new(move || [i; 64]))
            .collect();
        drop(many);
        let kept = with_spare(|spare: &mut Vec<Block<[usize; 64]>>| Some(spare.len()));
        assert_eq!(kept, Some(SPARE_MAX));
    }

    #[test]
    fn a_recycled_future_runs_to_its_output() {
        let future = Recycled::new(|| async { 40 + 2 });
        let out = futures_util::FutureExt::now_or_never(future);
        assert_eq!(out, Some(42));
    }
}
