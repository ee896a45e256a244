//! The peer's side: the preface (server role), then frame by frame, every rule
//! that needs connection or stream state.

use bytes::{Buf, BytesMut};
use h2frame::{
    Decoded, Error as FrameError, ErrorCode, Frame, FrameType, PREFACE, Settings, StreamId,
};

use super::{
    Connection, DEFAULT_WINDOW, DataOut, PendingBlock, Phase, Result, Role, SHUTDOWN_PING, Target,
    fail,
};
use crate::event::{Abuse, Event};
use crate::headers::{self, RequestBuilder, ResponseBuilder, TrailerBuilder};
use crate::known::Known;
use crate::stream::{Lookup, Stream};

/// The GOAWAY reason for HEADERS on a stream a client never opened.
const IDLE_HEADERS: &str = "HEADERS on a stream the client did not open";

impl Connection {
    /// Consumes every whole frame at the front of `input` (and the preface
    /// first), leaving a partial frame for the next call. DATA payloads become
    /// `Bytes` sharing `input`'s memory.
    ///
    /// # Errors
    ///
    /// On a connection error a GOAWAY is queued, the error is returned (now and on
    /// every later call) and the driver closes once the output is written.
    pub fn recv(&mut self, input: &mut BytesMut) -> Result<()> {
        if let Some(err) = self.error {
            input.clear();
            return Err(err);
        }
        self.wake();
        match self.recv_frames(input) {
            Ok(()) => Ok(()),
            Err(err) => {
                input.clear();
                Err(self.close_with(err))
            }
        }
    }

    fn recv_frames(&mut self, input: &mut BytesMut) -> Result<()> {
        if self.phase == Phase::Preface {
            let have = input.len().min(PREFACE.len());
            if input.get(..have) != PREFACE.get(..have) {
                return fail(ErrorCode::PROTOCOL_ERROR, "invalid connection preface");
            }
            if have < PREFACE.len() {
                return Ok(());
            }
            input.advance(PREFACE.len());
            self.phase = Phase::FirstSettings;
        }
        loop {
            let base = input.as_ptr() as usize;
            let (len, data) = match h2frame::decode(input, self.config.max_frame_size) {
                Ok(Decoded::Incomplete { .. }) => return Ok(()),
                Ok(Decoded::Frame(frame, len)) => {
                    let data = self.on_frame(frame)?;
                    // Where the payload sits in `input`, for a zero-copy slice.
                    let data = data.map(|(stream, slice, end_stream)| DataOut {
                        stream,
                        range: {
                            let start = (slice.as_ptr() as usize).saturating_sub(base);
                            start..start + slice.len()
                        },
                        end_stream,
                    });
                    (len, data)
                }
                Err(FrameError::Connection { code, reason }) => return fail(code, reason),
                Err(FrameError::Stream {
                    stream,
                    code,
                    frame_len,
                    field_block,
                    ..
                }) => {
                    let kind = input.get(3).copied().map(FrameType);
                    let end_headers = input
                        .get(4)
                        .is_some_and(|f| f & h2frame::flags::END_HEADERS != 0);
                    let fragment = field_block.and_then(|r| input.get(r)).map(<[u8]>::to_vec);
                    self.on_stream_error(stream, code, kind, fragment, end_headers)?;
                    (frame_len, None)
                }
            };
            match data {
                Some(out) => {
                    let frame = input.split_to(len).freeze();
                    let data = frame.slice(out.range.start.min(len)..out.range.end.min(len));
                    self.events.push_back(Event::Data {
                        stream: out.stream,
                        data,
                        end_stream: out.end_stream,
                    });
                }
                None => input.advance(len),
            }
        }
    }

