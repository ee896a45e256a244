//! RFC 9113 connection rules, one test per rule: raw client bytes in, the exact
//! frames and codes out.

mod common;

use bytes::BytesMut;
use common::*;
use h2conn::{Config, ErrorCode, Event, SendError, StreamId};
use h2frame::{FrameType, Settings, flags};
use http::{HeaderMap, StatusCode};

fn harness() -> Harness {
    Harness::new(Config::default(), Settings::default())
}

fn sid(id: u32) -> StreamId {
    StreamId::new(id)
}

/// Opens stream `id` with a POST and takes its Request event.
fn open_post(h: &mut Harness, id: u32) {
    let bytes = h.post(id);
    h.feed(&bytes);
    assert!(matches!(
        h.events().as_slice(),
        [Event::Request {
            end_stream: false,
            ..
        }]
    ));
}

#[test]
fn server_settings_and_connection_window_come_first() {
    let mut h = Harness::raw(Config::default());
    let out = h.frames();
    assert_eq!(
        out,
        vec![
            Out::Settings {
                ack: false,
                settings: Settings {
                    max_concurrent_streams: Some(100),
                    initial_window_size: Some(256 * 1024),
                    max_header_list_size: Some(16 * 1024),
                    ..Settings::default()
                }
            },
            Out::WindowUpdate {
                stream: 0,
                increment: 1024 * 1024 - 65_535
            },
        ]
    );
    // An idle connection holds no output buffer once it is shrunk.
    h.conn.shrink_idle();
    assert_eq!(h.conn.buffered_bytes(), 0);
}

#[test]
fn preface_may_arrive_in_pieces_and_settings_are_acked() {
    let mut h = Harness::raw(Config::default());
    h.frames();
    let mut bytes = h2frame::PREFACE.to_vec();
    bytes.extend(settings(Settings::default()));
    let mut buf = BytesMut::new();
    for chunk in bytes.chunks(5) {
        buf.extend_from_slice(chunk);
        h.conn.recv(&mut buf).unwrap();
    }
    assert!(buf.is_empty());
    assert_eq!(
        h.frames(),
        vec![Out::Settings {
            ack: true,
            settings: Settings::default()
        }]
    );
}

