//! The connection state machine: bytes in, events out, bytes to write out.

use std::collections::VecDeque;
use std::ops::Range;

use bytes::{Buf, BytesMut};
use h2frame::{
    ConnectionSettings, Decoded, Error as FrameError, ErrorCode, Frame, FrameType, PING_LEN,
    PREFACE, Settings, StreamId,
};
use http::{HeaderMap, StatusCode};

use crate::config::Config;
use crate::event::{ConnectionError, Event, SendError};
use crate::flow::{RecvWindow, SendWindow};
use crate::headers::{self, RequestBuilder, TrailerBuilder};
use crate::stream::{Lookup, SendState, Stream, Streams};

/// The window both ends assume until SETTINGS say otherwise.
const DEFAULT_WINDOW: u32 = 65_535;

/// The payload of the PING that closes the first step of [`Connection::shutdown`].
const SHUTDOWN_PING: [u8; PING_LEN] = *b"shutdown";

/// How many streams we reset are remembered, so frames the client sent before
/// it saw our RST_STREAM are ignored instead of ending the connection.
const RECENT_RESETS: usize = 16;

type Result<T> = std::result::Result<T, ConnectionError>;

fn fail<T>(code: ErrorCode, reason: &'static str) -> Result<T> {
    Err(ConnectionError { code, reason })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the 24-byte client preface.
    Preface,
    /// The preface arrived; the next frame must be the client's SETTINGS.
    FirstSettings,
    Running,
}

/// What a header block will become once it is complete and decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Request,
    Trailers,
    /// Decoded only to keep HPACK in step, then the stream is reset.
    Reset(ErrorCode),
    /// Decoded only to keep HPACK in step: the stream was reset by us already.
    Ignore,
}

/// A header block split over HEADERS and CONTINUATION frames.
#[derive(Debug)]
struct PendingBlock {
    stream: StreamId,
    end_stream: bool,
    target: Target,
    fragments: Vec<u8>,
    continuations: u32,
}

/// A DATA payload to hand out as `Bytes` once the frame is split off the input.
struct DataOut {
    stream: StreamId,
    range: Range<usize>,
    end_stream: bool,
}

/// A server-side HTTP/2 connection without I/O.
///
/// The driver feeds what it reads to [`Connection::recv`], takes events from
/// [`Connection::poll_event`], writes [`Connection::output`] and reports what was
/// written with [`Connection::advance`]. The output buffer is allocated when a
/// frame is queued and freed as soon as it is fully written, so an idle connection
/// holds only its HPACK tables and a few counters.
///
/// Rules enforced on top of [`h2frame`]'s single-frame checks (RFC 9113):
///
/// - the client preface, then SETTINGS as the first frame (PROTOCOL_ERROR);
///   every SETTINGS is acknowledged and applied: INITIAL_WINDOW_SIZE moves every
///   open stream's send window (past 2^31-1: FLOW_CONTROL_ERROR),
///   HEADER_TABLE_SIZE goes to the encoder, MAX_FRAME_SIZE bounds what we send;
///   our own table size and stream window apply once the client acknowledges;
/// - a header block is HEADERS then CONTINUATIONs on the same stream with
///   nothing in between (PROTOCOL_ERROR), bounded in bytes and frames
///   (ENHANCE_YOUR_CALM); HPACK failures are COMPRESSION_ERROR; refused blocks
///   are still decoded so the HPACK table stays in step;
/// - stream states: client ids odd and increasing; DATA, WINDOW_UPDATE or
///   RST_STREAM on an idle stream is PROTOCOL_ERROR; DATA or HEADERS on a
///   half-closed (remote) stream, or DATA on a closed one, is a stream error
///   STREAM_CLOSED; HEADERS on a closed stream is a connection error
///   STREAM_CLOSED; frames on the last few streams we reset are ignored;
///   PUSH_PROMISE is PROTOCOL_ERROR;
/// - flow control both ways: DATA beyond a window is FLOW_CONTROL_ERROR (stream or
///   connection scope), as is a WINDOW_UPDATE overflow; padding is credited back
///   at once;
/// - requests beyond MAX_CONCURRENT_STREAMS, or above the last stream of our
///   GOAWAY, are refused with REFUSED_STREAM;
/// - request fields per sections 8.2 and 8.3, and `content-length` against the
///   DATA received: a stream error PROTOCOL_ERROR;
/// - abuse bounds from [`Config`]: resets beyond completed streams, unread
///   control frames, empty frames in a row, buffered output, all answered with
///   ENHANCE_YOUR_CALM (or, for output, by [`Connection::wants_read`] and a
///   shorter [`Connection::send_data`]).
///
/// A connection error queues GOAWAY with the code and the last stream id seen;
/// from then on [`Connection::recv`] returns the error and the send calls fail.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    phase: Phase,
    error: Option<ConnectionError>,
    /// The last stream id of the GOAWAY we sent gracefully.
    going_away: Option<StreamId>,
    /// The first GOAWAY of a two-step shutdown is out; the PING ACK ends it.
    draining: bool,
    peer_going_away: bool,
    streams: Streams,
    decoder: hpack::Decoder,
    encoder: hpack::Encoder,
    peer: ConnectionSettings,
    settings_acked: bool,
    conn_send: SendWindow,
    conn_recv: RecvWindow,
    block: Option<PendingBlock>,
    output: BytesMut,
    events: VecDeque<Event>,
    recent_resets: [u32; RECENT_RESETS],
    recent_next: usize,
    /// Resets beyond completed streams (see [`Config::max_reset_streams`]).
    resets: u32,
    /// Control frames queued and not all written yet.
    control_owed: u32,
    /// Output bytes written since the start, and where the last control frame
    /// queued ends in that count: once `written` reaches it, nothing is owed.
    written: u64,
    control_end: u64,
    /// Frames in a row that carried nothing.
    empty_frames: u32,
}

