//! One HTTP exchange run through a rule set, phase by phase.

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::action::{
    AllowScope, BodyProcessor, Ctl, Disruptive, EngineMode, RuleSelector, Runtime, SetOp, SetVar,
};
use crate::body::multipart::{FilePart, Flags};
use crate::body::{Pair, json, multipart, urlencoded, xml};
use crate::macros::{MacroText, Part};
use crate::rule::{Entry, LimitAction, Rule};
use crate::ruleset::Rules;
use crate::variable::{Selector, Target, Var};

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
    pub id: u32,
    pub phase: u8,
    /// `msg` with macros expanded.
    pub msg: String,
    /// `logdata` with macros expanded.
    pub logdata: String,
    /// 0 (emergency) to 7 (debug), when the rule sets one.
    pub severity: Option<u8>,
    pub tags: Vec<String>,
    /// Whether the rule's action stops the exchange (when the engine is On).
    pub disruptive: bool,
}

/// One value a target yields: `var:key` and the bytes to inspect.
struct Value<'a> {
    var: Var,
    key: Cow<'a, str>,
    value: Cow<'a, [u8]>,
}

/// A value the operator matched, kept until the rule's actions have run.
struct Match {
    var: Option<Var>,
    key: String,
    value: Vec<u8>,
    captures: Vec<Vec<u8>>,
}

/// A name/value collection searched without regard to case.
#[derive(Debug, Default, Clone)]
struct Members(Vec<Pair>);

impl Members {
    fn get(&self, key: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_slice())
    }

    fn set(&mut self, key: &str, value: Vec<u8>) {
        match self.0.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key.to_string(), value)),
        }
    }

    fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
    }
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
    request_headers: Vec<Pair>,
    cookies: Vec<Pair>,
    args_get: Vec<Pair>,
    args_post: Vec<Pair>,
    body: Vec<u8>,
    body_access: bool,
    body_processor: Option<BodyProcessor>,
    body_truncated: bool,
    parsed: Parsed,
    status: u16,
    response_protocol: String,
    response_headers: Vec<Pair>,
    response_body: Vec<u8>,
    tx: Members,
    /// IP, GLOBAL, SESSION, USER, RESOURCE: per transaction only (no persistence).
    other: Vec<(Var, Members)>,
    env: Members,
    matched_var: Vec<u8>,
    matched_var_name: String,
    matched_vars: Vec<Pair>,
    removed_rules: Vec<RuleSelector>,
    removed_targets: Vec<(RuleSelector, Var, Selector)>,
    highest_severity: u8,
    matched: Vec<MatchedRule>,
    interruption: Option<Interruption>,
    allowed: Option<AllowScope>,
}

impl<'r> Transaction<'r> {
    pub(crate) fn new(rules: Rules<'r>) -> Self {
        let (engine, body_access) = (rules.settings.engine, rules.settings.request_body_access);
        let started = Instant::now();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
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
            request_headers: Vec::new(),
            cookies: Vec::new(),
            args_get: Vec::new(),
            args_post: Vec::new(),
            body: Vec::new(),
            body_access,
            body_processor: None,
            body_truncated: false,
            parsed: Parsed::default(),
            status: 0,
            response_protocol: String::new(),
            response_headers: Vec::new(),
            response_body: Vec::new(),
            tx: Members::default(),
            other: Vec::new(),
            env: Members::default(),
            matched_var: Vec::new(),
            matched_var_name: String::new(),
            matched_vars: Vec::new(),
            removed_rules: Vec::new(),
            removed_targets: Vec::new(),
            highest_severity: 255,
            matched: Vec::new(),
            interruption: None,
            allowed: None,
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
        self.method = method.to_string();
        self.uri = uri.to_string();
        self.protocol = protocol.to_string();
        self.args_get.clear();
        if let Some((_, query)) = uri.split_once('?') {
            urlencoded::parse(
                query.as_bytes(),
                self.rules.settings.argument_separator,
                &mut self.args_get,
            );
        }
    }

    /// Adds one request header (repeat for repeated headers).
    pub fn request_header(&mut self, name: &str, value: &[u8]) {
        if name.eq_ignore_ascii_case("cookie") {
            parse_cookies(value, &mut self.cookies);
        }
        self.request_headers
            .push((name.to_string(), value.to_vec()));
    }

