//! The decoder's memory bound, measured at the allocator: whatever a block declares,
//! no single allocation made while decoding it exceeds the header-list bound.
//!
//! This binary installs a counting global allocator, so it holds a single test: other
//! tests running alongside would blur the measurement.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use hpack::{DecodeError, Decoder, Encoder, Field, integer};

/// Records the largest allocation (or reallocation) requested since the last reset.
struct PeakTracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` unchanged; only a counter is added.
unsafe impl GlobalAlloc for PeakTracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakTracking = PeakTracking;

const LIST_LIMIT: usize = 16 * 1024;

/// Decodes `block` with a fresh decoder, discarding fields, and returns the result
/// and the largest allocation made meanwhile.
fn decode_measured(block: &[u8]) -> (Result<(), DecodeError>, usize) {
    let mut decoder = Decoder::new(4096);
    decoder.set_max_header_list_size(LIST_LIMIT);
    LARGEST.store(0, Ordering::Relaxed);
    let result = decoder.decode(block, |_| Ok::<(), DecodeError>(()));
    (result, LARGEST.load(Ordering::Relaxed))
}

/// A literal without indexing, name "a", whose value is `value` (already coded) with
/// the given Huffman flag and declared length.
fn literal(declared: usize, huffman: bool, value: &[u8]) -> Vec<u8> {
    let mut block = vec![0x00, 0x01, b'a'];
    integer::encode(declared, 7, if huffman { 0x80 } else { 0 }, &mut block);
    block.extend_from_slice(value);
    block
}

#[test]
fn decoding_never_allocates_past_the_header_list_bound() {
    let too_large = Err(DecodeError::HeaderListTooLarge { limit: LIST_LIMIT });

    // A value declared u32::MAX bytes long with a few bytes present.
    let block = literal(u32::MAX as usize, false, b"xyz");
    let (result, largest) = decode_measured(&block);
    assert!(
        matches!(result, Err(DecodeError::StringPastEnd { .. })),
        "{result:?}"
    );
    assert!(largest <= LIST_LIMIT, "allocated {largest} bytes");

    // A 4 MiB raw value, all present.
    let value = vec![b'x'; 4 << 20];
    let block = literal(value.len(), false, &value);
    let (result, largest) = decode_measured(&block);
    assert_eq!(result, too_large);
    assert!(largest <= LIST_LIMIT, "allocated {largest} bytes");

    // A 4 MiB Huffman value that would decode to 6.4 MiB.
    let mut coded = Vec::new();
    hpack::huffman::encode(&vec![b'a'; 6_710_886], &mut coded);
    let block = literal(coded.len(), true, &coded);
    let (result, largest) = decode_measured(&block);
    assert_eq!(result, too_large);
    assert!(largest <= LIST_LIMIT, "allocated {largest} bytes");

    // Many small valid fields up to the bound: the buffers are reused, not grown.
    let mut block = Vec::new();
    let fields: Vec<(String, String)> = (0..4000)
        .map(|i| (format!("x-{i}"), format!("value-{i}")))
        .collect();
    Encoder::new().encode(
        fields
            .iter()
            .map(|(n, v)| Field::new(n.as_bytes(), v.as_bytes())),
        &mut block,
    );
    let (result, largest) = decode_measured(&block);
    assert_eq!(result, too_large);
    assert!(largest <= LIST_LIMIT, "allocated {largest} bytes");
}
