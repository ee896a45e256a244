//! One HTTP exchange run through a rule set, phase by phase.

use std::cell::RefCell;
use std::net::IpAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::action::{AllowScope, BodyProcessor, Disruptive, EngineMode, RuleSelector};
use crate::body::multipart::{FilePart, Flags};
use crate::body::{
    BodyError, Budget, Limit, Pair, argument_bytes_limit, json, multipart, urlencoded, xml,
};

mod actions;
mod members;
mod pool;
mod reused;
mod transform_cache;
mod variables;

use crate::macros::MacroText;
use crate::operator::Operator;
use crate::rule::{Entry, LimitAction, Rule};
use crate::ruleset::Rules;
use crate::variable::{Selector, Var};
use members::Members;
use pool::Storage;
use reused::Reused;
use transform_cache::TransformCache;
use variables::{parse_cookies, percent_decode};

/// What the caller must do after a processing step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on with the exchange.
    Continue,
    /// Stop and answer as the interruption says.
    Interrupt(Interruption),
}

/// A decision to stop the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interruption {
    /// The HTTP status to answer with.
    pub status: u16,
    /// The rule that decided (0 when a body limit decided).
    pub rule_id: u32,
    /// Whether to answer, close or redirect.
    pub action: InterruptAction,
}

/// How the exchange is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterruptAction {
    /// Answer with the status.
    Deny,
    /// Close the connection without an answer.
    Drop,
    /// Answer with a redirect; the gateway treats it as a denial.
    Redirect,
}

/// A rule that matched and asked to be logged: what an operator reads to understand
/// a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedRule {
    /// The rule's id (for a chain, its first rule's).
    pub id: u32,
    /// The phase (1-5) it ran in.
    pub phase: u8,
    /// `msg` with macros expanded.
    pub msg: String,
    /// `logdata` with macros expanded.
    pub logdata: String,
    /// 0 (emergency) to 7 (debug), when the rule sets one.
    pub severity: Option<u8>,
    /// The rule's tags, such as `attack-sqli` or `paranoia-level/1`.
    pub tags: Vec<String>,
    /// Whether the rule's action stops the exchange (when the engine is On).
    pub disruptive: bool,
}

/// A value the operator matched, kept until the rule's actions have run.
#[derive(Default)]
struct Match {
    var: Option<Var>,
    key: String,
    value: Vec<u8>,
    captures: Vec<Vec<u8>>,
}

/// What the request body processor found.
#[derive(Default)]
struct Parsed {
    processor: Option<BodyProcessor>,
    error: Option<String>,
    files: Vec<FilePart>,
    part_headers: Vec<Pair>,
    multipart: Flags,
    xml: Option<xml::Document>,
}

/// The state of one exchange. Cheap to create: nothing is allocated until data arrives.
pub struct Transaction<'r> {
    rules: Rules<'r>,
    engine: EngineMode,
    started: Instant,
    unique_id: String,
    client: Option<(IpAddr, u16)>,
    server: Option<(IpAddr, u16)>,
    method: String,
    uri: String,
    protocol: String,
    /// REQUEST_LINE and REQUEST_FILENAME (the decoded path), read by many rules.
    line: String,
    filename: Vec<u8>,
    request_headers: Vec<Pair>,
    cookies: Vec<Pair>,
    args_get: Vec<Pair>,
    args_post: Vec<Pair>,
    /// Whether `args_post` came from a streamed message, whose field paths are not request
    /// text and so are not offered to rules as ARGS_NAMES.
    args_post_structural: bool,
    body: Vec<u8>,
    body_access: bool,
    body_processor: Option<BodyProcessor>,
    body_truncated: bool,
    /// The first limit the request ran into.
    exceeded: Option<Limit>,
    parsed: Parsed,
    status: u16,
    response_protocol: String,
    response_headers: Vec<Pair>,
    response_body: Vec<u8>,
    /// Since the first streamed message, TX records its changes so that each message
    /// starts from the state the headers left.
    tx: Members,
    /// IP, GLOBAL, SESSION, USER, RESOURCE: per transaction only (no persistence).
    other: Vec<(Var, Members)>,
    env: Members,
    /// A buffer `setvar` expands values into, kept to save an allocation per expansion.
    scratch: Vec<u8>,
    matched_var: Vec<u8>,
    matched_var_name: String,
    matched_vars: Reused<Pair>,
    /// The current rule's matches (kept to reuse their buffers).
    matches: Reused<Match>,
    removed_rules: Vec<RuleSelector>,
    removed_targets: Vec<(RuleSelector, Var, Selector)>,
    highest_severity: u8,
    matched: Vec<MatchedRule>,
    interruption: Option<Interruption>,
    allowed: Option<AllowScope>,
    transform_cache: RefCell<TransformCache>,
}

