//! Every single-frame MUST of RFC 9113 sections 4 and 6, one test each, checking
//! the scope and code of the error.

mod common;

use common::{MAX, assert_connection_error, assert_stream_error, decode_all, param, raw};
use h2frame::{
    Decoded, Error, ErrorCode, Frame, FrameType, HEADER_LEN, Settings, StreamId, decode, flags,
};

const PROTOCOL: ErrorCode = ErrorCode::PROTOCOL_ERROR;
const FRAME_SIZE: ErrorCode = ErrorCode::FRAME_SIZE_ERROR;

// ---- Section 6.1-6.10: frames that need a stream, on stream 0.

#[test]
fn data_on_stream_zero() {
    assert_connection_error(decode_all(&raw(FrameType::DATA, 0, 0, b"x")), PROTOCOL);
}

#[test]
fn headers_on_stream_zero() {
    let bytes = raw(FrameType::HEADERS, flags::END_HEADERS, 0, b"\x82");
    assert_connection_error(decode_all(&bytes), PROTOCOL);
}

#[test]
fn priority_on_stream_zero() {
    let bytes = raw(FrameType::PRIORITY, 0, 0, &[0, 0, 0, 1, 15]);
    assert_connection_error(decode_all(&bytes), PROTOCOL);
}

#[test]
fn rst_stream_on_stream_zero() {
    assert_connection_error(
        decode_all(&raw(FrameType::RST_STREAM, 0, 0, &[0; 4])),
        PROTOCOL,
    );
}

#[test]
fn push_promise_on_stream_zero() {
    let bytes = raw(
        FrameType::PUSH_PROMISE,
        flags::END_HEADERS,
        0,
        &[0, 0, 0, 2],
    );
    assert_connection_error(decode_all(&bytes), PROTOCOL);
}

#[test]
fn continuation_on_stream_zero() {
    let bytes = raw(FrameType::CONTINUATION, flags::END_HEADERS, 0, b"\x82");
    assert_connection_error(decode_all(&bytes), PROTOCOL);
}

// ---- Connection-level frames on a stream.

#[test]
fn settings_on_a_stream() {
    assert_connection_error(decode_all(&raw(FrameType::SETTINGS, 0, 1, &[])), PROTOCOL);
}

#[test]
fn ping_on_a_stream() {
    assert_connection_error(decode_all(&raw(FrameType::PING, 0, 1, &[0; 8])), PROTOCOL);
}

#[test]
fn goaway_on_a_stream() {
    assert_connection_error(decode_all(&raw(FrameType::GOAWAY, 0, 1, &[0; 8])), PROTOCOL);
}

// ---- Padding (sections 6.1, 6.2, 6.6).

#[test]
fn data_padding_as_long_as_payload() {
    // Payload of 4: Pad Length 4 leaves no room for the octet itself.
    let bytes = raw(FrameType::DATA, flags::PADDED, 1, &[4, 0, 0, 0]);
    assert_connection_error(decode_all(&bytes), PROTOCOL);
    // Pad Length 3 is the largest that fits: no data, three padding bytes.
    let bytes = raw(FrameType::DATA, flags::PADDED, 1, &[3, 0, 0, 0]);
    assert_eq!(
        decode_all(&bytes),
        Ok(Frame::Data {
            stream: StreamId::new(1),
            end_stream: false,
            data: &[],
            flow_len: 4,
        })
    );
}

#[test]
fn headers_padding_past_fragment() {
    let bytes = raw(FrameType::HEADERS, flags::PADDED, 1, &[4, 0x82, 0, 0]);
    assert_connection_error(decode_all(&bytes), PROTOCOL);
    // With PRIORITY the five priority octets are not padding room either.
    let payload = [1, 0, 0, 0, 3, 15];
    let bytes = raw(
        FrameType::HEADERS,
        flags::PADDED | flags::PRIORITY,
        1,
        &payload,
    );
    assert_connection_error(decode_all(&bytes), PROTOCOL);
}

#[test]
fn push_promise_padding_past_fragment() {
    // Pad Length 1, promised stream 2, no room left for the padding byte.
    let bytes = raw(FrameType::PUSH_PROMISE, flags::PADDED, 1, &[1, 0, 0, 0, 2]);
    assert_connection_error(decode_all(&bytes), PROTOCOL);
}

