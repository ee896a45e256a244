//! A sans-I/O HTTP/2 connection (RFC 9113) on [`h2frame`] and [`hpack`], in
//! the server role ([`Connection::new`]: the gateway's listener) or the client
//! role ([`Connection::client`]: its upstream connections to backends): the
//! third piece of the gateway's own HTTP/2 framing layer. Both roles are one
//! state machine: flow control, SETTINGS, PING, GOAWAY, stream bookkeeping and
//! the abuse bounds are shared; only who opens streams and what a header block
//! means differ.
//!
//! The driver owns the socket. It appends what it reads to a `BytesMut` and hands
//! it to [`Connection::recv`], takes [`Event`]s from [`Connection::poll_event`],
//! answers with the `send_*` calls, writes [`Connection::output`] and reports the
//! bytes written with [`Connection::advance`]. Nothing here blocks, spawns, or
//! keeps an output buffer while there is nothing to write; a driver that also
//! drops its read buffer when `recv` leaves it empty holds no I/O buffer at all
//! for an idle connection: after serving a gRPC-like request, about 0.6 KiB
//! inline plus 0.5 KiB of HPACK state (`tests/memory.rs`), against h2's 28 KiB.
//! The gateway's HTTP/2 listener (`crates/sekisho/src/listener/http2`) is its driver
//! in production. The tests hold a complete tokio driver (`tests/driver/mod.rs`) served to the
//! `h2` client, curl, nghttp and h2load, and a client driver loop talking to the `h2`
//! server (`tests/client_interop.rs`).
//!
//! As a client the driver calls [`Connection::send_request`] (checking
//! [`Connection::can_open_stream`] against the server's stream limit), sends
//! the body with [`Connection::send_data`] and takes [`Event::Response`], then
//! `Data` and `Trailers` events for the response body.
//!
//! The rules enforced are listed on [`Connection`]. Not done yet:
//!
//! - There is no clock inside: SETTINGS_TIMEOUT and idle timeouts are left to
//!   the driver ([`Connection::awaiting_settings_ack`], [`Connection::abort`]),
//!   and the rapid-reset bound counts resets against completed streams rather
//!   than per second.
//! - [`Connection::shutdown`] (server role) waits for the client's PING ACK with no deadline:
//!   a client that never answers keeps the connection in its first step until
//!   the driver calls [`Connection::go_away`] or [`Connection::abort`].
//! - A request whose field section exceeds SETTINGS_MAX_HEADER_LIST_SIZE gets a
//!   431 response, but one beyond twice that ends the connection with
//!   COMPRESSION_ERROR, since the HPACK decoder stops there and cannot resume.
//! - The HPACK decoder keeps its scratch buffers and dynamic table between
//!   blocks; only the connection's own buffers are released while idle.
//! - Floods of tiny (one-byte) DATA frames are not bounded beyond flow control;
//!   empty ones are.
//! - Priorities are parsed and ignored; responses go out in the order the
//!   application writes them. Extended CONNECT (`:protocol`) is refused.
//! - As a client: no server push (disabled in our SETTINGS), no request
//!   priorities, and a response beyond twice SETTINGS_MAX_HEADER_LIST_SIZE ends
//!   the connection (COMPRESSION_ERROR) rather than only its stream; the
//!   server's SETTINGS_MAX_HEADER_LIST_SIZE is not checked before sending.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod conn;
mod event;
mod flow;
mod headers;
mod known;
mod room;
mod spare;
mod stream;
mod stream_map;

pub use config::Config;
pub use conn::Connection;
pub use event::{Abuse, ConnectionError, Event, SendError};
pub use h2frame::{ErrorCode, StreamId};
pub use headers::is_connection_specific;
pub use room::free_spare_room;
pub use spare::recycle;
pub use stream_map::StreamMap;
