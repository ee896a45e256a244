//! The connection state machine: bytes in, events out, bytes to write out.
//!
//! This module holds the state and the bookkeeping both directions and both
//! roles share; `recv` handles the peer's frames and `send` the application's
//! calls.

mod recv;
mod send;

use std::collections::VecDeque;
use std::ops::Range;

use bytes::{Buf, BytesMut};
use h2frame::{ConnectionSettings, ErrorCode, PING_LEN, Settings, StreamId};

use crate::config::Config;
use crate::event::{Abuse, ConnectionError, Event};
use crate::flow::{RecvWindow, SendWindow};
use crate::known::Known;
use crate::stream::Streams;

/// The window both ends assume until SETTINGS say otherwise.
const DEFAULT_WINDOW: u32 = 65_535;

/// The payload of the PING that closes the first step of [`Connection::shutdown`].
const SHUTDOWN_PING: [u8; PING_LEN] = *b"shutdown";

type Result<T> = std::result::Result<T, ConnectionError>;

fn fail<T>(code: ErrorCode, reason: &'static str) -> Result<T> {
    Err(ConnectionError { code, reason })
}

/// Which end of the connection we are: the state machine is the same, the
/// rules on who opens streams and what a header block means differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// We accept requests ([`Connection::new`]).
    Server,
    /// We send requests ([`Connection::client`]).
    Client,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the 24-byte client preface (server role only).
    Preface,
    /// The next frame must be the peer's SETTINGS.
    FirstSettings,
    Running,
}

/// What a header block will become once it is complete and decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Request,
    /// The first header block on a stream we opened (client role): a 1xx or
    /// the final response.
    Response,
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

