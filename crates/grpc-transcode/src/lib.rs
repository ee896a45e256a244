//! REST/JSON to gRPC transcoding from `google.api.http` rules, as a library without I/O.
//!
//! A [`Transcoder`] is built once from an encoded `FileDescriptorSet` and checked completely
//! at that point: templates parse, every field a rule names exists, and no two rules can match
//! the same request. At request time the gateway asks it to [`Transcoder::resolve`] a method and
//! path into a [`Call`]; the call turns the HTTP body into the gRPC request message and the
//! backend's messages and status back into an HTTP response. The gateway keeps all I/O:
//! reading bodies, framing, talking HTTP/2 to the backend, streaming chunks.
//!
//! Descriptor sets come from `protoc --include_imports -o set.binpb` or from protox at start-up
//! (`protox::Compiler::new(includes)?.include_imports(true).open_files(files)?
//! .encode_file_descriptor_set()`): either way pass the bytes as encoded, since decoding them
//! into prost's own types would drop the `google.api.http` extension.
//!
//! # Intended flow
//!
//! ```no_run
//! # fn demo(set: &[u8], backend_messages: Vec<bytes::Bytes>, trailers: &http::HeaderMap)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use grpc_transcode::{Options, Status, Transcoder, frame};
//!
//! let transcoder = Transcoder::new(set, &Options::default())?;
//! let method = http::Method::GET;
//! let call = match transcoder.resolve(&method, "/v1/shelves/7/books", Some("page_size=2")) {
//!     Ok(Some(call)) => call,
//!     // No rule: try other routes, or answer 404 with `Status::no_rule()` (NOT_FOUND).
//!     Ok(None) => { let _reply = transcoder.error_reply(&Status::no_rule()); return Ok(()); }
//!     Err(status) => { let _reply = transcoder.error_reply(&status); return Ok(()); }
//! };
//! // Unary or server streaming: the whole body becomes one framed request message.
//! let upstream_body = frame(&call.request(Some("application/json"), b"")?);
//! // ... POST upstream_body to call.grpc_path() with `content-type: application/grpc`,
//! // unframe the response with a FrameDecoder, then read the trailers:
//! let status = Status::from_trailers(
//!     trailers.get("grpc-status").map(|v| v.as_bytes()),
//!     trailers.get("grpc-message").map(|v| v.as_bytes()),
//!     trailers.get("grpc-status-details-bin").map(|v| v.as_bytes()),
//! );
//! if call.server_streaming() {
//!     // Send 200 and encoder.content_type() with the first chunk; if the call fails before
//!     // any message, send transcoder.error_reply(&status) instead.
//!     let mut encoder = call.stream_encoder();
//!     let mut outcome = status;
//!     for message in &backend_messages {
//!         match encoder.message(message) {
//!             Ok(_chunk) => {} // send it as it comes
//!             Err(error) => { outcome = error; break; } // and cancel the backend call
//!         }
//!     }
//!     let _last = encoder.finish(&outcome); // `]` or a final {"error": ...}
//!     let _trailers = outcome.to_trailers(); // for clients that sent `te: trailers`
//! } else {
//!     let reply = call.unary_reply(backend_messages.first().map(|m| &m[..]), &status);
//!     let _ = (reply.status, reply.content_type, reply.body);
//! }
//! // Client streaming: `let mut s = call.request_stream(content_type);` then frame each
//! // message from `s.push(chunk)?` as body chunks arrive, and from `s.finish()?` at the end.
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod call;
mod descriptors;
mod framing;
mod json_stream;
mod metadata;
mod openapi;
mod query;
mod request;
mod response;
mod rules;
mod status;
mod template;
mod values;

use std::fmt;
use std::sync::Arc;

use http::Method;
use prost_reflect::{DescriptorPool, SerializeOptions};

pub use call::Call;
pub use framing::{FrameDecoder, frame};
pub use metadata::HeaderRules;
/// The reflection library the descriptors and messages come from, for callers that inspect them.
pub use prost_reflect;
pub use request::RequestStream;
pub use response::{Reply, StreamEncoder};
pub use status::{Code, Detail, Status};

/// Per-route settings of the transcoder.
#[derive(Debug, Clone)]
pub struct Options {
    /// Full names of the services this route exposes; `None` exposes every service with rules.
    pub services: Option<Vec<String>>,
    /// Methods this route exposes (`package.Service/Method`), of those services; `None`
    /// exposes all of them. Lets one route serve a service's reads and not its writes.
    pub methods: Option<Vec<String>>,
    /// Skip query parameters that name no field instead of answering 400.
    pub ignore_unknown_query: bool,
    /// How response JSON is written.
    pub print: PrintOptions,
    /// Send server streams as one JSON array instead of newline-delimited JSON.
    pub stream_as_array: bool,
    /// Which request headers the gateway passes to the backend as metadata.
    pub headers: HeaderRules,
    /// The largest single JSON message accepted in a client stream, so that a body that never
    /// closes its object cannot grow the buffer without bound. 4 MiB, gRPC's usual limit.
    pub max_stream_message_bytes: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            services: None,
            methods: None,
            ignore_unknown_query: false,
            print: PrintOptions::default(),
            stream_as_array: false,
            headers: HeaderRules::default(),
            max_stream_message_bytes: 4 << 20,
        }
    }
}

