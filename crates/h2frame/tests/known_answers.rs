//! Frames encoded by hand from the RFC 9113 section 4.1 and 6 layouts, parsed to
//! their fields, and the writers checked to produce the same bytes.

mod common;

use common::decode_all;
use h2frame::{
    ErrorCode, Frame, PREFACE, Priority, Settings, StreamId, write_data_padded, write_goaway,
    write_headers, write_ping, write_rst_stream, write_settings, write_settings_ack,
    write_window_update,
};

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

#[test]
fn settings() {
    let bytes = hex("00000c 04 00 00000000
                     0003 00000064
                     0004 0000ffff");
    let expected = Settings {
        max_concurrent_streams: Some(100),
        initial_window_size: Some(65_535),
        ..Settings::default()
    };
    assert_eq!(
        decode_all(&bytes),
        Ok(Frame::Settings {
            ack: false,
            settings: expected,
        })
    );
    let mut out = Vec::new();
    write_settings(&mut out, &expected);
    assert_eq!(out, bytes);
}

#[test]
fn settings_ack() {
    let bytes = hex("000000 04 01 00000000");
    assert_eq!(
        decode_all(&bytes),
        Ok(Frame::Settings {
            ack: true,
            settings: Settings::default(),
        })
    );
    let mut out = Vec::new();
    write_settings_ack(&mut out);
    assert_eq!(out, bytes);
}

#[test]
fn ping() {
    let bytes = hex("000008 06 01 00000000 0102030405060708");
    assert_eq!(
        decode_all(&bytes),
        Ok(Frame::Ping {
            ack: true,
            payload: [1, 2, 3, 4, 5, 6, 7, 8],
        })
    );
    let mut out = Vec::new();
    write_ping(&mut out, true, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(out, bytes);
}

#[test]
fn window_update() {
    let bytes = hex("000004 08 00 00000003 00001000");
    let expected = Frame::WindowUpdate {
        stream: StreamId::new(3),
        increment: 4096,
    };
    assert_eq!(decode_all(&bytes), Ok(expected));
    let mut out = Vec::new();
    write_window_update(&mut out, StreamId::new(3), 4096);
    assert_eq!(out, bytes);
    // The reserved bits of the stream id and increment are ignored on receipt.
    let reserved = hex("000004 08 00 80000003 80001000");
    assert_eq!(decode_all(&reserved), Ok(expected));
}

#[test]
fn goaway() {
    // Last stream 7, ENHANCE_YOUR_CALM, debug data "calm!".
    let bytes = hex("00000d 07 00 00000000 00000007 0000000b 63616c6d21");
    assert_eq!(
        decode_all(&bytes),
        Ok(Frame::GoAway {
            last_stream: StreamId::new(7),
            code: ErrorCode::ENHANCE_YOUR_CALM,
            debug: b"calm!",
        })
    );
    let mut out = Vec::new();
    write_goaway(
        &mut out,
        StreamId::new(7),
        ErrorCode::ENHANCE_YOUR_CALM,
        b"calm!",
    );
    assert_eq!(out, bytes);
}

#[test]
fn goaway_with_an_unknown_code() {
    let bytes = hex("000008 07 00 00000000 80000001 0000abcd");
    assert_eq!(
        decode_all(&bytes),
        Ok(Frame::GoAway {
            last_stream: StreamId::new(1),
            code: ErrorCode(0xabcd),
            debug: b"",
        })
    );
}

#[test]
fn rst_stream() {
    let bytes = hex("000004 03 00 00000005 00000008");
    assert_eq!(
        decode_all(&bytes),
        Ok(Frame::RstStream {
            stream: StreamId::new(5),
            code: ErrorCode::CANCEL,
        })
    );
    let mut out = Vec::new();
    write_rst_stream(&mut out, StreamId::new(5), ErrorCode::CANCEL);
    assert_eq!(out, bytes);
}

#[test]
fn padded_data() {
    // END_STREAM | PADDED, Pad Length 2, "hi", two padding bytes.
    let bytes = hex("000005 00 09 00000001 02 6869 0000");
    assert_eq!(
        decode_all(&bytes),
        Ok(Frame::Data {
            stream: StreamId::new(1),
            end_stream: true,
            data: b"hi",
            flow_len: 5,
        })
    );
    let mut out = Vec::new();
    write_data_padded(&mut out, StreamId::new(1), true, b"hi", 2);
    assert_eq!(out, bytes);
}

#[test]
fn headers_with_priority() {
    // END_STREAM | END_HEADERS | PRIORITY on stream 3: exclusive on stream 1,
    // weight 16 (sent as 15), then the block ":method: GET" (0x82).
    let bytes = hex("000006 01 25 00000003 80000001 0f 82");
    let priority = Priority {
        dependency: StreamId::new(1),
        exclusive: true,
        weight: 15,
    };
    assert_eq!(
        decode_all(&bytes),
        Ok(Frame::Headers {
            stream: StreamId::new(3),
            end_stream: true,
            end_headers: true,
            priority: Some(priority),
            fragment: &[0x82],
        })
    );
    let mut out = Vec::new();
    write_headers(
        &mut out,
        StreamId::new(3),
        true,
        Some(priority),
        &[0x82],
        16_384,
    );
    assert_eq!(out, bytes);
}

#[test]
fn push_promise() {
    // END_HEADERS | PADDED on stream 1, Pad Length 1, promised stream 2, block 0x82.
    let bytes = hex("000007 05 0c 00000001 01 00000002 82 00");
    assert_eq!(
        decode_all(&bytes),
        Ok(Frame::PushPromise {
            stream: StreamId::new(1),
            promised: StreamId::new(2),
            end_headers: true,
            fragment: &[0x82],
        })
    );
}

#[test]
fn client_preface() {
    assert_eq!(
        PREFACE.as_slice(),
        hex("505249202a20485454502f322e300d0a0d0a534d0d0a0d0a")
    );
}
