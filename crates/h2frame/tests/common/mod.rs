//! Helpers shared by the integration tests.

#![allow(dead_code)]

use h2frame::{Decoded, Error, ErrorCode, Frame, FrameType, StreamId, decode, write_frame};

/// The SETTINGS_MAX_FRAME_SIZE every endpoint starts with.
pub const MAX: u32 = 16_384;

/// One frame's bytes from its parts, lengths filled in.
pub fn raw(kind: FrameType, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_frame(&mut out, kind, flags, StreamId::new(stream), payload);
    out
}

/// The single frame in `bytes`, which must be whole and consumed exactly.
pub fn decode_all(bytes: &[u8]) -> Result<Frame<'_>, Error> {
    match decode(bytes, MAX)? {
        Decoded::Frame(frame, len) => {
            assert_eq!(len, bytes.len(), "frame did not consume its input exactly");
            Ok(frame)
        }
        Decoded::Incomplete { min_len } => panic!("whole frame reported incomplete ({min_len})"),
    }
}

/// Asserts a connection error with `code`.
#[track_caller]
pub fn assert_connection_error<T: std::fmt::Debug>(result: Result<T, Error>, code: ErrorCode) {
    match result {
        Err(Error::Connection { code: got, .. }) => assert_eq!(got, code),
        other => panic!("expected connection error {code:?}, got {other:?}"),
    }
}

/// Asserts a stream error on `stream` with `code`, returning the error for
/// further checks.
#[track_caller]
pub fn assert_stream_error<T: std::fmt::Debug>(
    result: Result<T, Error>,
    stream: u32,
    code: ErrorCode,
) -> Error {
    match result {
        Err(
            err @ Error::Stream {
                stream: s, code: c, ..
            },
        ) if s == StreamId::new(stream) && c == code => err,
        other => panic!("expected stream {stream} error {code:?}, got {other:?}"),
    }
}

/// A SETTINGS parameter on the wire.
pub fn param(id: u16, value: u32) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend(value.to_be_bytes());
    out
}

/// Decodes frames one after another as a connection would: skipping frames
/// refused with a stream error, stopping at the end of the input or at a
/// connection error. Returns what was seen and the bytes consumed; each entry is a frame's `Debug` form (or the error's), so sequences
/// can be compared without lifetimes getting in the way.
pub fn decode_sequence(mut buf: &[u8], max: u32) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut consumed = 0;
    loop {
        match decode(buf, max) {
            Ok(Decoded::Frame(frame, len)) => {
                out.push(format!("{frame:?}"));
                buf = &buf[len..];
                consumed += len;
            }
            Ok(Decoded::Incomplete { .. }) => return (out, consumed),
            Err(err @ Error::Stream { frame_len, .. }) => {
                out.push(format!("{err:?}"));
                buf = &buf[frame_len..];
                consumed += frame_len;
            }
            Err(err @ Error::Connection { .. }) => {
                out.push(format!("{err:?}"));
                return (out, consumed);
            }
        }
    }
}
