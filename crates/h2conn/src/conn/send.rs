//! The application's side: requests (client role), responses (server role),
//! body, trailers, resets, flow-control credit, shutdown.

use h2frame::{ErrorCode, PING_LEN, StreamId};
use http::{HeaderMap, Method, StatusCode};

use super::{Connection, DEFAULT_WINDOW, Role, SHUTDOWN_PING};
use crate::event::{ConnectionError, Event, SendError};
use crate::headers;
use crate::stream::{Lookup, SendState, Stream};

impl Connection {
    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Sends the response head (server role). A 1xx status may precede the
    /// final one; with `end_stream` the response has no body. Connection-specific
    /// fields are left out, as HTTP/2 forbids them.
    ///
    /// # Errors
    ///
    /// When the stream is not open for sending or already has its response (a
    /// client-role stream always has: its request head).
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
        let status = hpack::Field::new(b":status", status.as_str().as_bytes());
        let fields = std::iter::once(status).chain(fields_of(headers));
        self.write_block(id, fields, end_stream && !informational);
        self.close_if_done(id);
        Ok(())
    }

    /// Ends the response (or, in the client role, the request) with trailers:
    /// gRPC's status, or a gRPC client's trailing metadata.
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
        self.write_block(id, fields_of(headers), true);
        self.close_if_done(id);
        Ok(())
    }

    /// Opens the next client stream (ids 1, 3, 5, ...) with this request head
    /// and queues its HEADERS (client role). With `end_stream` the request has
    /// no body; else it follows with [`Connection::send_data`] and optionally
    /// [`Connection::send_trailers`]. The response comes as [`Event::Response`].
    ///
    /// `:scheme` is the URI's, else `http`; `:authority` the URI's, else the
    /// `host` field's (which is then not sent itself); `:path` the URI's path
    /// and query, else `/`. CONNECT sends only `:method` and `:authority`.
    /// Connection-specific fields, and a `te` other than `trailers`, are left
    /// out as HTTP/2 forbids them; sensitive values are never indexed.
    ///
    /// # Errors
    ///
    /// [`SendError::ConnectionClosed`] after a connection error;
    /// [`SendError::NoStream`] when no stream may open now
    /// ([`Connection::can_open_stream`]), and always in the server role.
    pub fn send_request(
        &mut self,
        head: &http::request::Parts,
        end_stream: bool,
    ) -> std::result::Result<StreamId, SendError> {
        if self.role == Role::Server {
            return Err(SendError::NoStream);
        }
        self.check_open()?;
        if !self.can_open_stream() {
            return Err(SendError::NoStream);
        }
        self.wake();
        let id = StreamId::new(self.next_stream);
        self.next_stream += 2;
        self.streams.highest = id.get();

        let uri = &head.uri;
        let host = head.headers.get(http::header::HOST);
        let authority = uri
            .authority()
            .map(|a| a.as_str().as_bytes())
            .or(host.map(http::HeaderValue::as_bytes));
        let drop_host = uri.authority().is_none() && host.is_some();
        let connect = head.method == Method::CONNECT;
        let mut pseudo: [Option<hpack::Field<'_>>; 4] = [
            Some(hpack::Field::new(
                b":method",
                head.method.as_str().as_bytes(),
            )),
            None,
            authority.map(|a| hpack::Field::new(b":authority", a)),
            None,
        ];
        if !connect {
            let scheme = uri.scheme_str().unwrap_or("http");
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            let path = if path.is_empty() { "/" } else { path };
            pseudo[1] = Some(hpack::Field::new(b":scheme", scheme.as_bytes()));
            pseudo[3] = Some(hpack::Field::new(b":path", path.as_bytes()));
        }
        let regular = fields_of(&head.headers).filter(|field| {
            !(drop_host && field.name == b"host")
                && (field.name != b"te" || field.value == b"trailers")
        });
        self.write_block(id, pseudo.into_iter().flatten().chain(regular), end_stream);

        let recv_window = if self.settings_acked {
            self.config.initial_stream_window
        } else {
            DEFAULT_WINDOW
        };
        let mut stream = Stream::new(self.peer.initial_window_size, recv_window, recv_window);
        stream.send = if end_stream {
            SendState::Done
        } else {
            SendState::Streaming
        };
        stream.awaiting_response = true;
        stream.head_request = head.method == Method::HEAD;
        self.streams.insert(id, stream);
        Ok(id)
    }

    /// Encodes `fields` into the connection's scratch block (kept for reuse, like the
    /// output buffer) and queues it as HEADERS and, if it is large, CONTINUATION frames.
    pub(super) fn write_block<'a>(
        &mut self,
        id: StreamId,
        fields: impl IntoIterator<Item = hpack::Field<'a>>,
        end_stream: bool,
    ) {
        let mut block = std::mem::take(&mut self.scratch);
        block.clear();
        self.encoder.encode(fields, &mut block);
        h2frame::write_headers(
            &mut self.output,
            id,
            end_stream,
            None,
            &block,
            self.peer.max_frame_size,
        );
        self.scratch = block;
    }

    /// Queues as much of `data` (response body, or request body in the client
    /// role) as the stream and connection windows, the peer's frame size and the
    /// output bound allow, and returns how much that
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
        let newly_blocked = n < data.len() && !stream.blocked;
        if n < data.len() {
            stream.blocked = true;
        }
        stream.send_window.consume(n);
        if finished {
            stream.send = SendState::Done;
        }
        self.conn_send.consume(n);
        if newly_blocked {
            self.blocked.push_back(id);
        }
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
    /// INTERNAL_ERROR). Frames the peer already sent for it are ignored. No
    /// [`Event::Reset`] follows: the caller knows.
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
        self.streams.recent.remember(id, true);
        self.remove_stream(id);
        Ok(())
    }

    /// The application consumed `n` bytes of the stream's received DATA: credit
    /// goes back to the peer, in WINDOW_UPDATEs batched per half window. A
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

    /// Starts a graceful shutdown: GOAWAY naming the last stream we took (0 in
    /// the client role, which takes none), after which new streams are refused
    /// (or, as a client, not opened). Streams already open carry on; the
    /// connection is done when they are ([`Connection::is_closed`]).
    pub fn go_away(&mut self, code: ErrorCode) {
        if self.error.is_some() || self.going_away.is_some() {
            return;
        }
        let last = self.last_peer_stream();
        self.going_away = Some(last);
        h2frame::write_goaway(&mut self.output, last, code, &[]);
    }

    /// Starts the two-step graceful shutdown of RFC 9113 section 6.8: GOAWAY
    /// with the largest stream id and a PING; when the PING is answered, every
    /// request sent before the client saw the GOAWAY has arrived, and a second
    /// GOAWAY names the real last stream ([`Connection::go_away`]). Requests
    /// racing the shutdown are served instead of refused. A client has no
    /// such race (it opens the streams), so there this is
    /// `go_away(NO_ERROR)`.
    pub fn shutdown(&mut self) {
        if self.role == Role::Client {
            self.go_away(ErrorCode::NO_ERROR);
            return;
        }
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

    /// Whether the peer has yet to acknowledge our SETTINGS: a driver that
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
}

/// A header map as HPACK fields: connection-specific fields left out, values
/// marked sensitive (e.g. credentials) never indexed.
fn fields_of(headers: &HeaderMap) -> impl Iterator<Item = hpack::Field<'_>> {
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
        })
}
