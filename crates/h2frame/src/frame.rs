//! Frame kinds (RFC 9113 section 6): what each payload means and the rules a
//! single frame must obey on its own.
//!
//! Rules that need connection or stream state (which frame may follow which, flow
//! control windows, stream states, who may push) belong to the layer above.

use crate::error::{Error, ErrorCode};
use crate::header::{FrameHeader, FrameType, HEADER_LEN, StreamId, flags};
use crate::settings::{PARAM_LEN, Settings};

/// Size of the exclusive bit, dependency and weight fields.
pub(crate) const PRIORITY_LEN: usize = 5;
/// Size of a PING payload.
pub const PING_LEN: usize = 8;

/// A priority block from PRIORITY or HEADERS (RFC 9113 section 5.3.2).
///
/// The scheme is deprecated, but the fields still have to be parsed to find the
/// field block behind them and to apply the self-dependency rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority {
    /// The stream this one depends on.
    pub dependency: StreamId,
    /// Whether the dependency is exclusive.
    pub exclusive: bool,
    /// The weight as sent: the effective weight is one more (1..=256).
    pub weight: u8,
}

impl Priority {
    fn parse(bytes: [u8; PRIORITY_LEN]) -> Self {
        let [d0, d1, d2, d3, weight] = bytes;
        Self {
            dependency: StreamId::new(u32::from_be_bytes([d0, d1, d2, d3])),
            exclusive: d0 & 0x80 != 0,
            weight,
        }
    }

    pub(crate) fn encode(&self) -> [u8; PRIORITY_LEN] {
        let [d0, d1, d2, d3] = self.dependency.get().to_be_bytes();
        let e = if self.exclusive { 0x80 } else { 0 };
        [d0 | e, d1, d2, d3, self.weight]
    }
}

/// One parsed frame. Payloads borrow from the input, so parsing copies nothing;
/// padding is stripped, and DATA keeps the padded length flow control needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Body bytes of a stream.
    Data {
        /// The stream.
        stream: StreamId,
        /// Last frame the sender sends on this stream.
        end_stream: bool,
        /// The data, padding removed.
        data: &'a [u8],
        /// The whole payload length, padding and Pad Length included: what flow
        /// control charges for this frame (RFC 9113 section 6.9).
        flow_len: u32,
    },
    /// Opens a stream (or sends trailers) with the first piece of a field block.
    Headers {
        /// The stream.
        stream: StreamId,
        /// Last frame the sender sends on this stream.
        end_stream: bool,
        /// The field block is complete; otherwise CONTINUATION frames follow.
        end_headers: bool,
        /// The deprecated priority block, when the PRIORITY flag was set.
        priority: Option<Priority>,
        /// A piece of the HPACK-encoded field block, padding removed.
        fragment: &'a [u8],
    },
    /// A deprecated reprioritisation.
    Priority {
        /// The stream being reprioritised.
        stream: StreamId,
        /// Its new priority.
        priority: Priority,
    },
    /// Ends a stream.
    RstStream {
        /// The stream.
        stream: StreamId,
        /// Why.
        code: ErrorCode,
    },
    /// Connection parameters, or the acknowledgement of ours.
    Settings {
        /// This acknowledges our SETTINGS; `settings` is then empty.
        ack: bool,
        /// The parameters the frame names.
        settings: Settings,
    },
    /// Reserves a stream for a server push.
    PushPromise {
        /// The stream the promise is associated with.
        stream: StreamId,
        /// The stream being reserved.
        promised: StreamId,
        /// The field block is complete; otherwise CONTINUATION frames follow.
        end_headers: bool,
        /// A piece of the HPACK-encoded request field block, padding removed.
        fragment: &'a [u8],
    },
    /// A liveness probe, or the answer to ours.
    Ping {
        /// This answers our PING.
        ack: bool,
        /// Opaque data, echoed in the answer.
        payload: [u8; PING_LEN],
    },
    /// The peer is shutting the connection down.
    GoAway {
        /// The highest stream the peer may have processed.
        last_stream: StreamId,
        /// Why.
        code: ErrorCode,
        /// Diagnostic bytes with no defined meaning.
        debug: &'a [u8],
    },
    /// Flow-control credit for a stream, or for the connection on stream 0.
    WindowUpdate {
        /// The stream, or stream 0 for the connection window.
        stream: StreamId,
        /// Credit granted, 1..=2^31-1.
        increment: u32,
    },
    /// The next piece of a field block started by HEADERS or PUSH_PROMISE.
    Continuation {
        /// The stream.
        stream: StreamId,
        /// The field block is complete.
        end_headers: bool,
        /// A piece of the HPACK-encoded field block.
        fragment: &'a [u8],
    },
    /// A frame type this crate does not know; returned rather than dropped so
    /// the caller can skip it explicitly (and still check CONTINUATION ordering).
    Unknown {
        /// The type octet.
        kind: FrameType,
        /// The raw flags.
        flags: u8,
        /// The stream.
        stream: StreamId,
        /// The raw payload.
        payload: &'a [u8],
    },
}