    /// Phase 1: runs the request header rules.
    pub fn process_request_headers(&mut self) -> Verdict {
        self.run_phase(1)
    }

    /// Buffers request body bytes, enforcing SecRequestBodyLimit.
    pub fn append_request_body(&mut self, chunk: &[u8]) -> Verdict {
        if let Some(i) = &self.interruption {
            return Verdict::Interrupt(i.clone());
        }
        if !self.body_access {
            return Verdict::Continue;
        }
        let settings = &self.rules.settings;
        let room = settings.request_body_limit.saturating_sub(self.body.len());
        if chunk.len() > room {
            self.body.extend_from_slice(&chunk[..room]);
            self.body_truncated = true;
            if settings.request_body_limit_action == LimitAction::Reject {
                return self.limit_exceeded(413);
            }
            return Verdict::Continue;
        }
        self.body.extend_from_slice(chunk);
        Verdict::Continue
    }

    /// Phase 2: parses the request body and runs the request body rules.
    pub fn process_request_body(&mut self) -> Verdict {
        if let Some(i) = &self.interruption {
            return Verdict::Interrupt(i.clone());
        }
        if self.body_access {
            let rules = self.rules.clone();
            let settings = &rules.settings;
            let processor = self.body_processor.or_else(|| self.default_processor());
            if processor != Some(BodyProcessor::Multipart)
                && self.body.len() > settings.request_body_no_files_limit
            {
                if settings.request_body_limit_action == LimitAction::Reject
                    && let v @ Verdict::Interrupt(_) = self.limit_exceeded(413)
                {
                    return v;
                }
                self.body.truncate(settings.request_body_no_files_limit);
            }
            self.parse_body(processor);
        }
        self.run_phase(2)
    }

    /// Inspects one more message of a streaming body (such as one gRPC message) as
    /// REQUEST_BODY and ARGS_POST with the phase-2 rules; TX, and so the anomaly score,
    /// carries over from the messages before.
    pub fn process_message(&mut self, args: &[(String, Vec<u8>)], raw: &[u8]) -> Verdict {
        if let Some(i) = &self.interruption {
            return Verdict::Interrupt(i.clone());
        }
        self.args_post = args.to_vec();
        self.body = raw.to_vec();
        self.parsed = Parsed::default();
        self.run_phase(2)
    }

    /// Records the response status line.
    pub fn response_status(&mut self, status: u16, protocol: &str) {
        self.status = status;
        self.response_protocol = protocol.to_string();
    }

    /// Adds one response header.
    pub fn response_header(&mut self, name: &str, value: &[u8]) {
        self.response_headers
            .push((name.to_string(), value.to_vec()));
    }

    /// Phase 3: runs the response header rules.
    pub fn process_response_headers(&mut self) -> Verdict {
        self.run_phase(3)
    }