    /// Handles one valid frame; returns the DATA payload to hand out, if any.
    fn on_frame<'a>(&mut self, frame: Frame<'a>) -> Result<Option<(StreamId, &'a [u8], bool)>> {
        if self.block.is_some() {
            return match frame {
                Frame::Continuation {
                    stream,
                    end_headers,
                    fragment,
                } => self
                    .on_continuation(stream, end_headers, fragment)
                    .map(|()| None),
                _ => fail(
                    ErrorCode::PROTOCOL_ERROR,
                    "frame other than CONTINUATION inside a header block",
                ),
            };
        }
        if self.phase == Phase::FirstSettings
            && !matches!(frame, Frame::Settings { ack: false, .. })
        {
            return fail(ErrorCode::PROTOCOL_ERROR, "first frame is not SETTINGS");
        }
        match frame {
            Frame::Data {
                stream,
                end_stream,
                data,
                flow_len,
            } => return self.on_data(stream, end_stream, data, flow_len),
            Frame::Headers {
                stream,
                end_stream,
                end_headers,
                fragment,
                ..
            } => self.on_headers(stream, end_stream, end_headers, fragment)?,
            Frame::Priority { .. } | Frame::Unknown { .. } => self.empty_frame()?,
            Frame::RstStream { stream, code } => self.on_rst_stream(stream, code)?,
            Frame::Settings { ack: true, .. } => self.on_settings_ack(),
            Frame::Settings {
                ack: false,
                settings,
            } => self.on_settings(&settings)?,
            Frame::PushPromise { .. } => {
                return fail(
                    ErrorCode::PROTOCOL_ERROR,
                    match self.role {
                        Role::Server => "PUSH_PROMISE from a client",
                        Role::Client => "PUSH_PROMISE while push is disabled",
                    },
                );
            }
            Frame::Ping {
                ack: false,
                payload,
            } => {
                self.queue_control(|out| h2frame::write_ping(out, true, payload))?;
            }
            Frame::Ping { ack: true, payload } if self.draining && payload == SHUTDOWN_PING => {
                // A round trip since the first GOAWAY: every request the client
                // sent before seeing it has arrived, so the real last id is known.
                self.draining = false;
                self.go_away(ErrorCode::NO_ERROR);
            }
            Frame::Ping { ack: true, payload } => self.events.push_back(Event::PingAck { payload }),
            Frame::GoAway {
                last_stream, code, ..
            } => self.on_goaway(last_stream, code),
            Frame::WindowUpdate { stream, increment } => {
                self.on_window_update(stream, increment)?;
            }
            Frame::Continuation { .. } => {
                return fail(
                    ErrorCode::PROTOCOL_ERROR,
                    "CONTINUATION without HEADERS before it",
                );
            }
        }
        Ok(None)
    }

    fn on_stream_error(
        &mut self,
        stream: StreamId,
        code: ErrorCode,
        kind: Option<FrameType>,
        fragment: Option<Vec<u8>>,
        end_headers: bool,
    ) -> Result<()> {
        if self.block.is_some() {
            return fail(
                ErrorCode::PROTOCOL_ERROR,
                "frame other than CONTINUATION inside a header block",
            );
        }
        if self.phase == Phase::FirstSettings {
            return fail(ErrorCode::PROTOCOL_ERROR, "first frame is not SETTINGS");
        }
        let lookup = self.streams.lookup(stream);
        if let Some(fragment) = fragment {
            // A refused HEADERS: its block must still reach the decoder.
            if self.role == Role::Client {
                let target = match lookup {
                    Lookup::Idle => return fail(ErrorCode::PROTOCOL_ERROR, IDLE_HEADERS),
                    // Nothing to reset: the stream is gone on our side.
                    Lookup::Closed => Target::Ignore,
                    Lookup::Live => Target::Reset(code),
                };
                return self.start_block(stream, false, end_headers, &fragment, target);
            }
            if lookup == Lookup::Idle {
                if !stream.is_client_initiated() {
                    return fail(ErrorCode::PROTOCOL_ERROR, "HEADERS on an even stream id");
                }
                self.streams.highest = stream.get();
            }
            return self.start_block(stream, false, end_headers, &fragment, Target::Reset(code));
        }
        if lookup == Lookup::Idle && kind == Some(FrameType::WINDOW_UPDATE) {
            return fail(ErrorCode::PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
        }
        self.reset_stream(stream, code)
    }

    fn on_data<'a>(
        &mut self,
        id: StreamId,
        end_stream: bool,
        data: &'a [u8],
        flow_len: u32,
    ) -> Result<Option<(StreamId, &'a [u8], bool)>> {
        let lookup = self.streams.lookup(id);
        if lookup == Lookup::Idle {
            return fail(ErrorCode::PROTOCOL_ERROR, "DATA on an idle stream");
        }
        if self.conn_recv.receive(flow_len).is_err() {
            return fail(
                ErrorCode::FLOW_CONTROL_ERROR,
                "DATA beyond the connection window",
            );
        }
        if data.is_empty() && !end_stream {
            self.empty_frame()?;
        } else {
            self.empty_frames = 0;
        }
        let Some(stream) = self.streams.get_mut(id) else {
            // Closed: nobody will consume it, so the connection credit comes back now.
            self.release_connection(flow_len as usize);
            let recent = self.streams.recent.find(id);
            // A client forgets who reset what after a few streams; a server still
            // sending on a stream we cancelled long ago is not worth an answer.
            let reset_by_us =
                recent == Some(true) || (self.role == Role::Client && recent.is_none());
            if !reset_by_us {
                self.reset_stream(id, ErrorCode::STREAM_CLOSED)?;
            }
            return Ok(None);
        };
        if !stream.recv_open {
            self.release_connection(flow_len as usize);
            self.reset_stream(id, ErrorCode::STREAM_CLOSED)?;
            return Ok(None);
        }
        if stream.recv_window.receive(flow_len).is_err() {
            self.release_connection(flow_len as usize);
            self.reset_stream(id, ErrorCode::FLOW_CONTROL_ERROR)?;
            return Ok(None);
        }
        // Padding is never handed to the application: credit it back at once.
        let padding = (flow_len as usize).saturating_sub(data.len());
        stream.received += data.len() as u64;
        let length_fault = match stream.content_length {
            Some(declared) => {
                stream.received > declared || (end_stream && stream.received != declared)
            }
            None => false,
        } || stream.awaiting_response
            || (stream.no_body && !data.is_empty());
        if end_stream {
            stream.recv_open = false;
        }
        if padding > 0 {
            self.release(id, padding);
        }
        if length_fault {
            self.reset_stream(id, ErrorCode::PROTOCOL_ERROR)?;
            return Ok(None);
        }
        if end_stream {
            self.close_if_done(id);
        }
        if data.is_empty() && !end_stream {
            return Ok(None);
        }
        Ok(Some((id, data, end_stream)))
    }

    fn on_headers(
        &mut self,
        id: StreamId,
        end_stream: bool,
        end_headers: bool,
        fragment: &[u8],
    ) -> Result<()> {
        if self.role == Role::Client {
            let target = self.client_headers_target(id, end_stream)?;
            return self.start_block(id, end_stream, end_headers, fragment, target);
        }
        let target = match self.streams.lookup(id) {
            Lookup::Idle => {
                if !id.is_client_initiated() {
                    return fail(ErrorCode::PROTOCOL_ERROR, "HEADERS on an even stream id");
                }
                self.streams.highest = id.get();
                let over_limit =
                    self.streams.active() >= self.config.max_concurrent_streams as usize;
                if over_limit || self.going_away.is_some_and(|last| id > last) {
                    Target::Reset(ErrorCode::REFUSED_STREAM)
                } else {
                    Target::Request
                }
            }
            Lookup::Live => match self.streams.get_mut(id) {
                Some(stream) if stream.recv_open && end_stream => Target::Trailers,
                Some(stream) if stream.recv_open => Target::Reset(ErrorCode::PROTOCOL_ERROR),
                _ => Target::Reset(ErrorCode::STREAM_CLOSED),
            },
            Lookup::Closed => match self.streams.recent.find(id) {
                Some(true) => Target::Ignore,
                Some(false) => {
                    return fail(ErrorCode::STREAM_CLOSED, "HEADERS on a closed stream");
                }
                None => {
                    return fail(
                        ErrorCode::PROTOCOL_ERROR,
                        "HEADERS reusing a stream id below the highest",
                    );
                }
            },
        };
        self.start_block(id, end_stream, end_headers, fragment, target)
    }

    /// What a HEADERS frame on `id` is in the client role: the response (or a
    /// 1xx) while we await it, trailers after it, else a fault.
    fn client_headers_target(&mut self, id: StreamId, end_stream: bool) -> Result<Target> {
        Ok(match self.streams.lookup(id) {
            Lookup::Idle => return fail(ErrorCode::PROTOCOL_ERROR, IDLE_HEADERS),
            Lookup::Live => match self.streams.get_mut(id) {
                Some(stream) if stream.awaiting_response => Target::Response,
                Some(stream) if stream.recv_open && end_stream => Target::Trailers,
                Some(stream) if stream.recv_open => Target::Reset(ErrorCode::PROTOCOL_ERROR),
                _ => Target::Reset(ErrorCode::STREAM_CLOSED),
            },
            Lookup::Closed => match self.streams.recent.find(id) {
                Some(false) => {
                    return fail(ErrorCode::STREAM_CLOSED, "HEADERS on a closed stream");
                }
                // Reset by us, maybe long ago: the server may not have seen it yet.
                Some(true) | None => Target::Ignore,
            },
        })
    }

    fn start_block(
        &mut self,
        stream: StreamId,
        end_stream: bool,
        end_headers: bool,
        fragment: &[u8],
        target: Target,
    ) -> Result<()> {
        if end_headers {
            return self.finish_block(stream, end_stream, target, fragment);
        }
        if fragment.len() > self.config.max_header_block_size {
            return Err(Abuse::HeaderBlock.error());
        }
        self.block = Some(PendingBlock {
            stream,
            end_stream,
            target,
            fragments: fragment.to_vec(),
            continuations: 0,
        });
        Ok(())
    }

    fn on_continuation(
        &mut self,
        stream: StreamId,
        end_headers: bool,
        fragment: &[u8],
    ) -> Result<()> {
        let max_block = self.config.max_header_block_size;
        let max_continuations = self.config.max_continuation_frames;
        let Some(block) = self.block.as_mut() else {
            return fail(ErrorCode::PROTOCOL_ERROR, "CONTINUATION without HEADERS");
        };
        if block.stream != stream {
            return fail(
                ErrorCode::PROTOCOL_ERROR,
                "CONTINUATION on another stream than its HEADERS",
            );
        }
        block.continuations = block.continuations.saturating_add(1);
        if block.continuations > max_continuations {
            return Err(Abuse::Continuations.error());
        }
        if block.fragments.len() + fragment.len() > max_block {
            return Err(Abuse::HeaderBlock.error());
        }
        block.fragments.extend_from_slice(fragment);
        if !end_headers {
            if fragment.is_empty() {
                self.empty_frame()?;
            }
            return Ok(());
        }
        match self.block.take() {
            Some(block) => self.finish_block(
                block.stream,
                block.end_stream,
                block.target,
                &block.fragments,
            ),
            None => Ok(()),
        }
    }

    fn decode_block<F>(&mut self, block: &[u8], mut each: F) -> Result<()>
    where
        F: FnMut(&mut Known, hpack::Field<'_>),
    {
        let known = &mut self.known;
        self.decoder
            .decode(block, |field| {
                each(known, field);
                Ok::<(), hpack::DecodeError>(())
            })
            .or_else(|_| fail(ErrorCode::COMPRESSION_ERROR, "HPACK decoding failed"))
    }

    fn finish_block(
        &mut self,
        id: StreamId,
        end_stream: bool,
        target: Target,
        block: &[u8],
    ) -> Result<()> {
        match target {
            Target::Request => {
                let mut builder = RequestBuilder::new(self.config.max_header_list_size as usize);
                self.decode_block(block, |known, f| {
                    builder.field(known, f.name, f.value, f.sensitive)
                })?;
                let head = match builder.finish(&mut self.known) {
                    Ok(head) => head,
                    Err(headers::TOO_LARGE) => return self.refuse_too_large(id, end_stream),
                    Err(_) => return self.reset_stream(id, ErrorCode::PROTOCOL_ERROR),
                };
                if end_stream && head.content_length.is_some_and(|n| n != 0) {
                    return self.reset_stream(id, ErrorCode::PROTOCOL_ERROR);
                }
                let recv_window = if self.settings_acked {
                    self.config.initial_stream_window
                } else {
                    DEFAULT_WINDOW
                };
                let mut stream =
                    Stream::new(self.peer.initial_window_size, recv_window, recv_window);
                stream.content_length = head.content_length;
                stream.recv_open = !end_stream;
                self.streams.insert(id, stream);
                self.empty_frames = 0;
                self.events.push_back(Event::Request {
                    stream: id,
                    head: head.parts,
                    end_stream,
                });
                Ok(())
            }
            Target::Response => self.on_response(id, end_stream, block),
            Target::Trailers => {
                let mut builder = TrailerBuilder::new(self.config.max_header_list_size as usize);
                self.decode_block(block, |known, f| {
                    builder.field(known, f.name, f.value, f.sensitive)
                })?;
                let length_ok = self.streams.get_mut(id).is_some_and(|s| {
                    s.content_length
                        .is_none_or(|declared| declared == s.received)
                });
                match builder.finish() {
                    Ok(headers) if length_ok => {
                        if let Some(stream) = self.streams.get_mut(id) {
                            stream.recv_open = false;
                        }
                        self.empty_frames = 0;
                        self.events.push_back(Event::Trailers {
                            stream: id,
                            headers,
                        });
                        self.close_if_done(id);
                        Ok(())
                    }
                    _ => self.reset_stream(id, ErrorCode::PROTOCOL_ERROR),
                }
            }
            Target::Reset(code) => {
                self.decode_block(block, |_, _| {})?;
                self.reset_stream(id, code)
            }
            Target::Ignore => self.decode_block(block, |_, _| {}),
        }
    }

    /// A response header block (client role): a 1xx is dropped, a final one
    /// becomes [`Event::Response`]; a fault resets the stream.
    fn on_response(&mut self, id: StreamId, end_stream: bool, block: &[u8]) -> Result<()> {
        let mut builder = ResponseBuilder::new(self.config.max_header_list_size as usize);
        self.decode_block(block, |known, f| {
            builder.field(known, f.name, f.value, f.sensitive)
        })?;
        if self.streams.get_mut(id).is_none() {
            // Reset by the caller while the block was arriving: decoded only to
            // keep HPACK in step.
            return Ok(());
        }
        let Ok(head) = builder.finish() else {
            return self.reset_stream(id, ErrorCode::PROTOCOL_ERROR);
        };
        let status = head.parts.status;
        if status.is_informational() {
            // 101 is HTTP/1.1's upgrade, which HTTP/2 has no use for (section 8.6).
            if end_stream || status == http::StatusCode::SWITCHING_PROTOCOLS {
                return self.reset_stream(id, ErrorCode::PROTOCOL_ERROR);
            }
            self.empty_frames = 0;
            return Ok(());
        }
        let Some(stream) = self.streams.get_mut(id) else {
            return Ok(());
        };
        let no_body = stream.head_request
            || status == http::StatusCode::NO_CONTENT
            || status == http::StatusCode::NOT_MODIFIED;
        let content_length = head.content_length.filter(|_| !no_body);
        if end_stream && content_length.is_some_and(|n| n != 0) {
            return self.reset_stream(id, ErrorCode::PROTOCOL_ERROR);
        }
        stream.awaiting_response = false;
        stream.no_body = no_body;
        stream.content_length = content_length;
        if end_stream {
            stream.recv_open = false;
        }
        self.empty_frames = 0;
        self.events.push_back(Event::Response {
            stream: id,
            head: head.parts,
            end_stream,
        });
        if end_stream {
            self.close_if_done(id);
        }
        Ok(())
    }

    /// The server will process no stream above `last` (client role: those are
    /// refused, the caller may retry them elsewhere) and open no more.
    fn on_goaway(&mut self, last: StreamId, code: ErrorCode) {
        self.peer_going_away = true;
        if self.role == Role::Client {
            for id in self.streams.ids_above(last) {
                self.remove_stream(id);
                // Anything still arriving on it is ignored, as after our own reset.
                self.streams.recent.remember(id, true);
                self.events.push_back(Event::Reset {
                    stream: id,
                    code: ErrorCode::REFUSED_STREAM,
                    by_peer: true,
                });
            }
        }
        self.events.push_back(Event::GoAway {
            last_stream: last,
            code,
        });
    }

    /// Answers a request whose fields exceed our bound with 431 and, if its body
    /// is still coming, RST_STREAM NO_ERROR so the client stops sending it.
    fn refuse_too_large(&mut self, id: StreamId, end_stream: bool) -> Result<()> {
        let status = hpack::Field::new(b":status", b"431");
        self.write_block(id, [status], true);
        if !end_stream {
            self.queue_control(|out| h2frame::write_rst_stream(out, id, ErrorCode::NO_ERROR))?;
        }
        self.streams.recent.remember(id, true);
        self.count_reset()
    }

    fn on_rst_stream(&mut self, id: StreamId, code: ErrorCode) -> Result<()> {
        match self.streams.lookup(id) {
            Lookup::Idle => fail(ErrorCode::PROTOCOL_ERROR, "RST_STREAM on an idle stream"),
            Lookup::Closed => Ok(()),
            Lookup::Live => {
                self.remove_stream(id);
                self.streams.recent.remember(id, false);
                self.events.push_back(Event::Reset {
                    stream: id,
                    code,
                    by_peer: true,
                });
                self.count_reset()
            }
        }
    }

    fn on_settings(&mut self, settings: &Settings) -> Result<()> {
        if self.role == Role::Client && settings.enable_push == Some(true) {
            return fail(
                ErrorCode::PROTOCOL_ERROR,
                "SETTINGS_ENABLE_PUSH from a server",
            );
        }
        if let Some(size) = settings.initial_window_size {
            let delta = i64::from(size) - i64::from(self.peer.initial_window_size);
            for (_, stream) in self.streams.iter_mut() {
                if stream.send_window.adjust(delta).is_err() {
                    return fail(
                        ErrorCode::FLOW_CONTROL_ERROR,
                        "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window",
                    );
                }
            }
        }
        if let Some(size) = settings.header_table_size {
            self.encoder.set_max_table_size(size as usize);
        }
        self.peer.apply(settings);
        self.phase = Phase::Running;
        self.queue_control(h2frame::write_settings_ack)?;
        self.wake_blocked();
        Ok(())
    }

    fn on_settings_ack(&mut self) {
        if self.settings_acked {
            return;
        }
        self.settings_acked = true;
        self.decoder
            .set_max_table_size(self.config.header_table_size as usize);
        let target = self.config.initial_stream_window;
        for (_, stream) in self.streams.iter_mut() {
            stream.recv_window.retarget(target);
        }
    }

    fn on_window_update(&mut self, id: StreamId, increment: u32) -> Result<()> {
        if id.is_zero() {
            if self.conn_send.adjust(i64::from(increment)).is_err() {
                return fail(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "WINDOW_UPDATE overflows the connection window",
                );
            }
            self.wake_blocked();
            return Ok(());
        }
        match self.streams.lookup(id) {
            Lookup::Idle => fail(ErrorCode::PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream"),
            Lookup::Closed => Ok(()),
            Lookup::Live => {
                let overflow = self
                    .streams
                    .get_mut(id)
                    .is_some_and(|s| s.send_window.adjust(i64::from(increment)).is_err());
                if overflow {
                    return self.reset_stream(id, ErrorCode::FLOW_CONTROL_ERROR);
                }
                self.wake_blocked();
                Ok(())
            }
        }
    }
}