impl Frame<'_> {
    /// The stream the frame was sent on (stream 0 for connection frames).
    pub fn stream(&self) -> StreamId {
        match *self {
            Self::Data { stream, .. }
            | Self::Headers { stream, .. }
            | Self::Priority { stream, .. }
            | Self::RstStream { stream, .. }
            | Self::PushPromise { stream, .. }
            | Self::WindowUpdate { stream, .. }
            | Self::Continuation { stream, .. }
            | Self::Unknown { stream, .. } => stream,
            Self::Settings { .. } | Self::Ping { .. } | Self::GoAway { .. } => StreamId::ZERO,
        }
    }
}

fn conn(code: ErrorCode, reason: &'static str) -> Error {
    Error::connection(code, reason)
}

fn protocol(reason: &'static str) -> Error {
    conn(ErrorCode::PROTOCOL_ERROR, reason)
}

fn frame_size(reason: &'static str) -> Error {
    conn(ErrorCode::FRAME_SIZE_ERROR, reason)
}

fn stream_error(header: &FrameHeader, code: ErrorCode, reason: &'static str) -> Error {
    Error::Stream {
        stream: header.stream,
        code,
        reason,
        frame_len: header.frame_len(),
        field_block: None,
    }
}

/// The connection errors a frame header alone reveals. They are reported before
/// the payload arrives, so the caller never buffers a frame it will refuse, and
/// the result does not depend on how the input was split into reads.
pub(crate) fn check_header(header: &FrameHeader, max_frame_size: u32) -> Result<(), Error> {
    if header.length > max_frame_size {
        return Err(frame_size("frame longer than SETTINGS_MAX_FRAME_SIZE"));
    }
    let len = header.length as usize;
    let stream_zero = header.stream.is_zero();
    let pad_len_field = usize::from(header.has(flags::PADDED));
    let priority_fields = if header.has(flags::PRIORITY) {
        PRIORITY_LEN
    } else {
        0
    };
    Err(match header.kind {
        FrameType::DATA if stream_zero => protocol("DATA on stream 0"),
        FrameType::DATA if len < pad_len_field => frame_size("padded DATA without a Pad Length"),
        FrameType::HEADERS if stream_zero => protocol("HEADERS on stream 0"),
        FrameType::HEADERS if len < pad_len_field + priority_fields => {
            frame_size("HEADERS too short for its padding and priority fields")
        }
        FrameType::PRIORITY if stream_zero => protocol("PRIORITY on stream 0"),
        FrameType::RST_STREAM if stream_zero => protocol("RST_STREAM on stream 0"),
        FrameType::RST_STREAM if len != 4 => frame_size("RST_STREAM length is not 4"),
        FrameType::SETTINGS if !stream_zero => protocol("SETTINGS on a stream other than 0"),
        FrameType::SETTINGS if header.has(flags::ACK) && len != 0 => {
            frame_size("SETTINGS ACK with a payload")
        }
        FrameType::SETTINGS if !len.is_multiple_of(PARAM_LEN) => {
            frame_size("SETTINGS length is not a multiple of 6")
        }
        FrameType::PUSH_PROMISE if stream_zero => protocol("PUSH_PROMISE on stream 0"),
        FrameType::PUSH_PROMISE if len < pad_len_field + 4 => {
            frame_size("PUSH_PROMISE too short for its fixed fields")
        }
        FrameType::PING if !stream_zero => protocol("PING on a stream other than 0"),
        FrameType::PING if len != PING_LEN => frame_size("PING length is not 8"),
        FrameType::GOAWAY if !stream_zero => protocol("GOAWAY on a stream other than 0"),
        FrameType::GOAWAY if len < 8 => frame_size("GOAWAY shorter than 8"),
        FrameType::WINDOW_UPDATE if len != 4 => frame_size("WINDOW_UPDATE length is not 4"),
        FrameType::CONTINUATION if stream_zero => protocol("CONTINUATION on stream 0"),
        _ => return Ok(()),
    })
}

/// Splits off the Pad Length octet when the PADDED flag is set.
fn pad_len(header: &FrameHeader, payload: &[u8]) -> Result<(usize, usize), Error> {
    if !header.has(flags::PADDED) {
        return Ok((0, 0));
    }
    match payload.first() {
        Some(&pad) => Ok((usize::from(pad), 1)),
        None => Err(frame_size("padded frame without a Pad Length")),
    }
}