    /// Buffers response body bytes of the inspected MIME types, up to SecResponseBodyLimit.
    pub fn append_response_body(&mut self, chunk: &[u8]) -> Verdict {
        if let Some(i) = &self.interruption {
            return Verdict::Interrupt(i.clone());
        }
        if !self.inspects_response_body() {
            return Verdict::Continue;
        }
        let settings = &self.rules.settings;
        let room = settings
            .response_body_limit
            .saturating_sub(self.response_body.len());
        if chunk.len() > room {
            self.response_body.extend_from_slice(&chunk[..room]);
            if settings.response_body_limit_action == LimitAction::Reject {
                return self.limit_exceeded(500);
            }
            return Verdict::Continue;
        }
        self.response_body.extend_from_slice(chunk);
        Verdict::Continue
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

    fn limit_exceeded(&mut self, status: u16) -> Verdict {
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

    fn parse_body(&mut self, processor: Option<BodyProcessor>) {
        self.parsed.processor = processor;
        let body = std::mem::take(&mut self.body);
        match processor {
            Some(BodyProcessor::UrlEncoded) => {
                urlencoded::parse(
                    &body,
                    self.rules.settings.argument_separator,
                    &mut self.args_post,
                );
            }
            Some(BodyProcessor::Json) => {
                if let Err(e) = json::parse(&body, &mut self.args_post) {
                    self.parsed.error = Some(e);
                }
            }
            Some(BodyProcessor::Xml) => match xml::parse(&body) {
                Ok(doc) => self.parsed.xml = Some(doc),
                Err(e) => self.parsed.error = Some(e),
            },
            Some(BodyProcessor::Multipart) => match multipart::parse(&self.content_type(), &body) {
                Ok(m) => {
                    self.args_post.extend(m.args);
                    self.parsed.files = m.files;
                    self.parsed.part_headers = m.part_headers;
                    self.parsed.multipart = m.flags;
                }
                Err(e) => self.parsed.error = Some(format!("Multipart parsing error: {e}")),
            },
            None => {}
        }
        self.body = body;
    }

    fn is_removed(&self, rule: &Rule) -> bool {
        self.removed_rules.iter().any(|s| selects_rule(s, rule))
    }

    fn run_phase(&mut self, phase: u8) -> Verdict {
        if let Some(i) = &self.interruption {
            return Verdict::Interrupt(i.clone());
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
        let matches = match &rule.operator {
            None => vec![Match {
                var: None,
                key: String::new(),
                value: Vec::new(),
                captures: Vec::new(),
            }],
            Some(_) => self.find_matches(rule),
        };
        if matches.is_empty() {
            return false;
        }
        for m in matches {
            if let Some(var) = m.var {
                let name = if m.key.is_empty() || !var.is_collection() {
                    var.name().to_string()
                } else {
                    format!("{}:{}", var.name(), m.key)
                };
                self.matched_vars.push((name.clone(), m.value.clone()));
                self.matched_var_name = name;
                self.matched_var = m.value;
            }
            if rule.actions.capture {
                for (n, c) in m.captures.into_iter().enumerate() {
                    self.tx.set(&n.to_string(), c);
                }
            }
            for action in &rule.actions.runtime {
                self.run_action(action, rule);
            }
        }
        match &rule.chained {
            Some(next) => self.evaluate(next),
            None => true,
        }
    }

    fn find_matches(&self, rule: &Rule) -> Vec<Match> {
        let Some(op) = &rule.operator else {
            return Vec::new();
        };
        let mut values = Vec::new();
        for target in &rule.targets {
            self.collect(Some(rule), target, &mut values);
        }
        let expand = |text: &str| -> String {
            match MacroText::parse(text) {
                Ok(m) => String::from_utf8_lossy(&self.expand(&m, Some(rule))).into_owned(),
                Err(_) => text.to_string(),
            }
        };
        let want = rule.actions.capture;
        let mut out = Vec::new();
        let mut captures = Vec::new();
        for v in values {
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
                    if op.evaluate(&current, &expand, want, &mut captures) {
                        last_matched = Some(current.to_vec());
                        out.push(Match {
                            var: Some(v.var),
                            key: v.key.to_string(),
                            value: current.to_vec(),
                            captures: std::mem::take(&mut captures),
                        });
                    }
                }
            } else {
                let mut current = v.value;
                for t in &rule.transforms {
                    current = t.apply(current);
                }
                captures.clear();
                if op.evaluate(&current, &expand, want, &mut captures) {
                    out.push(Match {
                        var: Some(v.var),
                        key: v.key.into_owned(),
                        value: current.into_owned(),
                        captures: std::mem::take(&mut captures),
                    });
                }
            }
        }
        out
    }

    fn excluded(&self, rule: Option<&Rule>, var: Var, name: &str) -> bool {
        let Some(rule) = rule else {
            return false;
        };
        rule.exclusions
            .iter()
            .any(|e| e.var == var && e.selector.selects(name))
            || self
                .removed_targets
                .iter()
                .any(|(s, v, sel)| *v == var && sel.selects(name) && selects_rule(s, rule))
    }

    /// Pushes the values one target yields, after exclusions.
    fn collect<'a>(&'a self, rule: Option<&Rule>, target: &Target, out: &mut Vec<Value<'a>>) {
        let var = target.var;
        if !var.is_collection() {
            let value = self.scalar(var);
            if target.count {
                let n = usize::from(value.is_some());
                out.push(Value {
                    var,
                    key: Cow::Borrowed(""),
                    value: Cow::Owned(n.to_string().into_bytes()),
                });
            } else if let Some(value) = value {
                out.push(Value {
                    var,
                    key: Cow::Borrowed(""),
                    value,
                });
            }
            return;
        }
        let start = out.len();
        let mut push = |key: &'a str, value: Cow<'a, [u8]>| {
            if target.selector.selects(key) && !self.excluded(rule, var, key) {
                out.push(Value {
                    var,
                    key: Cow::Borrowed(key),
                    value,
                });
            }
        };
        let pairs =
            |list: &'a [Pair], names: bool, push: &mut dyn FnMut(&'a str, Cow<'a, [u8]>)| {
                for (k, v) in list {
                    push(
                        k,
                        if names {
                            Cow::Borrowed(k.as_bytes())
                        } else {
                            Cow::Borrowed(v.as_slice())
                        },
                    );
                }
            };
        match var {
            Var::Args => {
                pairs(&self.args_get, false, &mut push);
                pairs(&self.args_post, false, &mut push);
            }
            Var::ArgsNames => {
                pairs(&self.args_get, true, &mut push);
                pairs(&self.args_post, true, &mut push);
            }
            Var::ArgsGet => pairs(&self.args_get, false, &mut push),
            Var::ArgsGetNames => pairs(&self.args_get, true, &mut push),
            Var::ArgsPost => pairs(&self.args_post, false, &mut push),
            Var::ArgsPostNames => pairs(&self.args_post, true, &mut push),
            Var::RequestHeaders => pairs(&self.request_headers, false, &mut push),
            Var::RequestHeadersNames => pairs(&self.request_headers, true, &mut push),
            Var::RequestCookies => pairs(&self.cookies, false, &mut push),
            Var::RequestCookiesNames => pairs(&self.cookies, true, &mut push),
            Var::ResponseHeaders => pairs(&self.response_headers, false, &mut push),
            Var::ResponseHeadersNames => pairs(&self.response_headers, true, &mut push),
            Var::MultipartPartHeaders => pairs(&self.parsed.part_headers, false, &mut push),
            Var::Tx => pairs(&self.tx.0, false, &mut push),
            Var::Env => pairs(&self.env.0, false, &mut push),
            Var::MatchedVars => pairs(&self.matched_vars, false, &mut push),
            Var::MatchedVarsNames => pairs(&self.matched_vars, true, &mut push),
            Var::Ip | Var::Global | Var::Session | Var::User | Var::Resource => {
                if let Some((_, m)) = self.other.iter().find(|(v, _)| *v == var) {
                    pairs(&m.0, false, &mut push);
                }
            }
            Var::Files => {
                for f in &self.parsed.files {
                    push(&f.name, Cow::Borrowed(&f.filename));
                }
            }
            Var::FilesNames => {
                for f in &self.parsed.files {
                    push(&f.name, Cow::Borrowed(f.name.as_bytes()));
                }
            }
            Var::FilesSizes => {
                for f in &self.parsed.files {
                    push(&f.name, Cow::Owned(f.size.to_string().into_bytes()));
                }
            }
            Var::Xml => {
                if let Some(doc) = &self.parsed.xml {
                    match &target.selector {
                        Selector::XPath(x) if x.contains('@') => {
                            for a in &doc.attributes {
                                push("", Cow::Borrowed(a));
                            }
                        }
                        _ => push("", Cow::Borrowed(&doc.text)),
                    }
                }
            }
            Var::Rule => {
                if let Some(rule) = rule {
                    let id = rule.id.to_string().into_bytes();
                    push("id", Cow::Owned(id));
                }
            }
            _ => {}
        }
        if target.count {
            let n = out.len() - start;
            out.truncate(start);
            let key = match &target.selector {
                Selector::Key(k) => Cow::Owned(k.clone()),
                _ => Cow::Borrowed(""),
            };
            out.push(Value {
                var,
                key,
                value: Cow::Owned(n.to_string().into_bytes()),
            });
        }
    }

    /// The value of a single-valued variable; `None` when it does not exist.
    fn scalar(&self, var: Var) -> Option<Cow<'_, [u8]>> {
        let b = |s: &'_ str| -> Option<Cow<'_, [u8]>> { Some(Cow::Owned(s.as_bytes().to_vec())) };
        let flag = |f: bool| Some(Cow::Borrowed(if f { &b"1"[..] } else { &b"0"[..] }));
        let number = |n: usize| Some(Cow::Owned(n.to_string().into_bytes()));
        let path = self.uri_path();
        match var {
            Var::RequestMethod => Some(Cow::Borrowed(self.method.as_bytes())),
            Var::RequestProtocol => Some(Cow::Borrowed(self.protocol.as_bytes())),
            Var::RequestUriRaw => Some(Cow::Borrowed(self.uri.as_bytes())),
            Var::RequestUri => Some(Cow::Borrowed(strip_authority(&self.uri).as_bytes())),
            Var::RequestLine => b(&format!("{} {} {}", self.method, self.uri, self.protocol)),
            Var::QueryString => Some(Cow::Borrowed(
                self.uri.split_once('?').map_or("", |(_, q)| q).as_bytes(),
            )),
            Var::RequestFilename => Some(Cow::Owned(percent_decode(path.as_bytes()))),
            Var::RequestBasename => {
                let decoded = percent_decode(path.as_bytes());
                let base = decoded
                    .rsplit(|&c| c == b'/')
                    .next()
                    .unwrap_or(&[])
                    .to_vec();
                Some(Cow::Owned(base))
            }
            Var::RequestBody => Some(Cow::Borrowed(&self.body)),
            Var::RequestBodyLength => number(self.body.len()),
            Var::FullRequest => None,
            Var::FullRequestLength => None,
            Var::ArgsCombinedSize => number(
                self.args_get
                    .iter()
                    .chain(&self.args_post)
                    .map(|(k, v)| k.len() + v.len())
                    .sum(),
            ),
            Var::FilesCombinedSize => number(self.parsed.files.iter().map(|f| f.size).sum()),
            Var::ReqbodyError => flag(self.parsed.error.is_some()),
            Var::ReqbodyErrorMsg | Var::ReqbodyProcessorError => {
                self.parsed.error.as_deref().and_then(b)
            }
            Var::ReqbodyProcessor => self
                .parsed
                .processor
                .or(self.body_processor)
                .and_then(|p| b(p.name())),
            Var::InboundDataError => flag(self.body_truncated),
            Var::OutboundDataError | Var::UrlencodedError => flag(false),
            Var::MultipartStrictError => flag(
                self.parsed.multipart.strict_error()
                    || self.parsed.error.is_some()
                        && self.parsed.processor == Some(BodyProcessor::Multipart),
            ),
            Var::MultipartUnmatchedBoundary => flag(self.parsed.multipart.unmatched_boundary),
            Var::MultipartBoundaryQuoted => flag(self.parsed.multipart.boundary_quoted),
            Var::MultipartBoundaryWhitespace => flag(self.parsed.multipart.boundary_whitespace),
            Var::MultipartDataBefore => flag(self.parsed.multipart.data_before),
            Var::MultipartDataAfter => flag(self.parsed.multipart.data_after),
            Var::MultipartHeaderFolding => flag(self.parsed.multipart.header_folding),
            Var::MultipartLfLine => flag(self.parsed.multipart.lf_line),
            Var::MultipartCrlfLfLines => flag(self.parsed.multipart.crlf_lf_lines),
            Var::MultipartMissingSemicolon => flag(self.parsed.multipart.missing_semicolon),
            Var::MultipartInvalidQuoting => flag(self.parsed.multipart.invalid_quoting),
            Var::MultipartInvalidPart => flag(self.parsed.multipart.invalid_part),
            Var::MultipartInvalidHeaderFolding => {
                flag(self.parsed.multipart.invalid_header_folding)
            }
            Var::MultipartFileLimitExceeded => flag(false),
            Var::MultipartFilename | Var::MultipartName => None,
            Var::MatchedVar => Some(Cow::Borrowed(&self.matched_var)),
            Var::MatchedVarName => Some(Cow::Borrowed(self.matched_var_name.as_bytes())),
            Var::RemoteAddr => self.client.and_then(|(ip, _)| b(&ip.to_string())),
            Var::RemotePort => self.client.and_then(|(_, p)| number(p.into())),
            Var::RemoteHost => self.client.and_then(|(ip, _)| b(&ip.to_string())),
            Var::ServerAddr => self.server.and_then(|(ip, _)| b(&ip.to_string())),
            Var::ServerPort => self.server.and_then(|(_, p)| number(p.into())),
            Var::ServerName => self.header("host").map(|h| {
                let h = String::from_utf8_lossy(h);
                let host = h
                    .rsplit_once(':')
                    .filter(|(_, p)| p.bytes().all(|c| c.is_ascii_digit()));
                Cow::Owned(host.map_or(h.as_ref(), |(n, _)| n).as_bytes().to_vec())
            }),
            Var::RemoteUser | Var::AuthType | Var::PathInfo => None,
            Var::UniqueId => Some(Cow::Borrowed(self.unique_id.as_bytes())),
            Var::Duration => number(self.started.elapsed().as_micros() as usize),
            Var::HighestSeverity => number(self.highest_severity.into()),
            Var::Time
            | Var::TimeDay
            | Var::TimeEpoch
            | Var::TimeHour
            | Var::TimeMin
            | Var::TimeMon
            | Var::TimeSec
            | Var::TimeWday
            | Var::TimeYear => Some(Cow::Owned(time_var(var))),
            Var::ResponseStatus => {
                (self.status != 0).then(|| Cow::Owned(self.status.to_string().into_bytes()))
            }
            Var::ResponseProtocol => Some(Cow::Borrowed(self.response_protocol.as_bytes())),
            Var::StatusLine => (self.status != 0).then(|| {
                Cow::Owned(format!("{} {}", self.response_protocol, self.status).into_bytes())
            }),
            Var::ResponseBody => Some(Cow::Borrowed(&self.response_body)),
            Var::ResponseContentType => self
                .response_headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| Cow::Borrowed(v.as_slice())),
            Var::ResponseContentLength => self
                .response_headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| Cow::Borrowed(v.as_slice())),
            _ => None,
        }
    }

    /// The path of the request target, without scheme, authority or query.
    fn uri_path(&self) -> &str {
        let uri = strip_authority(&self.uri);
        uri.split(['?', '#']).next().unwrap_or("")
    }

    fn expand_text(&self, m: &MacroText, rule: &Rule) -> String {
        match m.literal() {
            Some(s) => s.to_string(),
            None => String::from_utf8_lossy(&self.expand(m, Some(rule))).into_owned(),
        }
    }

    /// Expands macros to bytes; unknown members expand to nothing.
    fn expand(&self, m: &MacroText, rule: Option<&Rule>) -> Vec<u8> {
        let mut out = Vec::new();
        for part in m.parts() {
            match part {
                Part::Literal(s) => out.extend_from_slice(s.as_bytes()),
                Part::Var(Var::Rule, Some(key)) => {
                    let Some(rule) = rule else { continue };
                    match key.to_ascii_lowercase().as_str() {
                        "id" => out.extend_from_slice(rule.id.to_string().as_bytes()),
                        "msg" => {
                            if let Some(msg) = &rule.actions.msg {
                                out.extend(self.expand(msg, None));
                            }
                        }
                        "logdata" => {
                            if let Some(l) = &rule.actions.logdata {
                                out.extend(self.expand(l, None));
                            }
                        }
                        "severity" => {
                            if let Some(s) = rule.actions.severity {
                                out.extend_from_slice(s.to_string().as_bytes());
                            }
                        }
                        "phase" => out.extend_from_slice(rule.phase.to_string().as_bytes()),
                        _ => {}
                    }
                }
                Part::Var(var, key) => {
                    let selector = match key {
                        Some(k) => Selector::Key(k.clone()),
                        None => Selector::All,
                    };
                    if !var.is_collection() {
                        if let Some(v) = self.scalar(*var) {
                            out.extend_from_slice(&v);
                        }
                        continue;
                    }
                    let target = Target {
                        var: *var,
                        selector,
                        count: false,
                        exclude: false,
                    };
                    let mut values = Vec::new();
                    self.collect(None, &target, &mut values);
                    if let Some(v) = values.first() {
                        out.extend_from_slice(&v.value);
                    }
                }
            }
        }
        out
    }

    fn run_action(&mut self, action: &Runtime, rule: &Rule) {
        match action {
            Runtime::SetVar(s) => self.set_var(s, rule),
            Runtime::SetEnv(k, v) => {
                let k = String::from_utf8_lossy(&self.expand(k, Some(rule))).into_owned();
                let v = self.expand(v, Some(rule));
                self.env.set(&k, v);
            }
            Runtime::Ctl(ctl) => match ctl {
                Ctl::RuleEngine(mode) => self.engine = *mode,
                Ctl::RemoveRules(s) => self.removed_rules.push(s.clone()),
                Ctl::RemoveTarget(s, var, sel) => {
                    self.removed_targets.push((s.clone(), *var, sel.clone()))
                }
                Ctl::RequestBodyProcessor(p) => self.body_processor = Some(*p),
                Ctl::RequestBodyAccess(on) => self.body_access = *on,
                Ctl::NoEffect => {}
            },
        }
    }

    fn set_var(&mut self, s: &SetVar, rule: &Rule) {
        let name = String::from_utf8_lossy(&self.expand(&s.name, Some(rule))).to_ascii_lowercase();
        let value = self.expand(&s.value, Some(rule));
        let members = match s.collection {
            Var::Tx => &mut self.tx,
            other => {
                if !self.other.iter().any(|(v, _)| *v == other) {
                    self.other.push((other, Members::default()));
                }
                let Some((_, m)) = self.other.iter_mut().find(|(v, _)| *v == other) else {
                    return;
                };
                m
            }
        };
        match s.op {
            SetOp::Assign => members.set(&name, value),
            SetOp::Delete => members.remove(&name),
            SetOp::Add | SetOp::Subtract => {
                let current = members.get(&name).map_or(0, parse_number);
                let delta = parse_number(&value);
                let result = if s.op == SetOp::Add {
                    current.saturating_add(delta)
                } else {
                    current.saturating_sub(delta)
                };
                members.set(&name, result.to_string().into_bytes());
            }
        }
    }
}