impl<'r> Transaction<'r> {
    pub(crate) fn new(rules: Rules<'r>) -> Self {
        let (engine, body_access) = (rules.settings.engine, rules.settings.request_body_access);
        let started = Instant::now();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let storage = Storage::take();
        Transaction {
            rules,
            engine,
            started,
            unique_id: format!("{nanos:x}"),
            client: None,
            server: None,
            method: String::new(),
            uri: String::new(),
            protocol: String::new(),
            line: String::new(),
            filename: Vec::new(),
            request_headers: storage.request_headers,
            cookies: Vec::new(),
            args_get: Vec::new(),
            args_post: storage.args_post,
            args_post_structural: false,
            body: Vec::new(),
            body_access,
            body_processor: None,
            body_truncated: false,
            exceeded: None,
            parsed: Parsed::default(),
            status: 0,
            response_protocol: String::new(),
            response_headers: Vec::new(),
            response_body: Vec::new(),
            tx: storage.tx,
            other: Vec::new(),
            env: Members::default(),
            scratch: Vec::new(),
            matched_var: Vec::new(),
            matched_var_name: String::new(),
            matched_vars: storage.matched_vars,
            matches: storage.matches,
            removed_rules: Vec::new(),
            removed_targets: Vec::new(),
            highest_severity: 255,
            matched: Vec::new(),
            interruption: None,
            allowed: None,
            transform_cache: RefCell::new(storage.transform_cache),
        }
    }

    /// Records the connection's addresses (REMOTE_ADDR, SERVER_PORT, ...).
    pub fn connection(
        &mut self,
        client: IpAddr,
        client_port: u16,
        server: IpAddr,
        server_port: u16,
    ) {
        self.client = Some((client, client_port));
        self.server = Some((server, server_port));
    }

    /// Records the request line; `uri` is the raw target as received.
    pub fn request_line(&mut self, method: &str, uri: &str, protocol: &str) {
        self.forget_transforms();
        self.method = method.to_string();
        self.uri = uri.to_string();
        self.protocol = protocol.to_string();
        self.line = format!("{method} {uri} {protocol}");
        self.filename = percent_decode(self.uri_path().as_bytes());
        self.args_get.clear();
        if let Some((_, query)) = uri.split_once('?') {
            let settings = &self.rules.settings;
            let mut budget = Budget::new(
                settings.arguments_limit,
                argument_bytes_limit(query.len()),
                0,
            );
            let parsed = urlencoded::parse(
                query.as_bytes(),
                settings.argument_separator,
                &mut budget,
                &mut self.args_get,
            );
            if let Err(limit) = parsed {
                self.note_limit(limit);
            }
        }
    }

    /// Adds one request header (repeat for repeated headers).
    pub fn request_header(&mut self, name: &str, value: &[u8]) {
        self.forget_transforms();
        if name.eq_ignore_ascii_case("cookie") {
            parse_cookies(value, &mut self.cookies);
        }
        self.request_headers
            .push((name.to_string(), value.to_vec()));
    }

