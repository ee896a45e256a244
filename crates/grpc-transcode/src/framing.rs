//! gRPC length-prefixed messages: one flag byte, a 4-byte big-endian length, the message.
//! The gateway frames what it sends upstream and unframes what comes back, one frame at a time.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::status::{Code, Status};

const HEADER_LEN: usize = 5;

/// Frames one encoded message, uncompressed.
pub fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER_LEN + message.len());
    out.put_u8(0);
    // A message over 4 GiB cannot be framed; messages that large are refused long before here
    // by body limits, so saturating keeps this infallible without hiding a real case.
    out.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    out.put_slice(message);
    out.freeze()
}

/// Splits a stream of bytes from the backend into messages, whatever the chunk boundaries.
#[derive(Debug)]
pub struct FrameDecoder {
    buffer: BytesMut,
    max_message: usize,
}

impl FrameDecoder {
    /// A decoder that refuses messages longer than `max_message` bytes, so a broken or hostile
    /// backend cannot make the gateway buffer without bound.
    pub fn new(max_message: usize) -> FrameDecoder {
        FrameDecoder {
            buffer: BytesMut::new(),
            max_message,
        }
    }

    /// Adds bytes as they arrive.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// The next whole message, `Ok(None)` when more bytes are needed.
    ///
    /// Compressed frames are refused: the gateway asks for identity encoding and cannot read
    /// anything else.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, Status> {
        if self.buffer.len() < HEADER_LEN {
            return Ok(None);
        }
        let flag = self.buffer[0];
        if flag != 0 {
            return Err(Status::new(
                Code::Internal,
                format!(
                    "the backend sent a frame with flag {flag}: compressed messages are not supported"
                ),
            ));
        }
        let len = u32::from_be_bytes([
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
            self.buffer[4],
        ]) as usize;
        if len > self.max_message {
            return Err(Status::new(
                Code::ResourceExhausted,
                format!(
                    "a message of {len} bytes exceeds the limit of {} bytes",
                    self.max_message
                ),
            ));
        }
        if self.buffer.len() < HEADER_LEN + len {
            return Ok(None);
        }
        self.buffer.advance(HEADER_LEN);
        Ok(Some(self.buffer.split_to(len).freeze()))
    }

    /// Call when the stream has ended: leftover bytes mean the last frame was cut short.
    pub fn finish(&self) -> Result<(), Status> {
        if self.buffer.is_empty() {
            Ok(())
        } else {
            Err(Status::new(
                Code::Internal,
                format!(
                    "the backend stream ended inside a frame ({} bytes left over)",
                    self.buffer.len()
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_across_chunks_come_out_whole() {
        let mut wire = frame(b"hello").to_vec();
        wire.extend_from_slice(&frame(b""));
        wire.extend_from_slice(&frame(b"world"));
        let mut decoder = FrameDecoder::new(1024);
        let mut out = Vec::new();
        for byte in wire {
            decoder.push(&[byte]);
            while let Some(message) = decoder.next_message().unwrap() {
                out.push(message);
            }
        }
        assert_eq!(out, vec![&b"hello"[..], b"", b"world"]);
        decoder.finish().unwrap();
    }

    #[test]
    fn compressed_and_oversize_frames_are_refused() {
        let mut decoder = FrameDecoder::new(1024);
        decoder.push(&[1, 0, 0, 0, 1, 9]);
        assert_eq!(decoder.next_message().unwrap_err().code, Code::Internal);

        let mut decoder = FrameDecoder::new(4);
        decoder.push(&frame(b"hello"));
        assert_eq!(
            decoder.next_message().unwrap_err().code,
            Code::ResourceExhausted
        );
    }

    #[test]
    fn a_cut_frame_is_reported_at_the_end() {
        let mut decoder = FrameDecoder::new(1024);
        decoder.push(&frame(b"hello")[..4]);
        assert!(decoder.next_message().unwrap().is_none());
        assert!(decoder.finish().is_err());
    }
}
