//! The parse entry point: one frame from the front of a byte buffer.

use crate::error::Error;
use crate::frame::{Frame, check_header, decode_payload};
use crate::header::{FrameHeader, HEADER_LEN};

/// What [`decode`] found at the front of the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole, valid frame, and how many bytes of the input it took.
    Frame(Frame<'a>, usize),
    /// The frame is not all there yet. `min_len` is the buffer length that will
    /// let `decode` make progress, so a caller can size its next read (and know
    /// the frame is within the size limit before buffering it).
    Incomplete {
        /// The buffer length to wait for before calling again.
        min_len: usize,
    },
}

/// Parses the frame at the front of `buf`.
///
/// `max_frame_size` is the SETTINGS_MAX_FRAME_SIZE this endpoint advertised (and
/// the peer acknowledged). A frame declaring more is refused from its 9-byte header,
/// as are the other faults a header alone reveals; faults in the payload are
/// reported once the whole frame is present. So the result for a given byte stream
/// is the same however it was split into reads.
///
/// # Errors
///
/// [`Error::Connection`] ends the connection. [`Error::Stream`] resets one stream
/// and says how many bytes to skip to carry on.
pub fn decode(buf: &[u8], max_frame_size: u32) -> Result<Decoded<'_>, Error> {
    let Some(header) = FrameHeader::parse(buf) else {
        return Ok(Decoded::Incomplete {
            min_len: HEADER_LEN,
        });
    };
    check_header(&header, max_frame_size)?;
    let frame_len = header.frame_len();
    let Some(payload) = buf.get(HEADER_LEN..frame_len) else {
        return Ok(Decoded::Incomplete { min_len: frame_len });
    };
    Ok(Decoded::Frame(decode_payload(&header, payload)?, frame_len))
}
