//! The 9-byte frame header (RFC 9113 section 4.1) and the identifiers in it.

use core::fmt;

/// Size of the fixed frame header that precedes every payload.
pub const HEADER_LEN: usize = 9;

/// A stream identifier: 31 bits, the reserved high bit already dropped.
///
/// A newtype so that a stream id cannot be confused with a length, window or
/// error code, all of which are also `u32` on the wire.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId(u32);

impl StreamId {
    /// Stream 0: frames that concern the whole connection.
    pub const ZERO: Self = Self(0);
    /// The largest identifier a stream can have (2^31 - 1).
    pub const MAX: Self = Self(0x7fff_ffff);

    /// Wraps `id`, dropping the reserved bit, because receivers must ignore it
    /// (RFC 9113 section 4.1) and senders must leave it unset.
    pub const fn new(id: u32) -> Self {
        Self(id & Self::MAX.0)
    }

    /// The identifier as a number.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Whether this is stream 0, which frame rules most often hinge on.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Clients open odd-numbered streams (RFC 9113 section 5.1.1); the caller's
    /// stream-state machine needs this to tell a new request from a push.
    pub const fn is_client_initiated(self) -> bool {
        self.0 & 1 == 1
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({})", self.0)
    }
}

impl From<StreamId> for u32 {
    fn from(id: StreamId) -> u32 {
        id.0
    }
}

/// A frame type octet; a newtype rather than an enum because unknown types are
/// legal and must be ignored, not rejected (RFC 9113 sections 4.1 and 5.5).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameType(pub u8);

impl FrameType {
    /// Request and response body bytes.
    pub const DATA: Self = Self(0x0);
    /// Opens a stream and carries (the start of) a field block.
    pub const HEADERS: Self = Self(0x1);
    /// Deprecated stream prioritisation; still parsed so it can be checked.
    pub const PRIORITY: Self = Self(0x2);
    /// Ends one stream.
    pub const RST_STREAM: Self = Self(0x3);
    /// Connection parameters, and their acknowledgement.
    pub const SETTINGS: Self = Self(0x4);
    /// Announces a server-pushed stream.
    pub const PUSH_PROMISE: Self = Self(0x5);
    /// Liveness and round-trip measurement.
    pub const PING: Self = Self(0x6);
    /// Begins connection shutdown.
    pub const GOAWAY: Self = Self(0x7);
    /// Grants flow-control credit.
    pub const WINDOW_UPDATE: Self = Self(0x8);
    /// Carries the rest of a field block that did not fit in one frame.
    pub const CONTINUATION: Self = Self(0x9);

    /// The registered name, for logs; `None` for extension or unknown types.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "DATA",
            0x1 => "HEADERS",
            0x2 => "PRIORITY",
            0x3 => "RST_STREAM",
            0x4 => "SETTINGS",
            0x5 => "PUSH_PROMISE",
            0x6 => "PING",
            0x7 => "GOAWAY",
            0x8 => "WINDOW_UPDATE",
            0x9 => "CONTINUATION",
            _ => return None,
        })
    }
}

impl fmt::Debug for FrameType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "FrameType({:#04x})", self.0),
        }
    }
}

/// Flag bits. Each frame type gives meaning to a few of them and ignores the rest
/// (RFC 9113 section 4.1), so they are plain constants, not a typed set.
pub mod flags {
    /// DATA, HEADERS: the sender's last frame on this stream.
    pub const END_STREAM: u8 = 0x1;
    /// SETTINGS, PING: this frame answers one from the peer.
    pub const ACK: u8 = 0x1;
    /// HEADERS, PUSH_PROMISE, CONTINUATION: the field block is complete.
    pub const END_HEADERS: u8 = 0x4;
    /// DATA, HEADERS, PUSH_PROMISE: a Pad Length octet leads the payload.
    pub const PADDED: u8 = 0x8;
    /// HEADERS: the exclusive flag, dependency and weight lead the payload.
    pub const PRIORITY: u8 = 0x20;
}

/// The fixed part of every frame, readable before the payload arrives, so that a
/// frame can be judged (and an oversized one refused) before it is buffered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length in bytes (24 bits on the wire).
    pub length: u32,
    /// The frame type.
    pub kind: FrameType,
    /// The raw flag octet; see [`flags`].
    pub flags: u8,
    /// The stream, with the reserved bit dropped.
    pub stream: StreamId,
}

impl FrameHeader {
    /// Reads a header from the start of `buf`; `None` while fewer than
    /// [`HEADER_LEN`] bytes have arrived.
    pub fn parse(buf: &[u8]) -> Option<Self> {
        let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = *buf.first_chunk::<HEADER_LEN>()?;
        Some(Self {
            length: u32::from_be_bytes([0, l0, l1, l2]),
            kind: FrameType(kind),
            flags,
            stream: StreamId::new(u32::from_be_bytes([s0, s1, s2, s3])),
        })
    }

    /// The wire form. Only the low 24 bits of `length` fit; the writers check
    /// lengths before they get here.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let [_, l0, l1, l2] = self.length.to_be_bytes();
        let [s0, s1, s2, s3] = self.stream.get().to_be_bytes();
        [l0, l1, l2, self.kind.0, self.flags, s0, s1, s2, s3]
    }

    /// Whether `flag` is set, for readability at call sites.
    pub const fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Header plus payload: the bytes this frame occupies in the input.
    pub const fn frame_len(&self) -> usize {
        HEADER_LEN + self.length as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_bit_is_dropped() {
        let header = FrameHeader::parse(&[0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).unwrap();
        assert_eq!(header.stream, StreamId::MAX);
        assert_eq!(StreamId::new(0x8000_0001).get(), 1);
    }

    #[test]
    fn short_input_is_not_a_header() {
        assert_eq!(FrameHeader::parse(&[0; HEADER_LEN - 1]), None);
    }

    #[test]
    fn encode_parse_round_trip() {
        let header = FrameHeader {
            length: 0x00ab_cdef,
            kind: FrameType(0xfa),
            flags: 0x5a,
            stream: StreamId::new(0x1234_5678),
        };
        let bytes = header.encode();
        assert_eq!(
            bytes,
            [0xab, 0xcd, 0xef, 0xfa, 0x5a, 0x12, 0x34, 0x56, 0x78]
        );
        assert_eq!(FrameHeader::parse(&bytes), Some(header));
        assert_eq!(header.frame_len(), 9 + 0x00ab_cdef);
    }

    #[test]
    fn names() {
        assert_eq!(format!("{:?}", FrameType::CONTINUATION), "CONTINUATION");
        assert_eq!(format!("{:?}", FrameType(0xfa)), "FrameType(0xfa)");
        assert!(StreamId::new(1).is_client_initiated());
        assert!(!StreamId::new(2).is_client_initiated());
    }
}
