//! Writers: each appends one frame (or one HEADERS/PUSH_PROMISE + CONTINUATION
//! run) to the caller's buffer, reserving the exact size once, so a write never
//! allocates anything but the growth of that buffer.

use crate::error::ErrorCode;
use crate::frame::{PING_LEN, Priority};
use crate::header::{FrameHeader, FrameType, HEADER_LEN, StreamId, flags};
use crate::settings::{MAX_MAX_FRAME_SIZE, MIN_MAX_FRAME_SIZE, PARAM_LEN, Settings};

/// A buffer frames can be appended to: `Vec<u8>`, and `bytes::BytesMut` with the
/// `bytes` feature, so the writers fit whichever buffer the I/O layer uses.
pub trait WriteBuf {
    /// Makes room for `additional` more bytes in one step.
    fn reserve_bytes(&mut self, additional: usize);
    /// Appends `bytes`.
    fn append_bytes(&mut self, bytes: &[u8]);
}

impl WriteBuf for Vec<u8> {
    fn reserve_bytes(&mut self, additional: usize) {
        self.reserve(additional);
    }

    fn append_bytes(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

#[cfg(feature = "bytes")]
impl WriteBuf for bytes::BytesMut {
    fn reserve_bytes(&mut self, additional: usize) {
        self.reserve(additional);
    }

    fn append_bytes(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

const ZEROS: [u8; 256] = [0; 256];

fn put_header<B: WriteBuf + ?Sized>(
    dst: &mut B,
    length: usize,
    kind: FrameType,
    flags: u8,
    stream: StreamId,
) {
    assert!(
        length <= MAX_MAX_FRAME_SIZE as usize,
        "HTTP/2 frame payload of {length} bytes does not fit in 24 bits"
    );
    let header = FrameHeader {
        length: length as u32,
        kind,
        flags,
        stream,
    };
    dst.append_bytes(&header.encode());
}

const fn flag_if(set: bool, flag: u8) -> u8 {
    if set { flag } else { 0 }
}

/// Appends any frame from its parts: for extension frames, and for tests that
/// need frames the typed writers refuse to make.
///
/// # Panics
///
/// If `payload` is longer than 2^24 - 1 bytes.
pub fn write_frame<B: WriteBuf + ?Sized>(
    dst: &mut B,
    kind: FrameType,
    flags: u8,
    stream: StreamId,
    payload: &[u8],
) {
    dst.reserve_bytes(HEADER_LEN + payload.len());
    put_header(dst, payload.len(), kind, flags, stream);
    dst.append_bytes(payload);
}

/// Appends one DATA frame. The caller chunks bodies to the peer's max frame size
/// and flow-control window, which only it knows.
///
/// # Panics
///
/// If `data` is longer than 2^24 - 1 bytes.
pub fn write_data<B: WriteBuf + ?Sized>(
    dst: &mut B,
    stream: StreamId,
    end_stream: bool,
    data: &[u8],
) {
    let flags = flag_if(end_stream, flags::END_STREAM);
    write_frame(dst, FrameType::DATA, flags, stream, data);
}

/// Appends one DATA frame with `pad` zero bytes of padding, for senders that
/// hide body lengths; flow control counts the padding and the Pad Length octet.
///
/// # Panics
///
/// If the padded payload is longer than 2^24 - 1 bytes.
pub fn write_data_padded<B: WriteBuf + ?Sized>(
    dst: &mut B,
    stream: StreamId,
    end_stream: bool,
    data: &[u8],
    pad: u8,
) {
    let pad_bytes = &ZEROS[..usize::from(pad)];
    let length = 1 + data.len() + pad_bytes.len();
    dst.reserve_bytes(HEADER_LEN + length);
    let flags = flags::PADDED | flag_if(end_stream, flags::END_STREAM);
    put_header(dst, length, FrameType::DATA, flags, stream);
    dst.append_bytes(&[pad]);
    dst.append_bytes(data);
    dst.append_bytes(pad_bytes);
}

/// Appends a whole field block as HEADERS plus as many CONTINUATION frames as the
/// peer's `max_frame_size` requires, so callers never split blocks themselves.
///
/// `max_frame_size` is clamped to the legal range, so a bogus value cannot make
/// frames the peer must refuse or loop forever.
pub fn write_headers<B: WriteBuf + ?Sized>(
    dst: &mut B,
    stream: StreamId,
    end_stream: bool,
    priority: Option<Priority>,
    block: &[u8],
    max_frame_size: u32,
) {
    let prefix = priority.map(|p| p.encode());
    let flags = flag_if(end_stream, flags::END_STREAM) | flag_if(prefix.is_some(), flags::PRIORITY);
    let prefix: &[u8] = prefix.as_ref().map_or(&[], |p| p.as_slice());
    write_field_block(
        dst,
        FrameType::HEADERS,
        flags,
        stream,
        prefix,
        block,
        max_frame_size,
    );
}

/// Appends a PUSH_PROMISE reserving `promised`, split into CONTINUATION frames
/// like [`write_headers`].
pub fn write_push_promise<B: WriteBuf + ?Sized>(
    dst: &mut B,
    stream: StreamId,
    promised: StreamId,
    block: &[u8],
    max_frame_size: u32,
) {
    let prefix = promised.get().to_be_bytes();
    write_field_block(
        dst,
        FrameType::PUSH_PROMISE,
        0,
        stream,
        &prefix,
        block,
        max_frame_size,
    );
}

fn write_field_block<B: WriteBuf + ?Sized>(
    dst: &mut B,
    kind: FrameType,
    flags: u8,
    stream: StreamId,
    prefix: &[u8],
    block: &[u8],
    max_frame_size: u32,
) {
    let max = max_frame_size.clamp(MIN_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE) as usize;
    let (first, mut rest) = block.split_at(block.len().min(max - prefix.len()));
    let continuations = rest.len().div_ceil(max);
    dst.reserve_bytes(HEADER_LEN * (1 + continuations) + prefix.len() + block.len());

    let end = flag_if(rest.is_empty(), flags::END_HEADERS);
    put_header(dst, prefix.len() + first.len(), kind, flags | end, stream);
    dst.append_bytes(prefix);
    dst.append_bytes(first);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(max));
        rest = tail;
        let end = flag_if(rest.is_empty(), flags::END_HEADERS);
        put_header(dst, chunk.len(), FrameType::CONTINUATION, end, stream);
        dst.append_bytes(chunk);
    }
}

/// Appends a PRIORITY frame; kept for completeness, since RFC 9113 deprecates
/// the scheme and a gateway has little reason to send one.
pub fn write_priority<B: WriteBuf + ?Sized>(dst: &mut B, stream: StreamId, priority: Priority) {
    write_frame(dst, FrameType::PRIORITY, 0, stream, &priority.encode());
}

/// Appends an RST_STREAM ending `stream` with `code`.
pub fn write_rst_stream<B: WriteBuf + ?Sized>(dst: &mut B, stream: StreamId, code: ErrorCode) {
    write_frame(dst, FrameType::RST_STREAM, 0, stream, &code.0.to_be_bytes());
}

/// Appends a SETTINGS frame naming only the parameters that are set.
pub fn write_settings<B: WriteBuf + ?Sized>(dst: &mut B, settings: &Settings) {
    let length = settings.encoded_len();
    dst.reserve_bytes(HEADER_LEN + length);
    put_header(dst, length, FrameType::SETTINGS, 0, StreamId::ZERO);
    for (id, value) in settings.pairs() {
        let [i0, i1] = id.to_be_bytes();
        let [v0, v1, v2, v3] = value.to_be_bytes();
        let param: [u8; PARAM_LEN] = [i0, i1, v0, v1, v2, v3];
        dst.append_bytes(&param);
    }
}

/// Appends the acknowledgement the peer waits for before relying on its SETTINGS.
pub fn write_settings_ack<B: WriteBuf + ?Sized>(dst: &mut B) {
    write_frame(dst, FrameType::SETTINGS, flags::ACK, StreamId::ZERO, &[]);
}

/// Appends a PING, or with `ack` the answer to one (echoing its payload).
pub fn write_ping<B: WriteBuf + ?Sized>(dst: &mut B, ack: bool, payload: [u8; PING_LEN]) {
    write_frame(
        dst,
        FrameType::PING,
        flag_if(ack, flags::ACK),
        StreamId::ZERO,
        &payload,
    );
}

/// Appends a GOAWAY. Debug data past what every peer must accept (16,384 bytes of
/// payload) is cut, since it is diagnostic only and must not get the frame refused.
pub fn write_goaway<B: WriteBuf + ?Sized>(
    dst: &mut B,
    last_stream: StreamId,
    code: ErrorCode,
    debug: &[u8],
) {
    let debug = &debug[..debug.len().min(MIN_MAX_FRAME_SIZE as usize - 8)];
    let length = 8 + debug.len();
    dst.reserve_bytes(HEADER_LEN + length);
    put_header(dst, length, FrameType::GOAWAY, 0, StreamId::ZERO);
    dst.append_bytes(&last_stream.get().to_be_bytes());
    dst.append_bytes(&code.0.to_be_bytes());
    dst.append_bytes(debug);
}

/// Appends a WINDOW_UPDATE granting `increment` bytes of credit on `stream`, or on
/// the connection for stream 0. The reserved high bit of `increment` is cleared;
/// sending 0 is the caller's bug, which the peer will refuse.
pub fn write_window_update<B: WriteBuf + ?Sized>(dst: &mut B, stream: StreamId, increment: u32) {
    let increment = increment & StreamId::MAX.get();
    write_frame(
        dst,
        FrameType::WINDOW_UPDATE,
        0,
        stream,
        &increment.to_be_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserves_exactly_once() {
        let mut dst = Vec::new();
        write_headers(&mut dst, StreamId::new(1), true, None, &[7; 40_000], 16_384);
        assert_eq!(dst.len(), 3 * HEADER_LEN + 40_000);
        assert_eq!(dst.capacity(), dst.len());
    }

    #[test]
    fn goaway_debug_is_capped() {
        let mut dst = Vec::new();
        write_goaway(
            &mut dst,
            StreamId::new(5),
            ErrorCode::NO_ERROR,
            &[b'x'; 20_000],
        );
        assert_eq!(dst.len(), HEADER_LEN + MIN_MAX_FRAME_SIZE as usize);
    }

    #[test]
    fn empty_block_is_one_frame() {
        let mut dst = Vec::new();
        write_headers(&mut dst, StreamId::new(3), false, None, &[], 16_384);
        assert_eq!(dst, [0, 0, 0, 1, flags::END_HEADERS, 0, 0, 0, 3]);
    }

    #[cfg(feature = "bytes")]
    #[test]
    fn bytes_mut_gets_the_same_bytes_as_vec() {
        let mut vec = Vec::new();
        let mut buf = bytes::BytesMut::new();
        write_goaway(&mut vec, StreamId::new(1), ErrorCode::CANCEL, b"bye");
        write_goaway(&mut buf, StreamId::new(1), ErrorCode::CANCEL, b"bye");
        assert_eq!(&buf[..], &vec[..]);
    }

    #[test]
    #[should_panic(expected = "does not fit in 24 bits")]
    fn oversized_payload_is_refused() {
        write_data(&mut Vec::new(), StreamId::new(1), false, &vec![0; 1 << 24]);
    }
}
