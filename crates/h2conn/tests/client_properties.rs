//! Properties of the client role over hostile server input: no panic, bounded
//! memory, well-formed output, and the same result however the input is split.

mod common;

use bytes::BytesMut;
use h2conn::{Config, Connection, ErrorCode, Event, StreamId};
use h2frame::{Settings, flags};
use http::HeaderMap;
use proptest::prelude::*;

/// One server action, turned into bytes by [`encode_op`].
#[derive(Clone, Debug)]
enum Op {
    Response {
        stream: u8,
        status: &'static str,
        content_length: Option<u16>,
        end_stream: bool,
        split: bool,
    },
    BadResponse {
        stream: u8,
    },
    Data {
        stream: u8,
        len: u16,
        end_stream: bool,
        pad: Option<u8>,
    },
    Trailers {
        stream: u8,
        end_stream: bool,
    },
    Continuation {
        stream: u8,
        end_headers: bool,
        len: u8,
    },
    Rst {
        stream: u8,
        code: u32,
    },
    WindowUpdate {
        stream: u8,
        increment: u32,
    },
    Settings {
        window: Option<u32>,
        table: Option<u32>,
        frame: Option<u32>,
        streams: Option<u32>,
    },
    SettingsAck,
    Ping,
    PushPromise {
        stream: u8,
    },
    GoAway {
        last: u8,
    },
    Garbage(Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    let stream = 0u8..12;
    let status = prop_oneof![
        Just("200"),
        Just("204"),
        Just("304"),
        Just("100"),
        Just("103"),
        Just("101"),
        Just("404"),
    ];
    prop_oneof![
        (
            stream.clone(),
            status,
            proptest::option::of(0u16..3_000),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(
                |(stream, status, content_length, end_stream, split)| Op::Response {
                    stream,
                    status,
                    content_length,
                    end_stream,
                    split,
                }
            ),
        stream.clone().prop_map(|stream| Op::BadResponse { stream }),
        (
            stream.clone(),
            0u16..20_000,
            any::<bool>(),
            proptest::option::of(any::<u8>())
        )
            .prop_map(|(stream, len, end_stream, pad)| Op::Data {
                stream,
                len,
                end_stream,
                pad
            }),
        (stream.clone(), any::<bool>())
            .prop_map(|(stream, end_stream)| Op::Trailers { stream, end_stream }),
        (stream.clone(), any::<bool>(), any::<u8>()).prop_map(|(stream, end_headers, len)| {
            Op::Continuation {
                stream,
                end_headers,
                len,
            }
        }),
        (stream.clone(), 0u32..16).prop_map(|(stream, code)| Op::Rst { stream, code }),
        (
            stream.clone(),
            prop_oneof![Just(0u32), 1u32..100_000, Just(0x7fff_ffff)]
        )
            .prop_map(|(stream, increment)| Op::WindowUpdate { stream, increment }),
        (
            proptest::option::of(prop_oneof![0u32..200_000, Just(0x7fff_ffff)]),
            proptest::option::of(0u32..10_000),
            proptest::option::of(16_384u32..100_000),
            proptest::option::of(0u32..6),
        )
            .prop_map(|(window, table, frame, streams)| Op::Settings {
                window,
                table,
                frame,
                streams,
            }),
        Just(Op::SettingsAck),
        Just(Op::Ping),
        stream.clone().prop_map(|stream| Op::PushPromise { stream }),
        stream.clone().prop_map(|last| Op::GoAway { last }),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Op::Garbage),
    ]
}

fn sid(stream: u8) -> StreamId {
    StreamId::new(u32::from(stream))
}

/// Appends the bytes of one server action, using the server's HPACK encoder.
fn encode_op(enc: &mut hpack::Encoder, op: &Op, out: &mut Vec<u8>) {
    let mut block = |fields: &[(&str, &str)]| {
        let mut b = Vec::new();
        enc.encode(
            fields
                .iter()
                .map(|(n, v)| hpack::Field::new(n.as_bytes(), v.as_bytes())),
            &mut b,
        );
        b
    };
    match op {
        Op::Response {
            stream,
            status,
            content_length,
            end_stream,
            split,
        } => {
            let length = content_length.map(|n| n.to_string());
            let mut fields = vec![(":status", *status), ("server", "prop")];
            if let Some(length) = &length {
                fields.push(("content-length", length));
            }
            let b = block(&fields);
            if *split {
                let (a, rest) = b.split_at(b.len() / 2);
                let f = if *end_stream { flags::END_STREAM } else { 0 };
                out.extend(common::raw(1, f, u32::from(*stream), a));
                out.extend(common::raw(9, flags::END_HEADERS, u32::from(*stream), rest));
            } else {
                h2frame::write_headers(out, sid(*stream), *end_stream, None, &b, 16_384);
            }
        }
        Op::BadResponse { stream } => {
            let b = block(&[(":status", "200"), (":path", "/"), ("Bad", "x")]);
            h2frame::write_headers(out, sid(*stream), false, None, &b, 16_384);
        }
        Op::Data {
            stream,
            len,
            end_stream,
            pad,
        } => {
            let payload = vec![0xab; usize::from(*len)];
            match pad {
                Some(pad) => {
                    h2frame::write_data_padded(out, sid(*stream), *end_stream, &payload, *pad)
                }
                None => h2frame::write_data(out, sid(*stream), *end_stream, &payload),
            }
        }
        Op::Trailers { stream, end_stream } => {
            let b = block(&[("grpc-status", "0")]);
            h2frame::write_headers(out, sid(*stream), *end_stream, None, &b, 16_384);
        }
        Op::Continuation {
            stream,
            end_headers,
            len,
        } => {
            let f = if *end_headers { flags::END_HEADERS } else { 0 };
            out.extend(common::raw(
                9,
                f,
                u32::from(*stream),
                &vec![0x82; usize::from(*len)],
            ));
        }
        Op::Rst { stream, code } => {
            h2frame::write_rst_stream(out, sid(*stream), ErrorCode(*code));
        }
        Op::WindowUpdate { stream, increment } => {
            out.extend(common::raw(
                8,
                0,
                u32::from(*stream),
                &increment.to_be_bytes(),
            ));
        }
        Op::Settings {
            window,
            table,
            frame,
            streams,
        } => {
            let s = Settings {
                initial_window_size: *window,
                header_table_size: *table,
                max_frame_size: *frame,
                max_concurrent_streams: *streams,
                ..Settings::default()
            };
            h2frame::write_settings(out, &s);
        }
        Op::SettingsAck => h2frame::write_settings_ack(out),
        Op::Ping => h2frame::write_ping(out, false, [1; 8]),
        Op::PushPromise { stream } => {
            let mut payload = 2u32.to_be_bytes().to_vec();
            payload.extend(block(&common::GET));
            out.extend(common::raw(
                5,
                flags::END_HEADERS,
                u32::from(*stream),
                &payload,
            ));
        }
        Op::GoAway { last } => {
            h2frame::write_goaway(out, sid(*last), ErrorCode::NO_ERROR, b"");
        }
        Op::Garbage(bytes) => out.extend_from_slice(bytes),
    }
}

/// The server's bytes for `ops`: its SETTINGS first, as a real server sends.
fn encode(ops: &[Op]) -> Vec<u8> {
    let mut enc = hpack::Encoder::new();
    let mut out = Vec::new();
    h2frame::write_settings(&mut out, &Settings::default());
    for op in ops {
        encode_op(&mut enc, op, &mut out);
    }
    out
}

fn config() -> Config {
    Config {
        max_buffered_output: 64 * 1024,
        max_header_block_size: 8 * 1024,
        ..Config::default()
    }
}

/// As in `properties.rs`: the output bound plus overshoot, the header-block
/// bound, and the stream table.
fn memory_bound(config: &Config) -> usize {
    4 * config.max_buffered_output + 2 * config.max_header_block_size + 64 * 1024
}

/// A client connection with `n` requests open: GETs on the even-numbered ones,
/// POSTs with a body to come on the others.
fn client_with_requests(n: usize) -> Connection {
    let mut conn = Connection::client(config());
    for i in 0..n {
        let method = if i % 2 == 0 { "GET" } else { "POST" };
        let (parts, ()) = http::Request::builder()
            .method(method)
            .uri("http://backend/x")
            .body(())
            .unwrap()
            .into_parts();
        conn.send_request(&parts, i % 2 == 0).unwrap();
    }
    conn
}

/// Plays the application: releases every DATA byte. Returns the events'
/// `Debug` forms.
fn take_events(conn: &mut Connection) -> Vec<String> {
    let mut seen = Vec::new();
    while let Some(event) = conn.poll_event() {
        if let Event::Data { stream, data, .. } = &event {
            conn.release(*stream, data.len());
        }
        seen.push(format!("{event:?}"));
    }
    seen
}

/// Feeds `input` in pieces cut at `cuts`, writing the output out after every
/// read; returns the events, the output and the error.
fn run(input: &[u8], cuts: &[usize]) -> (Vec<String>, Vec<u8>, Option<ErrorCode>) {
    let bound = memory_bound(&config());
    let mut conn = client_with_requests(4);
    let mut events = Vec::new();
    let mut output = Vec::new();
    let mut buf = BytesMut::new();
    let mut start = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.push(input.len());
    cuts.sort_unstable();
    for cut in cuts {
        buf.extend_from_slice(&input[start..cut.max(start)]);
        start = cut.max(start);
        let _ = conn.recv(&mut buf);
        events.extend(take_events(&mut conn));
        output.extend_from_slice(conn.output());
        conn.advance(conn.output().len());
        assert!(
            conn.buffered_bytes() <= bound,
            "buffered {} > {bound}",
            conn.buffered_bytes()
        );
    }
    (events, output, conn.error().map(|e| e.code))
}

/// What the client application may do between two reads.
#[derive(Clone, Debug)]
enum App {
    Request {
        end_stream: bool,
    },
    Data {
        stream: u8,
        len: u16,
        end_stream: bool,
    },
    Trailers {
        stream: u8,
    },
    Reset {
        stream: u8,
    },
    Release {
        stream: u8,
        n: u16,
    },
    Ping,
    GoAway,
    /// Write out `n` bytes of output (or all of it for `None`).
    Write(Option<u16>),
}

fn app() -> impl Strategy<Value = App> {
    let stream = 0u8..12;
    prop_oneof![
        any::<bool>().prop_map(|end_stream| App::Request { end_stream }),
        (stream.clone(), any::<u16>(), any::<bool>()).prop_map(|(stream, len, end_stream)| {
            App::Data {
                stream,
                len,
                end_stream,
            }
        }),
        stream.clone().prop_map(|stream| App::Trailers { stream }),
        stream.clone().prop_map(|stream| App::Reset { stream }),
        (stream.clone(), any::<u16>()).prop_map(|(stream, n)| App::Release { stream, n }),
        Just(App::Ping),
        Just(App::GoAway),
        proptest::option::of(any::<u16>()).prop_map(App::Write),
    ]
}

fn act(conn: &mut Connection, action: &App, written: &mut Vec<u8>) {
    let none = HeaderMap::new();
    // Errors are the API refusing a call that does not fit the state; what
    // matters is that nothing panics and the bounds hold.
    match *action {
        App::Request { end_stream } => {
            let (parts, ()) = http::Request::builder()
                .method("POST")
                .uri("https://backend/y")
                .header("x-n", "1")
                .body(())
                .unwrap()
                .into_parts();
            let can = conn.can_open_stream();
            let opened = conn.send_request(&parts, end_stream);
            assert_eq!(can, opened.is_ok(), "{opened:?}");
        }
        App::Data {
            stream,
            len,
            end_stream,
        } => {
            let _ = conn.send_data(sid(stream), &vec![5; usize::from(len)], end_stream);
        }
        App::Trailers { stream } => {
            let _ = conn.send_trailers(sid(stream), &none);
        }
        App::Reset { stream } => {
            let _ = conn.reset(sid(stream), ErrorCode::CANCEL);
        }
        App::Release { stream, n } => conn.release(sid(stream), usize::from(n)),
        App::Ping => conn.ping([2; 8]),
        App::GoAway => conn.go_away(ErrorCode::NO_ERROR),
        App::Write(n) => {
            let n = n
                .map_or(conn.output().len(), usize::from)
                .min(conn.output().len());
            written.extend_from_slice(&conn.output()[..n]);
            conn.advance(n);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_server_bytes_after_a_request_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        settings_first in any::<bool>(),
    ) {
        let mut input = Vec::new();
        if settings_first {
            h2frame::write_settings(&mut input, &Settings::default());
        }
        input.extend(bytes);
        run(&input, &cuts);
    }

    #[test]
    fn server_frame_sequences_never_panic_and_memory_stays_bounded(
        ops in proptest::collection::vec(op(), 0..60),
    ) {
        run(&encode(&ops), &[]);
    }

    #[test]
    fn server_and_application_interleaved_never_panic_and_stay_bounded(
        steps in proptest::collection::vec((op(), proptest::collection::vec(app(), 0..3)), 0..60),
    ) {
        let config = config();
        let bound = memory_bound(&config);
        let mut conn = client_with_requests(2);
        let mut enc = hpack::Encoder::new();
        let mut buf = BytesMut::new();
        let mut settings = Vec::new();
        h2frame::write_settings(&mut settings, &Settings::default());
        buf.extend_from_slice(&settings);
        let _ = conn.recv(&mut buf);
        let mut written = Vec::new();
        for (op, actions) in &steps {
            let mut bytes = Vec::new();
            encode_op(&mut enc, op, &mut bytes);
            buf.extend_from_slice(&bytes);
            let _ = conn.recv(&mut buf);
            while let Some(event) = conn.poll_event() {
                if let Event::Data { stream, data, .. } = event {
                    conn.release(stream, data.len() / 2);
                }
            }
            for action in actions {
                act(&mut conn, action, &mut written);
            }
            prop_assert!(conn.buffered_bytes() <= bound, "buffered {} > {bound}", conn.buffered_bytes());
        }
        // Everything written is the preface then well-formed frames whose header
        // blocks a server decodes in order.
        written.extend_from_slice(conn.output());
        prop_assert!(written.starts_with(h2frame::PREFACE));
        let mut dec = hpack::Decoder::new(64 * 1024);
        dec.set_max_header_list_size(1 << 20);
        common::decode_frames(&written[h2frame::PREFACE.len()..], &mut dec);
    }

    #[test]
    fn splitting_the_server_input_changes_nothing(
        ops in proptest::collection::vec(op(), 0..40),
        cuts in proptest::collection::vec(any::<usize>(), 1..12),
    ) {
        let input = encode(&ops);
        let (events, output, error) = run(&input, &[]);
        let (split_events, split_output, split_error) = run(&input, &cuts);
        prop_assert_eq!(events, split_events);
        prop_assert_eq!(error, split_error);
        prop_assert!(output == split_output, "outputs differ: {} vs {} bytes", output.len(), split_output.len());
    }
}
