//! What the connection tells the application, and how a send can be refused.

use bytes::Bytes;
use h2frame::{ErrorCode, PING_LEN, StreamId};
use http::HeaderMap;

/// Something the peer did that the application must act on.
#[derive(Debug)]
pub enum Event {
    /// A new request (server role); with `end_stream` it has no body.
    Request {
        /// The new stream.
        stream: StreamId,
        /// Method, URI (scheme, authority, path) and headers, validated.
        head: http::request::Parts,
        /// The client sent no body.
        end_stream: bool,
    },
    /// The final response to a request we sent (client role); informational
    /// (1xx) ones are dropped. With `end_stream` it has no body.
    Response {
        /// The stream [`Connection::send_request`](crate::Connection::send_request)
        /// returned.
        stream: StreamId,
        /// Status and headers, validated.
        head: http::response::Parts,
        /// The server sent no body.
        end_stream: bool,
    },
    /// Request body bytes (server role) or response body bytes (client role).
    /// The application calls [`Connection::release`](crate::Connection::release)
    /// once it has consumed them, which is what lets the peer send more.
    Data {
        /// The stream.
        stream: StreamId,
        /// The bytes, sharing the caller's read buffer without a copy; keeping
        /// a small piece for long keeps that whole buffer alive, so copy it.
        data: Bytes,
        /// The body is complete.
        end_stream: bool,
    },
    /// The request's (server role) or response's (client role) trailers; the
    /// body is complete.
    Trailers {
        /// The stream.
        stream: StreamId,
        /// The trailer fields.
        headers: HeaderMap,
    },
    /// A stream the application knows about is gone: the peer reset it, or it
    /// broke a rule and we reset it. Nothing more can be sent on it. In the
    /// client role, REFUSED_STREAM with `by_peer` also reports a stream the
    /// server's GOAWAY left unprocessed: the request may be retried.
    Reset {
        /// The stream.
        stream: StreamId,
        /// The code in the RST_STREAM.
        code: ErrorCode,
        /// Whether the peer sent the RST_STREAM (or its GOAWAY refused the
        /// stream); else we reset it.
        by_peer: bool,
    },
    /// A stream whose `send_data` came up short may send again.
    WindowOpened {
        /// The stream.
        stream: StreamId,
    },
    /// The peer is shutting down: as a server, no request above `last_stream`
    /// will come; as a client, no new request may be sent (streams above
    /// `last_stream` were reported as reset just before).
    GoAway {
        /// The highest stream the peer says it processed.
        last_stream: StreamId,
        /// Why.
        code: ErrorCode,
    },
    /// The peer answered our [`Connection::ping`](crate::Connection::ping).
    PingAck {
        /// The payload we sent.
        payload: [u8; PING_LEN],
    },
}

/// Why a send call did nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The stream is not open on our side (never opened, finished, or reset).
    UnknownStream,
    /// A final response was already sent on the stream.
    ResponseAlreadySent,
    /// Body or trailers before the response headers.
    ResponseNotSent,
    /// The connection has ended.
    ConnectionClosed,
    /// No stream may open now (client role): a GOAWAY either way, the server's
    /// stream limit reached, or stream ids exhausted; a server-role connection
    /// never opens one. Open another connection, or wait for a stream to end.
    NoStream,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::UnknownStream => "stream is not open for sending",
            Self::ResponseAlreadySent => "response already sent",
            Self::ResponseNotSent => "response headers not sent yet",
            Self::ConnectionClosed => "connection closed",
            Self::NoStream => "no stream may be opened on this connection now",
        })
    }
}

impl std::error::Error for SendError {}

/// The connection error that ended the connection: a GOAWAY with this code is in
/// the output, and the driver closes once it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionError {
    /// The code sent in GOAWAY.
    pub code: ErrorCode,
    /// The broken rule, also sent as GOAWAY debug data.
    pub reason: &'static str,
}

impl std::fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http2 connection error {}: {}", self.code, self.reason)
    }
}

impl std::error::Error for ConnectionError {}

impl ConnectionError {
    /// The bound against abuse the peer crossed, when that is what ended the
    /// connection.
    pub fn abuse(&self) -> Option<Abuse> {
        let calm = self.code == ErrorCode::ENHANCE_YOUR_CALM;
        Abuse::ALL
            .into_iter()
            .find(|abuse| calm && abuse.reason() == self.reason)
    }
}

/// The bounds against abuse (each a [`Config`](crate::Config) field), which end a
/// connection with ENHANCE_YOUR_CALM; a driver counts them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abuse {
    /// More streams reset than completed (`max_reset_streams`).
    ResetStreams,
    /// Answers owed to a client that does not read them (`max_control_frames_owed`).
    ControlFrames,
    /// Frames that carry nothing, in a row (`max_empty_frames`).
    EmptyFrames,
    /// A header block too large (`max_header_block_size`).
    HeaderBlock,
    /// Too many CONTINUATION frames in one block (`max_continuation_frames`).
    Continuations,
}

impl Abuse {
    const ALL: [Abuse; 5] = [
        Abuse::ResetStreams,
        Abuse::ControlFrames,
        Abuse::EmptyFrames,
        Abuse::HeaderBlock,
        Abuse::Continuations,
    ];

    /// The GOAWAY debug text for it.
    pub fn reason(self) -> &'static str {
        match self {
            Abuse::ResetStreams => "too many reset streams",
            Abuse::ControlFrames => "control frames queued faster than they are read",
            Abuse::EmptyFrames => "too many empty frames",
            Abuse::HeaderBlock => "header block too large",
            Abuse::Continuations => "too many CONTINUATION frames",
        }
    }

    /// The connection error it ends a connection with.
    pub(crate) fn error(self) -> ConnectionError {
        ConnectionError {
            code: ErrorCode::ENHANCE_YOUR_CALM,
            reason: self.reason(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_abuse_is_told_back_from_its_error_and_only_from_enhance_your_calm() {
        for abuse in Abuse::ALL {
            assert_eq!(abuse.error().abuse(), Some(abuse));
            let other = ConnectionError {
                code: ErrorCode::PROTOCOL_ERROR,
                reason: abuse.reason(),
            };
            assert_eq!(other.abuse(), None);
        }
    }
}
