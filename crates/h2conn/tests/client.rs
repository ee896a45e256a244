//! The client role, one test per rule: requests out as raw frames decoded with
//! an HPACK decoder, raw server frames in, the exact events and frames out.

mod common;

use common::*;
use h2conn::{Config, Connection, ErrorCode, Event, SendError, StreamId};
use h2frame::{Settings, flags};
use http::{HeaderMap, StatusCode};

fn client() -> Harness {
    Harness::client(Config::default(), Settings::default())
}

fn sid(id: u32) -> StreamId {
    StreamId::new(id)
}

fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// A GET with no body on the next stream; its HEADERS drained.
fn open_get(h: &mut Harness) -> StreamId {
    let id = h.request("GET", "http://backend/", &[], true).unwrap();
    h.frames();
    id
}

/// A POST whose body is still to come; its HEADERS drained.
fn open_post(h: &mut Harness) -> StreamId {
    let id = h.request("POST", "http://backend/up", &[], false).unwrap();
    h.frames();
    id
}

/// The server's response HEADERS on `stream`.
fn respond(h: &mut Harness, stream: u32, fields: &[(&str, &str)], end_stream: bool) {
    let bytes = h.headers(stream, fields, end_stream);
    h.feed(&bytes);
}

/// Asserts the stream was reset by us with PROTOCOL_ERROR: one RST_STREAM out
/// and an `Event::Reset` for it.
#[track_caller]
fn assert_stream_protocol_error(h: &mut Harness, stream: u32) {
    h.assert_rst(stream, ErrorCode::PROTOCOL_ERROR);
    let events = h.events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Reset { stream: s, code: ErrorCode::PROTOCOL_ERROR, by_peer: false } if *s == sid(stream)
        )),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| matches!(e, Event::Response { .. })),
        "{events:?}"
    );
    assert_eq!(h.conn.active_streams(), 0);
}

