//! Heap held by an idle connection after it served a request with a body: the
//! memory goal of this crate (h2 holds about 28 KiB per connection). The
//! library forbids unsafe code; this test needs it only to install a counting
//! allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::BytesMut;
use h2conn::{Config, Connection, Event, StreamId};
use h2frame::Settings;
use http::{HeaderMap, StatusCode};

/// Counts the bytes allocated and not yet freed, per thread, so the test
/// harness's other threads do not blur the figure.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(delta: isize) {
    let _ = LIVE.try_with(|live| live.set(live.get() + delta));
}

// SAFETY: every call is passed to the system allocator unchanged; the counter
// only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

#[test]
fn idle_connection_after_a_request_holds_only_hpack_state() {
    // The client's bytes are built first so only the server's heap is counted.
    let mut enc = hpack::Encoder::new();
    let mut block = Vec::new();
    let fields = [
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", "api.example.com"),
        (":path", "/pkg.Service/Method"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ];
    enc.encode(
        fields
            .iter()
            .map(|(n, v)| hpack::Field::new(n.as_bytes(), v.as_bytes())),
        &mut block,
    );
    let mut input = h2frame::PREFACE.to_vec();
    h2frame::write_settings(&mut input, &Settings::default());
    h2frame::write_settings_ack(&mut input);
    let stream = StreamId::new(1);
    h2frame::write_headers(&mut input, stream, false, None, &block, 16_384);
    h2frame::write_data(&mut input, stream, true, &[7; 10_000]);
    let mut response_headers = HeaderMap::new();
    response_headers.insert("content-type", "application/grpc".parse().unwrap());
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    let body = vec![9u8; 20_000];

    let before = live();
    let mut conn = Connection::new(Config::default());
    let mut buf = BytesMut::from(&input[..]);
    conn.recv(&mut buf).unwrap();
    drop(buf);
    while let Some(event) = conn.poll_event() {
        if let Event::Data { stream, data, .. } = event {
            conn.release(stream, data.len());
        }
    }
    conn.send_response(stream, StatusCode::OK, &response_headers, false)
        .unwrap();
    assert_eq!(conn.send_data(stream, &body, false), Ok(body.len()));
    conn.send_trailers(stream, &trailers).unwrap();
    let written = conn.output().len();
    conn.advance(written);
    assert_eq!(conn.active_streams(), 0);
    conn.shrink_idle();
    assert_eq!(conn.buffered_bytes(), 0);
    let kept = live() - before;
    // Its output buffer, event queue and stream table went to the thread's spare room,
    // for the next connection; freed, what is left is the connection's own.
    h2conn::free_spare_room();
    let spare = kept - (live() - before);
    assert!(
        spare > 0 && spare < 64 * 1024,
        "room kept for the next connection: {spare} bytes"
    );
    let held = live() - before;
    // The HPACK tables with this request's and response's fields, and the
    // decoder's scratch strings; no I/O buffer, no stream table.
    // 541 bytes when written.
    assert!(held < 1024, "idle connection holds {held} bytes of heap");
}
