//! Connection limits: what we advertise in SETTINGS and the bounds that keep a
//! hostile peer from costing more than a well-behaved one.

/// Settings and abuse bounds for one connection, server or client role.
///
/// Defaults are meant for an edge gateway: generous enough for gRPC and browser
/// traffic, tight enough that one peer cannot pin much memory or CPU.
#[derive(Clone, Debug)]
pub struct Config {
    /// SETTINGS_MAX_CONCURRENT_STREAMS: streams beyond it are refused with
    /// RST_STREAM REFUSED_STREAM. Server role only: a client advertises none,
    /// as the server opens no streams.
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE: how much body (request body as a server,
    /// response body as a client) the peer may send on a stream before the
    /// application releases it.
    pub initial_stream_window: u32,
    /// The connection receive window; above 65,535 a WINDOW_UPDATE follows our
    /// SETTINGS to open it.
    pub connection_window: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE, also the HPACK decoder's bound.
    pub max_header_list_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE: the largest frame payload we accept.
    pub max_frame_size: u32,
    /// SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table the peer may use.
    pub header_table_size: u32,
    /// Largest compressed header block (HEADERS plus CONTINUATION) buffered before
    /// the connection is cut with ENHANCE_YOUR_CALM.
    pub max_header_block_size: usize,
    /// Most CONTINUATION frames in one header block (ENHANCE_YOUR_CALM beyond).
    pub max_continuation_frames: u32,
    /// Resets beyond the streams completed normally (rapid reset, CVE-2023-44487):
    /// each client RST_STREAM, and each stream we reset for a protocol error,
    /// counts one; each stream that completes normally takes one off. Above this,
    /// GOAWAY ENHANCE_YOUR_CALM. Server role only: a backend resetting our
    /// requests is not an attack on us.
    pub max_reset_streams: u32,
    /// Control frames (PING and SETTINGS ACKs, RST_STREAMs) queued while output
    /// was never fully written. Reading stops at half of it ([`wants_read`]) and
    /// the connection is cut with ENHANCE_YOUR_CALM above it.
    ///
    /// [`wants_read`]: crate::Connection::wants_read
    pub max_control_frames_owed: u32,
    /// Frames that carry nothing (empty DATA without END_STREAM, empty
    /// CONTINUATION, PRIORITY, unknown types) in a row before ENHANCE_YOUR_CALM.
    pub max_empty_frames: u32,
    /// Output bytes buffered before `send_data` stops accepting body bytes and
    /// [`wants_read`](crate::Connection::wants_read) says to stop reading.
    pub max_buffered_output: usize,
    /// Whether header values we send are Huffman-coded where that is shorter. Off, they
    /// go raw: more bytes, less CPU per message, for a link where bytes are cheap.
    pub huffman: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 100,
            initial_stream_window: 256 * 1024,
            connection_window: 1024 * 1024,
            max_header_list_size: 16 * 1024,
            max_frame_size: h2frame::MIN_MAX_FRAME_SIZE,
            header_table_size: 4096,
            max_header_block_size: 32 * 1024,
            max_continuation_frames: 32,
            max_reset_streams: 200,
            max_control_frames_owed: 1000,
            max_empty_frames: 100,
            max_buffered_output: 256 * 1024,
            huffman: true,
        }
    }
}

impl Config {
    /// The values clamped to what the protocol allows, so a bad config cannot
    /// make us advertise illegal SETTINGS.
    pub(crate) fn sanitized(mut self) -> Self {
        let max_window = h2frame::MAX_WINDOW_SIZE;
        self.initial_stream_window = self.initial_stream_window.min(max_window);
        self.connection_window = self.connection_window.clamp(65_535, max_window);
        self.max_frame_size = self
            .max_frame_size
            .clamp(h2frame::MIN_MAX_FRAME_SIZE, h2frame::MAX_MAX_FRAME_SIZE);
        self.max_buffered_output = self.max_buffered_output.max(16 * 1024);
        self.max_control_frames_owed = self.max_control_frames_owed.max(2);
        self
    }
}