    /// Phase 1: runs the request header rules. A query string with more arguments than
    /// SecArgumentsLimit is refused here (414) under SecRequestBodyLimitAction Reject.
    pub fn process_request_headers(&mut self) -> Verdict {
        if self.exceeded.is_some()
            && self.rules.settings.request_body_limit_action == LimitAction::Reject
            && let v @ Verdict::Interrupt(_) = self.refuse_over_limit(414)
        {
            return v;
        }
        self.run_phase(1)
    }

    /// Buffers request body bytes, enforcing SecRequestBodyLimit.
    pub fn append_request_body(&mut self, chunk: &[u8]) -> Verdict {
        if let Some(v) = self.stopped() {
            return v;
        }
        if !self.body_access {
            return Verdict::Continue;
        }
        self.forget_transforms();
        let settings = &self.rules.settings;
        if fill(&mut self.body, chunk, settings.request_body_limit) {
            self.body_truncated = true;
            let reject = settings.request_body_limit_action == LimitAction::Reject;
            self.note_limit(Limit::RequestBody);
            if reject {
                return self.refuse_over_limit(413);
            }
        }
        Verdict::Continue
    }

    /// Phase 2: parses the request body and runs the request body rules.
    ///
    /// What the body may yield is bounded: SecArgumentsLimit arguments (query and body
    /// together; also files and XML attribute values), JSON and XML nesting
    /// (SecRequestBodyJsonDepthLimit, SecRequestBodyXmlDepthLimit), and the bytes of all
    /// names and values together (1 MiB plus four times the body's length: JSON names
    /// repeat their parents' keys). A body past a limit is refused (413) under
    /// SecRequestBodyLimitAction Reject with the engine On; otherwise its processor stops
    /// there, REQBODY_ERROR is set (so ModSecurity's rule 200002 refuses it) and the rules
    /// inspect what it yielded until then.
    pub fn process_request_body(&mut self) -> Verdict {
        if let Some(v) = self.stopped() {
            return v;
        }
        if self.body_access {
            self.forget_transforms();
            let rules = self.rules.clone();
            let settings = &rules.settings;
            let processor = self.body_processor.or_else(|| self.default_processor());
            let reject = settings.request_body_limit_action == LimitAction::Reject;
            if processor != Some(BodyProcessor::Multipart)
                && self.body.len() > settings.request_body_no_files_limit
            {
                self.note_limit(Limit::RequestBody);
                if reject && let v @ Verdict::Interrupt(_) = self.refuse_over_limit(413) {
                    return v;
                }
                self.body.truncate(settings.request_body_no_files_limit);
            }
            if self.parse_body(processor).is_err()
                && reject
                && let v @ Verdict::Interrupt(_) = self.refuse_over_limit(413)
            {
                return v;
            }
        }
        self.run_phase(2)
    }

    /// Inspects one more message of a streaming body (such as one gRPC message) as
    /// REQUEST_BODY and ARGS_POST with the phase-2 rules. The arguments' names are taken
    /// to be structural, such as protobuf field paths (`3.2`): they serve selectors and
    /// exclusions (`ARGS:3.2`, `!ARGS_POST:1`) but are not request text, so ARGS_NAMES and
    /// ARGS_POST_NAMES leave them out and no rule spends time on them.
    ///
    /// Each message is judged on its own with the headers: TX (and so the anomaly score)
    /// goes back to what it was before the first message, so low scores of earlier
    /// messages, and phase-2 rules that read headers and score again with every message,
    /// never add up to a refusal over a long stream.
    ///
    /// A message's arguments are bounded as a body's are (SecArgumentsLimit with the
    /// query's, and their bytes by the message's length): past a limit the message is
    /// refused (413) under SecRequestBodyLimitAction Reject with the engine On, and
    /// otherwise inspected as far as it fits with REQBODY_ERROR set.
    pub fn process_message(&mut self, args: &[(String, Vec<u8>)], raw: &[u8]) -> Verdict {
        if let Some(v) = self.stopped() {
            return v;
        }
        self.forget_transforms();
        if self.tx.has_checkpoint() {
            self.tx.roll_back();
        } else {
            self.tx.checkpoint();
        }
        self.args_post.clear();
        self.parsed = Parsed::default();
        let settings = &self.rules.settings;
        let reject = settings.request_body_limit_action == LimitAction::Reject;
        let mut budget = Budget::new(
            settings.arguments_limit.saturating_sub(self.args_get.len()),
            argument_bytes_limit(raw.len()),
            0,
        );
        let mut breach = None;
        let fits = args
            .iter()
            .take_while(|(k, v)| match budget.take(k.len() + v.len()) {
                Ok(()) => true,
                Err(limit) => {
                    breach = Some(limit);
                    false
                }
            })
            .count();
        self.args_post.extend_from_slice(&args[..fits]);
        self.args_post_structural = true;
        self.body.clear();
        self.body.extend_from_slice(raw);
        if let Some(limit) = breach {
            self.note_limit(limit);
            self.parsed.error = Some(format!("Request body limit exceeded: {limit}"));
            if reject && let v @ Verdict::Interrupt(_) = self.refuse_over_limit(413) {
                return v;
            }
        }
        self.run_phase(2)
    }

