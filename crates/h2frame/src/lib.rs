//! HTTP/2 frames (RFC 9113 sections 4 and 6) for the gateway's own HTTP/2 framing
//! layer.
//!
//! The crate holds no buffers of its own: [`decode`] reads one frame from the
//! front of whatever bytes the caller has, borrowing payloads instead of copying
//! them, and the `write_*` functions append frames to the caller's buffer. That
//! leaves the caller free to release its buffers while a connection is idle.
//!
//! Every rule RFC 9113 section 6 places on a single frame is checked here and
//! reported as a typed [`Error`] with the scope (connection or stream) and code the
//! RFC names. Rules that need connection or stream state (frame ordering around
//! CONTINUATION, stream states, flow-control windows, who may push) belong to the
//! layer above.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod decode;
mod error;
mod frame;
mod header;
mod settings;
mod write;

pub use decode::{Decoded, decode};
pub use error::{Error, ErrorCode};
pub use frame::{Frame, PING_LEN, Priority};
pub use header::{FrameHeader, FrameType, HEADER_LEN, StreamId, flags};
pub use settings::{
    ConnectionSettings, MAX_MAX_FRAME_SIZE, MAX_WINDOW_SIZE, MIN_MAX_FRAME_SIZE, Settings,
};
pub use write::{
    WriteBuf, write_data, write_data_padded, write_frame, write_goaway, write_headers, write_ping,
    write_priority, write_push_promise, write_rst_stream, write_settings, write_settings_ack,
    write_window_update,
};

/// The client connection preface (RFC 9113 section 3.4): a server checks for it
/// before anything else, and a client sends it before its first SETTINGS. Chosen
/// by the RFC so that HTTP/1.1 servers reject it as a malformed request.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
