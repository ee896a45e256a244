//! Compiled rules and the per-rule-set settings they run under.

use crate::action::{Actions, BodyProcessor, Disruptive, EngineMode};
use crate::operator::Operator;
use crate::transform::Transform;
use crate::variable::Target;

/// One SecRule or SecAction, with its chained successors.
#[derive(Debug)]
pub(crate) struct Rule {
    /// The id of the chain's first rule (chained rules carry none of their own).
    pub id: u32,
    pub phase: u8,
    pub targets: Vec<Target>,
    /// `!VAR:member` entries of the target list.
    pub exclusions: Vec<Target>,
    /// `None` for SecAction: it always matches.
    pub operator: Option<Operator>,
    pub actions: Actions,
    /// The transformations to apply: the defaults' unless reset, then the rule's own.
    pub transforms: Vec<Transform>,
    /// Rules with equal transformation lists share this id (for caching results).
    pub transform_chain: u32,
    /// The disruptive action after `block` and defaults are resolved.
    pub disruptive: Disruptive,
    pub status: Option<u16>,
    pub log: bool,
    pub chained: Option<Box<Rule>>,
    /// For `skipAfter`: index in the phase's entry list to continue after.
    pub skip_after_index: Option<usize>,
}

impl Rule {
    /// Whether a match stops the transaction (outside DetectionOnly).
    pub(crate) fn interrupts(&self) -> bool {
        matches!(
            self.disruptive,
            Disruptive::Deny | Disruptive::Drop | Disruptive::Redirect
        )
    }
}

/// A phase's rule list holds rules and the markers `skipAfter` jumps to.
#[derive(Debug)]
pub(crate) enum Entry {
    Rule(Box<Rule>),
    Marker(String),
}

/// What SecRequestBodyLimitAction and SecResponseBodyLimitAction choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitAction {
    Reject,
    ProcessPartial,
}

/// SecArgumentsLimit when no directive sets it: ModSecurity's recommended value. An
/// unbounded count would let one body make every rule run over hundreds of thousands of
/// values.
pub(crate) const DEFAULT_ARGUMENTS_LIMIT: usize = 1000;

/// SecRequestBodyJsonDepthLimit when no directive sets it: the depth serde_json (and so
/// most Rust services) accepts; .NET stops at 64. Documents nested deeper are attacks on
/// recursive parsers, not data.
pub(crate) const DEFAULT_JSON_DEPTH_LIMIT: usize = 128;

/// SecRequestBodyXmlDepthLimit when no directive sets it: libxml2's own limit, so what
/// ModSecurity reads.
pub(crate) const DEFAULT_XML_DEPTH_LIMIT: usize = 256;

/// Engine-wide settings from the Sec* configuration directives.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub engine: EngineMode,
    pub request_body_access: bool,
    pub response_body_access: bool,
    pub request_body_limit: usize,
    pub request_body_no_files_limit: usize,
    pub request_body_limit_action: LimitAction,
    pub response_body_limit: usize,
    pub response_body_limit_action: LimitAction,
    pub response_body_mime_types: Vec<String>,
    pub argument_separator: u8,
    /// SecArgumentsLimit: arguments (query and body together) inspected at most.
    pub arguments_limit: usize,
    /// SecRequestBodyJsonDepthLimit: JSON containers nested at most.
    pub json_depth_limit: usize,
    /// SecRequestBodyXmlDepthLimit (this engine's own): XML elements nested at most.
    pub xml_depth_limit: usize,
    /// Body processor chosen by content type when no rule chooses one.
    pub default_processors: Vec<(String, BodyProcessor)>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            engine: EngineMode::On,
            request_body_access: false,
            response_body_access: false,
            request_body_limit: 13_107_200,
            request_body_no_files_limit: 1_048_576,
            request_body_limit_action: LimitAction::Reject,
            response_body_limit: 524_288,
            response_body_limit_action: LimitAction::ProcessPartial,
            response_body_mime_types: vec!["text/plain".into(), "text/html".into()],
            argument_separator: b'&',
            arguments_limit: DEFAULT_ARGUMENTS_LIMIT,
            json_depth_limit: DEFAULT_JSON_DEPTH_LIMIT,
            xml_depth_limit: DEFAULT_XML_DEPTH_LIMIT,
            default_processors: vec![
                (
                    "application/x-www-form-urlencoded".into(),
                    BodyProcessor::UrlEncoded,
                ),
                ("multipart/form-data".into(), BodyProcessor::Multipart),
            ],
        }
    }
}
