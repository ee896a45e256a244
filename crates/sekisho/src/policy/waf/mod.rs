//! A route's web application firewall: SecLang rules (such as the OWASP Core Rule Set) run
//! by the `waf` engine on each request, phase by phase, as the request path reaches them.
//!
//! Request headers are inspected as soon as the route is known. A plain HTTP or REST body
//! is buffered up to the limit and inspected whole; a gRPC body (gRPC-Web already turned
//! into gRPC) is inspected one message at a time as it streams ([`grpc`]), so streams keep
//! flowing. The [`Inspection`] of one request is shared by the stages that feed it and by
//! the record that logs it.
//!
//! What the WAF cannot inspect never passes as inspected. In `block` mode a body past one
//! of the engine's limits (its length, argument count, JSON or XML depth, the bytes its
//! arguments add up to) is refused under `request_body_limit_action: reject`, and a gRPC
//! message the gateway cannot decode (an unknown `grpc-encoding`, a compressed message that
//! does not inflate or inflates past the body limit) is refused whatever the action; in
//! `detect` mode such a request passes, logged as `detected` with what block mode would
//! have done.

mod body;
mod grpc;
mod pool;
mod protobuf;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use http::request::Parts;
use http::{StatusCode, Version};
use waf::{Limit, LoadError, RuleSet, Transaction, Verdict};

use crate::config::model::{self, BodyLimitAction, WafMode};
use crate::proxy::error::WafRefusal;

pub use body::{Guarded, Inspected};
pub use grpc::Messages;

/// ModSecurity's default SecRequestBodyLimit.
const DEFAULT_REQUEST_BODY_LIMIT: u64 = 13_107_200;
/// ModSecurity's default SecResponseBodyLimit.
const DEFAULT_RESPONSE_BODY_LIMIT: u64 = 524_288;

/// Rule sets of one snapshot by their setup text, so routes with the same rules and
/// settings share one compiled set (or one load error).
pub type RuleSets = HashMap<String, Result<Arc<RuleSet>, LoadError>>;

/// A route's WAF, compiled.
pub struct Waf {
    rules: Arc<RuleSet>,
    mode: WafMode,
    body_limit: usize,
    limit_action: BodyLimitAction,
    /// The rule set's SecArgumentsLimit: protobuf fields are read up to it.
    arguments_limit: usize,
    inspect_responses: bool,
    response_body_limit: usize,
}

/// Why a route's rules did not load: which entry of `rules` (when known) and the engine's
/// `file:line: message`.
pub struct CompileError {
    /// Index into the route's `rules`.
    pub entry: usize,
    /// What went wrong, naming the rule file and line.
    pub message: String,
}

impl Waf {
    /// Loads the route's rules, or takes them from `sets` when another route of the
    /// snapshot loaded the same; rule files are added to `files` so a change reloads.
    pub fn compile(
        spec: &model::Waf,
        sets: &mut RuleSets,
        files: &mut Vec<PathBuf>,
    ) -> Result<Waf, CompileError> {
        let body_limit = spec
            .request_body_limit
            .unwrap_or(DEFAULT_REQUEST_BODY_LIMIT);
        let response_body_limit = spec
            .response_body_limit
            .unwrap_or(DEFAULT_RESPONSE_BODY_LIMIT);
        let setup = setup_text(spec, body_limit, response_body_limit);
        for entry in &spec.rules {
            if !entry.value.contains(['*', '?']) {
                files.push(PathBuf::from(&*entry.value));
            }
        }
        let origin = Path::new(SETUP_ORIGIN);
        let loaded = sets
            .entry(setup)
            .or_insert_with_key(|setup| RuleSet::from_text(setup, origin).map(Arc::new));
        let rules = loaded.clone().map_err(|e| {
            // An error on the setup's own line is about that entry of `rules`.
            if e.file == origin {
                CompileError {
                    entry: e.line.saturating_sub(1).min(spec.rules.len() - 1),
                    message: e.message,
                }
            } else {
                let entry = spec
                    .rules
                    .iter()
                    .position(|r| Path::new(&*r.value) == e.file)
                    .unwrap_or(0);
                CompileError {
                    entry,
                    message: e.to_string(),
                }
            }
        })?;
        Ok(Waf {
            arguments_limit: rules.arguments_limit(),
            rules,
            mode: spec.mode,
            body_limit: usize::try_from(body_limit).unwrap_or(usize::MAX),
            limit_action: spec.request_body_limit_action,
            inspect_responses: spec.inspect_responses,
            response_body_limit: usize::try_from(response_body_limit).unwrap_or(usize::MAX),
        })
    }

    /// Whether responses are inspected too.
    pub fn inspects_responses(&self) -> bool {
        self.inspect_responses
    }