    /// Records the response status line.
    pub fn response_status(&mut self, status: u16, protocol: &str) {
        self.forget_transforms();
        self.status = status;
        self.response_protocol = protocol.to_string();
    }

    /// Adds one response header.
    pub fn response_header(&mut self, name: &str, value: &[u8]) {
        self.forget_transforms();
        self.response_headers
            .push((name.to_string(), value.to_vec()));
    }

    /// Phase 3: runs the response header rules.
    pub fn process_response_headers(&mut self) -> Verdict {
        self.run_phase(3)
    }

    /// Buffers response body bytes of the inspected MIME types, up to SecResponseBodyLimit.
    pub fn append_response_body(&mut self, chunk: &[u8]) -> Verdict {
        if let Some(v) = self.stopped() {
            return v;
        }
        if !self.inspects_response_body() {
            return Verdict::Continue;
        }
        self.forget_transforms();
        let settings = &self.rules.settings;
        if fill(&mut self.response_body, chunk, settings.response_body_limit) {
            let reject = settings.response_body_limit_action == LimitAction::Reject;
            self.note_limit(Limit::ResponseBody);
            if reject {
                return self.refuse_over_limit(500);
            }
        }
        Verdict::Continue
    }

    /// The verdict to repeat once the exchange was interrupted.
    fn stopped(&self) -> Option<Verdict> {
        self.interruption.clone().map(Verdict::Interrupt)
    }

    /// Phase 4: runs the response body rules.
    pub fn process_response_body(&mut self) -> Verdict {
        self.run_phase(4)
    }

    /// Phase 5: runs the logging rules (they can no longer interrupt).
    pub fn process_logging(&mut self) {
        let allowed = self.allowed.take();
        self.run_phase(5);
        self.allowed = allowed;
    }

    /// The logged rules that matched so far, in order.
    pub fn matched_rules(&self) -> &[MatchedRule] {
        &self.matched
    }

    /// The interruption decided so far, if any.
    pub fn is_interrupted(&self) -> Option<Interruption> {
        self.interruption.clone()
    }

    /// Reads a TX variable (names are case-insensitive), e.g. the anomaly score.
    pub fn tx(&self, name: &str) -> Option<&[u8]> {
        self.tx.get(name)
    }

    /// The first limit the exchange ran into, if any: what lay beyond it was not
    /// inspected (the request may have been refused for it, see
    /// [`Transaction::process_request_body`]). A gateway reports it, so that in
    /// DetectionOnly a request that would have been refused is not logged as clean.
    pub fn exceeded_limit(&self) -> Option<Limit> {
        self.exceeded
    }

    fn note_limit(&mut self, limit: Limit) {
        self.exceeded.get_or_insert(limit);
    }