impl Connection {
    /// Starts a connection, queuing our SETTINGS (and a WINDOW_UPDATE opening
    /// the connection window beyond 65,535) so they go out with the first write.
    pub fn new(config: Config) -> Self {
        let config = config.sanitized();
        let mut decoder = hpack::Decoder::new(hpack::DEFAULT_TABLE_SIZE);
        // The decoder's hard bound is twice what we advertise: sections in between
        // are decoded (keeping HPACK in step) and refused on their stream alone.
        decoder.set_max_header_list_size((config.max_header_list_size as usize).saturating_mul(2));
        let mut conn = Self {
            phase: Phase::Preface,
            error: None,
            going_away: None,
            draining: false,
            peer_going_away: false,
            streams: Streams::default(),
            decoder,
            encoder: hpack::Encoder::new(),
            peer: ConnectionSettings::default(),
            settings_acked: false,
            conn_send: SendWindow::new(DEFAULT_WINDOW),
            conn_recv: RecvWindow::new(config.connection_window, config.connection_window),
            block: None,
            output: BytesMut::new(),
            events: VecDeque::new(),
            recent_resets: [0; RECENT_RESETS],
            recent_next: 0,
            resets: 0,
            control_owed: 0,
            written: 0,
            control_end: 0,
            empty_frames: 0,
            config,
        };
        let settings = Settings {
            header_table_size: (conn.config.header_table_size != hpack::DEFAULT_TABLE_SIZE as u32)
                .then_some(conn.config.header_table_size),
            enable_push: None,
            max_concurrent_streams: Some(conn.config.max_concurrent_streams),
            initial_window_size: Some(conn.config.initial_stream_window),
            max_frame_size: (conn.config.max_frame_size != h2frame::MIN_MAX_FRAME_SIZE)
                .then_some(conn.config.max_frame_size),
            max_header_list_size: Some(conn.config.max_header_list_size),
        };
        h2frame::write_settings(&mut conn.output, &settings);
        if conn.config.connection_window > DEFAULT_WINDOW {
            let increment = conn.config.connection_window - DEFAULT_WINDOW;
            h2frame::write_window_update(&mut conn.output, StreamId::ZERO, increment);
        }
        conn
    }