    /// Starts inspecting a request: its line, headers and addresses, then phase 1.
    pub fn begin(
        self: &Arc<Self>,
        parts: &Parts,
        client: IpAddr,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Arc<Inspection> {
        let mut tx = self.rules.owned_transaction();
        tx.connection(client, peer.port(), local.ip(), local.port());
        let target = if parts.version == Version::HTTP_2 {
            parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
        } else {
            // HTTP/1 keeps the request target as it was sent (absolute form too).
            &parts.uri.to_string()
        };
        let protocol = match parts.version {
            Version::HTTP_10 => "HTTP/1.0",
            Version::HTTP_2 => "HTTP/2.0",
            _ => "HTTP/1.1",
        };
        tx.request_line(parts.method.as_str(), target, protocol);
        if !parts.headers.contains_key(http::header::HOST)
            && let Some(authority) = parts.uri.authority()
        {
            tx.request_header("host", authority.as_str().as_bytes());
        }
        for (name, value) in &parts.headers {
            tx.request_header(name.as_str(), value.as_bytes());
        }
        let verdict = tx.process_request_headers();
        let inspection = Arc::new(Inspection {
            policy: self.clone(),
            state: Mutex::new(State {
                tx,
                blocked: None,
                waker: None,
                messages: 0,
                uninspected: 0,
                would_refuse: None,
                finished: None,
            }),
        });
        let mut state = inspection.lock();
        if inspection.judge(&mut state, verdict).is_none()
            && let Some(value) = grpc::undecodable_encoding(&parts.headers)
        {
            // Messages compressed this way could not be inspected: refuse the call before
            // any of it goes upstream.
            let blocked = Blocked {
                status: StatusCode::BAD_REQUEST,
                cause: Cause::Encoding(EncodingName::new(value)),
            };
            if self.mode == WafMode::Block {
                inspection.refuse(&mut state, blocked);
            } else {
                state
                    .would_refuse
                    .get_or_insert("a gRPC call compressed with an encoding not decoded");
            }
        }
        drop(state);
        inspection
    }
}

/// Names the setup text in load errors.
const SETUP_ORIGIN: &str = "waf-rules";

/// The rule files in order, then the route's settings, which win over the files'.
fn setup_text(spec: &model::Waf, body_limit: u64, response_body_limit: u64) -> String {
    let mut text = String::new();
    for entry in &spec.rules {
        text.push_str("Include ");
        text.push_str(&entry.value);
        text.push('\n');
    }
    let engine = match spec.mode {
        WafMode::Block => "On",
        WafMode::Detect => "DetectionOnly",
    };
    let action = match spec.request_body_limit_action {
        BodyLimitAction::Reject => "Reject",
        BodyLimitAction::ProcessPartial => "ProcessPartial",
    };
    let responses = if spec.inspect_responses { "On" } else { "Off" };
    text.push_str(&format!(
        "SecRuleEngine {engine}\nSecRequestBodyAccess On\nSecRequestBodyLimit {body_limit}\n\
         SecRequestBodyLimitAction {action}\nSecResponseBodyAccess {responses}\n\
         SecResponseBodyLimit {response_body_limit}\n"
    ));
    // Unset, the rule files' directives (or the engine's defaults: 1000, 128, 256) apply.
    for (directive, value) in [
        ("SecArgumentsLimit", spec.arguments_limit),
        ("SecRequestBodyJsonDepthLimit", spec.json_depth_limit),
        ("SecRequestBodyXmlDepthLimit", spec.xml_depth_limit),
    ] {
        if let Some(value) = value {
            text.push_str(&format!("{directive} {value}\n"));
        }
    }
    text
}

/// Why the WAF refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// The status the rule asked HTTP callers to get.
    pub status: StatusCode,
    /// What decided.
    pub cause: Cause,
}

/// What made the WAF refuse a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// A rule with a disruptive action, by id.
    Rule(u32),
    /// The body (or a gRPC message) holds more than the engine inspects.
    Limit(Limit),
    /// The caller compresses its gRPC messages in a way the WAF does not decode.
    Encoding(EncodingName),
    /// A gRPC message flagged compressed does not decode.
    Undecodable,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Rule(id) => WafRefusal::Rule(*id).fmt(f),
            Cause::Limit(limit) => WafRefusal::Limit(*limit).fmt(f),
            Cause::Encoding(name) => write!(f, "grpc-encoding \"{name}\" not decoded"),
            Cause::Undecodable => f.write_str("a compressed message that does not decode"),
        }
    }
}

/// A `grpc-encoding` value as the caller sent it (its first bytes, visible ASCII), kept
/// inline so that [`Blocked`] stays `Copy`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EncodingName {
    bytes: [u8; 24],
    len: u8,
}