/// Output choices of the proto3 JSON mapping that clients differ on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrintOptions {
    /// Write fields that hold their default value (`0`, `""`, `false`, `[]`).
    pub emit_defaults: bool,
    /// Use the `.proto` field names instead of lowerCamelCase.
    pub original_names: bool,
    /// Write enums as numbers instead of names.
    pub enums_as_ints: bool,
}

/// Why a descriptor set or its rules cannot be used, with where the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The `.proto` file, when the problem is in one.
    pub file: Option<String>,
    /// The full method name, when the problem is in one of its rules.
    pub method: Option<String>,
    /// The rule as `VERB /template`.
    pub rule: Option<String>,
    /// What is wrong.
    pub problem: String,
}

impl LoadError {
    pub(crate) fn new(problem: impl Into<String>) -> LoadError {
        LoadError {
            file: None,
            method: None,
            rule: None,
            problem: problem.into(),
        }
    }

    pub(crate) fn in_file(mut self, file: &str) -> LoadError {
        self.file = Some(file.to_owned());
        self
    }

    pub(crate) fn in_method(mut self, method: &str) -> LoadError {
        self.method = Some(method.to_owned());
        self
    }

    pub(crate) fn in_rule(mut self, rule: &str) -> LoadError {
        if !rule.is_empty() {
            self.rule = Some(rule.to_owned());
        }
        self
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        if let Some(method) = &self.method {
            write!(f, "{method}: ")?;
        }
        if let Some(rule) = &self.rule {
            write!(f, "rule `{rule}`: ")?;
        }
        f.write_str(&self.problem)
    }
}

impl std::error::Error for LoadError {}

/// What every call of one transcoder shares.
#[derive(Debug)]
pub(crate) struct Settings {
    pub pool: DescriptorPool,
    pub print: SerializeOptions,
    pub ignore_unknown_query: bool,
    pub stream_as_array: bool,
    pub headers: HeaderRules,
    pub max_stream_message_bytes: usize,
}

impl Settings {
    pub fn error_reply(&self, status: &Status) -> Reply {
        Reply {
            status: status.http_status(),
            content_type: "application/json".into(),
            body: status.to_json_bytes(Some(&self.pool)),
        }
    }
}

/// The compiled rules of one route: built once at config load, shared by all requests.
pub struct Transcoder {
    settings: Arc<Settings>,
    print_options: PrintOptions,
    rules: rules::Rules,
}

impl fmt::Debug for Transcoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transcoder")
            .field("bindings", &self.rules.bindings.len())
            .finish()
    }
}

impl Transcoder {
    /// Loads an encoded `FileDescriptorSet` and checks every rule of the selected services.
    pub fn new(descriptor_set: &[u8], options: &Options) -> Result<Transcoder, LoadError> {
        let pool = descriptors::decode_pool(descriptor_set)?;
        let rules = rules::load(
            &pool,
            options.services.as_deref(),
            options.methods.as_deref(),
        )?;
        let print = SerializeOptions::new()
            .skip_default_fields(!options.print.emit_defaults)
            .use_proto_field_name(options.print.original_names)
            .use_enum_numbers(options.print.enums_as_ints);
        Ok(Transcoder {
            settings: Arc::new(Settings {
                pool,
                print,
                ignore_unknown_query: options.ignore_unknown_query,
                stream_as_array: options.stream_as_array,
                headers: options.headers.clone(),
                max_stream_message_bytes: options.max_stream_message_bytes,
            }),
            rules,
            print_options: options.print,
        })
    }

    /// Finds the rule for a request. `path` is the request path as sent, still
    /// percent-encoded (`uri.path()`), and `query` the query string without `?` (`uri.query()`).
    ///
    /// `Ok(None)` means no rule matches (the gateway tries other routes or answers
    /// [`Status::no_rule`], a 404); `Err`
    /// means a rule matched but the URL is unusable, such as a path variable that is not a
    /// number or an unknown query parameter (answer with [`Transcoder::error_reply`]).
    pub fn resolve(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
    ) -> Result<Option<Call>, Status> {
        let Some(matched) = self.rules.router.find(method, path) else {
            return Ok(None);
        };
        let binding = Arc::clone(&self.rules.bindings[matched.id]);
        Call::bind(binding, Arc::clone(&self.settings), &matched, query).map(Some)
    }

    /// The JSON error response for a status, with details rendered through this descriptor set.
    pub fn error_reply(&self, status: &Status) -> Reply {
        self.settings.error_reply(status)
    }

    /// The route's header rules: which request headers become metadata.
    pub fn headers(&self) -> &HeaderRules {
        &self.settings.headers
    }

    /// The descriptors the rules were loaded from.
    pub fn pool(&self) -> &DescriptorPool {
        &self.settings.pool
    }
}

// The gateway shares the transcoder between connections and keeps calls across awaits on a
// multi-threaded runtime; this fails to compile if any of them stops being thread-safe.
const _: () = {
    const fn thread_safe<T: Send + Sync>() {}
    thread_safe::<Transcoder>();
    thread_safe::<Call>();
    thread_safe::<RequestStream>();
    thread_safe::<StreamEncoder>();
};