#[test]
fn preface_settings_and_connection_window_come_first() {
    let mut h = Harness::raw_client(Config::default());
    assert!(!h.conn.peer_settings_received());
    assert_eq!(h.conn.max_send_streams(), usize::MAX);
    assert_eq!(
        h.client_frames(),
        vec![
            Out::Settings {
                ack: false,
                settings: Settings {
                    enable_push: Some(false),
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
    let custom = Connection::client(Config {
        max_frame_size: 65_536,
        header_table_size: 0,
        connection_window: 65_535,
        ..Config::default()
    });
    let mut h = Harness {
        conn: custom,
        ..Harness::raw_client(Config::default())
    };
    let frames = h.client_frames();
    let [Out::Settings { settings, .. }] = frames.as_slice() else {
        panic!("SETTINGS alone expected");
    };
    assert_eq!(settings.max_frame_size, Some(65_536));
    assert_eq!(settings.header_table_size, Some(0));
    assert_eq!(settings.max_concurrent_streams, None);
}

#[test]
fn requests_may_go_out_before_the_server_settings() {
    let mut h = Harness::raw_client(Config::default());
    h.client_frames();
    assert!(h.conn.can_open_stream());
    let id = h.request("GET", "http://a/", &[], true).unwrap();
    assert_eq!(id, sid(1));
    assert!(matches!(
        h.frames().as_slice(),
        [Out::Headers { stream: 1, .. }]
    ));
}

#[test]
fn the_server_first_frame_must_be_settings() {
    let mut h = Harness::raw_client(Config::default());
    h.client_frames();
    h.feed(&ping([0; 8]));
    h.assert_goaway(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn a_server_enabling_push_is_a_protocol_error() {
    let mut h = Harness::raw_client(Config::default());
    h.client_frames();
    h.feed(&settings(Settings {
        enable_push: Some(true),
        ..Settings::default()
    }));
    h.assert_goaway(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn request_pseudo_fields_and_regular_fields() {
    let mut h = client();
    let mut parts = http::Request::builder()
        .method("POST")
        .uri("https://api.example.com:8443/v1/items?page=2")
        .header("host", "ignored.example")
        .header("connection", "keep-alive")
        .header("keep-alive", "timeout=5")
        .header("transfer-encoding", "chunked")
        .header("upgrade", "h2c")
        .header("proxy-connection", "close")
        .header("te", "gzip")
        .header("content-type", "application/json")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let mut secret = http::HeaderValue::from_static("Bearer abc");
    secret.set_sensitive(true);
    parts.headers.insert("authorization", secret);
    let id = h.conn.send_request(&parts, false).unwrap();
    assert_eq!(id, sid(1));
    // The sensitive value is marked never-indexed in the block itself.
    let bytes = h.conn.output().to_vec();
    let block = &bytes[h2frame::HEADER_LEN..];
    let mut marks = Vec::new();
    hpack::Decoder::new(4096)
        .decode(block, |field| {
            marks.push((
                String::from_utf8_lossy(field.name).into_owned(),
                field.sensitive,
            ));
            Ok::<(), hpack::DecodeError>(())
        })
        .unwrap();
    for (name, sensitive) in marks {
        assert_eq!(sensitive, name == "authorization", "{name}");
    }
    assert_eq!(
        h.frames(),
        vec![Out::Headers {
            stream: 1,
            end_stream: false,
            fields: fields(&[
                (":method", "POST"),
                (":scheme", "https"),
                (":authority", "api.example.com:8443"),
                (":path", "/v1/items?page=2"),
                // With :authority from the URI, host is a regular field.
                ("host", "ignored.example"),
                ("content-type", "application/json"),
                ("authorization", "Bearer abc"),
            ]),
        }]
    );
}

#[test]
fn authority_falls_back_to_host_and_path_to_slash() {
    let mut h = client();
    h.request(
        "GET",
        "/only/path",
        &[("host", "h.example"), ("te", "trailers")],
        true,
    )
    .unwrap();
    let parts = http::Request::builder()
        .method("OPTIONS")
        .uri("http://h.example")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    h.conn.send_request(&parts, true).unwrap();
    assert_eq!(
        h.frames(),
        vec![
            Out::Headers {
                stream: 1,
                end_stream: true,
                fields: fields(&[
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":authority", "h.example"),
                    (":path", "/only/path"),
                    ("te", "trailers"),
                ]),
            },
            Out::Headers {
                stream: 3,
                end_stream: true,
                fields: fields(&[
                    (":method", "OPTIONS"),
                    (":scheme", "http"),
                    (":authority", "h.example"),
                    (":path", "/"),
                ]),
            },
        ]
    );
}

#[test]
fn large_request_heads_are_split_into_continuations() {
    let mut h = client();
    // Digits and letters mixed, so Huffman coding cannot squeeze it into a frame.
    let big: String = (0..40_000u32)
        .map(|i| char::from(b"0123456789abcdefghijklmnopqrstuvwxyz"[(i * 7 % 36) as usize]))
        .collect();
    h.request("GET", "http://a/", &[("x-big", &big)], true)
        .unwrap();
    let bytes = h.conn.output().to_vec();
    // HEADERS plus CONTINUATIONs of at most 16,384 bytes each.
    let header = h2frame::FrameHeader::parse(&bytes).unwrap();
    assert_eq!(header.length, 16_384);
    let next = h2frame::FrameHeader::parse(&bytes[header.frame_len()..]).unwrap();
    assert_eq!(next.kind, h2frame::FrameType::CONTINUATION);
    let frames = h.frames();
    let [Out::Headers { fields, .. }] = frames.as_slice() else {
        panic!("one header block expected");
    };
    assert_eq!(fields.last().unwrap(), &("x-big".to_string(), big));
}

#[test]
fn stream_ids_are_one_three_five_and_servers_open_none() {
    let mut h = client();
    for expected in [1, 3, 5] {
        assert_eq!(open_get(&mut h), sid(expected));
    }
    assert_eq!(h.conn.active_streams(), 3);

    let mut server = Harness::new(Config::default(), Settings::default());
    assert!(!server.conn.can_open_stream());
    assert_eq!(
        server.request("GET", "http://a/", &[], true),
        Err(SendError::NoStream)
    );
    assert!(server.frames().is_empty());
}

#[test]
fn the_server_stream_limit_is_respected() {
    let mut h = Harness::client(
        Config::default(),
        Settings {
            max_concurrent_streams: Some(2),
            ..Settings::default()
        },
    );
    assert_eq!(h.conn.max_send_streams(), 2);
    open_get(&mut h);
    assert!(h.conn.can_open_stream());
    open_get(&mut h);
    assert!(!h.conn.can_open_stream());
    assert_eq!(
        h.request("GET", "http://a/", &[], true),
        Err(SendError::NoStream)
    );
    assert!(h.frames().is_empty());
    // Stream 1 completes: room for one more, which gets id 5.
    respond(&mut h, 1, &[(":status", "204")], true);
    assert!(matches!(h.events().as_slice(), [Event::Response { .. }]));
    assert!(h.conn.can_open_stream());
    assert_eq!(open_get(&mut h), sid(5));
    // A later SETTINGS lowers the limit below what is open.
    h.feed(&settings(Settings {
        max_concurrent_streams: Some(0),
        ..Settings::default()
    }));
    assert_eq!(h.conn.max_send_streams(), 0);
    assert!(!h.conn.can_open_stream());
}

#[test]
fn request_body_follows_the_server_windows_and_resumes_on_window_update() {
    let mut h = Harness::client(
        Config::default(),
        Settings {
            initial_window_size: Some(10),
            ..Settings::default()
        },
    );
    let id = open_post(&mut h);
    let body = [7u8; 100];
    assert_eq!(h.conn.send_data(id, &body, true), Ok(10));
    assert_eq!(
        h.frames(),
        vec![Out::Data {
            stream: 1,
            end_stream: false,
            data: vec![7; 10]
        }]
    );
    assert_eq!(h.conn.send_data(id, &body[10..], true), Ok(0));
    assert!(h.events().is_empty());
    h.feed(&window_update(1, 50));
    assert!(matches!(
        h.events().as_slice(),
        [Event::WindowOpened { stream }] if *stream == id
    ));
    assert_eq!(h.conn.send_data(id, &body[10..], true), Ok(50));
    h.feed(&window_update(1, 1_000));
    assert!(matches!(
        h.events().as_slice(),
        [Event::WindowOpened { .. }]
    ));
    assert_eq!(h.conn.send_data(id, &body[60..], false), Ok(40));
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", "abc".parse().unwrap());
    h.conn.send_trailers(id, &trailers).unwrap();
    assert_eq!(
        h.conn.send_data(id, b"late", false),
        Err(SendError::UnknownStream)
    );
    let frames = h.frames();
    assert_eq!(
        frames.last().unwrap(),
        &Out::Headers {
            stream: 1,
            end_stream: true,
            fields: fields(&[("x-checksum", "abc")])
        }
    );
    let sent: usize = frames
        .iter()
        .map(|f| match f {
            Out::Data { data, .. } => data.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(sent, 90);
}

#[test]
fn response_data_and_trailers_become_events_and_close_the_stream() {
    let mut h = client();
    let id = open_get(&mut h);
    respond(
        &mut h,
        1,
        &[(":status", "200"), ("content-type", "text/plain")],
        false,
    );
    h.feed(&data(1, b"hello ", false));
    h.feed(&data(1, b"world", false));
    respond(&mut h, 1, &[("grpc-status", "0")], true);
    let events = h.events();
    let [
        Event::Response {
            stream,
            head,
            end_stream: false,
        },
        Event::Data {
            data: first,
            end_stream: false,
            ..
        },
        Event::Data {
            data: second,
            end_stream: false,
            ..
        },
        Event::Trailers {
            stream: trailer_stream,
            headers,
        },
    ] = events.as_slice()
    else {
        panic!("{events:?}");
    };
    assert_eq!(*stream, id);
    assert_eq!(*trailer_stream, id);
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.version, http::Version::HTTP_2);
    assert_eq!(head.headers["content-type"], "text/plain");
    assert_eq!(&first[..], b"hello ");
    assert_eq!(&second[..], b"world");
    assert_eq!(headers["grpc-status"], "0");
    assert_eq!(h.conn.active_streams(), 0);
    assert!(h.frames().is_empty());
}

#[test]
fn a_response_may_end_before_the_request_body() {
    let mut h = client();
    let id = open_post(&mut h);
    respond(&mut h, 1, &[(":status", "413")], true);
    assert!(matches!(
        h.events().as_slice(),
        [Event::Response {
            end_stream: true,
            ..
        }]
    ));
    // Our side is still open: the body may go on (or be reset by the caller).
    assert_eq!(h.conn.active_streams(), 1);
    assert_eq!(h.conn.send_data(id, b"rest", true), Ok(4));
    assert_eq!(h.conn.active_streams(), 0);
}

#[test]
fn informational_responses_are_dropped() {
    let mut h = client();
    open_get(&mut h);
    respond(&mut h, 1, &[(":status", "100")], false);
    respond(
        &mut h,
        1,
        &[(":status", "103"), ("link", "</a.css>")],
        false,
    );
    assert!(h.events().is_empty());
    respond(&mut h, 1, &[(":status", "200")], true);
    let events = h.events();
    assert!(
        matches!(events.as_slice(), [Event::Response { head, end_stream: true, .. }] if head.status == 200),
        "{events:?}"
    );
    assert!(h.frames().is_empty());
}

#[test]
fn a_101_or_an_informational_response_with_end_stream_is_a_stream_error() {
    for (status, end_stream) in [("101", false), ("100", true), ("103", true)] {
        let mut h = client();
        open_get(&mut h);
        respond(&mut h, 1, &[(":status", status)], end_stream);
        assert_stream_protocol_error(&mut h, 1);
    }
}

#[test]
fn malformed_responses_are_a_stream_protocol_error() {
    let cases: [&[(&str, &str)]; 10] = [
        &[("server", "x")],
        &[(":status", "200"), (":status", "200")],
        &[(":status", "2000")],
        &[(":status", "abc")],
        &[(":status", "200"), (":path", "/")],
        &[("server", "x"), (":status", "200")],
        &[(":status", "200"), ("Server", "x")],
        &[(":status", "200"), ("connection", "close")],
        &[(":status", "200"), ("te", "gzip")],
        &[(":status", "200"), ("content-length", "x")],
    ];
    for case in cases {
        let mut h = client();
        open_get(&mut h);
        respond(&mut h, 1, case, false);
        assert_stream_protocol_error(&mut h, 1);
        // The connection goes on: the next request works.
        assert_eq!(open_get(&mut h), sid(3));
    }
}

#[test]
fn a_response_above_the_header_list_size_is_a_stream_error() {
    let mut h = Harness::client(
        Config {
            max_header_list_size: 200,
            ..Config::default()
        },
        Settings::default(),
    );
    open_get(&mut h);
    let big = "v".repeat(250);
    respond(&mut h, 1, &[(":status", "200"), ("x-big", &big)], false);
    assert_stream_protocol_error(&mut h, 1);
}

#[test]
fn data_before_the_response_is_a_stream_error() {
    let mut h = client();
    open_get(&mut h);
    h.feed(&data(1, b"early", false));
    assert_stream_protocol_error(&mut h, 1);
}

#[test]
fn trailers_without_end_stream_are_a_stream_error() {
    let mut h = client();
    open_get(&mut h);
    respond(&mut h, 1, &[(":status", "200")], false);
    assert!(matches!(h.events().as_slice(), [Event::Response { .. }]));
    respond(&mut h, 1, &[("grpc-status", "0")], false);
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
fn headers_on_a_stream_we_did_not_open_are_a_connection_error() {
    for stream in [3, 2] {
        let mut h = client();
        open_get(&mut h);
        respond(&mut h, stream, &[(":status", "200")], true);
        assert!(h.result.is_err());
        let frames = h.frames();
        assert_eq!(
            frames,
            vec![Out::GoAway {
                last: 0,
                code: ErrorCode::PROTOCOL_ERROR
            }]
        );
        assert!(h.conn.is_closed());
        assert_eq!(
            h.request("GET", "http://a/", &[], true),
            Err(SendError::ConnectionClosed)
        );
    }
}

#[test]
fn push_promise_is_a_connection_error() {
    let mut h = client();
    open_get(&mut h);
    let mut payload = 2u32.to_be_bytes().to_vec();
    payload.extend(h.block(&GET));
    h.feed(&raw(5, END_HEADERS, 1, &payload));
    h.assert_goaway(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn goaway_refuses_our_streams_above_its_last_stream() {
    let mut h = client();
    for _ in 0..3 {
        open_get(&mut h);
    }
    let mut bytes = Vec::new();
    h2frame::write_goaway(&mut bytes, sid(1), ErrorCode::NO_ERROR, b"bye");
    h.feed(&bytes);
    let events = h.events();
    assert!(
        matches!(
            events.as_slice(),
            [
                Event::Reset { stream: a, code: ErrorCode::REFUSED_STREAM, by_peer: true },
                Event::Reset { stream: b, code: ErrorCode::REFUSED_STREAM, by_peer: true },
                Event::GoAway { last_stream, code: ErrorCode::NO_ERROR },
            ] if *a == sid(3) && *b == sid(5) && *last_stream == sid(1)
        ),
        "{events:?}"
    );
    assert_eq!(h.conn.active_streams(), 1);
    assert!(!h.conn.can_open_stream());
    assert_eq!(
        h.request("GET", "http://a/", &[], true),
        Err(SendError::NoStream)
    );
    assert!(!h.conn.is_closed());
    // Stream 1 was processed and completes; then the connection is done.
    respond(&mut h, 1, &[(":status", "200")], true);
    assert!(matches!(h.events().as_slice(), [Event::Response { .. }]));
    // A late frame on a refused stream is ignored.
    h.feed(&data(3, b"x", true));
    assert!(h.result.is_ok());
    assert!(h.frames().is_empty());
    assert!(h.conn.is_closed());
}

#[test]
fn content_length_is_checked_against_response_data() {
    for (chunks, ok) in [
        (&[&b"abc"[..], b"de"][..], true),
        (&[&b"abc"[..]][..], false),
        (&[&b"abc"[..], b"def"][..], false),
    ] {
        let mut h = client();
        open_get(&mut h);
        respond(
            &mut h,
            1,
            &[(":status", "200"), ("content-length", "5")],
            false,
        );
        assert!(matches!(h.events().as_slice(), [Event::Response { .. }]));
        for (i, chunk) in chunks.iter().enumerate() {
            h.feed(&data(1, chunk, i + 1 == chunks.len()));
        }
        if ok {
            assert!(h.frames().is_empty());
            assert_eq!(h.events().len(), chunks.len());
            assert_eq!(h.conn.active_streams(), 0);
        } else {
            h.assert_rst(1, ErrorCode::PROTOCOL_ERROR);
        }
    }
    // A non-zero content-length on a response that ends at once.
    let mut h = client();
    open_get(&mut h);
    respond(
        &mut h,
        1,
        &[(":status", "200"), ("content-length", "5")],
        true,
    );
    assert_stream_protocol_error(&mut h, 1);
}

#[test]
fn head_204_and_304_responses_carry_no_body_whatever_the_length() {
    let mut h = client();
    let id = h.request("HEAD", "http://a/file", &[], true).unwrap();
    h.frames();
    respond(
        &mut h,
        id.get(),
        &[(":status", "200"), ("content-length", "1000")],
        true,
    );
    let events = h.events();
    assert!(
        matches!(events.as_slice(), [Event::Response { end_stream: true, head, .. }] if head.headers["content-length"] == "1000"),
        "{events:?}"
    );
    assert!(h.frames().is_empty());
    assert_eq!(h.conn.active_streams(), 0);

    // An empty DATA with END_STREAM ends it just as well.
    let id = h.request("HEAD", "http://a/file", &[], true).unwrap();
    h.frames();
    respond(
        &mut h,
        id.get(),
        &[(":status", "200"), ("content-length", "1000")],
        false,
    );
    h.feed(&data(id.get(), b"", true));
    assert!(matches!(
        h.events().as_slice(),
        [
            Event::Response {
                end_stream: false,
                ..
            },
            Event::Data {
                end_stream: true,
                ..
            }
        ]
    ));
    assert!(h.frames().is_empty());
    assert_eq!(h.conn.active_streams(), 0);

    for status in ["204", "304"] {
        let id = open_get(&mut h);
        respond(&mut h, id.get(), &[(":status", status)], false);
        assert!(matches!(h.events().as_slice(), [Event::Response { .. }]));
        h.feed(&data(id.get(), b"x", true));
        assert_stream_protocol_error(&mut h, id.get());
    }
}

#[test]
fn frames_on_a_stream_we_reset_are_ignored() {
    let mut h = client();
    let id = open_get(&mut h);
    h.conn.reset(id, ErrorCode::CANCEL).unwrap();
    assert_eq!(
        h.frames(),
        vec![Out::Rst {
            stream: 1,
            code: ErrorCode::CANCEL
        }]
    );
    assert_eq!(h.conn.active_streams(), 0);
    respond(&mut h, 1, &[(":status", "200")], false);
    h.feed(&data(1, &[1; 1000], false));
    h.feed(&window_update(1, 100));
    respond(&mut h, 1, &[("grpc-status", "0")], true);
    h.feed(&rst(1, ErrorCode::NO_ERROR));
    assert!(h.result.is_ok(), "{:?}", h.result);
    assert!(h.events().is_empty());
    assert!(h.frames().is_empty());
    // The HPACK state stayed in step: the next response decodes.
    let id = open_get(&mut h);
    respond(&mut h, id.get(), &[(":status", "200")], true);
    assert!(matches!(h.events().as_slice(), [Event::Response { .. }]));
    assert_eq!(
        h.conn.reset(id, ErrorCode::CANCEL),
        Err(SendError::UnknownStream)
    );
}

#[test]
fn release_sends_window_updates_for_response_data() {
    let mut h = client();
    let id = open_get(&mut h);
    respond(&mut h, 1, &[(":status", "200")], false);
    for _ in 0..8 {
        h.feed(&data(1, &[0; 16_384], false));
    }
    let received: usize = h
        .events()
        .iter()
        .map(|e| match e {
            Event::Data { data, .. } => data.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(received, 8 * 16_384);
    assert!(h.frames().is_empty(), "no credit before release");
    // Half the 256 KiB stream window: one stream WINDOW_UPDATE.
    h.conn.release(id, received);
    assert_eq!(
        h.frames(),
        vec![Out::WindowUpdate {
            stream: 1,
            increment: 8 * 16_384
        }]
    );
}

#[test]
fn the_stream_window_is_65535_until_the_server_acknowledges_our_settings() {
    let mut h = Harness::raw_client(Config::default());
    h.client_frames();
    h.feed(&settings(Settings::default()));
    h.frames();
    open_get(&mut h);
    respond(&mut h, 1, &[(":status", "200")], false);
    h.feed(&data(1, &[0; 16_384], false));
    h.feed(&data(1, &[0; 16_384], false));
    h.feed(&data(1, &[0; 16_384], false));
    h.feed(&data(1, &[0; 16_383], false));
    assert!(h.frames().is_empty());
    h.feed(&data(1, &[0; 2], false));
    h.assert_rst(1, ErrorCode::FLOW_CONTROL_ERROR);

    // Once acknowledged, new streams get the configured window.
    let mut h = Harness::raw_client(Config::default());
    h.client_frames();
    let mut bytes = settings(Settings::default());
    h2frame::write_settings_ack(&mut bytes);
    h.feed(&bytes);
    h.frames();
    open_get(&mut h);
    respond(&mut h, 1, &[(":status", "200")], false);
    for _ in 0..5 {
        h.feed(&data(1, &[0; 16_384], false));
    }
    assert!(h.result.is_ok());
    assert!(h.frames().is_empty());
}

#[test]
fn server_resets_are_events_and_not_counted_as_abuse() {
    let mut h = Harness::client(
        Config {
            max_reset_streams: 2,
            ..Config::default()
        },
        Settings::default(),
    );
    for _ in 0..10 {
        let id = open_get(&mut h);
        h.feed(&rst(id.get(), ErrorCode::REFUSED_STREAM));
        assert!(h.result.is_ok(), "{:?}", h.result);
        assert!(matches!(
            h.events().as_slice(),
            [Event::Reset { stream, code: ErrorCode::REFUSED_STREAM, by_peer: true }] if *stream == id
        ));
    }
    // RST_STREAM on a stream we never opened is still a connection error.
    h.feed(&rst(41, ErrorCode::CANCEL));
    h.assert_goaway(ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn go_away_names_stream_zero_and_stops_new_requests() {
    let mut h = client();
    open_get(&mut h);
    h.conn.shutdown();
    assert_eq!(
        h.frames(),
        vec![Out::GoAway {
            last: 0,
            code: ErrorCode::NO_ERROR
        }]
    );
    assert!(!h.conn.can_open_stream());
    assert_eq!(
        h.request("GET", "http://a/", &[], true),
        Err(SendError::NoStream)
    );
    assert!(!h.conn.is_closed());
    respond(&mut h, 1, &[(":status", "200")], true);
    assert!(h.conn.is_closed());
}

#[test]
fn pings_are_answered_and_ours_acknowledged() {
    let mut h = client();
    h.feed(&ping(*b"server!!"));
    assert_eq!(
        h.frames(),
        vec![Out::Ping {
            ack: true,
            payload: *b"server!!"
        }]
    );
    h.conn.ping(*b"client!!");
    h.frames();
    let mut ack = Vec::new();
    h2frame::write_ping(&mut ack, true, *b"client!!");
    h.feed(&ack);
    assert!(matches!(
        h.events().as_slice(),
        [Event::PingAck { payload }] if payload == b"client!!"
    ));
}

#[test]
fn a_split_response_block_is_joined_across_continuations() {
    let mut h = client();
    open_get(&mut h);
    let block = h.block(&[(":status", "200"), ("x-a", "1")]);
    let (a, b) = block.split_at(block.len() / 2);
    let mut bytes = raw(1, flags::END_STREAM, 1, a);
    bytes.extend(raw(9, END_HEADERS, 1, b));
    h.feed(&bytes);
    let events = h.events();
    assert!(
        matches!(events.as_slice(), [Event::Response { head, end_stream: true, .. }] if head.headers["x-a"] == "1"),
        "{events:?}"
    );
}

#[test]
fn a_reset_while_the_response_block_arrives_leaves_hpack_in_step() {
    let mut h = client();
    let id = open_get(&mut h);
    let block = h.block(&[(":status", "200"), ("x-a", "1")]);
    let (a, b) = block.split_at(block.len() / 2);
    h.feed(&raw(1, 0, 1, a));
    h.conn.reset(id, ErrorCode::CANCEL).unwrap();
    h.frames();
    h.feed(&raw(9, END_HEADERS, 1, b));
    assert!(h.result.is_ok(), "{:?}", h.result);
    assert!(h.events().is_empty());
    assert!(h.frames().is_empty());
    let id = open_get(&mut h);
    respond(&mut h, id.get(), &[(":status", "200"), ("x-a", "1")], true);
    assert!(matches!(h.events().as_slice(), [Event::Response { .. }]));
}
