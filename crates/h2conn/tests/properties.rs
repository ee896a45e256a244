//! Properties over hostile input: no panic, bounded memory, and the same result
//! however the input is split into reads.

mod common;

use bytes::BytesMut;
use h2conn::{Config, Connection, ErrorCode, Event, StreamId};
use h2frame::{Settings, flags};
use http::{HeaderMap, StatusCode};
use proptest::prelude::*;

/// One client action, turned into bytes by [`encode`].
#[derive(Clone, Debug)]
enum Op {
    Request {
        stream: u8,
        end_stream: bool,
        split: bool,
    },
    BadRequest {
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
    },
    SettingsAck,
    Ping,
    Priority {
        stream: u8,
    },
    GoAway,
    Garbage(Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    let stream = 0u8..12;
    prop_oneof![
        (stream.clone(), any::<bool>(), any::<bool>()).prop_map(|(stream, end_stream, split)| {
            Op::Request {
                stream,
                end_stream,
                split,
            }
        }),
        stream.clone().prop_map(|stream| Op::BadRequest { stream }),
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
        stream.clone().prop_map(|stream| Op::Trailers { stream }),
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
        )
            .prop_map(|(window, table, frame)| Op::Settings {
                window,
                table,
                frame
            }),
        Just(Op::SettingsAck),
        Just(Op::Ping),
        stream.clone().prop_map(|stream| Op::Priority { stream }),
        Just(Op::GoAway),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Op::Garbage),
    ]
}

fn sid(stream: u8) -> StreamId {
    StreamId::new(u32::from(stream))
}

/// Client bytes for `ops`, with one HPACK encoder as a real client would have.
fn encode(ops: &[Op]) -> Vec<u8> {
    let mut enc = hpack::Encoder::new();
    let mut out = h2frame::PREFACE.to_vec();
    h2frame::write_settings(&mut out, &Settings::default());
    for op in ops {
        encode_op(&mut enc, op, &mut out);
    }
    out
}

/// Appends the bytes of one client action, using the client's HPACK encoder.
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
        Op::Request {
            stream,
            end_stream,
            split,
        } => {
            let b = block(&common::POST);
            if *split {
                let (a, rest) = b.split_at(b.len() / 2);
                let f = if *end_stream { flags::END_STREAM } else { 0 };
                out.extend(common::raw(1, f, u32::from(*stream), a));
                out.extend(common::raw(9, flags::END_HEADERS, u32::from(*stream), rest));
            } else {
                h2frame::write_headers(out, sid(*stream), *end_stream, None, &b, 16_384);
            }
        }
        Op::BadRequest { stream } => {
            let b = block(&[(":method", "GET"), ("Bad", "x")]);
            h2frame::write_headers(out, sid(*stream), true, None, &b, 16_384);
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
        Op::Trailers { stream } => {
            let b = block(&[("grpc-status", "0")]);
            h2frame::write_headers(out, sid(*stream), true, None, &b, 16_384);
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
        } => {
            let s = Settings {
                initial_window_size: *window,
                header_table_size: *table,
                max_frame_size: *frame,
                ..Settings::default()
            };
            h2frame::write_settings(out, &s);
        }
        Op::SettingsAck => h2frame::write_settings_ack(out),
        Op::Ping => h2frame::write_ping(out, false, [1; 8]),
        Op::Priority { stream } => {
            out.extend(common::raw(2, 0, u32::from(*stream), &[0, 0, 0, 0, 7]))
        }
        Op::GoAway => h2frame::write_goaway(out, StreamId::ZERO, ErrorCode::NO_ERROR, b""),
        Op::Garbage(bytes) => out.extend_from_slice(bytes),
    }
}

fn config() -> Config {
    Config {
        max_buffered_output: 64 * 1024,
        max_header_block_size: 8 * 1024,
        max_concurrent_streams: 8,
        ..Config::default()
    }
}

/// What a buffered-memory bound may reach: the output bound plus one frame of
/// overshoot per send and what growth doubling adds, the header-block bound,
/// and the stream table.
fn memory_bound(config: &Config) -> usize {
    4 * config.max_buffered_output + 2 * config.max_header_block_size + 64 * 1024
}