/// Numbers in TX are decimal integers; anything else counts as 0, as in ModSecurity.
fn parse_number(v: &[u8]) -> i64 {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
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

/// `http://host/path?q` -> `/path?q`.
fn strip_authority(uri: &str) -> &str {
    let lower = uri.get(..8).unwrap_or(uri).to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &uri[7..]
    } else if lower.starts_with("https://") {
        &uri[8..]
    } else {
        return uri;
    };
    match rest.find('/') {
        Some(i) => &rest[i..],
        None => "",
    }
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if input[i] == b'%'
            && let (Some(h), Some(l)) = (
                input.get(i + 1).and_then(|&b| hex(b)),
                input.get(i + 2).and_then(|&b| hex(b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// Cookies are `name=value` pairs separated by `;`; values are not decoded.
fn parse_cookies(header: &[u8], out: &mut Vec<Pair>) {
    for piece in header.split(|&b| b == b';') {
        let piece = piece.trim_ascii();
        if piece.is_empty() {
            continue;
        }
        let (name, value) = match piece.iter().position(|&b| b == b'=') {
            Some(i) => (&piece[..i], &piece[i + 1..]),
            None => (piece, &[][..]),
        };
        out.push((
            String::from_utf8_lossy(name.trim_ascii()).into_owned(),
            value.to_vec(),
        ));
    }
}

fn time_var(var: Var) -> Vec<u8> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let text = match var {
        Var::TimeEpoch => secs.to_string(),
        Var::TimeYear => year.to_string(),
        Var::TimeMon => format!("{month:02}"),
        Var::TimeDay => format!("{day:02}"),
        Var::TimeHour => format!("{h:02}"),
        Var::TimeMin => format!("{m:02}"),
        Var::TimeSec => format!("{s:02}"),
        Var::TimeWday => ((days + 4) % 7).to_string(),
        _ => format!("{h:02}:{m:02}:{s:02}"),
    };
    text.into_bytes()
}

/// Days since 1970-01-01 to a civil date (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
