//! A scripted peer for the connection tests: builds raw frames with
//! `h2frame::write_*` and `hpack::Encoder`, and decodes what the connection
//! writes. It plays the client against `Connection::new` and the server against
//! `Connection::client`.

#![allow(dead_code)]

use bytes::BytesMut;
use h2conn::{Config, Connection, ConnectionError, ErrorCode, Event, StreamId};
use h2frame::{Decoded, Frame, Settings, flags};

/// A frame the server wrote, owned so tests can compare it.
#[derive(Debug, PartialEq, Eq)]
pub enum Out {
    Settings {
        ack: bool,
        settings: Settings,
    },
    Headers {
        stream: u32,
        end_stream: bool,
        fields: Vec<(String, String)>,
    },
    Data {
        stream: u32,
        end_stream: bool,
        data: Vec<u8>,
    },
    Rst {
        stream: u32,
        code: ErrorCode,
    },
    GoAway {
        last: u32,
        code: ErrorCode,
    },
    WindowUpdate {
        stream: u32,
        increment: u32,
    },
    Ping {
        ack: bool,
        payload: [u8; 8],
    },
}

/// A connection plus the client-side HPACK state needed to talk to it.
pub struct Harness {
    pub conn: Connection,
    pub enc: hpack::Encoder,
    pub dec: hpack::Decoder,
    pub result: Result<(), ConnectionError>,
}

impl Harness {
    /// A connection past the handshake: preface, client SETTINGS (`client`) and
    /// the ACK of the server's SETTINGS all sent, and the output drained.
    pub fn new(config: Config, client: Settings) -> Self {
        let mut h = Self::raw(config);
        let mut bytes = h2frame::PREFACE.to_vec();
        h2frame::write_settings(&mut bytes, &client);
        h2frame::write_settings_ack(&mut bytes);
        h.feed(&bytes);
        assert!(h.result.is_ok(), "{:?}", h.result);
        let out = h.frames();
        assert!(out.contains(&Out::Settings {
            ack: true,
            settings: Settings::default()
        }));
        h
    }

    /// A connection that has received nothing yet.
    pub fn raw(config: Config) -> Self {
        Self {
            conn: Connection::new(config),
            enc: hpack::Encoder::new(),
            dec: {
                let mut dec = hpack::Decoder::new(4096);
                dec.set_max_header_list_size(1 << 20);
                dec
            },
            result: Ok(()),
        }
    }

    /// A client-role connection past the handshake: the server's SETTINGS
    /// (`server`) and its ACK of ours received, and the output (preface,
    /// SETTINGS, WINDOW_UPDATE, our ACK) drained. `enc` then plays the server's
    /// encoder and `dec` decodes our requests.
    pub fn client(config: Config, server: Settings) -> Self {
        let mut h = Self::raw_client(config);
        h.client_frames();
        let mut bytes = Vec::new();
        h2frame::write_settings(&mut bytes, &server);
        h2frame::write_settings_ack(&mut bytes);
        h.feed(&bytes);
        assert!(h.result.is_ok(), "{:?}", h.result);
        assert!(h.conn.peer_settings_received());
        let out = h.frames();
        assert_eq!(
            out,
            vec![Out::Settings {
                ack: true,
                settings: Settings::default()
            }]
        );
        h
    }

    /// A client-role connection that has received nothing yet.
    pub fn raw_client(config: Config) -> Self {
        Self {
            conn: Connection::client(config),
            ..Self::raw(Config::default())
        }
    }

    /// The client's first output: asserts it starts with the preface and
    /// returns the frames after it.
    pub fn client_frames(&mut self) -> Vec<Out> {
        let bytes = self.conn.output().to_vec();
        self.conn.advance(bytes.len());
        assert!(bytes.starts_with(h2frame::PREFACE), "no preface first");
        decode_frames(&bytes[h2frame::PREFACE.len()..], &mut self.dec)
    }

    /// Sends a request from the client-role connection: `method` on `uri`
    /// with `headers`, returning its stream.
    pub fn request(
        &mut self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        end_stream: bool,
    ) -> Result<StreamId, h2conn::SendError> {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (n, v) in headers {
            builder = builder.header(*n, *v);
        }
        let (parts, ()) = builder.body(()).unwrap().into_parts();
        self.conn.send_request(&parts, end_stream)
    }

    /// Hands bytes to the connection in one read.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut buf = BytesMut::from(bytes);
        self.result = self.conn.recv(&mut buf);
    }

    /// A header block for `fields`, encoded with the client's table.
    pub fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut block = Vec::new();
        self.enc.encode(
            fields
                .iter()
                .map(|(n, v)| hpack::Field::new(n.as_bytes(), v.as_bytes())),
            &mut block,
        );
        block
    }

    /// A HEADERS frame (one frame, END_HEADERS) with `fields`.
    pub fn headers(&mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) -> Vec<u8> {
        let block = self.block(fields);
        let mut out = Vec::new();
        h2frame::write_headers(
            &mut out,
            StreamId::new(stream),
            end_stream,
            None,
            &block,
            16_384,
        );
        out
    }

    /// A GET request on `stream`.
    pub fn get(&mut self, stream: u32) -> Vec<u8> {
        self.headers(stream, &GET, true)
    }

    /// A POST request head on `stream`, body to follow.
    pub fn post(&mut self, stream: u32) -> Vec<u8> {
        self.headers(stream, &POST, false)
    }

    /// Every event queued.
    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    /// Every frame the server wrote, and the output marked written.
    pub fn frames(&mut self) -> Vec<Out> {
        let bytes = self.conn.output().to_vec();
        self.conn.advance(bytes.len());
        decode_frames(&bytes, &mut self.dec)
    }

    /// Asserts the connection ended with `code` and its GOAWAY was written.
    #[track_caller]
    pub fn assert_goaway(&mut self, code: ErrorCode) {
        match self.result {
            Err(err) => assert_eq!(err.code, code, "{err}"),
            Ok(()) => panic!("expected connection error {code:?}, connection is fine"),
        }
        let frames = self.frames();
        assert!(
            frames
                .iter()
                .any(|f| matches!(f, Out::GoAway { code: c, .. } if *c == code)),
            "no GOAWAY {code:?} in {frames:?}"
        );
        assert!(self.conn.is_closed());
    }

    /// Asserts the connection is fine and the output holds exactly one
    /// RST_STREAM for `stream` with `code` (besides anything `allow`ed).
    #[track_caller]
    pub fn assert_rst(&mut self, stream: u32, code: ErrorCode) {
        assert!(self.result.is_ok(), "{:?}", self.result);
        let frames = self.frames();
        assert_eq!(frames, vec![Out::Rst { stream, code }]);
    }
}

