//! Properties: writing then parsing gives every frame back; arbitrary input never
//! panics, never over-reads, never stalls on a whole frame, and parses the same
//! however it is split into reads.

mod common;

use common::{decode_sequence, raw};
use h2frame::{
    Decoded, Error, ErrorCode, Frame, FrameHeader, FrameType, HEADER_LEN, MAX_MAX_FRAME_SIZE,
    MAX_WINDOW_SIZE, MIN_MAX_FRAME_SIZE, Priority, Settings, StreamId, decode, write_data,
    write_data_padded, write_frame, write_goaway, write_headers, write_ping, write_priority,
    write_push_promise, write_rst_stream, write_settings, write_settings_ack, write_window_update,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// A frame to write, owning its bytes so the parsed frame can borrow them.
#[derive(Clone, Debug)]
enum Spec {
    Data {
        stream: StreamId,
        end_stream: bool,
        data: Vec<u8>,
        pad: Option<u8>,
    },
    Priority {
        stream: StreamId,
        priority: Priority,
    },
    RstStream {
        stream: StreamId,
        code: ErrorCode,
    },
    Settings(Settings),
    SettingsAck,
    Ping {
        ack: bool,
        payload: [u8; 8],
    },
    GoAway {
        last_stream: StreamId,
        code: ErrorCode,
        debug: Vec<u8>,
    },
    WindowUpdate {
        stream: StreamId,
        increment: u32,
    },
    Unknown {
        kind: FrameType,
        flags: u8,
        stream: StreamId,
        payload: Vec<u8>,
    },
}

fn stream() -> impl Strategy<Value = StreamId> {
    (1..=StreamId::MAX.get()).prop_map(StreamId::new)
}

fn any_stream() -> impl Strategy<Value = StreamId> {
    (0..=StreamId::MAX.get()).prop_map(StreamId::new)
}

fn priority_for(stream: StreamId) -> impl Strategy<Value = Priority> {
    (any_stream(), any::<bool>(), any::<u8>())
        .prop_filter("a stream cannot depend on itself", move |(dep, _, _)| {
            *dep != stream
        })
        .prop_map(|(dependency, exclusive, weight)| Priority {
            dependency,
            exclusive,
            weight,
        })
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(0..=MAX_WINDOW_SIZE),
        proptest::option::of(MIN_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(|(a, b, c, d, e, f)| Settings {
            header_table_size: a,
            enable_push: b,
            max_concurrent_streams: c,
            initial_window_size: d,
            max_frame_size: e,
            max_header_list_size: f,
        })
}

fn spec() -> impl Strategy<Value = Spec> {
    let bytes = || vec(any::<u8>(), 0..2048);
    prop_oneof![
        (stream(), any::<bool>(), bytes(), any::<Option<u8>>()).prop_map(
            |(stream, end_stream, data, pad)| Spec::Data {
                stream,
                end_stream,
                data,
                pad,
            }
        ),
        stream().prop_flat_map(|stream| priority_for(stream)
            .prop_map(move |priority| Spec::Priority { stream, priority })),
        (stream(), any::<u32>()).prop_map(|(stream, code)| Spec::RstStream {
            stream,
            code: ErrorCode(code),
        }),
        settings().prop_map(Spec::Settings),
        Just(Spec::SettingsAck),
        (any::<bool>(), any::<[u8; 8]>()).prop_map(|(ack, payload)| Spec::Ping { ack, payload }),
        (any_stream(), any::<u32>(), bytes()).prop_map(|(last_stream, code, debug)| {
            Spec::GoAway {
                last_stream,
                code: ErrorCode(code),
                debug,
            }
        }),
        (any_stream(), 1..=MAX_WINDOW_SIZE)
            .prop_map(|(stream, increment)| Spec::WindowUpdate { stream, increment }),
        (0x0au8.., any::<u8>(), any_stream(), bytes()).prop_map(
            |(kind, flags, stream, payload)| Spec::Unknown {
                kind: FrameType(kind),
                flags,
                stream,
                payload,
            }
        ),
    ]
}

fn write(spec: &Spec, dst: &mut Vec<u8>) {
    match spec {
        Spec::Data {
            stream,
            end_stream,
            data,
            pad: None,
        } => write_data(dst, *stream, *end_stream, data),
        Spec::Data {
            stream,
            end_stream,
            data,
            pad: Some(pad),
        } => write_data_padded(dst, *stream, *end_stream, data, *pad),
        Spec::Priority { stream, priority } => write_priority(dst, *stream, *priority),
        Spec::RstStream { stream, code } => write_rst_stream(dst, *stream, *code),
        Spec::Settings(settings) => write_settings(dst, settings),
        Spec::SettingsAck => write_settings_ack(dst),
        Spec::Ping { ack, payload } => write_ping(dst, *ack, *payload),
        Spec::GoAway {
            last_stream,
            code,
            debug,
        } => write_goaway(dst, *last_stream, *code, debug),
        Spec::WindowUpdate { stream, increment } => write_window_update(dst, *stream, *increment),
        Spec::Unknown {
            kind,
            flags,
            stream,
            payload,
        } => write_frame(dst, *kind, *flags, *stream, payload),
    }
}

fn expected(spec: &Spec) -> Frame<'_> {
    match spec {
        Spec::Data {
            stream,
            end_stream,
            data,
            pad,
        } => Frame::Data {
            stream: *stream,
            end_stream: *end_stream,
            data,
            flow_len: (data.len() + pad.map_or(0, |p| 1 + usize::from(p))) as u32,
        },
        Spec::Priority { stream, priority } => Frame::Priority {
            stream: *stream,
            priority: *priority,
        },
        Spec::RstStream { stream, code } => Frame::RstStream {
            stream: *stream,
            code: *code,
        },
        Spec::Settings(settings) => Frame::Settings {
            ack: false,
            settings: *settings,
        },
        Spec::SettingsAck => Frame::Settings {
            ack: true,
            settings: Settings::default(),
        },
        Spec::Ping { ack, payload } => Frame::Ping {
            ack: *ack,
            payload: *payload,
        },
        Spec::GoAway {
            last_stream,
            code,
            debug,
        } => Frame::GoAway {
            last_stream: *last_stream,
            code: *code,
            debug,
        },
        Spec::WindowUpdate { stream, increment } => Frame::WindowUpdate {
            stream: *stream,
            increment: *increment,
        },
        Spec::Unknown {
            kind,
            flags,
            stream,
            payload,
        } => Frame::Unknown {
            kind: *kind,
            flags: *flags,
            stream: *stream,
            payload,
        },
    }
}

/// Parses a run of HEADERS/PUSH_PROMISE + CONTINUATION frames, checking each
/// against `max`, and returns the first frame and the reassembled block.
fn reassemble(bytes: &[u8], max: u32) -> (Frame<'_>, Vec<u8>) {
    let mut at = 0;
    let mut block = Vec::new();
    let mut first = None;
    loop {
        let Ok(Decoded::Frame(frame, len)) = decode(&bytes[at..], max) else {
            panic!("field block frame did not parse at {at}");
        };
        assert!(len - HEADER_LEN <= max as usize);
        at += len;
        let (fragment, end_headers) = match frame {
            Frame::Headers {
                fragment,
                end_headers,
                ..
            }
            | Frame::PushPromise {
                fragment,
                end_headers,
                ..
            } if first.is_none() => (fragment, end_headers),
            Frame::Continuation {
                fragment,
                end_headers,
                stream,
            } if first.is_some() => {
                assert_eq!(Some(stream), first.map(|f: Frame<'_>| f.stream()));
                (fragment, end_headers)
            }
            other => panic!("unexpected frame in a field block: {other:?}"),
        };
        block.extend_from_slice(fragment);
        first.get_or_insert(frame);
        if end_headers {
            assert_eq!(at, bytes.len(), "END_HEADERS before the last frame");
            return (first.unwrap_or_else(|| unreachable!()), block);
        }
    }
}

/// Bytes that look like a sequence of frames (right lengths, plausible types and
/// streams) so that the payload rules are reached, not just the size check.
fn frame_shaped() -> impl Strategy<Value = Vec<u8>> {
    let one = (
        0u8..=11,
        any::<u8>(),
        prop_oneof![Just(0u32), Just(1), Just(3), any::<u32>()],
        vec(any::<u8>(), 0..40),
    )
        .prop_map(|(kind, flags, stream, payload)| raw(FrameType(kind), flags, stream, &payload));
    vec(one, 0..24).prop_map(|frames| frames.concat())
}

/// Some frame-shaped bytes, or noise.
fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![frame_shaped(), vec(any::<u8>(), 0..65_536)]
}

fn max_frame_size() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(MIN_MAX_FRAME_SIZE),
        MIN_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE
    ]
}