    fn refuse_over_limit(&mut self, status: u16) -> Verdict {
        if self.engine != EngineMode::On {
            return Verdict::Continue;
        }
        let i = Interruption {
            status,
            rule_id: 0,
            action: InterruptAction::Deny,
        };
        self.interruption = Some(i.clone());
        Verdict::Interrupt(i)
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.request_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    fn content_type(&self) -> String {
        self.header("content-type")
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }

    fn default_processor(&self) -> Option<BodyProcessor> {
        let ct = self.content_type().to_ascii_lowercase();
        let mime = ct.split(';').next().unwrap_or("").trim().to_string();
        self.rules
            .settings
            .default_processors
            .iter()
            .find(|(m, _)| *m == mime)
            .map(|(_, p)| *p)
    }

    /// Whether REQUEST_BODY exists: not for a body the XML processor parsed, which rules
    /// inspect through `XML:/*` and `XML://@*` (element text and attribute values). CRS
    /// rules read REQUEST_BODY beside those, so its raw bytes would expose element and
    /// attribute names the rule set means to leave alone (its tests say so, as
    /// ModSecurity v2 and Coraza behave). Every other body (and a streamed message) is
    /// REQUEST_BODY, whatever its processor: CRS rules match JSON keys in it.
    fn raw_body_is_inspected(&self) -> bool {
        self.parsed.processor != Some(BodyProcessor::Xml)
    }

    fn inspects_response_body(&self) -> bool {
        if !self.rules.settings.response_body_access {
            return false;
        }
        let ct = self
            .response_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase())
            .unwrap_or_default();
        let mime = ct.split(';').next().unwrap_or("").trim();
        self.rules
            .settings
            .response_body_mime_types
            .iter()
            .any(|m| m == mime)
    }

    /// Runs the body processor; a limit the body ran into is noted, set as the body's
    /// error (REQBODY_ERROR) and returned.
    fn parse_body(&mut self, processor: Option<BodyProcessor>) -> Result<(), Limit> {
        self.parsed.processor = processor;
        self.args_post_structural = false;
        let body = std::mem::take(&mut self.body);
        let settings = &self.rules.settings;
        let mut budget = Budget::new(
            settings.arguments_limit.saturating_sub(self.args_get.len()),
            argument_bytes_limit(body.len()),
            match processor {
                Some(BodyProcessor::Xml) => settings.xml_depth_limit,
                _ => settings.json_depth_limit,
            },
        );
        let result = match processor {
            Some(BodyProcessor::UrlEncoded) => urlencoded::parse(
                &body,
                settings.argument_separator,
                &mut budget,
                &mut self.args_post,
            )
            .map(drop)
            .map_err(BodyError::Limit),
            Some(BodyProcessor::Json) => json::parse(&body, &mut budget, &mut self.args_post),
            // A document past a limit keeps what was read before it; a malformed one
            // yields nothing, as in ModSecurity.
            Some(BodyProcessor::Xml) => {
                let mut doc = xml::Document::default();
                let parsed = xml::parse(&body, &mut budget, &mut doc);
                if !matches!(parsed, Err(BodyError::Malformed(_))) {
                    self.parsed.xml = Some(doc);
                }
                parsed
            }
            Some(BodyProcessor::Multipart) => {
                let mut m = multipart::Multipart::default();
                let parsed = multipart::parse(&self.content_type(), &body, &mut budget, &mut m);
                if !matches!(parsed, Err(BodyError::Malformed(_))) {
                    self.args_post.extend(m.args);
                    self.parsed.files = m.files;
                    self.parsed.part_headers = m.part_headers;
                    self.parsed.multipart = m.flags;
                }
                parsed
            }
            None => Ok(()),
        };
        self.body = body;
        match result {
            Ok(()) => Ok(()),
            Err(BodyError::Malformed(e)) => {
                self.parsed.error = Some(if processor == Some(BodyProcessor::Multipart) {
                    format!("Multipart parsing error: {e}")
                } else {
                    e
                });
                Ok(())
            }
            Err(BodyError::Limit(limit)) => {
                self.note_limit(limit);
                self.parsed.error = Some(format!("Request body limit exceeded: {limit}"));
                Err(limit)
            }
        }
    }

