//! A route's web application firewall: SecLang rules (such as the OWASP Core Rule Set) run
//! by the `waf` engine on each request, phase by phase, as the request path reaches them.
//!
//! Request headers are inspected as soon as the route is known. A plain HTTP or REST body
//! is buffered up to the limit and inspected whole; a gRPC body (gRPC-Web already turned
//! into gRPC) is inspected one message at a time as it streams ([`grpc`]), so streams keep
//! flowing. The [`Inspection`] of one request is shared by the stages that feed it and by
//! the record that logs it.

mod body;
mod grpc;
mod protobuf;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use http::request::Parts;
use http::{StatusCode, Version};
use waf::{LoadError, RuleSet, Transaction, Verdict};

use crate::config::model::{self, BodyLimitAction, WafMode};

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
                finished: None,
            }),
        });
        inspection.judge(&mut inspection.lock(), verdict);
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
    text
}

/// Why the WAF refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// The deciding rule; 0 when a body limit decided.
    pub rule_id: u32,
    /// The status the rule asked HTTP callers to get.
    pub status: StatusCode,
}

impl From<Blocked> for crate::proxy::GatewayError {
    fn from(blocked: Blocked) -> Self {
        crate::proxy::GatewayError::WafBlocked {
            rule_id: blocked.rule_id,
            status: blocked.status,
        }
    }
}

/// What the WAF made of a request, for the log and metrics.
pub struct Summary {
    /// Ids of the matched rules that log, in order.
    pub ids: Vec<u32>,
    /// `pass`, `detected` or `blocked`.
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
    /// gRPC messages passed without inspection (compressed in a way not decoded here,
    /// or longer than the body limit under `process_partial`).
    uninspected: u64,
    finished: Option<Vec<u32>>,
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
            && state.blocked.is_none()
        {
            state.blocked = Some(Blocked {
                rule_id: interruption.rule_id,
                status: StatusCode::from_u16(interruption.status).unwrap_or(StatusCode::FORBIDDEN),
            });
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
        }
        state.blocked
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

    fn uninspected_message(&self) {
        self.lock().uninspected += 1;
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
            if state.uninspected > 0 {
                tracing::info!(
                    messages = state.uninspected,
                    "gRPC messages passed the WAF uninspected (compressed with an unknown \
                     encoding, or longer than the body limit)"
                );
            }
        }
        let ids = state.finished.clone().unwrap_or_default();
        let result = if state.blocked.is_some() {
            "blocked"
        } else if ids.is_empty() {
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