#[test]
fn padded_frames_too_short_for_their_fixed_fields() {
    // Section 4.2: too small to contain mandatory frame data.
    for (kind, flag, payload) in [
        (FrameType::DATA, flags::PADDED, &[][..]),
        (FrameType::HEADERS, flags::PADDED, &[][..]),
        (FrameType::HEADERS, flags::PRIORITY, &[0, 0, 0, 3][..]),
        (FrameType::PUSH_PROMISE, 0, &[0, 0, 2][..]),
        (FrameType::PUSH_PROMISE, flags::PADDED, &[0, 0, 0, 2][..]),
    ] {
        assert_connection_error(decode_all(&raw(kind, flag, 1, payload)), FRAME_SIZE);
    }
}

// ---- SETTINGS (section 6.5).

#[test]
fn settings_ack_with_payload() {
    let bytes = raw(FrameType::SETTINGS, flags::ACK, 0, &param(3, 100));
    assert_connection_error(decode_all(&bytes), FRAME_SIZE);
}

#[test]
fn settings_length_not_a_multiple_of_6() {
    let mut payload = param(3, 100);
    payload.push(0);
    assert_connection_error(
        decode_all(&raw(FrameType::SETTINGS, 0, 0, &payload)),
        FRAME_SIZE,
    );
}

#[test]
fn settings_enable_push_not_0_or_1() {
    let bytes = raw(FrameType::SETTINGS, 0, 0, &param(2, 2));
    assert_connection_error(decode_all(&bytes), PROTOCOL);
}

#[test]
fn settings_initial_window_size_above_2_31_minus_1() {
    let bytes = raw(FrameType::SETTINGS, 0, 0, &param(4, 1 << 31));
    assert_connection_error(decode_all(&bytes), ErrorCode::FLOW_CONTROL_ERROR);
}

#[test]
fn settings_max_frame_size_below_16384() {
    let bytes = raw(FrameType::SETTINGS, 0, 0, &param(5, 16_383));
    assert_connection_error(decode_all(&bytes), PROTOCOL);
}

#[test]
fn settings_max_frame_size_above_2_24_minus_1() {
    let bytes = raw(FrameType::SETTINGS, 0, 0, &param(5, 1 << 24));
    assert_connection_error(decode_all(&bytes), PROTOCOL);
}

#[test]
fn settings_unknown_identifiers_are_ignored() {
    let mut payload = param(0x0, 1);
    payload.extend(param(0xf00d, u32::MAX));
    payload.extend(param(6, 8192));
    assert_eq!(
        decode_all(&raw(FrameType::SETTINGS, 0, 0, &payload)),
        Ok(Frame::Settings {
            ack: false,
            settings: Settings {
                max_header_list_size: Some(8192),
                ..Settings::default()
            },
        })
    );
}

// ---- Fixed-length frames.

#[test]
fn ping_length_not_8() {
    for len in [0, 7, 9] {
        let bytes = raw(FrameType::PING, 0, 0, &vec![0; len]);
        assert_connection_error(decode_all(&bytes), FRAME_SIZE);
    }
}

#[test]
fn priority_length_not_5_is_a_stream_error() {
    for len in [0, 4, 6] {
        let bytes = raw(FrameType::PRIORITY, 0, 3, &vec![0; len]);
        let err = assert_stream_error(decode_all(&bytes), 3, FRAME_SIZE);
        assert!(matches!(err, Error::Stream { frame_len, .. } if frame_len == HEADER_LEN + len));
    }
}

#[test]
fn rst_stream_length_not_4() {
    for len in [3, 5] {
        let bytes = raw(FrameType::RST_STREAM, 0, 1, &vec![0; len]);
        assert_connection_error(decode_all(&bytes), FRAME_SIZE);
    }
}

#[test]
fn window_update_length_not_4() {
    for (stream, len) in [(0, 3), (1, 5)] {
        let bytes = raw(
            FrameType::WINDOW_UPDATE,
            0,
            stream,
            &vec![0, 0, 0, 1, 0][..len],
        );
        assert_connection_error(decode_all(&bytes), FRAME_SIZE);
    }
}

#[test]
fn goaway_shorter_than_8() {
    assert_connection_error(
        decode_all(&raw(FrameType::GOAWAY, 0, 0, &[0; 7])),
        FRAME_SIZE,
    );
}

// ---- Self-dependency (section 5.3.1).

#[test]
fn priority_depending_on_its_own_stream() {
    let bytes = raw(FrameType::PRIORITY, 0, 5, &[0x80, 0, 0, 5, 15]);
    assert_stream_error(decode_all(&bytes), 5, PROTOCOL);
}