impl EncodingName {
    fn new(value: &[u8]) -> Self {
        let mut bytes = [0u8; 24];
        let len = value.len().min(bytes.len());
        for (to, &from) in bytes.iter_mut().zip(&value[..len]) {
            *to = if from.is_ascii_graphic() { from } else { b'?' };
        }
        EncodingName {
            bytes,
            // At most 24.
            len: len as u8,
        }
    }

    fn as_str(&self) -> &str {
        // Only visible ASCII is kept.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("?")
    }
}

impl std::fmt::Display for EncodingName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for EncodingName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl From<Blocked> for crate::proxy::GatewayError {
    fn from(blocked: Blocked) -> Self {
        use crate::proxy::GatewayError;
        match blocked.cause {
            // The caller may learn which encodings to use instead: it is no secret of the
            // rules.
            Cause::Encoding(name) => GatewayError::UnsupportedEncoding { name },
            Cause::Undecodable => GatewayError::RequestBody {
                reason: "a compressed message does not decode".to_owned(),
            },
            Cause::Rule(id) => GatewayError::WafBlocked {
                refusal: WafRefusal::Rule(id),
                status: blocked.status,
            },
            Cause::Limit(limit) => GatewayError::WafBlocked {
                refusal: WafRefusal::Limit(limit),
                status: blocked.status,
            },
        }
    }
}

/// What the WAF made of a request, for the log and metrics.
pub struct Summary {
    /// Ids of the matched rules that log, in order.
    pub ids: Vec<u32>,
    /// `pass`, `detected` (rules matched, or in `detect` mode the request was one `block`
    /// mode refuses for a limit or an encoding) or `blocked`.
    pub result: &'static str,
    /// The refusal, if any.
    pub blocked: Option<Blocked>,
}

/// The WAF's view of one request, shared by the stages that feed it.
pub struct Inspection {
    policy: Arc<Waf>,
    state: Mutex<State>,
}

struct State {
    tx: Transaction<'static>,
    blocked: Option<Blocked>,
    /// The response side of a gRPC call, woken when a message is refused mid-stream.
    waker: Option<Waker>,
    /// gRPC messages inspected.
    messages: u64,
    /// gRPC messages passed without inspection (longer than the body limit under
    /// `process_partial`, or not decodable in `detect` mode).
    uninspected: u64,
    /// In `detect` mode, why `block` mode would have refused what passed uninspected.
    would_refuse: Option<&'static str>,
    finished: Option<Vec<u32>>,
}

/// Why a gRPC message could not be read for inspection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unread {
    /// Longer than the body limit, as sent or once inflated.
    TooLong,
    /// Flagged compressed but does not decode (or no encoding was named).
    Undecodable,
    /// Compressed with an encoding not decoded here.
    Encoding,
}

impl Inspection {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a usable transaction: take it anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Turns the engine's verdict into the route's: only `block` mode refuses.
    fn judge(&self, state: &mut State, verdict: Verdict) -> Option<Blocked> {
        if let Verdict::Interrupt(interruption) = verdict
            && self.policy.mode == WafMode::Block
        {
            // Rule 0: one of the engine's limits.
            let cause = match interruption.rule_id {
                0 => Cause::Limit(state.tx.exceeded_limit().unwrap_or(Limit::RequestBody)),
                id => Cause::Rule(id),
            };
            let status = StatusCode::from_u16(interruption.status).unwrap_or(StatusCode::FORBIDDEN);
            self.refuse(state, Blocked { status, cause });
        }
        state.blocked
    }

    /// Records the refusal (the first one stands) and wakes the response side of a call
    /// waiting for it.
    fn refuse(&self, state: &mut State, blocked: Blocked) -> Option<Blocked> {
        if state.blocked.is_none() {
            if !matches!(blocked.cause, Cause::Rule(_)) {
                tracing::info!(
                    cause = %blocked.cause,
                    "the WAF refused a request it could not fully inspect"
                );
            }
            state.blocked = Some(blocked);
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
        }
        state.blocked
    }

    /// A gRPC message that could not be read: refused in `block` mode (one too long only
    /// under `reject`); otherwise passed uninspected and counted.
    fn unread_message(&self, why: Unread, encoding: &[u8]) -> Option<Blocked> {
        let mut state = self.lock();
        let policy = &self.policy;
        let blocked = match why {
            Unread::TooLong => {
                (policy.limit_action == BodyLimitAction::Reject).then_some(Blocked {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    cause: Cause::Limit(Limit::RequestBody),
                })
            }
            Unread::Undecodable => Some(Blocked {
                status: StatusCode::BAD_REQUEST,
                cause: Cause::Undecodable,
            }),
            Unread::Encoding => Some(Blocked {
                status: StatusCode::BAD_REQUEST,
                cause: Cause::Encoding(EncodingName::new(encoding)),
            }),
        };
        match blocked {
            Some(blocked) if policy.mode == WafMode::Block => self.refuse(&mut state, blocked),
            _ => {
                state.uninspected += 1;
                if blocked.is_some() {
                    state.would_refuse.get_or_insert(match why {
                        Unread::TooLong => "a gRPC message longer than the body limit",
                        Unread::Undecodable => "a compressed gRPC message that does not decode",
                        Unread::Encoding => {
                            "a gRPC message compressed with an encoding not decoded"
                        }
                    });
                }
                state.blocked
            }
        }
    }