/// An HTTP/2 connection without I/O, in the server role ([`Connection::new`])
/// or the client role ([`Connection::client`]).
///
/// The driver feeds what it reads to [`Connection::recv`], takes events from
/// [`Connection::poll_event`], writes [`Connection::output`] and reports what was
/// written with [`Connection::advance`]. The output buffer is allocated when a
/// frame is queued and freed as soon as it is fully written, so an idle connection
/// holds only its HPACK tables and a few counters.
///
/// Rules enforced on top of [`h2frame`]'s single-frame checks (RFC 9113), as a
/// server:
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
/// - stream states: client ids odd and increasing (HEADERS on an even or reused
///   id is PROTOCOL_ERROR); DATA, WINDOW_UPDATE or RST_STREAM on an idle stream
///   is PROTOCOL_ERROR; DATA or HEADERS on a half-closed (remote) stream, or DATA
///   on a closed one, is a stream error STREAM_CLOSED; HEADERS on one of the last
///   16 streams closed is a connection error STREAM_CLOSED, unless we reset it:
///   frames the client sent before seeing our reset are ignored; PUSH_PROMISE
///   is PROTOCOL_ERROR;
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
/// As a client, the same framing, SETTINGS, flow-control and abuse rules
/// (except that a backend's resets are not counted as abuse), and:
///
/// - we send the preface; the server's first frame must be SETTINGS, which may
///   not enable push (PROTOCOL_ERROR);
/// - HEADERS on a stream we did not open, and any PUSH_PROMISE, are
///   PROTOCOL_ERROR; frames on a stream we reset are ignored;
/// - the first header block on a stream is the response: one 3-digit
///   `:status` and regular fields per section 8.2, else a stream error
///   PROTOCOL_ERROR; 1xx ones (not 101, not with END_STREAM) are dropped;
///   DATA before the final response, a header block after it without
///   END_STREAM, and DATA against `content-length` (none at all for HEAD, 204
///   and 304) are stream errors PROTOCOL_ERROR;
/// - a GOAWAY from the server refuses our streams above its last stream id
///   (reported as reset with REFUSED_STREAM, safe to retry elsewhere) and stops
///   new ones.
///
/// A connection error queues GOAWAY with the code and the last stream id seen
/// (0 in the client role); from then on [`Connection::recv`] returns the error
/// and the send calls fail.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    role: Role,
    phase: Phase,
    error: Option<ConnectionError>,
    /// The last stream id of the GOAWAY we sent gracefully.
    going_away: Option<StreamId>,
    /// The first GOAWAY of a two-step shutdown is out; the PING ACK ends it.
    draining: bool,
    peer_going_away: bool,
    /// Client role: the id the next request gets (odd, increasing); past
    /// [`StreamId::MAX`] no stream may open.
    next_stream: u32,
    streams: Streams,
    decoder: hpack::Decoder,
    /// Fields the peer keeps repeating, already validated (see `known`).
    known: Known,
    encoder: hpack::Encoder,
    peer: ConnectionSettings,
    settings_acked: bool,
    conn_send: SendWindow,
    conn_recv: RecvWindow,
    block: Option<PendingBlock>,
    /// Where response header blocks are encoded before they are framed; kept for reuse
    /// until the connection goes quiet.
    scratch: Vec<u8>,
    output: BytesMut,
    events: VecDeque<Event>,
    /// Streams that came up short in `send_data`, in the order they did. They are told
    /// [`Event::WindowOpened`] in that order, so a window many streams wait on is handed
    /// out first come, first served, not in the stream table's hash order, which let the
    /// same streams lose every time and wait for hundreds of milliseconds.
    blocked: VecDeque<StreamId>,
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
    /// Starts a server connection, queuing our SETTINGS (and a WINDOW_UPDATE
    /// opening the connection window beyond 65,535) so they go out with the
    /// first write.
    pub fn new(config: Config) -> Self {
        Self::with_role(config, Role::Server)
    }

    /// Starts a client connection (the gateway's upstream side): queues the
    /// connection preface, our SETTINGS (push disabled, no stream limit since
    /// the server opens none) and the connection WINDOW_UPDATE, so requests
    /// may be sent at once without waiting for the server.
    pub fn client(config: Config) -> Self {
        Self::with_role(config, Role::Client)
    }

    fn with_role(config: Config, role: Role) -> Self {
        let config = config.sanitized();
        let mut decoder = hpack::Decoder::new(hpack::DEFAULT_TABLE_SIZE);
        // The decoder's hard bound is twice what we advertise: sections in between
        // are decoded (keeping HPACK in step) and refused on their stream alone.
        decoder.set_max_header_list_size((config.max_header_list_size as usize).saturating_mul(2));
        let mut encoder = hpack::Encoder::new();
        encoder.set_huffman(config.huffman);
        let mut conn = Self {
            role,
            phase: match role {
                Role::Server => Phase::Preface,
                Role::Client => Phase::FirstSettings,
            },
            error: None,
            going_away: None,
            draining: false,
            peer_going_away: false,
            next_stream: 1,
            streams: Streams::default(),
            decoder,
            known: Known::default(),
            encoder,
            peer: ConnectionSettings::default(),
            settings_acked: false,
            conn_send: SendWindow::new(DEFAULT_WINDOW),
            conn_recv: RecvWindow::new(config.connection_window, config.connection_window),
            block: None,
            scratch: Vec::new(),
            output: BytesMut::new(),
            events: VecDeque::new(),
            blocked: VecDeque::new(),
            resets: 0,
            control_owed: 0,
            written: 0,
            control_end: 0,
            empty_frames: 0,
            config,
        };
        let client = role == Role::Client;
        if client {
            conn.output.extend_from_slice(h2frame::PREFACE);
        }
        let settings = Settings {
            header_table_size: (conn.config.header_table_size != hpack::DEFAULT_TABLE_SIZE as u32)
                .then_some(conn.config.header_table_size),
            enable_push: client.then_some(false),
            max_concurrent_streams: (!client).then_some(conn.config.max_concurrent_streams),
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

    // ----- bookkeeping -------------------------------------------------------

    /// Queues a GOAWAY for a connection error and remembers it.
    fn close_with(&mut self, err: ConnectionError) -> ConnectionError {
        if self.error.is_none() {
            self.error = Some(err);
            self.block = None;
            let last = self.last_peer_stream();
            h2frame::write_goaway(&mut self.output, last, err.code, err.reason.as_bytes());
        }
        err
    }

    /// Sends RST_STREAM for a rule the client broke and forgets the stream,
    /// telling the application when it knew the stream. The reset counts
    /// against [`Config::max_reset_streams`] like one the client sent.
    fn reset_stream(&mut self, id: StreamId, code: ErrorCode) -> Result<()> {
        self.queue_control(|out| h2frame::write_rst_stream(out, id, code))?;
        self.streams.recent.remember(id, true);
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
                // The queue holds only live streams, so a peer that keeps every window
                // shut and resets its streams cannot grow it.
                if stream.blocked {
                    self.blocked.retain(|&blocked| blocked != id);
                }
                true
            }
            None => false,
        }
    }

    fn close_if_done(&mut self, id: StreamId) {
        if self.streams.get_mut(id).is_some_and(|s| s.is_closed()) {
            self.remove_stream(id);
            self.streams.recent.remember(id, false);
            self.resets = self.resets.saturating_sub(1);
        }
    }

    /// The last stream the peer opened that we processed, for GOAWAY: in the
    /// client role the server opens none.
    fn last_peer_stream(&self) -> StreamId {
        match self.role {
            Role::Server => StreamId::new(self.streams.highest),
            Role::Client => StreamId::ZERO,
        }
    }

    /// Counts a reset towards the rapid-reset bound, which guards a server
    /// against its clients: a backend resetting our requests costs us nothing
    /// it could scale, so the client role does not count.
    fn count_reset(&mut self) -> Result<()> {
        if self.role == Role::Client {
            return Ok(());
        }
        self.resets = self.resets.saturating_add(1);
        if self.resets > self.config.max_reset_streams {
            return Err(Abuse::ResetStreams.error());
        }
        Ok(())
    }

    /// Queues a frame the client's behaviour made us owe (an ACK or a reset),
    /// refusing once too many are waiting for a client that does not read.
    fn queue_control(&mut self, write: impl FnOnce(&mut BytesMut)) -> Result<()> {
        self.control_owed = self.control_owed.saturating_add(1);
        if self.control_owed > self.config.max_control_frames_owed {
            return Err(Abuse::ControlFrames.error());
        }
        write(&mut self.output);
        self.control_end = self.written + self.output.len() as u64;
        Ok(())
    }

    fn empty_frame(&mut self) -> Result<()> {
        self.empty_frames = self.empty_frames.saturating_add(1);
        if self.empty_frames > self.config.max_empty_frames {
            return Err(Abuse::EmptyFrames.error());
        }
        Ok(())
    }

    fn release_connection(&mut self, n: usize) {
        if let Some(increment) = self.conn_recv.release(n) {
            h2frame::write_window_update(&mut self.output, StreamId::ZERO, increment);
        }
    }

    /// Tells blocked streams that they can send again, when they can, in the order they
    /// blocked; one still without window of its own keeps its place.
    fn wake_blocked(&mut self) {
        if self.blocked.is_empty() || self.conn_send.available() == 0 || self.output_room() == 0 {
            return;
        }
        for _ in 0..self.blocked.len() {
            let Some(id) = self.blocked.pop_front() else {
                break;
            };
            let Some(stream) = self.streams.get_mut(id).filter(|s| s.blocked) else {
                continue;
            };
            if stream.send_window.available() > 0 {
                stream.blocked = false;
                self.events.push_back(Event::WindowOpened { stream: id });
            } else {
                self.blocked.push_back(id);
            }
        }
    }

    fn output_room(&self) -> usize {
        self.config
            .max_buffered_output
            .saturating_sub(self.output.len())
    }

    /// Takes spare room for what this connection gave back when it went quiet: called
    /// where a quiet connection's work starts again (input arrives, or a request is
    /// sent), it costs a check each while the connection already has its room.
    fn wake(&mut self) {
        if self.output.capacity() == 0
            && let Some(output) = crate::room::output()
        {
            self.output = output;
        }
        if self.events.capacity() == 0
            && let Some(events) = crate::room::events()
        {
            self.events = events;
        }
        self.streams.wake();
    }

    // ----- output ------------------------------------------------------------

    /// Bytes waiting to be written.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// Marks `n` output bytes as written. Once all are, blocked streams may be told
    /// they can send again; the buffer is kept for the next frames until
    /// [`Connection::shrink_idle`].
    pub fn advance(&mut self, n: usize) {
        let n = n.min(self.output.len());
        self.output.advance(n);
        self.written += n as u64;
        if self.written >= self.control_end {
            self.control_owed = 0;
        }
        if self.output.is_empty() {
            self.output.clear();
            self.wake_blocked();
        }
    }

    /// Gives back what a busy connection keeps for reuse (the output buffer, the event
    /// queue, the stream table, the fields the peer repeats) when each is empty.
    /// Reusing them while requests flow saves an allocation and a few reallocations
    /// per write; a driver calls this when the connection goes quiet, so an idle
    /// connection holds none of them. The buffer, queue and table go to the thread's
    /// spare room (`room`), which the next connection to wake up takes.
    pub fn shrink_idle(&mut self) {
        if self.output.is_empty() && self.output.capacity() > 0 {
            crate::room::give_output(std::mem::take(&mut self.output));
        }
        if self.events.is_empty() && self.events.capacity() > 0 {
            crate::room::give_events(std::mem::take(&mut self.events));
        }
        if self.blocked.is_empty() && self.blocked.capacity() > 0 {
            self.blocked = VecDeque::new();
        }
        self.scratch = Vec::new();
        self.known.clear();
        self.decoder.shrink_idle();
        self.streams.shrink_idle();
    }

    /// Whether the driver should read more: false once the connection has
    /// ended, or while the peer is not reading what we owe it, so a peer that
    /// only writes cannot make us buffer without bound.
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

    /// Whether [`Connection::send_request`] would open a stream now: a client
    /// connection with no connection error, no GOAWAY sent or received, under
    /// the server's SETTINGS_MAX_CONCURRENT_STREAMS and with stream ids left.
    /// A pool checks this to pick a connection or open another.
    pub fn can_open_stream(&self) -> bool {
        self.role == Role::Client
            && self.error.is_none()
            && self.going_away.is_none()
            && !self.peer_going_away
            && self.next_stream <= StreamId::MAX.get()
            && self.streams.active() < self.max_send_streams()
    }

    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS, `usize::MAX` while it set
    /// none: how many requests a pool may have in flight on this connection.
    pub fn max_send_streams(&self) -> usize {
        self.peer
            .max_concurrent_streams
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Whether the peer's first SETTINGS has arrived, so its stream limit
    /// ([`Connection::max_send_streams`]) is known rather than assumed.
    pub fn peer_settings_received(&self) -> bool {
        self.phase == Phase::Running
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
            + self.scratch.capacity()
            + self.block.as_ref().map_or(0, |b| b.fragments.capacity())
            + self.events.capacity() * std::mem::size_of::<Event>()
            + self.blocked.capacity() * std::mem::size_of::<StreamId>()
            + self.streams.memory()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SendError;

    #[test]
    fn stream_ids_run_out_at_the_largest() {
        let mut conn = Connection::client(Config::default());
        conn.next_stream = StreamId::MAX.get();
        let (head, ()) = http::Request::new(()).into_parts();
        assert!(conn.can_open_stream());
        assert_eq!(conn.send_request(&head, true), Ok(StreamId::MAX));
        assert!(!conn.can_open_stream());
        assert_eq!(conn.send_request(&head, true), Err(SendError::NoStream));
    }
}