#[test]
fn bad_preface_is_a_protocol_error() {
    let mut h = Harness::raw(Config::default());
    h.frames();
    h.feed(b"GET / HTTP/1.1\r\n");
    h.assert_goaway(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn first_frame_must_be_settings() {
    let mut h = Harness::raw(Config::default());
    h.frames();
    let mut bytes = h2frame::PREFACE.to_vec();
    bytes.extend(ping([0; 8]));
    h.feed(&bytes);
    h.assert_goaway(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn get_request_and_response() {
    let mut h = harness();
    let bytes = h.get(1);
    h.feed(&bytes);
    let events = h.events();
    let [
        Event::Request {
            stream,
            head,
            end_stream: true,
        },
    ] = events.as_slice()
    else {
        panic!("{events:?}");
    };
    assert_eq!(*stream, sid(1));
    assert_eq!(head.method, http::Method::GET);
    assert_eq!(head.uri, "http://example.com/");
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "text/plain".parse().unwrap());
    headers.insert("connection", "close".parse().unwrap());
    h.conn
        .send_response(sid(1), StatusCode::OK, &headers, false)
        .unwrap();
    assert_eq!(h.conn.send_data(sid(1), b"hello", true), Ok(5));
    assert_eq!(
        h.frames(),
        vec![
            Out::Headers {
                stream: 1,
                end_stream: false,
                fields: vec![
                    (":status".into(), "200".into()),
                    ("content-type".into(), "text/plain".into()),
                ],
            },
            Out::Data {
                stream: 1,
                end_stream: true,
                data: b"hello".to_vec()
            },
        ]
    );
    assert_eq!(h.conn.active_streams(), 0);
    h.conn.shrink_idle();
    assert_eq!(h.conn.buffered_bytes(), 0);
    assert_eq!(
        h.conn.send_data(sid(1), b"x", true),
        Err(SendError::UnknownStream)
    );
}

#[test]
fn send_rules() {
    let mut h = harness();
    let bytes = h.get(1);
    h.feed(&bytes);
    h.events();
    let none = HeaderMap::new();
    assert_eq!(
        h.conn.send_data(sid(1), b"x", false),
        Err(SendError::ResponseNotSent)
    );
    assert_eq!(
        h.conn.send_trailers(sid(1), &none),
        Err(SendError::ResponseNotSent)
    );
    h.conn
        .send_response(sid(1), StatusCode::CONTINUE, &none, false)
        .unwrap();
    h.conn
        .send_response(sid(1), StatusCode::OK, &none, false)
        .unwrap();
    assert_eq!(
        h.conn.send_response(sid(1), StatusCode::OK, &none, false),
        Err(SendError::ResponseAlreadySent)
    );
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    h.conn.send_trailers(sid(1), &trailers).unwrap();
    let out = h.frames();
    assert_eq!(out.len(), 3);
    assert_eq!(
        out[2],
        Out::Headers {
            stream: 1,
            end_stream: true,
            fields: vec![("grpc-status".into(), "0".into())]
        }
    );
    assert_eq!(h.conn.active_streams(), 0);
}

#[test]
fn request_body_and_trailers() {
    let mut h = harness();
    open_post(&mut h, 1);
    let mut bytes = data(1, b"abc", false);
    let block = h.block(&[("x-checksum", "1")]);
    h2frame::write_headers(&mut bytes, sid(1), true, None, &block, 16_384);
    h.feed(&bytes);
    let events = h.events();
    assert!(
        matches!(&events[0], Event::Data { stream, data, end_stream: false } if *stream == sid(1) && &data[..] == b"abc")
    );
    assert!(matches!(&events[1], Event::Trailers { headers, .. } if headers["x-checksum"] == "1"));
}

#[test]
fn second_headers_without_end_stream_resets_the_stream() {
    let mut h = harness();
    open_post(&mut h, 1);
    let bytes = h.headers(1, &[("x-a", "1")], false);
    h.feed(&bytes);
    h.assert_rst(1, ErrorCode::PROTOCOL_ERROR);
    assert!(matches!(
        h.events().as_slice(),
        [Event::Reset {
            code: ErrorCode::PROTOCOL_ERROR,
            by_peer: false,
            ..
        }]
    ));
}

#[test]
fn ping_is_acked_and_ours_is_reported() {
    let mut h = harness();
    h.feed(&ping(*b"12345678"));
    assert_eq!(
        h.frames(),
        vec![Out::Ping {
            ack: true,
            payload: *b"12345678"
        }]
    );
    h.conn.ping(*b"abcdefgh");
    assert_eq!(
        h.frames(),
        vec![Out::Ping {
            ack: false,
            payload: *b"abcdefgh"
        }]
    );
    h.feed(&raw(6, flags::ACK, 0, b"abcdefgh"));
    assert!(
        matches!(h.events().as_slice(), [Event::PingAck { payload }] if payload == b"abcdefgh")
    );
}

#[test]
fn continuation_assembles_a_split_block() {
    let mut h = harness();
    let block = h.block(&GET);
    let (a, b) = block.split_at(block.len() / 2);
    let mut bytes = raw(1, flags::END_STREAM, 1, a);
    bytes.extend(raw(9, 0, 1, &[]));
    bytes.extend(raw(9, END_HEADERS, 1, b));
    h.feed(&bytes);
    assert!(h.result.is_ok());
    assert!(matches!(
        h.events().as_slice(),
        [Event::Request {
            end_stream: true,
            ..
        }]
    ));
}

#[test]
fn anything_but_continuation_inside_a_block_is_a_protocol_error() {
    let mut h = harness();
    let block = h.block(&GET);
    let mut bytes = raw(1, flags::END_STREAM, 1, &block);
    bytes.extend(ping([0; 8]));
    h.feed(&bytes);
    h.assert_goaway(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn continuation_on_another_stream_is_a_protocol_error() {
    let mut h = harness();
    let block = h.block(&GET);
    let mut bytes = raw(1, flags::END_STREAM, 1, &block);
    bytes.extend(raw(9, END_HEADERS, 3, &[]));
    h.feed(&bytes);
    h.assert_goaway(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn continuation_without_headers_is_a_protocol_error() {
    let mut h = harness();
    h.feed(&raw(9, END_HEADERS, 1, &[]));
    h.assert_goaway(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn data_on_an_idle_stream_is_a_protocol_error() {
    let mut h = harness();
    h.feed(&data(1, b"x", false));
    h.assert_goaway(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn data_on_a_half_closed_remote_stream_is_stream_closed() {
    let mut h = harness();
    let bytes = h.get(1);
    h.feed(&bytes);
    h.events();
    h.feed(&data(1, b"x", false));
    h.assert_rst(1, ErrorCode::STREAM_CLOSED);
    assert!(matches!(
        h.events().as_slice(),
        [Event::Reset {
            code: ErrorCode::STREAM_CLOSED,
            ..
        }]
    ));
}

#[test]
fn data_on_a_closed_stream_is_stream_closed() {
    let mut h = harness();
    let bytes = h.get(1);
    h.feed(&bytes);
    h.events();
    h.conn
        .send_response(sid(1), StatusCode::OK, &HeaderMap::new(), true)
        .unwrap();
    h.frames();
    h.feed(&data(1, b"x", false));
    h.assert_rst(1, ErrorCode::STREAM_CLOSED);
    assert!(h.events().is_empty());
}

#[test]
fn frames_after_our_reset_are_ignored() {
    let mut h = harness();
    open_post(&mut h, 1);
    h.conn.reset(sid(1), ErrorCode::CANCEL).unwrap();
    assert_eq!(
        h.frames(),
        vec![Out::Rst {
            stream: 1,
            code: ErrorCode::CANCEL
        }]
    );
    let mut bytes = data(1, b"late", false);
    bytes.extend(h.headers(1, &[("x-t", "1")], true));
    bytes.extend(window_update(1, 10));
    h.feed(&bytes);
    assert!(h.result.is_ok());
    assert!(h.frames().is_empty());
    assert!(h.events().is_empty());
}

#[test]
fn even_stream_ids_are_a_protocol_error() {
    let mut h = harness();
    let bytes = h.get(2);
    h.feed(&bytes);
    h.assert_goaway(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn a_lower_stream_id_is_a_protocol_error() {
    let mut h = harness();
    let bytes = h.get(5);
    h.feed(&bytes);
    h.events();
    let bytes = h.get(3);
    h.feed(&bytes);
    h.assert_goaway(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn headers_on_a_stream_closed_normally_is_stream_closed() {
    let mut h = harness();
    let bytes = h.get(1);
    h.feed(&bytes);
    h.events();
    h.conn
        .send_response(sid(1), StatusCode::OK, &HeaderMap::new(), true)
        .unwrap();
    h.frames();
    let bytes = h.headers(1, &[("x-late", "1")], true);
    h.feed(&bytes);
    h.assert_goaway(ErrorCode::STREAM_CLOSED);
}

#[test]
fn data_beyond_the_stream_window_is_a_stream_flow_control_error() {
    let config = Config {
        initial_stream_window: 100,
        ..Config::default()
    };
    let mut h = Harness::new(config, Settings::default());
    open_post(&mut h, 1);
    h.feed(&data(1, &[0; 60], false));
    h.feed(&data(1, &[0; 41], false));
    h.assert_rst(1, ErrorCode::FLOW_CONTROL_ERROR);
    let events = h.events();
    assert!(matches!(
        events.last(),
        Some(Event::Reset {
            code: ErrorCode::FLOW_CONTROL_ERROR,
            ..
        })
    ));
}

#[test]
fn data_beyond_the_connection_window_is_a_connection_flow_control_error() {
    let config = Config {
        initial_stream_window: 1 << 20,
        connection_window: 65_535,
        ..Config::default()
    };
    let mut h = Harness::new(config, Settings::default());
    open_post(&mut h, 1);
    let mut bytes = Vec::new();
    for _ in 0..4 {
        bytes.extend(data(1, &[0; 16_383], false));
    }
    bytes.extend(data(1, &[0; 4], false));
    h.feed(&bytes);
    h.assert_goaway(ErrorCode::FLOW_CONTROL_ERROR);
}

#[test]
fn release_sends_batched_window_updates() {
    let config = Config {
        initial_stream_window: 100,
        ..Config::default()
    };
    let mut h = Harness::new(config, Settings::default());
    open_post(&mut h, 1);
    h.feed(&data(1, &[0; 60], false));
    h.events();
    h.conn.release(sid(1), 40);
    assert!(h.frames().is_empty());
    h.conn.release(sid(1), 20);
    assert_eq!(
        h.frames(),
        vec![Out::WindowUpdate {
            stream: 1,
            increment: 60
        }]
    );
    // The window is open again: 100 more bytes fit.
    h.feed(&data(1, &[0; 100], false));
    assert!(h.result.is_ok());
    assert!(h.frames().is_empty());
}

#[test]
fn padding_is_credited_back_without_the_application() {
    let config = Config {
        initial_stream_window: 100,
        ..Config::default()
    };
    let mut h = Harness::new(config, Settings::default());
    open_post(&mut h, 1);
    let mut bytes = Vec::new();
    h2frame::write_data_padded(&mut bytes, sid(1), false, b"ab", 97);
    h.feed(&bytes);
    assert_eq!(
        h.frames(),
        vec![Out::WindowUpdate {
            stream: 1,
            increment: 98
        }]
    );
    assert!(matches!(h.events().as_slice(), [Event::Data { data, .. }] if &data[..] == b"ab"));
}

#[test]
fn send_data_respects_windows_and_frame_size() {
    let mut h = harness();
    let bytes = h.get(1);
    h.feed(&bytes);
    h.events();
    h.conn
        .send_response(sid(1), StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    h.frames();
    let body = vec![7u8; 100_000];
    assert_eq!(h.conn.send_data(sid(1), &body, true), Ok(65_535));
    let sizes: Vec<usize> = h
        .frames()
        .iter()
        .map(|f| match f {
            Out::Data {
                data,
                end_stream: false,
                ..
            } => data.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes, vec![16_384, 16_384, 16_384, 16_383]);
    assert_eq!(h.conn.send_data(sid(1), &body[65_535..], true), Ok(0));
    // Stream credit alone is not enough: the connection window is empty too.
    h.feed(&window_update(1, 50_000));
    assert!(h.events().is_empty());
    h.feed(&window_update(0, 10_000));
    assert!(matches!(h.events().as_slice(), [Event::WindowOpened { stream }] if *stream == sid(1)));
    assert_eq!(h.conn.send_data(sid(1), &body[65_535..], true), Ok(10_000));
}

#[test]
fn blocked_streams_are_told_in_the_order_they_blocked() {
    let mut h = harness();
    let ids: Vec<u32> = (0..12).map(|i| 1 + 2 * i).collect();
    for &id in &ids {
        let bytes = h.get(id);
        h.feed(&bytes);
        h.conn
            .send_response(sid(id), StatusCode::OK, &HeaderMap::new(), false)
            .unwrap();
    }
    h.events();
    h.frames();
    // The connection window (65,535) goes to the first stream; the others block on it,
    // in an order unlike their ids' (and so unlike the stream table's hash order).
    let body = vec![7u8; 70_000];
    let order: Vec<u32> = ids.iter().rev().copied().collect();
    for &id in &order {
        h.conn.send_data(sid(id), &body, false).unwrap();
    }
    h.frames();
    for _ in 0..3 {
        h.feed(&window_update(0, 1_000));
        let told: Vec<u32> = h
            .events()
            .iter()
            .map(|e| match e {
                Event::WindowOpened { stream } => stream.get(),
                other => panic!("{other:?}"),
            })
            .collect();
        // The first stream spent its own window too: it waits for a stream update.
        assert_eq!(told, order[1..], "first come, first served");
        // Every stream told blocks again, in the same order.
        for &id in &order[1..] {
            h.conn.send_data(sid(id), &body, false).unwrap();
        }
        h.frames();
    }
}

#[test]
fn initial_window_size_change_adjusts_open_streams() {
    let client = Settings {
        initial_window_size: Some(10),
        ..Settings::default()
    };
    let mut h = Harness::new(Config::default(), client);
    let bytes = h.get(1);
    h.feed(&bytes);
    h.events();
    h.conn
        .send_response(sid(1), StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    assert_eq!(h.conn.send_data(sid(1), &[1; 100], false), Ok(10));
    h.frames();
    h.feed(&settings(Settings {
        initial_window_size: Some(50),
        ..Settings::default()
    }));
    assert!(matches!(
        h.events().as_slice(),
        [Event::WindowOpened { .. }]
    ));
    assert_eq!(
        h.frames(),
        vec![Out::Settings {
            ack: true,
            settings: Settings::default()
        }]
    );
    assert_eq!(h.conn.send_data(sid(1), &[1; 100], false), Ok(40));
}

#[test]
fn initial_window_size_overflow_is_a_connection_flow_control_error() {
    let mut h = harness();
    let bytes = h.get(1);
    h.feed(&bytes);
    h.feed(&window_update(1, h2frame::MAX_WINDOW_SIZE - 65_535));
    assert!(h.result.is_ok());
    h.feed(&settings(Settings {
        initial_window_size: Some(65_536),
        ..Settings::default()
    }));
    h.assert_goaway(ErrorCode::FLOW_CONTROL_ERROR);
}

#[test]
fn window_update_overflow_on_a_stream_resets_it() {
    let mut h = harness();
    let bytes = h.get(1);
    h.feed(&bytes);
    h.events();
    h.feed(&window_update(1, h2frame::MAX_WINDOW_SIZE));
    h.assert_rst(1, ErrorCode::FLOW_CONTROL_ERROR);
}

#[test]
fn window_update_overflow_on_the_connection_is_fatal() {
    let mut h = harness();
    h.feed(&window_update(0, h2frame::MAX_WINDOW_SIZE));
    h.assert_goaway(ErrorCode::FLOW_CONTROL_ERROR);
}

#[test]
fn window_update_on_an_idle_stream_is_a_protocol_error() {
    let mut h = harness();
    h.feed(&window_update(7, 1));
    h.assert_goaway(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn zero_window_update_on_a_stream_resets_it() {
    let mut h = harness();
    let bytes = h.get(1);
    h.feed(&bytes);
    h.events();
    h.feed(&raw(8, 0, 1, &[0; 4]));
    h.assert_rst(1, ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn streams_beyond_the_limit_are_refused() {
    let config = Config {
        max_concurrent_streams: 1,
        ..Config::default()
    };
    let mut h = Harness::new(config, Settings::default());
    open_post(&mut h, 1);
    let bytes = h.get(3);
    h.feed(&bytes);
    h.assert_rst(3, ErrorCode::REFUSED_STREAM);
    assert!(h.events().is_empty());
    // HPACK stayed in step: the next request decodes.
    h.conn.reset(sid(1), ErrorCode::CANCEL).unwrap();
    h.frames();
    let bytes = h.get(5);
    h.feed(&bytes);
    assert!(matches!(h.events().as_slice(), [Event::Request { .. }]));
}

#[test]
fn push_promise_from_a_client_is_a_protocol_error() {
    let mut h = harness();
    let mut bytes = Vec::new();
    h2frame::write_push_promise(&mut bytes, sid(1), sid(2), &[0x82], 16_384);
    h.feed(&bytes);
    h.assert_goaway(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn hpack_garbage_is_a_compression_error() {
    let mut h = harness();
    // Index 0 is reserved.
    h.feed(&raw(1, END_HEADERS | flags::END_STREAM, 1, &[0x80]));
    h.assert_goaway(ErrorCode::COMPRESSION_ERROR);
}

#[test]
fn invalid_request_headers_reset_the_stream_and_keep_hpack_in_step() {
    let bad: [&[(&str, &str)]; 8] = [
        &[GET[0], GET[1], GET[2], GET[3], ("X-Upper", "1")],
        &[GET[0], GET[1], GET[2], GET[3], ("connection", "keep-alive")],
        &[GET[0], GET[1], GET[2], GET[3], ("te", "gzip")],
        &[GET[0], GET[1], GET[2], GET[3], (":method", "GET")],
        &[GET[0], GET[1], ("accept", "*/*"), GET[2], GET[3]],
        &[GET[0], GET[1], GET[2], GET[3], (":status", "200")],
        &[GET[0], GET[1], GET[2]],
        &[GET[0], GET[2], GET[3]],
    ];
    let mut h = harness();
    let mut id = 1;
    for fields in bad {
        let bytes = h.headers(id, fields, true);
        h.feed(&bytes);
        h.assert_rst(id, ErrorCode::PROTOCOL_ERROR);
        assert!(h.events().is_empty(), "{fields:?}");
        id += 2;
    }
    let bytes = h.get(id);
    h.feed(&bytes);
    assert!(matches!(h.events().as_slice(), [Event::Request { .. }]));
}

#[test]
fn content_length_must_match_the_body() {
    let mut h = harness();
    let mut fields = POST.to_vec();
    fields.push(("content-length", "3"));
    let mut bytes = h.headers(1, &fields, false);
    bytes.extend(data(1, b"ab", true));
    h.feed(&bytes);
    h.assert_rst(1, ErrorCode::PROTOCOL_ERROR);
    let mut bytes = h.headers(3, &fields, false);
    bytes.extend(data(3, b"abcd", false));
    h.feed(&bytes);
    h.assert_rst(3, ErrorCode::PROTOCOL_ERROR);
    let mut bytes = h.headers(5, &fields, false);
    bytes.extend(data(5, b"abc", true));
    h.feed(&bytes);
    assert!(h.result.is_ok());
    assert!(h.frames().is_empty());
}

#[test]
fn client_reset_is_reported_and_reset_of_idle_is_fatal() {
    let mut h = harness();
    open_post(&mut h, 1);
    h.feed(&rst(1, ErrorCode::CANCEL));
    assert!(matches!(
        h.events().as_slice(),
        [Event::Reset {
            code: ErrorCode::CANCEL,
            by_peer: true,
            ..
        }]
    ));
    assert_eq!(h.conn.active_streams(), 0);
    h.feed(&rst(9, ErrorCode::CANCEL));
    h.assert_goaway(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn graceful_go_away_refuses_new_streams_and_finishes_old_ones() {
    let mut h = harness();
    open_post(&mut h, 1);
    h.conn.go_away(ErrorCode::NO_ERROR);
    assert_eq!(
        h.frames(),
        vec![Out::GoAway {
            last: 1,
            code: ErrorCode::NO_ERROR
        }]
    );
    let bytes = h.get(3);
    h.feed(&bytes);
    h.assert_rst(3, ErrorCode::REFUSED_STREAM);
    assert!(!h.conn.is_closed());
    h.feed(&data(1, b"x", true));
    h.conn
        .send_response(sid(1), StatusCode::OK, &HeaderMap::new(), true)
        .unwrap();
    assert!(h.conn.is_closed());
}

#[test]
fn client_go_away_is_reported() {
    let mut h = harness();
    let mut payload = 0u32.to_be_bytes().to_vec();
    payload.extend(0u32.to_be_bytes());
    h.feed(&raw(FrameType::GOAWAY.0, 0, 0, &payload));
    assert!(matches!(
        h.events().as_slice(),
        [Event::GoAway {
            code: ErrorCode::NO_ERROR,
            ..
        }]
    ));
    assert!(h.conn.is_closed());
}

#[test]
fn unknown_frames_and_priority_are_ignored() {
    let mut h = harness();
    let mut bytes = raw(0xfa, 0, 0, b"whatever");
    bytes.extend(raw(2, 0, 5, &[0, 0, 0, 1, 16]));
    h.feed(&bytes);
    assert!(h.result.is_ok());
    assert!(h.frames().is_empty());
}

// ----- abuse bounds ----------------------------------------------------------

#[test]
fn rapid_reset_is_cut_with_enhance_your_calm() {
    let config = Config {
        max_reset_streams: 10,
        ..Config::default()
    };
    let mut h = Harness::new(config, Settings::default());
    let mut bytes = Vec::new();
    for i in 0..11 {
        let id = 1 + 2 * i;
        bytes.extend(h.get(id));
        bytes.extend(rst(id, ErrorCode::CANCEL));
    }
    h.feed(&bytes);
    h.assert_goaway(ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn completed_streams_pay_for_resets() {
    let config = Config {
        max_reset_streams: 2,
        ..Config::default()
    };
    let mut h = Harness::new(config, Settings::default());
    for i in 0..10 {
        let id = 1 + 4 * i;
        let mut bytes = h.get(id);
        bytes.extend(rst(id, ErrorCode::CANCEL));
        bytes.extend(h.get(id + 2));
        h.feed(&bytes);
        assert!(h.result.is_ok());
        h.conn
            .send_response(sid(id + 2), StatusCode::OK, &HeaderMap::new(), true)
            .unwrap();
        h.frames();
    }
}

#[test]
fn unread_control_frames_stop_reading_then_cut() {
    let config = Config {
        max_control_frames_owed: 10,
        ..Config::default()
    };
    let mut h = Harness::new(config, Settings::default());
    for i in 0..5u8 {
        assert!(h.conn.wants_read(), "{i}");
        h.feed(&ping([i; 8]));
    }
    assert!(!h.conn.wants_read());
    h.feed(&ping([9; 8]).repeat(6));
    h.assert_goaway(ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn draining_the_output_resumes_reading() {
    let config = Config {
        max_control_frames_owed: 10,
        ..Config::default()
    };
    let mut h = Harness::new(config, Settings::default());
    h.feed(&ping([1; 8]).repeat(5));
    assert!(!h.conn.wants_read());
    h.frames();
    assert!(h.conn.wants_read());
}

#[test]
fn empty_data_flood_is_cut() {
    let config = Config {
        max_empty_frames: 20,
        ..Config::default()
    };
    let mut h = Harness::new(config, Settings::default());
    let mut bytes = h.post(1);
    for _ in 0..21 {
        bytes.extend(data(1, &[], false));
    }
    h.feed(&bytes);
    h.assert_goaway(ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn continuation_flood_is_cut() {
    let mut h = harness();
    let mut bytes = raw(1, 0, 1, &[]);
    for _ in 0..40 {
        bytes.extend(raw(9, 0, 1, &[0x82]));
    }
    h.feed(&bytes);
    h.assert_goaway(ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn oversized_header_block_is_cut() {
    let config = Config {
        max_header_block_size: 1000,
        ..Config::default()
    };
    let mut h = Harness::new(config, Settings::default());
    let mut bytes = raw(1, 0, 1, &[0x82; 600]);
    bytes.extend(raw(9, 0, 1, &[0x82; 600]));
    h.feed(&bytes);
    h.assert_goaway(ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn output_is_bounded_and_send_data_waits_for_the_writer() {
    let config = Config {
        max_buffered_output: 20_000,
        ..Config::default()
    };
    let mut h = Harness::new(config, Settings::default());
    let bytes = h.get(1);
    h.feed(&bytes);
    h.events();
    h.conn
        .send_response(sid(1), StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    let sent = h.conn.send_data(sid(1), &[0; 50_000], true).unwrap();
    assert!(sent < 20_000, "{sent}");
    assert!(!h.conn.wants_read());
    h.frames();
    assert!(matches!(
        h.events().as_slice(),
        [Event::WindowOpened { .. }]
    ));
    assert!(h.conn.wants_read());
}

#[test]
fn control_debt_clears_once_the_acks_are_written_even_with_data_behind_them() {
    let config = Config {
        max_control_frames_owed: 4,
        ..Config::default()
    };
    let mut h = Harness::new(config, Settings::default());
    let bytes = h.get(1);
    h.feed(&bytes);
    h.events();
    h.conn
        .send_response(sid(1), StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    h.frames();
    h.feed(&ping([1; 8]).repeat(2));
    assert!(!h.conn.wants_read());
    h.conn.send_data(sid(1), &[0; 10_000], false).unwrap();
    // Write the two PING ACKs (17 bytes each) but not the DATA behind them.
    h.conn.advance(34);
    assert!(!h.conn.output().is_empty());
    assert!(h.conn.wants_read());
}

#[test]
fn frames_above_our_max_frame_size_are_a_frame_size_error() {
    let mut h = harness();
    let bytes = h.post(1);
    h.feed(&bytes);
    h.feed(&data(1, &[0; 16_385], false)[..20]);
    h.assert_goaway(ErrorCode::FRAME_SIZE_ERROR);
}

#[test]
fn larger_max_frame_size_is_advertised_and_accepted() {
    let config = Config {
        max_frame_size: 65_536,
        ..Config::default()
    };
    let mut h = Harness::new(config, Settings::default());
    open_post(&mut h, 1);
    h.feed(&data(1, &[0; 60_000], true));
    assert!(h.result.is_ok());
    assert!(matches!(h.events().as_slice(), [Event::Data { data, .. }] if data.len() == 60_000));
}

#[test]
fn header_list_far_above_the_bound_is_a_compression_error() {
    let config = Config {
        max_header_list_size: 1_000,
        ..Config::default()
    };
    let mut h = Harness::new(config, Settings::default());
    let big = "x".repeat(2_000);
    let mut fields = GET.to_vec();
    fields.push(("x-big", &big));
    let bytes = h.headers(1, &fields, true);
    h.feed(&bytes);
    h.assert_goaway(ErrorCode::COMPRESSION_ERROR);
}

#[test]
fn refused_headers_with_a_self_dependency_keep_hpack_in_step() {
    let mut h = harness();
    let block = h.block(&GET);
    let mut bytes = Vec::new();
    let priority = h2frame::Priority {
        dependency: sid(1),
        exclusive: false,
        weight: 0,
    };
    h2frame::write_headers(&mut bytes, sid(1), true, Some(priority), &block, 16_384);
    h.feed(&bytes);
    h.assert_rst(1, ErrorCode::PROTOCOL_ERROR);
    assert!(h.events().is_empty());
    // The encoder indexed fields in that block; the next one refers to them.
    let bytes = h.get(3);
    h.feed(&bytes);
    assert!(matches!(h.events().as_slice(), [Event::Request { .. }]));
}

#[test]
fn connect_requests_carry_only_the_authority() {
    let mut h = harness();
    let bytes = h.headers(
        1,
        &[(":method", "CONNECT"), (":authority", "db:5432")],
        false,
    );
    h.feed(&bytes);
    let events = h.events();
    let [Event::Request { head, .. }] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(head.method, http::Method::CONNECT);
    assert_eq!(head.uri.authority().unwrap(), "db:5432");
}

#[test]
fn headers_are_split_into_continuations_for_the_client_frame_size() {
    let mut h = harness();
    let bytes = h.get(1);
    h.feed(&bytes);
    h.events();
    let mut headers = HeaderMap::new();
    let big: String = (0..40_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    headers.insert("x-big", big.parse().unwrap());
    h.conn
        .send_response(sid(1), StatusCode::OK, &headers, true)
        .unwrap();
    let out = h.conn.output().to_vec();
    // HEADERS + CONTINUATION frames, each within 16,384 bytes.
    assert_eq!(out[3], FrameType::HEADERS.0);
    let frames = decode_frames(&out, &mut h.dec);
    assert!(
        matches!(&frames[..], [Out::Headers { fields, end_stream: true, .. }] if fields[1].1 == big)
    );
}

#[test]
fn idle_connection_holds_no_buffers_after_a_request_with_a_body() {
    let mut h = harness();
    open_post(&mut h, 1);
    let mut bytes = data(1, &[1; 15_000], false);
    bytes.extend(data(1, &[1; 15_000], true));
    h.feed(&bytes);
    for event in h.events() {
        if let Event::Data { stream, data, .. } = event {
            h.conn.release(stream, data.len());
        }
    }
    h.conn
        .send_response(sid(1), StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    h.conn.send_data(sid(1), &[2; 30_000], true).unwrap();
    h.frames();
    assert_eq!(h.conn.active_streams(), 0);
    h.conn.shrink_idle();
    assert_eq!(h.conn.buffered_bytes(), 0);
}

#[test]
fn client_header_table_size_reaches_the_encoder() {
    let client = Settings {
        header_table_size: Some(0),
        ..Settings::default()
    };
    let mut h = Harness::new(Config::default(), client);
    let bytes = h.get(1);
    h.feed(&bytes);
    h.events();
    let mut headers = HeaderMap::new();
    headers.insert("x-custom", "value".parse().unwrap());
    h.conn
        .send_response(sid(1), StatusCode::OK, &headers, true)
        .unwrap();
    let out = h.conn.output().to_vec();
    // The block opens with a dynamic table size update to 0 (RFC 7541 6.3).
    assert_eq!(out[9], 0x20);
    h.frames();
    assert_eq!(h.dec.table().max_size(), 0);
    assert!(h.dec.table().is_empty());
}

#[test]
fn client_max_frame_size_bounds_our_data_frames() {
    let client = Settings {
        max_frame_size: Some(32_768),
        ..Settings::default()
    };
    let mut h = Harness::new(Config::default(), client);
    let bytes = h.get(1);
    h.feed(&bytes);
    h.events();
    h.conn
        .send_response(sid(1), StatusCode::OK, &HeaderMap::new(), false)
        .unwrap();
    h.frames();
    assert_eq!(h.conn.send_data(sid(1), &[3; 40_000], true), Ok(40_000));
    let sizes: Vec<(usize, bool)> = h
        .frames()
        .iter()
        .map(|f| match f {
            Out::Data {
                data, end_stream, ..
            } => (data.len(), *end_stream),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes, vec![(32_768, false), (7_232, true)]);
}

#[test]
fn headers_on_a_half_closed_remote_stream_are_stream_closed() {
    let mut h = harness();
    let bytes = h.get(1);
    h.feed(&bytes);
    h.events();
    let bytes = h.headers(1, &[("x-late", "1")], true);
    h.feed(&bytes);
    h.assert_rst(1, ErrorCode::STREAM_CLOSED);
}

#[test]
fn settings_ack_is_not_required_before_requests() {
    let mut h = Harness::raw(Config::default());
    h.frames();
    let mut bytes = h2frame::PREFACE.to_vec();
    bytes.extend(settings(Settings::default()));
    bytes.extend(h.post(1));
    // Before the ACK the client may only count on 65,535 bytes of stream window.
    bytes.extend(data(1, &[0; 16_384], false));
    h.feed(&bytes);
    assert!(h.result.is_ok());
    let events = h.events();
    assert!(matches!(
        events.as_slice(),
        [Event::Request { .. }, Event::Data { .. }]
    ));
}

#[test]
fn header_list_above_the_bound_gets_431_and_hpack_stays_in_step() {
    let config = Config {
        max_header_list_size: 1_000,
        ..Config::default()
    };
    let mut h = Harness::new(config, Settings::default());
    let big = "x".repeat(900);
    let mut fields = GET.to_vec();
    fields.push(("x-big", &big));
    let bytes = h.headers(1, &fields, true);
    h.feed(&bytes);
    assert!(h.result.is_ok());
    assert_eq!(
        h.frames(),
        vec![Out::Headers {
            stream: 1,
            end_stream: true,
            fields: vec![(":status".into(), "431".into())]
        }]
    );
    assert!(h.events().is_empty());
    // With a body still to come, the client is also told to stop sending it.
    let mut fields = POST.to_vec();
    fields.push(("x-big", &big));
    let mut bytes = h.headers(3, &fields, false);
    bytes.extend(data(3, b"ignored", true));
    h.feed(&bytes);
    assert_eq!(
        h.frames(),
        vec![
            Out::Headers {
                stream: 3,
                end_stream: true,
                fields: vec![(":status".into(), "431".into())]
            },
            Out::Rst {
                stream: 3,
                code: ErrorCode::NO_ERROR
            },
        ]
    );
    let bytes = h.get(5);
    h.feed(&bytes);
    assert!(matches!(h.events().as_slice(), [Event::Request { .. }]));
}

#[test]
fn settings_ack_is_tracked_and_abort_ends_the_connection() {
    let mut h = Harness::raw(Config::default());
    assert!(h.conn.awaiting_settings_ack());
    let mut bytes = h2frame::PREFACE.to_vec();
    bytes.extend(settings(Settings::default()));
    h.feed(&bytes);
    assert!(h.conn.awaiting_settings_ack());
    h.conn
        .abort(ErrorCode::SETTINGS_TIMEOUT, "no SETTINGS ACK in time");
    let frames = h.frames();
    assert!(frames.contains(&Out::GoAway {
        last: 0,
        code: ErrorCode::SETTINGS_TIMEOUT
    }));
    assert!(h.conn.is_closed());
    h.feed(&raw(4, flags::ACK, 0, &[]));
    assert_eq!(
        h.result.map_err(|e| e.code),
        Err(ErrorCode::SETTINGS_TIMEOUT)
    );
    let h = harness();
    assert!(!h.conn.awaiting_settings_ack());
}

#[test]
fn two_step_shutdown_serves_requests_racing_it() {
    let mut h = harness();
    h.conn.shutdown();
    assert_eq!(
        h.frames(),
        vec![
            Out::GoAway {
                last: 0x7fff_ffff,
                code: ErrorCode::NO_ERROR
            },
            Out::Ping {
                ack: false,
                payload: *b"shutdown"
            },
        ]
    );
    // A request sent before the client saw the GOAWAY is still served.
    let bytes = h.get(1);
    h.feed(&bytes);
    assert!(matches!(h.events().as_slice(), [Event::Request { .. }]));
    h.feed(&raw(6, flags::ACK, 0, b"shutdown"));
    assert!(h.events().is_empty());
    assert_eq!(
        h.frames(),
        vec![Out::GoAway {
            last: 1,
            code: ErrorCode::NO_ERROR
        }]
    );
    let bytes = h.get(3);
    h.feed(&bytes);
    h.assert_rst(3, ErrorCode::REFUSED_STREAM);
    assert!(!h.conn.is_closed());
    h.conn
        .send_response(sid(1), StatusCode::OK, &HeaderMap::new(), true)
        .unwrap();
    assert!(h.conn.is_closed());
}

/// Besides HPACK tables, this inline state is all an idle connection keeps
/// (632 bytes when written): h2 holds some 28 KiB of buffers per connection.
#[test]
fn a_connection_is_small() {
    let size = std::mem::size_of::<h2conn::Connection>();
    assert!(size <= 1024, "Connection is {size} bytes inline");
}