/// The bytes between `start` and the padding, or PROTOCOL_ERROR when the padding
/// reaches back past `start` (RFC 9113 sections 6.1, 6.2 and 6.6).
fn unpad(payload: &[u8], start: usize, pad: usize) -> Result<&[u8], Error> {
    payload
        .len()
        .checked_sub(pad)
        .and_then(|end| payload.get(start..end))
        .ok_or_else(|| protocol("padding as long as the rest of the payload"))
}

fn u32_at(payload: &[u8], at: usize) -> Option<u32> {
    let bytes = payload.get(at..)?.first_chunk::<4>()?;
    Some(u32::from_be_bytes(*bytes))
}

/// Interprets a payload whose header passed [`check_header`] and whose length is
/// `header.length`.
pub(crate) fn decode_payload<'a>(
    header: &FrameHeader,
    payload: &'a [u8],
) -> Result<Frame<'a>, Error> {
    let stream = header.stream;
    let short = || frame_size("payload shorter than its fixed fields");
    Ok(match header.kind {
        FrameType::DATA => {
            let (pad, start) = pad_len(header, payload)?;
            Frame::Data {
                stream,
                end_stream: header.has(flags::END_STREAM),
                data: unpad(payload, start, pad)?,
                flow_len: header.length,
            }
        }
        FrameType::HEADERS => decode_headers(header, payload)?,
        FrameType::PRIORITY => {
            let Ok(bytes) = <[u8; PRIORITY_LEN]>::try_from(payload) else {
                return Err(stream_error(
                    header,
                    ErrorCode::FRAME_SIZE_ERROR,
                    "PRIORITY length is not 5",
                ));
            };
            let priority = Priority::parse(bytes);
            if priority.dependency == stream {
                return Err(stream_error(
                    header,
                    ErrorCode::PROTOCOL_ERROR,
                    "stream depends on itself",
                ));
            }
            Frame::Priority { stream, priority }
        }
        FrameType::RST_STREAM => Frame::RstStream {
            stream,
            code: ErrorCode(u32_at(payload, 0).ok_or_else(short)?),
        },
        FrameType::SETTINGS => Frame::Settings {
            ack: header.has(flags::ACK),
            settings: Settings::parse(payload)?,
        },
        FrameType::PUSH_PROMISE => {
            let (pad, start) = pad_len(header, payload)?;
            let promised = StreamId::new(u32_at(payload, start).ok_or_else(short)?);
            Frame::PushPromise {
                stream,
                promised,
                end_headers: header.has(flags::END_HEADERS),
                fragment: unpad(payload, start + 4, pad)?,
            }
        }
        FrameType::PING => Frame::Ping {
            ack: header.has(flags::ACK),
            payload: *payload.first_chunk::<PING_LEN>().ok_or_else(short)?,
        },
        FrameType::GOAWAY => Frame::GoAway {
            last_stream: StreamId::new(u32_at(payload, 0).ok_or_else(short)?),
            code: ErrorCode(u32_at(payload, 4).ok_or_else(short)?),
            debug: payload.get(8..).ok_or_else(short)?,
        },
        FrameType::WINDOW_UPDATE => {
            let increment = u32_at(payload, 0).ok_or_else(short)? & StreamId::MAX.get();
            if increment == 0 {
                if stream.is_zero() {
                    return Err(protocol("WINDOW_UPDATE of 0 on the connection"));
                }
                return Err(stream_error(
                    header,
                    ErrorCode::PROTOCOL_ERROR,
                    "WINDOW_UPDATE of 0",
                ));
            }
            Frame::WindowUpdate { stream, increment }
        }
        FrameType::CONTINUATION => Frame::Continuation {
            stream,
            end_headers: header.has(flags::END_HEADERS),
            fragment: payload,
        },
        kind => Frame::Unknown {
            kind,
            flags: header.flags,
            stream,
            payload,
        },
    })
}

fn decode_headers<'a>(header: &FrameHeader, payload: &'a [u8]) -> Result<Frame<'a>, Error> {
    let stream = header.stream;
    let (pad, mut start) = pad_len(header, payload)?;
    let priority = if header.has(flags::PRIORITY) {
        let bytes = payload
            .get(start..)
            .and_then(|rest| rest.first_chunk::<PRIORITY_LEN>())
            .ok_or_else(|| frame_size("HEADERS too short for its priority fields"))?;
        start += PRIORITY_LEN;
        Some(Priority::parse(*bytes))
    } else {
        None
    };
    let fragment = unpad(payload, start, pad)?;
    if priority.is_some_and(|p| p.dependency == stream) {
        let at = HEADER_LEN + start;
        return Err(Error::Stream {
            stream,
            code: ErrorCode::PROTOCOL_ERROR,
            reason: "stream depends on itself",
            frame_len: header.frame_len(),
            field_block: Some(at..at + fragment.len()),
        });
    }
    Ok(Frame::Headers {
        stream,
        end_stream: header.has(flags::END_STREAM),
        end_headers: header.has(flags::END_HEADERS),
        priority,
        fragment,
    })
}
