//! Error codes and the two scopes an error can have.

use core::fmt;
use core::ops::Range;

use crate::header::StreamId;

/// An RFC 9113 section 7 error code, as carried by RST_STREAM and GOAWAY.
///
/// A newtype rather than an enum because a peer may send codes this crate does not
/// know, and RFC 9113 section 7 says those must not trigger special behaviour: they
/// are kept as they came so they can be logged or relayed unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// Graceful shutdown; not an error.
    pub const NO_ERROR: Self = Self(0x0);
    /// The peer broke the protocol in a way no more specific code covers.
    pub const PROTOCOL_ERROR: Self = Self(0x1);
    /// The endpoint failed for a reason of its own.
    pub const INTERNAL_ERROR: Self = Self(0x2);
    /// The peer broke the flow-control rules.
    pub const FLOW_CONTROL_ERROR: Self = Self(0x3);
    /// A SETTINGS frame went unacknowledged for too long.
    pub const SETTINGS_TIMEOUT: Self = Self(0x4);
    /// A frame arrived after its stream was half-closed.
    pub const STREAM_CLOSED: Self = Self(0x5);
    /// A frame's length is wrong for its type or over the advertised maximum.
    pub const FRAME_SIZE_ERROR: Self = Self(0x6);
    /// The stream was refused before any application processing.
    pub const REFUSED_STREAM: Self = Self(0x7);
    /// The stream is no longer needed.
    pub const CANCEL: Self = Self(0x8);
    /// The HPACK state can no longer be kept in step with the peer.
    pub const COMPRESSION_ERROR: Self = Self(0x9);
    /// The tunnel opened by a CONNECT request failed.
    pub const CONNECT_ERROR: Self = Self(0xa);
    /// The peer is generating excessive load.
    pub const ENHANCE_YOUR_CALM: Self = Self(0xb);
    /// The TLS properties fall short of RFC 9113 section 9.2.
    pub const INADEQUATE_SECURITY: Self = Self(0xc);
    /// The request must be retried over HTTP/1.1.
    pub const HTTP_1_1_REQUIRED: Self = Self(0xd);

    /// The registered name, for logs; `None` for codes this crate does not know.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => return None,
        })
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "ErrorCode({:#x})", self.0),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why a frame was refused, scoped as RFC 9113 section 5.4 requires.
///
/// The scope decides the caller's reaction: a connection error ends the connection
/// with GOAWAY, a stream error resets one stream with RST_STREAM and the connection
/// carries on. `reason` names the rule that was broken, for logs and GOAWAY debug
/// data; it is not meant to be matched on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The whole connection is unusable: the caller sends GOAWAY and closes.
    Connection {
        /// The code to put in GOAWAY.
        code: ErrorCode,
        /// The rule that was broken.
        reason: &'static str,
    },
    /// Only one stream is affected: the caller sends RST_STREAM and goes on reading.
    Stream {
        /// The stream to reset.
        stream: StreamId,
        /// The code to put in RST_STREAM.
        code: ErrorCode,
        /// The rule that was broken.
        reason: &'static str,
        /// How many input bytes the refused frame occupies; skipping them resumes
        /// parsing at the next frame. Stream errors are only reported once the whole
        /// frame has arrived, so this never exceeds the input.
        frame_len: usize,
        /// For a refused HEADERS frame: where its field block fragment lies in the
        /// input. The peer's HPACK encoder counted on the block being decoded, so the
        /// caller must still feed it (and any CONTINUATION after it) to its decoder to
        /// keep the connection's compression state in step (RFC 9113 section 4.3).
        field_block: Option<Range<usize>>,
    },
}

impl Error {
    /// The code to send, whatever the scope.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Connection { code, .. } | Self::Stream { code, .. } => *code,
        }
    }

    /// The stream to reset, or `None` when the whole connection must go.
    pub fn stream(&self) -> Option<StreamId> {
        match self {
            Self::Connection { .. } => None,
            Self::Stream { stream, .. } => Some(*stream),
        }
    }

    /// The broken rule, for logs and GOAWAY debug data.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Connection { reason, .. } | Self::Stream { reason, .. } => reason,
        }
    }

    pub(crate) const fn connection(code: ErrorCode, reason: &'static str) -> Self {
        Self::Connection { code, reason }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connection { code, reason } => {
                write!(f, "http2 connection error {code}: {reason}")
            }
            Self::Stream {
                stream,
                code,
                reason,
                ..
            } => write!(f, "http2 stream {} error {code}: {reason}", stream.get()),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_codes_keep_their_value() {
        let code = ErrorCode(0xdead);
        assert_eq!(code.name(), None);
        assert_eq!(format!("{code:?}"), "ErrorCode(0xdead)");
        assert_eq!(
            format!("{:?}", ErrorCode::HTTP_1_1_REQUIRED),
            "HTTP_1_1_REQUIRED"
        );
    }

    #[test]
    fn every_registered_code_has_a_name() {
        for value in 0..=0xd {
            assert!(ErrorCode(value).name().is_some(), "{value:#x}");
        }
    }

    #[test]
    fn display_names_scope_and_stream() {
        let err = Error::Stream {
            stream: StreamId::new(3),
            code: ErrorCode::PROTOCOL_ERROR,
            reason: "test",
            frame_len: 9,
            field_block: None,
        };
        assert_eq!(err.to_string(), "http2 stream 3 error PROTOCOL_ERROR: test");
        assert_eq!(err.stream(), Some(StreamId::new(3)));
        let err = Error::connection(ErrorCode::FRAME_SIZE_ERROR, "too big");
        assert_eq!(
            err.to_string(),
            "http2 connection error FRAME_SIZE_ERROR: too big"
        );
        assert_eq!(err.stream(), None);
    }
}
