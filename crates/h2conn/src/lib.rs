//! A sans-I/O HTTP/2 server connection (RFC 9113) on [`h2frame`] and [`hpack`]:
//! the third piece of the gateway's own HTTP/2 framing layer.
//!
//! The driver owns the socket. It appends what it reads to a `BytesMut` and hands
//! it to [`Connection::recv`], takes [`Event`]s from [`Connection::poll_event`],
//! answers with `send_*`, writes [`Connection::output`] and reports the bytes
//! written with [`Connection::advance`]. Nothing here blocks, spawns, or holds a
//! buffer while there is nothing to write.
//!
//! See [`Connection`] for the rules enforced. Not done yet:
//!
//! - No clock: SETTINGS_TIMEOUT is not enforced and the rapid-reset bound counts
//!   resets against completed streams rather than per second.
//! - Graceful shutdown sends one GOAWAY with the last stream taken, not the
//!   two-step GOAWAY(2^31-1) + PING of RFC 9113 section 6.8.
//! - A header list above SETTINGS_MAX_HEADER_LIST_SIZE ends the connection with
//!   COMPRESSION_ERROR (the HPACK decoder cannot resume mid-block) instead of a
//!   431 response.
//! - Priorities are parsed and ignored; responses are sent in the order the
//!   application writes them.
//! - Not yet used by the gateway's listener.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod conn;
mod event;
mod flow;
mod headers;
mod stream;

pub use config::Config;
pub use conn::Connection;
pub use event::{ConnectionError, Event, SendError};
pub use h2frame::{ErrorCode, StreamId};