/// Plays the application: answers requests, echoes nothing, releases all data.
/// Returns the events' `Debug` forms.
fn serve_events(conn: &mut Connection, respond: bool) -> Vec<String> {
    let mut seen = Vec::new();
    while let Some(event) = conn.poll_event() {
        match &event {
            Event::Request { stream, .. } if respond => {
                let _ = conn.send_response(*stream, StatusCode::OK, &HeaderMap::new(), false);
                let _ = conn.send_data(*stream, &[7; 40_000], true);
            }
            Event::Data { stream, data, .. } => conn.release(*stream, data.len()),
            _ => {}
        }
        seen.push(format!("{event:?}"));
    }
    seen
}

/// Feeds `input` in pieces cut at `cuts`; returns the events, the output and
/// the result, writing the output out after every read when `drain`.
fn run(
    input: &[u8],
    cuts: &[usize],
    drain: bool,
    respond: bool,
) -> (Vec<String>, Vec<u8>, Option<ErrorCode>) {
    let config = config();
    let bound = memory_bound(&config);
    let mut conn = Connection::new(config);
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
        events.extend(serve_events(&mut conn, respond));
        if drain {
            output.extend_from_slice(conn.output());
            conn.advance(conn.output().len());
        }
        assert!(
            conn.buffered_bytes() <= bound,
            "buffered {} > {bound}",
            conn.buffered_bytes()
        );
    }
    output.extend_from_slice(conn.output());
    (events, output, conn.error().map(|e| e.code))
}

/// What the application may do between two reads.
#[derive(Clone, Debug)]
enum App {
    Respond {
        stream: u8,
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
    Shutdown,
    /// Write out `n` bytes of output (or all of it for `None`).
    Write(Option<u16>),
}

fn app() -> impl Strategy<Value = App> {
    let stream = 0u8..12;
    prop_oneof![
        (stream.clone(), any::<bool>())
            .prop_map(|(stream, end_stream)| App::Respond { stream, end_stream }),
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
        Just(App::Shutdown),
        proptest::option::of(any::<u16>()).prop_map(App::Write),
    ]
}

/// Performs one application action; `written` collects the output written.
fn act(conn: &mut Connection, action: &App, written: &mut Vec<u8>) {
    let none = HeaderMap::new();
    // Errors are the API refusing a call that does not fit the stream's state;
    // what matters is that nothing panics and the bounds hold.
    match *action {
        App::Respond { stream, end_stream } => {
            let _ = conn.send_response(sid(stream), StatusCode::OK, &none, end_stream);
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
        App::Shutdown => conn.shutdown(),
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
    fn arbitrary_bytes_after_the_preface_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        drain in any::<bool>(),
    ) {
        let mut input = h2frame::PREFACE.to_vec();
        h2frame::write_settings(&mut input, &Settings::default());
        input.extend(bytes);
        run(&input, &cuts, drain, true);
    }

    #[test]
    fn frame_sequences_never_panic_and_memory_stays_bounded(
        ops in proptest::collection::vec(op(), 0..60),
        drain in any::<bool>(),
    ) {
        run(&encode(&ops), &[], drain, true);
    }

    #[test]
    fn client_and_application_interleaved_never_panic_and_stay_bounded(
        steps in proptest::collection::vec((op(), proptest::collection::vec(app(), 0..3)), 0..60),
    ) {
        let config = config();
        let bound = memory_bound(&config);
        let mut conn = Connection::new(config);
        let mut enc = hpack::Encoder::new();
        let mut input = h2frame::PREFACE.to_vec();
        h2frame::write_settings(&mut input, &Settings::default());
        let mut buf = BytesMut::from(&input[..]);
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
        // Everything written is well-formed frames whose header blocks a client
        // decodes in order: the encoder stayed in step through table-size changes.
        written.extend_from_slice(conn.output());
        let mut dec = hpack::Decoder::new(64 * 1024);
        dec.set_max_header_list_size(1 << 20);
        common::decode_frames(&written, &mut dec);
    }

    /// The application only releases data here: answering between reads would
    /// make the output depend on when it ran, not on how the input was split.
    #[test]
    fn splitting_the_input_changes_nothing(
        ops in proptest::collection::vec(op(), 0..40),
        cuts in proptest::collection::vec(any::<usize>(), 1..12),
    ) {
        let input = encode(&ops);
        let (events, output, error) = run(&input, &[], true, false);
        let (split_events, split_output, split_error) = run(&input, &cuts, true, false);
        prop_assert_eq!(events, split_events);
        prop_assert_eq!(error, split_error);
        prop_assert!(output == split_output, "outputs differ: {} vs {} bytes", output.len(), split_output.len());
    }
}