    fn is_removed(&self, rule: &Rule) -> bool {
        self.removed_rules.iter().any(|s| selects_rule(s, rule))
    }

    fn run_phase(&mut self, phase: u8) -> Verdict {
        if let Some(v) = self.stopped() {
            return v;
        }
        match self.allowed {
            Some(AllowScope::All) => return Verdict::Continue,
            Some(AllowScope::Request) if phase <= 2 => return Verdict::Continue,
            _ => {}
        }
        if self.engine == EngineMode::Off {
            return Verdict::Continue;
        }
        let rules = self.rules.clone();
        let entries = &rules.phases[usize::from(phase) - 1];
        let mut i = 0;
        while i < entries.len() {
            let Entry::Rule(rule) = &entries[i] else {
                i += 1;
                continue;
            };
            if self.is_removed(rule) {
                i += 1;
                continue;
            }
            self.matched_vars.clear();
            if !self.evaluate(rule) {
                i += 1;
                continue;
            }
            self.record(rule, phase);
            i = match rule.skip_after_index {
                Some(at) => at + 1,
                None => skip_rules(entries, i + 1, rule.actions.skip),
            };
            if let Disruptive::Allow(scope) = rule.disruptive
                && self.engine == EngineMode::On
            {
                if scope != AllowScope::Phase {
                    self.allowed = Some(scope);
                }
                return Verdict::Continue;
            }
            if rule.interrupts() && self.engine == EngineMode::On && phase < 5 {
                let action = match rule.disruptive {
                    Disruptive::Drop => InterruptAction::Drop,
                    Disruptive::Redirect => InterruptAction::Redirect,
                    _ => InterruptAction::Deny,
                };
                let i = Interruption {
                    status: rule.status.unwrap_or(403),
                    rule_id: rule.id,
                    action,
                };
                self.interruption = Some(i.clone());
                return Verdict::Interrupt(i);
            }
        }
        Verdict::Continue
    }

    fn record(&mut self, rule: &Rule, phase: u8) {
        if let Some(s) = rule.actions.severity {
            self.highest_severity = self.highest_severity.min(s);
        }
        if !rule.log {
            return;
        }
        // A rule matching again in a later message of a stream is logged once, so the list
        // stays bounded however long the stream runs.
        if self.tx.has_checkpoint()
            && self
                .matched
                .iter()
                .any(|m| m.id == rule.id && m.phase == phase)
        {
            return;
        }
        let msg = rule
            .actions
            .msg
            .as_ref()
            .map(|m| self.expand_text(m, rule))
            .unwrap_or_default();
        let logdata = rule
            .actions
            .logdata
            .as_ref()
            .map(|m| self.expand_text(m, rule))
            .unwrap_or_default();
        self.matched.push(MatchedRule {
            id: rule.id,
            phase,
            msg,
            logdata,
            severity: rule.actions.severity,
            tags: rule.actions.tags.clone(),
            disruptive: rule.interrupts(),
        });
    }

    /// Evaluates a rule and its chain; the matches' actions run as they are found.
    fn evaluate(&mut self, rule: &Rule) -> bool {
        let mut matches = std::mem::take(&mut self.matches);
        matches.clear();
        match &rule.operator {
            None => {
                let m = matches.next();
                m.var = None;
                m.captures.clear();
            }
            Some(op) => self.find_matches(rule, op, &mut matches),
        }
        let found = !matches.is_empty();
        for m in matches.as_slice() {
            if let Some(var) = m.var {
                let name = &mut self.matched_var_name;
                name.clear();
                name.push_str(var.name());
                if !m.key.is_empty() && var.is_collection() {
                    name.push(':');
                    name.push_str(&m.key);
                }
                let (k, v) = self.matched_vars.next();
                k.clone_from(name);
                v.clone_from(&m.value);
                self.matched_var.clone_from(&m.value);
            }
            if rule.actions.capture {
                for (name, c) in CAPTURE_NAMES.iter().zip(&m.captures) {
                    self.tx.set(name, c);
                }
            }
            for action in &rule.actions.runtime {
                self.run_action(action, rule);
            }
        }
        self.matches = matches;
        if !found {
            return false;
        }
        match &rule.chained {
            Some(next) => self.evaluate(next),
            None => true,
        }
    }