/// Checks what one `decode` call may say about `buf`.
fn check_answer(buf: &[u8], answer: &Result<Decoded<'_>, Error>) {
    let header = FrameHeader::parse(buf);
    let whole = header.is_some_and(|h| buf.len() >= h.frame_len());
    match answer {
        Ok(Decoded::Frame(_, len)) => {
            assert!(*len >= HEADER_LEN && *len <= buf.len());
            assert_eq!(Some(*len), header.map(|h| h.frame_len()));
        }
        Ok(Decoded::Incomplete { min_len }) => {
            assert!(!whole, "a whole frame was reported incomplete");
            assert!(*min_len > buf.len(), "min_len {min_len} already available");
        }
        Err(Error::Stream {
            frame_len,
            field_block,
            ..
        }) => {
            assert!(whole, "stream error before the frame arrived");
            assert!(*frame_len <= buf.len());
            if let Some(range) = field_block {
                assert!(range.start >= HEADER_LEN && range.end <= *frame_len);
            }
        }
        Err(Error::Connection { .. }) => {}
    }
}

proptest! {
    #[test]
    fn single_frames_round_trip(spec in spec()) {
        let mut bytes = Vec::new();
        write(&spec, &mut bytes);
        prop_assert_eq!(
            decode(&bytes, MIN_MAX_FRAME_SIZE),
            Ok(Decoded::Frame(expected(&spec), bytes.len()))
        );
    }

    #[test]
    fn headers_split_and_reassemble(
        (stream, priority) in stream().prop_flat_map(|s| (Just(s), proptest::option::of(priority_for(s)))),
        end_stream in any::<bool>(),
        block in vec(any::<u8>(), 0..70_000),
        max in prop_oneof![Just(MIN_MAX_FRAME_SIZE), MIN_MAX_FRAME_SIZE..40_000],
    ) {
        let mut bytes = Vec::new();
        write_headers(&mut bytes, stream, end_stream, priority, &block, max);
        let (first, reassembled) = reassemble(&bytes, max);
        let Frame::Headers { stream: s, end_stream: e, priority: p, .. } = first else {
            panic!("first frame is {first:?}");
        };
        prop_assert_eq!((s, e, p), (stream, end_stream, priority));
        prop_assert_eq!(reassembled, block);
    }

    #[test]
    fn push_promise_split_and_reassemble(
        stream in stream(),
        promised in any_stream(),
        block in vec(any::<u8>(), 0..40_000),
    ) {
        let mut bytes = Vec::new();
        write_push_promise(&mut bytes, stream, promised, &block, MIN_MAX_FRAME_SIZE);
        let (first, reassembled) = reassemble(&bytes, MIN_MAX_FRAME_SIZE);
        let Frame::PushPromise { stream: s, promised: p, .. } = first else {
            panic!("first frame is {first:?}");
        };
        prop_assert_eq!((s, p), (stream, promised));
        prop_assert_eq!(reassembled, block);
    }

    #[test]
    fn frame_sequences_round_trip(specs in vec(spec(), 0..16)) {
        let mut bytes = Vec::new();
        for spec in &specs {
            write(spec, &mut bytes);
        }
        let expected: Vec<String> = specs.iter().map(|s| format!("{:?}", expected(s))).collect();
        prop_assert_eq!(decode_sequence(&bytes, MIN_MAX_FRAME_SIZE), (expected, bytes.len()));
    }

    #[test]
    fn arbitrary_input_is_answered_soundly(bytes in input(), max in max_frame_size()) {
        let mut at = 0;
        loop {
            let buf = &bytes[at..];
            let answer = decode(buf, max);
            check_answer(buf, &answer);
            match answer {
                Ok(Decoded::Frame(_, len)) | Err(Error::Stream { frame_len: len, .. }) => at += len,
                Ok(Decoded::Incomplete { .. }) | Err(Error::Connection { .. }) => break,
            }
        }
    }

    #[test]
    fn split_reads_parse_like_one_read(
        bytes in input(),
        max in max_frame_size(),
        chunks in vec(1usize..64, 1..256),
    ) {
        let (whole, whole_consumed) = decode_sequence(&bytes, max);

        let mut seen = Vec::new();
        let mut pos = 0;
        let mut end = 0;
        let mut chunk_sizes = chunks.iter().cycle();
        'reads: while end < bytes.len() {
            end = (end + chunk_sizes.next().copied().unwrap_or(1)).min(bytes.len());
            loop {
                let buf = &bytes[pos..end];
                let answer = decode(buf, max);
                check_answer(buf, &answer);
                match answer {
                    Ok(Decoded::Frame(frame, len)) => {
                        seen.push(format!("{frame:?}"));
                        pos += len;
                    }
                    Err(err @ Error::Stream { .. }) => {
                        seen.push(format!("{err:?}"));
                        if let Error::Stream { frame_len, .. } = err {
                            pos += frame_len;
                        }
                    }
                    Err(err @ Error::Connection { .. }) => {
                        seen.push(format!("{err:?}"));
                        break 'reads;
                    }
                    Ok(Decoded::Incomplete { .. }) => continue 'reads,
                }
            }
        }
        prop_assert_eq!(seen, whole);
        prop_assert_eq!(pos, whole_consumed);
    }
}