    /// The refusal decided so far.
    pub fn blocked(&self) -> Option<Blocked> {
        self.lock().blocked
    }

    /// Phase 2 over a whole buffered body; `truncated` when more followed than was kept.
    fn buffered_body(&self, body: &[u8], truncated: bool) -> Option<Blocked> {
        let mut state = self.lock();
        let mut verdict = state.tx.append_request_body(body);
        if truncated && verdict == Verdict::Continue {
            // Tell the engine the body went on, so its limit action applies.
            verdict = state.tx.append_request_body(b"\0");
        }
        if verdict == Verdict::Continue {
            verdict = state.tx.process_request_body();
        }
        self.judge(&mut state, verdict)
    }

    /// Phase 2 over one gRPC message.
    fn message(&self, args: &[(String, Vec<u8>)], raw: &[u8]) -> Option<Blocked> {
        let mut state = self.lock();
        state.messages += 1;
        let verdict = state.tx.process_message(args, raw);
        self.judge(&mut state, verdict)
    }

    /// A gRPC body ended without any message: phase 2 still runs once, so scores from
    /// the headers are judged.
    fn no_messages(&self) -> Option<Blocked> {
        let mut state = self.lock();
        if state.messages > 0 {
            return state.blocked;
        }
        let verdict = state.tx.process_request_body();
        self.judge(&mut state, verdict)
    }

    fn register(&self, waker: &Waker) -> Option<Blocked> {
        let mut state = self.lock();
        if state.blocked.is_none() {
            match &mut state.waker {
                Some(w) => w.clone_from(waker),
                None => state.waker = Some(waker.clone()),
            }
        }
        state.blocked
    }

    /// Phase 3 over the response head.
    pub fn response_head(&self, status: StatusCode, headers: &http::HeaderMap) -> Option<Blocked> {
        let mut state = self.lock();
        state.tx.response_status(status.as_u16(), "HTTP/1.1");
        for (name, value) in headers {
            state.tx.response_header(name.as_str(), value.as_bytes());
        }
        let verdict = state.tx.process_response_headers();
        self.judge(&mut state, verdict)
    }

    /// Phase 4 over a buffered response body.
    pub fn response_body(&self, body: &[u8]) -> Option<Blocked> {
        let mut state = self.lock();
        let mut verdict = state.tx.append_response_body(body);
        if verdict == Verdict::Continue {
            verdict = state.tx.process_response_body();
        }
        self.judge(&mut state, verdict)
    }

    /// Response bodies buffered for phase 4 are cut here.
    pub fn response_body_limit(&self) -> usize {
        self.policy.response_body_limit
    }

    /// Runs the logging phase (once) and sums up.
    pub fn finish(&self) -> Summary {
        let mut state = self.lock();
        if state.finished.is_none() {
            state.tx.process_logging();
            let ids = state.tx.matched_rules().iter().map(|m| m.id).collect();
            state.finished = Some(ids);
            // Response bodies are inspected as far as the response limit, by design.
            let exceeded = state
                .tx
                .exceeded_limit()
                .filter(|l| *l != Limit::ResponseBody);
            if state.blocked.is_none()
                && exceeded.is_some()
                && self.policy.limit_action == BodyLimitAction::Reject
            {
                // Only `detect` mode lets such a request through under `reject`.
                state
                    .would_refuse
                    .get_or_insert("a request past one of the WAF's limits");
            }
            if let Some(why) = state.would_refuse.filter(|_| state.blocked.is_none()) {
                tracing::warn!(
                    limit = exceeded.map(Limit::name),
                    messages = state.uninspected,
                    "the WAF passed {why} in detect mode; block mode refuses it"
                );
            } else if state.blocked.is_none() && (state.uninspected > 0 || exceeded.is_some()) {
                tracing::info!(
                    limit = exceeded.map(Limit::name),
                    messages = state.uninspected,
                    "the WAF inspected part of a request and passed the rest \
                     (request_body_limit_action: process_partial)"
                );
            }
        }
        let ids = state.finished.clone().unwrap_or_default();
        let result = if state.blocked.is_some() {
            "blocked"
        } else if ids.is_empty() && state.would_refuse.is_none() {
            "pass"
        } else {
            "detected"
        };
        Summary {
            ids,
            result,
            blocked: state.blocked,
        }
    }
}