    /// Runs the operator over every value of the rule's targets, transformed.
    fn find_matches(&self, rule: &Rule, op: &Operator, out: &mut Reused<Match>) {
        let expand = |text: &str| -> String {
            let parsed;
            let macros = match op.macros() {
                Some(m) => m,
                None => match MacroText::parse(text) {
                    Ok(m) => {
                        parsed = m;
                        &parsed
                    }
                    Err(_) => return text.to_string(),
                },
            };
            String::from_utf8(self.expand(macros, Some(rule)))
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        };
        let want = rule.actions.capture;
        let mut captures = Vec::new();
        let mut found = |var: Var, key: &str, value: &[u8], captures: &mut Vec<Vec<u8>>| {
            let m = out.next();
            m.var = Some(var);
            m.key.clear();
            m.key.push_str(key);
            m.value.clear();
            m.value.extend_from_slice(value);
            m.captures = std::mem::take(captures);
        };
        for target in &rule.targets {
            self.visit(Some(rule), target, &mut |v| {
                if rule.actions.multi_match {
                    let mut current = v.value;
                    let mut last_matched: Option<Vec<u8>> = None;
                    for step in 0..=rule.transforms.len() {
                        if step > 0 {
                            current = rule.transforms[step - 1].apply(current);
                        }
                        if last_matched.as_deref() == Some(&current[..]) {
                            continue;
                        }
                        captures.clear();
                        if matches_value(op, &current, &expand, want, &mut captures) {
                            last_matched = Some(current.to_vec());
                            found(v.var, &v.key, &current, &mut captures);
                        }
                    }
                } else {
                    let current = self.transformed(rule, v.var, v.value);
                    captures.clear();
                    if matches_value(op, &current, &expand, want, &mut captures) {
                        found(v.var, &v.key, &current, &mut captures);
                    }
                }
            });
        }
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        Storage {
            tx: std::mem::take(&mut self.tx),
            transform_cache: std::mem::take(self.transform_cache.get_mut()),
            matches: std::mem::take(&mut self.matches),
            matched_vars: std::mem::take(&mut self.matched_vars),
            request_headers: std::mem::take(&mut self.request_headers),
            args_post: std::mem::take(&mut self.args_post),
        }
        .give_back();
    }
}

/// TX names of capture groups: ModSecurity keeps groups 0 to 9.
const CAPTURE_NAMES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Appends as much of `chunk` as fits under `limit`; returns whether some was cut off.
fn fill(buf: &mut Vec<u8>, chunk: &[u8], limit: usize) -> bool {
    let room = limit.saturating_sub(buf.len());
    buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
    chunk.len() > room
}

/// Runs an operator, asking for capture groups only once it is known to match: most
/// values do not match, and a plain match test is much cheaper than finding groups.
fn matches_value(
    op: &Operator,
    input: &[u8],
    expand: &dyn Fn(&str) -> String,
    want_captures: bool,
    captures: &mut Vec<Vec<u8>>,
) -> bool {
    if !op.evaluate(input, expand, false, captures) {
        return false;
    }
    if want_captures {
        captures.clear();
        op.evaluate(input, expand, true, captures);
    }
    true
}

fn selects_rule(s: &RuleSelector, rule: &Rule) -> bool {
    match s {
        RuleSelector::Ids(ranges) => ranges.iter().any(|r| r.contains(rule.id)),
        RuleSelector::Tag(tag) => rule.actions.tags.iter().any(|t| t == tag),
    }
}

/// The index after skipping `n` rules (markers do not count).
fn skip_rules(entries: &[Entry], mut i: usize, mut n: u32) -> usize {
    while n > 0 && i < entries.len() {
        if matches!(entries[i], Entry::Rule(_)) {
            n -= 1;
        }
        i += 1;
    }
    i
}