    // ----- input -------------------------------------------------------------

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
                return fail(ErrorCode::PROTOCOL_ERROR, "PUSH_PROMISE from a client");
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
            } => {
                self.peer_going_away = true;
                self.events.push_back(Event::GoAway { last_stream, code });
            }
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
            if !self.recently_reset(id) {
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
        };
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
            Lookup::Closed if self.recently_reset(id) => Target::Ignore,
            Lookup::Closed => {
                return fail(ErrorCode::STREAM_CLOSED, "HEADERS on a closed stream");
            }
        };
        self.start_block(id, end_stream, end_headers, fragment, target)
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
            return fail(ErrorCode::ENHANCE_YOUR_CALM, "header block too large");
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
            return fail(ErrorCode::ENHANCE_YOUR_CALM, "too many CONTINUATION frames");
        }
        if block.fragments.len() + fragment.len() > max_block {
            return fail(ErrorCode::ENHANCE_YOUR_CALM, "header block too large");
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

    fn decode_block<F: FnMut(&[u8], &[u8])>(&mut self, block: &[u8], mut each: F) -> Result<()> {
        self.decoder
            .decode(block, |field| {
                each(field.name, field.value);
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
                self.decode_block(block, |n, v| builder.field(n, v))?;
                let head = match builder.finish() {
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
            Target::Trailers => {
                let mut builder = TrailerBuilder::new(self.config.max_header_list_size as usize);
                self.decode_block(block, |n, v| builder.field(n, v))?;
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

    /// Answers a request whose fields exceed our bound with 431 and, if its body
    /// is still coming, RST_STREAM NO_ERROR so the client stops sending it.
    fn refuse_too_large(&mut self, id: StreamId, end_stream: bool) -> Result<()> {
        let status = hpack::Field::new(b":status", b"431");
        self.write_block(id, vec![status], true);
        if !end_stream {
            self.queue_control(|out| h2frame::write_rst_stream(out, id, ErrorCode::NO_ERROR))?;
        }
        self.remember_reset(id);
        self.count_reset()
    }

    fn on_rst_stream(&mut self, id: StreamId, code: ErrorCode) -> Result<()> {
        match self.streams.lookup(id) {
            Lookup::Idle => fail(ErrorCode::PROTOCOL_ERROR, "RST_STREAM on an idle stream"),
            Lookup::Closed => Ok(()),
            Lookup::Live => {
                self.remove_stream(id);
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

    // ----- bookkeeping -------------------------------------------------------

    /// Queues a GOAWAY for a connection error and remembers it.
    fn close_with(&mut self, err: ConnectionError) -> ConnectionError {
        if self.error.is_none() {
            self.error = Some(err);
            self.block = None;
            let last = StreamId::new(self.streams.highest);
            h2frame::write_goaway(&mut self.output, last, err.code, err.reason.as_bytes());
        }
        err
    }

    /// Sends RST_STREAM for a rule the client broke and forgets the stream,
    /// telling the application when it knew the stream. The reset counts
    /// against [`Config::max_reset_streams`] like one the client sent.
    fn reset_stream(&mut self, id: StreamId, code: ErrorCode) -> Result<()> {
        self.queue_control(|out| h2frame::write_rst_stream(out, id, code))?;
        self.remember_reset(id);
        if self.remove_stream(id) {
            self.events.push_back(Event::Reset {
                stream: id,
                code,
                by_peer: false,
            });
        }
        self.count_reset()
    }

    /// Drops a stream; what the application had not released of its DATA goes
    /// back to the connection window, since nobody will release it now.
    fn remove_stream(&mut self, id: StreamId) -> bool {
        match self.streams.remove(id) {
            Some(stream) => {
                self.release_connection(usize::try_from(stream.recv_window.held()).unwrap_or(0));
                true
            }
            None => false,
        }
    }

    fn close_if_done(&mut self, id: StreamId) {
        if self.streams.get_mut(id).is_some_and(|s| s.is_closed()) {
            self.remove_stream(id);
            self.resets = self.resets.saturating_sub(1);
        }
    }

    fn count_reset(&mut self) -> Result<()> {
        self.resets = self.resets.saturating_add(1);
        if self.resets > self.config.max_reset_streams {
            return fail(ErrorCode::ENHANCE_YOUR_CALM, "too many reset streams");
        }
        Ok(())
    }

    /// Queues a frame the client's behaviour made us owe (an ACK or a reset),
    /// refusing once too many are waiting for a client that does not read.
    fn queue_control(&mut self, write: impl FnOnce(&mut BytesMut)) -> Result<()> {
        self.control_owed = self.control_owed.saturating_add(1);
        if self.control_owed > self.config.max_control_frames_owed {
            return fail(
                ErrorCode::ENHANCE_YOUR_CALM,
                "control frames queued faster than they are read",
            );
        }
        write(&mut self.output);
        self.control_end = self.written + self.output.len() as u64;
        Ok(())
    }

    fn empty_frame(&mut self) -> Result<()> {
        self.empty_frames = self.empty_frames.saturating_add(1);
        if self.empty_frames > self.config.max_empty_frames {
            return fail(ErrorCode::ENHANCE_YOUR_CALM, "too many empty frames");
        }
        Ok(())
    }

    fn remember_reset(&mut self, id: StreamId) {
        if let Some(slot) = self.recent_resets.get_mut(self.recent_next % RECENT_RESETS) {
            *slot = id.get();
        }
        self.recent_next = (self.recent_next + 1) % RECENT_RESETS;
    }

    fn recently_reset(&self, id: StreamId) -> bool {
        !id.is_zero() && self.recent_resets.contains(&id.get())
    }

    fn release_connection(&mut self, n: usize) {
        if let Some(increment) = self.conn_recv.release(n) {
            h2frame::write_window_update(&mut self.output, StreamId::ZERO, increment);
        }
    }

    /// Tells blocked streams that they can send again, when they can.
    fn wake_blocked(&mut self) {
        if self.conn_send.available() == 0 || self.output_room() == 0 {
            return;
        }
        for (id, stream) in self.streams.iter_mut() {
            if stream.blocked && stream.send_window.available() > 0 {
                stream.blocked = false;
                self.events.push_back(Event::WindowOpened { stream: id });
            }
        }
    }

    fn output_room(&self) -> usize {
        self.config
            .max_buffered_output
            .saturating_sub(self.output.len())
    }

    // ----- application side --------------------------------------------------

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        if self.events.is_empty() && self.events.capacity() > 0 {
            self.events = VecDeque::new();
        }
        event
    }

    /// Sends the response head. A 1xx status may precede the final one; with
    /// `end_stream` the response has no body. Connection-specific fields are left
    /// out, as HTTP/2 forbids them.
    ///
    /// # Errors
    ///
    /// When the stream is not open for sending or already has its response.
    pub fn send_response(
        &mut self,
        id: StreamId,
        status: StatusCode,
        headers: &HeaderMap,
        end_stream: bool,
    ) -> std::result::Result<(), SendError> {
        self.check_open()?;
        let stream = self.streams.get_mut(id).ok_or(SendError::UnknownStream)?;
        if stream.send != SendState::AwaitingResponse {
            return Err(SendError::ResponseAlreadySent);
        }
        let informational = status.is_informational();
        if !informational {
            stream.send = if end_stream {
                SendState::Done
            } else {
                SendState::Streaming
            };
        }
        let status = status.as_str().as_bytes().to_vec();
        let mut fields = vec![hpack::Field::new(b":status", &status)];
        fields.extend(
            headers
                .iter()
                .filter(|(name, _)| !headers::is_connection_specific(name))
                .map(|(name, value)| {
                    let (n, v) = (name.as_str().as_bytes(), value.as_bytes());
                    if value.is_sensitive() {
                        hpack::Field::sensitive(n, v)
                    } else {
                        hpack::Field::new(n, v)
                    }
                }),
        );
        self.write_block(id, fields, end_stream && !informational);
        self.close_if_done(id);
        Ok(())
    }

    /// Ends the response with trailers (gRPC's status goes here).
    ///
    /// # Errors
    ///
    /// When the response head was not sent or the stream is finished.
    pub fn send_trailers(
        &mut self,
        id: StreamId,
        headers: &HeaderMap,
    ) -> std::result::Result<(), SendError> {
        self.check_open()?;
        let stream = self.streams.get_mut(id).ok_or(SendError::UnknownStream)?;
        match stream.send {
            SendState::AwaitingResponse => return Err(SendError::ResponseNotSent),
            SendState::Done => return Err(SendError::UnknownStream),
            SendState::Streaming => stream.send = SendState::Done,
        }
        let fields: Vec<hpack::Field<'_>> = headers
            .iter()
            .filter(|(name, _)| !headers::is_connection_specific(name))
            .map(|(n, v)| hpack::Field::new(n.as_str().as_bytes(), v.as_bytes()))
            .collect();
        self.write_block(id, fields, true);
        self.close_if_done(id);
        Ok(())
    }

    fn write_block(&mut self, id: StreamId, fields: Vec<hpack::Field<'_>>, end_stream: bool) {
        let mut block = Vec::new();
        self.encoder.encode(fields, &mut block);
        h2frame::write_headers(
            &mut self.output,
            id,
            end_stream,
            None,
            &block,
            self.peer.max_frame_size,
        );
    }

    /// Queues as much of `data` as the stream and connection windows, the
    /// client's frame size and the output bound allow, and returns how much that
    /// was. The caller keeps the rest until [`Event::WindowOpened`]. END_STREAM is
    /// sent only with the last byte of `data`.
    ///
    /// # Errors
    ///
    /// When the response head was not sent or the stream is finished.
    pub fn send_data(
        &mut self,
        id: StreamId,
        data: &[u8],
        end_stream: bool,
    ) -> std::result::Result<usize, SendError> {
        self.check_open()?;
        let room = self.output_room();
        let conn_window = self.conn_send.available();
        let max_frame = self.peer.max_frame_size as usize;
        let stream = self.streams.get_mut(id).ok_or(SendError::UnknownStream)?;
        match stream.send {
            SendState::AwaitingResponse => return Err(SendError::ResponseNotSent),
            SendState::Done => return Err(SendError::UnknownStream),
            SendState::Streaming => {}
        }
        let n = data
            .len()
            .min(stream.send_window.available())
            .min(conn_window)
            .min(room);
        let finished = end_stream && n == data.len();
        if n < data.len() {
            stream.blocked = true;
        }
        stream.send_window.consume(n);
        if finished {
            stream.send = SendState::Done;
        }
        self.conn_send.consume(n);
        let mut chunks = data
            .get(..n)
            .unwrap_or_default()
            .chunks(max_frame.max(1))
            .peekable();
        if chunks.peek().is_none() && finished {
            h2frame::write_data(&mut self.output, id, true, &[]);
        }
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            h2frame::write_data(&mut self.output, id, finished && last, chunk);
        }
        if finished {
            self.close_if_done(id);
        }
        Ok(n)
    }

    /// Resets a stream (the application gives up on it, e.g. CANCEL or
    /// INTERNAL_ERROR). Frames the client already sent for it are ignored.
    ///
    /// # Errors
    ///
    /// When the stream is not live.
    pub fn reset(&mut self, id: StreamId, code: ErrorCode) -> std::result::Result<(), SendError> {
        self.check_open()?;
        if self.streams.lookup(id) != Lookup::Live {
            return Err(SendError::UnknownStream);
        }
        h2frame::write_rst_stream(&mut self.output, id, code);
        self.remember_reset(id);
        self.remove_stream(id);
        Ok(())
    }

    /// The application consumed `n` bytes of the stream's received DATA: credit
    /// goes back to the client, in WINDOW_UPDATEs batched per half window. A
    /// stream that is gone was already credited, so this is then a no-op.
    pub fn release(&mut self, id: StreamId, n: usize) {
        if self.error.is_some() {
            return;
        }
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        let before = stream.recv_window.held();
        let increment = stream.recv_window.release(n);
        let released = before - stream.recv_window.held();
        let recv_open = stream.recv_open;
        if let Some(increment) = increment.filter(|_| recv_open) {
            h2frame::write_window_update(&mut self.output, id, increment);
        }
        self.release_connection(usize::try_from(released).unwrap_or(0));
    }

    /// Starts a graceful shutdown: GOAWAY naming the last stream we took, after
    /// which new streams are refused. Streams already open carry on; the
    /// connection is done when they are ([`Connection::is_closed`]).
    pub fn go_away(&mut self, code: ErrorCode) {
        if self.error.is_some() || self.going_away.is_some() {
            return;
        }
        let last = StreamId::new(self.streams.highest);
        self.going_away = Some(last);
        h2frame::write_goaway(&mut self.output, last, code, &[]);
    }

    /// Starts the two-step graceful shutdown of RFC 9113 section 6.8: GOAWAY
    /// with the largest stream id and a PING; when the PING is answered, every
    /// request sent before the client saw the GOAWAY has arrived, and a second
    /// GOAWAY names the real last stream ([`Connection::go_away`]). Requests
    /// racing the shutdown are served instead of refused.
    pub fn shutdown(&mut self) {
        if self.error.is_some() || self.going_away.is_some() || self.draining {
            return;
        }
        self.draining = true;
        h2frame::write_goaway(&mut self.output, StreamId::MAX, ErrorCode::NO_ERROR, &[]);
        h2frame::write_ping(&mut self.output, false, SHUTDOWN_PING);
    }

    /// Sends a PING (keep-alive or liveness check); the answer comes back as
    /// [`Event::PingAck`].
    pub fn ping(&mut self, payload: [u8; PING_LEN]) {
        if self.error.is_none() {
            h2frame::write_ping(&mut self.output, false, payload);
        }
    }

    /// Ends the connection now with GOAWAY `code`, for what only the driver can
    /// see: a timer (SETTINGS_TIMEOUT, idle) or a hard stop. Later calls report
    /// the connection as closed.
    pub fn abort(&mut self, code: ErrorCode, reason: &'static str) {
        self.close_with(ConnectionError { code, reason });
    }

    /// Whether the client has yet to acknowledge our SETTINGS: a driver that
    /// enforces SETTINGS_TIMEOUT checks this when its timer fires.
    pub fn awaiting_settings_ack(&self) -> bool {
        !self.settings_acked
    }

    fn check_open(&self) -> std::result::Result<(), SendError> {
        match self.error {
            Some(_) => Err(SendError::ConnectionClosed),
            None => Ok(()),
        }
    }

    // ----- output ------------------------------------------------------------

    /// Bytes waiting to be written.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// Marks `n` output bytes as written. Once all are, the buffer is freed and
    /// blocked streams may be told they can send again.
    pub fn advance(&mut self, n: usize) {
        let n = n.min(self.output.len());
        self.output.advance(n);
        self.written += n as u64;
        if self.written >= self.control_end {
            self.control_owed = 0;
        }
        if self.output.is_empty() {
            self.output = BytesMut::new();
            self.wake_blocked();
        }
    }

    /// Whether the driver should read more: false once the connection has
    /// ended, or while the client is not reading what we owe it, so a client
    /// that only writes cannot make us buffer without bound.
    pub fn wants_read(&self) -> bool {
        self.error.is_none()
            && self.output.len() < self.config.max_buffered_output
            && self.control_owed < self.config.max_control_frames_owed / 2
    }

    /// Whether the connection is over: after a connection error, or after a
    /// GOAWAY either way once no stream is left. The driver closes the socket
    /// when this holds and the output is written.
    pub fn is_closed(&self) -> bool {
        self.error.is_some()
            || ((self.going_away.is_some() || self.peer_going_away) && self.streams.active() == 0)
    }

    /// The connection error that ended the connection, if any.
    pub fn error(&self) -> Option<ConnectionError> {
        self.error
    }

    /// Streams open or half-closed.
    pub fn active_streams(&self) -> usize {
        self.streams.active()
    }

    /// Heap bytes the connection holds in its own buffers (output, a partial
    /// header block, queued events, the stream table), for memory bounds and
    /// metrics. HPACK tables are bounded separately by SETTINGS.
    pub fn buffered_bytes(&self) -> usize {
        self.output.capacity()
            + self.block.as_ref().map_or(0, |b| b.fragments.capacity())
            + self.events.capacity() * std::mem::size_of::<Event>()
            + self.streams.memory()
    }
}