#[test]
fn headers_depending_on_their_own_stream() {
    let payload = [2, 0, 0, 0, 7, 15, 0x82, 0x86, 0, 0];
    let bytes = raw(
        FrameType::HEADERS,
        flags::PADDED | flags::PRIORITY | flags::END_HEADERS,
        7,
        &payload,
    );
    let err = assert_stream_error(decode_all(&bytes), 7, PROTOCOL);
    // The field block is still handed back so HPACK state can be kept.
    let Error::Stream {
        frame_len,
        field_block: Some(range),
        ..
    } = err
    else {
        panic!("no field block in {err:?}");
    };
    assert_eq!(frame_len, bytes.len());
    assert_eq!(&bytes[range], &[0x82, 0x86]);
}

// ---- WINDOW_UPDATE increment (section 6.9).

#[test]
fn window_update_of_zero_on_a_stream() {
    let bytes = raw(FrameType::WINDOW_UPDATE, 0, 9, &[0; 4]);
    assert_stream_error(decode_all(&bytes), 9, PROTOCOL);
}

#[test]
fn window_update_of_zero_on_the_connection() {
    let bytes = raw(FrameType::WINDOW_UPDATE, 0, 0, &[0; 4]);
    assert_connection_error(decode_all(&bytes), PROTOCOL);
}

#[test]
fn window_update_reserved_bit_is_ignored() {
    // Only the reserved bit set: the increment is 0.
    let bytes = raw(FrameType::WINDOW_UPDATE, 0, 0, &[0x80, 0, 0, 0]);
    assert_connection_error(decode_all(&bytes), PROTOCOL);
}

// ---- Frame size (section 4.2).

#[test]
fn sixteen_mebibyte_frame_refused_from_its_header_alone() {
    // Length 2^24 - 1 against the initial 16 KiB limit: only the 9 header bytes exist.
    let header = [0xff, 0xff, 0xff, 0x0, 0x0, 0, 0, 0, 1];
    assert_connection_error(decode(&header, MAX), FRAME_SIZE);
    // Even the first byte of a payload is not waited for, whatever the type.
    for kind in [0x1, 0x4, 0x9, 0xfa] {
        let header = [0x00, 0x40, 0x01, kind, 0x0, 0, 0, 0, 0];
        assert_connection_error(decode(&header, MAX), FRAME_SIZE);
    }
}

#[test]
fn frame_of_exactly_max_frame_size_is_accepted() {
    let bytes = raw(FrameType::DATA, 0, 1, &vec![0; MAX as usize]);
    assert!(matches!(
        decode(&bytes[..HEADER_LEN], MAX),
        Ok(Decoded::Incomplete { min_len }) if min_len == bytes.len()
    ));
    assert!(matches!(decode_all(&bytes), Ok(Frame::Data { data, .. }) if data.len() == 16_384));
}

#[test]
fn header_faults_need_no_payload() {
    // Only the header of a PING on stream 1 has arrived: refused already.
    let bytes = raw(FrameType::PING, 0, 1, &[0; 8]);
    assert_connection_error(decode(&bytes[..HEADER_LEN], MAX), PROTOCOL);
}

// ---- Extensibility (sections 4.1 and 5.5).

#[test]
fn unknown_frame_types_are_returned_to_be_ignored() {
    let bytes = raw(FrameType(0xfa), 0xff, 0, b"whatever");
    assert_eq!(
        decode_all(&bytes),
        Ok(Frame::Unknown {
            kind: FrameType(0xfa),
            flags: 0xff,
            stream: StreamId::ZERO,
            payload: b"whatever",
        })
    );
}

#[test]
fn unused_flags_are_ignored() {
    // A PING with every flag but ACK set is a plain PING.
    let bytes = raw(FrameType::PING, 0xfe, 0, b"12345678");
    assert_eq!(
        decode_all(&bytes),
        Ok(Frame::Ping {
            ack: false,
            payload: *b"12345678",
        })
    );
}

#[test]
fn parsing_resumes_after_a_stream_error() {
    let mut bytes = raw(FrameType::WINDOW_UPDATE, 0, 9, &[0; 4]);
    bytes.extend(raw(FrameType::WINDOW_UPDATE, 0, 9, &[0, 0, 0, 1]));
    let Err(Error::Stream { frame_len, .. }) = decode(&bytes, MAX) else {
        panic!("expected a stream error");
    };
    assert_eq!(
        decode_all(&bytes[frame_len..]),
        Ok(Frame::WindowUpdate {
            stream: StreamId::new(9),
            increment: 1,
        })
    );
}