pub const GET: [(&str, &str); 4] = [
    (":method", "GET"),
    (":scheme", "http"),
    (":authority", "example.com"),
    (":path", "/"),
];

pub const POST: [(&str, &str); 4] = [
    (":method", "POST"),
    (":scheme", "http"),
    (":authority", "example.com"),
    (":path", "/upload"),
];

/// Decodes every frame in `bytes`, joining CONTINUATIONs to their HEADERS.
pub fn decode_frames(mut bytes: &[u8], dec: &mut hpack::Decoder) -> Vec<Out> {
    let mut out = Vec::new();
    let mut pending: Option<(u32, bool, Vec<u8>)> = None;
    while !bytes.is_empty() {
        let (frame, len) = match h2frame::decode(bytes, h2frame::MAX_MAX_FRAME_SIZE) {
            Ok(Decoded::Frame(frame, len)) => (frame, len),
            other => panic!("server wrote a bad frame: {other:?}"),
        };
        bytes = &bytes[len..];
        let mut finish = |stream: u32, end_stream: bool, block: &[u8], out: &mut Vec<Out>| {
            let fields = dec
                .decode_to_vec(block)
                .expect("server header block decodes")
                .into_iter()
                .map(|h| {
                    (
                        String::from_utf8(h.name).unwrap(),
                        String::from_utf8(h.value).unwrap(),
                    )
                })
                .collect();
            out.push(Out::Headers {
                stream,
                end_stream,
                fields,
            });
        };
        match frame {
            Frame::Settings { ack, settings } => out.push(Out::Settings { ack, settings }),
            Frame::Headers {
                stream,
                end_stream,
                end_headers,
                fragment,
                ..
            } => {
                if end_headers {
                    finish(stream.get(), end_stream, fragment, &mut out);
                } else {
                    pending = Some((stream.get(), end_stream, fragment.to_vec()));
                }
            }
            Frame::Continuation {
                end_headers,
                fragment,
                ..
            } => {
                let (stream, end_stream, mut block) = pending.take().expect("HEADERS first");
                block.extend_from_slice(fragment);
                if end_headers {
                    finish(stream, end_stream, &block, &mut out);
                } else {
                    pending = Some((stream, end_stream, block));
                }
            }
            Frame::Data {
                stream,
                end_stream,
                data,
                ..
            } => out.push(Out::Data {
                stream: stream.get(),
                end_stream,
                data: data.to_vec(),
            }),
            Frame::RstStream { stream, code } => out.push(Out::Rst {
                stream: stream.get(),
                code,
            }),
            Frame::GoAway {
                last_stream, code, ..
            } => out.push(Out::GoAway {
                last: last_stream.get(),
                code,
            }),
            Frame::WindowUpdate { stream, increment } => out.push(Out::WindowUpdate {
                stream: stream.get(),
                increment,
            }),
            Frame::Ping { ack, payload } => out.push(Out::Ping { ack, payload }),
            other => panic!("server wrote an unexpected frame: {other:?}"),
        }
    }
    out
}

/// A DATA frame.
pub fn data(stream: u32, payload: &[u8], end_stream: bool) -> Vec<u8> {
    let mut out = Vec::new();
    h2frame::write_data(&mut out, StreamId::new(stream), end_stream, payload);
    out
}

/// Any frame from its parts.
pub fn raw(kind: u8, flag_bits: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    h2frame::write_frame(
        &mut out,
        h2frame::FrameType(kind),
        flag_bits,
        StreamId::new(stream),
        payload,
    );
    out
}

/// A WINDOW_UPDATE.
pub fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    let mut out = Vec::new();
    h2frame::write_window_update(&mut out, StreamId::new(stream), increment);
    out
}

/// An RST_STREAM.
pub fn rst(stream: u32, code: ErrorCode) -> Vec<u8> {
    let mut out = Vec::new();
    h2frame::write_rst_stream(&mut out, StreamId::new(stream), code);
    out
}

/// A PING.
pub fn ping(payload: [u8; 8]) -> Vec<u8> {
    let mut out = Vec::new();
    h2frame::write_ping(&mut out, false, payload);
    out
}

/// A SETTINGS frame.
pub fn settings(settings: Settings) -> Vec<u8> {
    let mut out = Vec::new();
    h2frame::write_settings(&mut out, &settings);
    out
}

pub const END_HEADERS: u8 = flags::END_HEADERS;
