//! Rule actions: parsed once at load into typed values so evaluation never re-reads text.

use std::sync::Arc;

use crate::macros::MacroText;
use crate::transform::Transform;
use crate::variable::{Selector, Target, Var};

/// What happens to the transaction when a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disruptive {
    Pass,
    /// Resolves to the phase's SecDefaultAction at load time.
    Block,
    Deny,
    Drop,
    Redirect,
    Allow(AllowScope),
}

/// How much of the transaction `allow` lets through unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AllowScope {
    /// The rest of the transaction.
    All,
    /// The rest of the current phase.
    Phase,
    /// The rest of the request phases.
    Request,
}

/// SecRuleEngine modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EngineMode {
    On,
    DetectionOnly,
    Off,
}

impl EngineMode {
    pub(crate) fn parse(text: &str) -> Option<EngineMode> {
        match text.to_ascii_lowercase().as_str() {
            "on" => Some(EngineMode::On),
            "detectiononly" => Some(EngineMode::DetectionOnly),
            "off" => Some(EngineMode::Off),
            _ => None,
        }
    }
}

/// Request body parsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyProcessor {
    UrlEncoded,
    Multipart,
    Json,
    Xml,
}

impl BodyProcessor {
    pub(crate) fn name(self) -> &'static str {
        match self {
            BodyProcessor::UrlEncoded => "URLENCODED",
            BodyProcessor::Multipart => "MULTIPART",
            BodyProcessor::Json => "JSON",
            BodyProcessor::Xml => "XML",
        }
    }
}

/// An inclusive range of rule ids, as in `SecRuleRemoveById 900000-900999`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdRange(pub u32, pub u32);

impl IdRange {
    pub(crate) fn contains(self, id: u32) -> bool {
        self.0 <= id && id <= self.1
    }

    /// Parses space- or comma-separated ids and ranges.
    pub(crate) fn parse_list(text: &str) -> Result<Vec<IdRange>, String> {
        text.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|item| {
                let (a, b) = item.split_once('-').unwrap_or((item, item));
                let parse = |s: &str| {
                    s.trim()
                        .parse::<u32>()
                        .map_err(|_| format!("bad rule id or range `{item}`"))
                };
                Ok(IdRange(parse(a)?, parse(b)?))
            })
            .collect()
    }
}

/// Which rules a runtime exclusion applies to.
#[derive(Debug, Clone)]
pub(crate) enum RuleSelector {
    Ids(Vec<IdRange>),
    Tag(String),
}

/// A `ctl:` action.
#[derive(Debug, Clone)]
pub(crate) enum Ctl {
    RuleEngine(EngineMode),
    RemoveRules(RuleSelector),
    RemoveTarget(RuleSelector, Var, Selector),
    RequestBodyProcessor(BodyProcessor),
    RequestBodyAccess(bool),
    /// Accepted with nothing to do: audit log settings (the engine writes no audit log)
    /// and forceRequestBodyVariable (REQUEST_BODY holds every body but one the XML
    /// processor parsed, which ModSecurity leaves out even when forced).
    NoEffect,
}

/// The arithmetic of `setvar`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetOp {
    Assign,
    Add,
    Subtract,
    Delete,
}

/// A collection variable `setvar` may write.
#[derive(Debug, Clone)]
pub(crate) struct SetVar {
    pub collection: Var,
    pub name: MacroText,
    /// The name when it is literal, shared with every transaction that creates the member.
    pub literal_name: Option<Arc<str>>,
    pub op: SetOp,
    pub value: MacroText,
}

/// Actions that run for every match, in the order written.
#[derive(Debug, Clone)]
pub(crate) enum Runtime {
    SetVar(SetVar),
    SetEnv(MacroText, MacroText),
    Ctl(Ctl),
}

/// Everything a rule's action list says.
#[derive(Debug, Clone, Default)]
pub(crate) struct Actions {
    pub id: Option<u32>,
    pub phase: Option<u8>,
    pub chain: bool,
    pub disruptive: Option<Disruptive>,
    pub status: Option<u16>,
    pub msg: Option<MacroText>,
    pub logdata: Option<MacroText>,
    pub tags: Vec<String>,
    pub severity: Option<u8>,
    pub capture: bool,
    pub multi_match: bool,
    /// `t:none` seen: the defaults' transformations are dropped.
    pub transforms_reset: bool,
    pub transforms: Vec<Transform>,
    pub log: Option<bool>,
    pub skip: u32,
    pub skip_after: Option<String>,
    pub runtime: Vec<Runtime>,
}

const SEVERITIES: [&str; 8] = [
    "EMERGENCY",
    "ALERT",
    "CRITICAL",
    "ERROR",
    "WARNING",
    "NOTICE",
    "INFO",
    "DEBUG",
];

/// Splits an action list into `(name, value)` pairs; values may be single-quoted.
pub(crate) fn split(text: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i] == b',' || bytes[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b':' && bytes[i] != b',' {
            i += 1;
        }
        let name = text[start..i].trim().to_string();
        if i < bytes.len() && bytes[i] == b':' {
            i += 1;
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
            if i < bytes.len() && bytes[i] == b'\'' {
                i += 1;
                let mut value = String::new();
                let mut closed = false;
                let mut chars = text[i..].char_indices();
                while let Some((off, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some((_, '\'')) => value.push('\''),
                            Some((_, other)) => {
                                value.push('\\');
                                value.push(other);
                            }
                            None => value.push('\\'),
                        },
                        '\'' => {
                            i += off + 1;
                            closed = true;
                            break;
                        }
                        _ => value.push(c),
                    }
                }
                if !closed {
                    return Err(format!("the value of action `{name}` has no closing quote"));
                }
                out.push((name, Some(value)));
            } else {
                let start = i;
                while i < bytes.len() && bytes[i] != b',' {
                    i += 1;
                }
                out.push((name, Some(text[start..i].trim().to_string())));
            }
        } else {
            out.push((name, None));
        }
    }
    Ok(out)
}

impl Actions {
    /// Parses an action list; unknown actions are errors.
    pub(crate) fn parse(text: &str) -> Result<Actions, String> {
        let mut a = Actions::default();
        for (name, value) in split(text)? {
            a.apply(&name, value)?;
        }
        Ok(a)
    }

    fn apply(&mut self, name: &str, value: Option<String>) -> Result<(), String> {
        let need = |v: Option<String>| v.ok_or_else(|| format!("action `{name}` needs a value"));
        match name.to_ascii_lowercase().as_str() {
            "id" => {
                let v = need(value)?;
                self.id = Some(v.parse().map_err(|_| format!("bad rule id `{v}`"))?);
            }
            "phase" => {
                let v = need(value)?;
                self.phase = Some(match v.to_ascii_lowercase().as_str() {
                    "request" => 2,
                    "response" => 4,
                    "logging" => 5,
                    n => match n.parse::<u8>() {
                        Ok(p @ 1..=5) => p,
                        _ => return Err(format!("bad phase `{v}`")),
                    },
                });
            }
            "chain" => self.chain = true,
            "pass" => self.disruptive = Some(Disruptive::Pass),
            "block" => self.disruptive = Some(Disruptive::Block),
            "deny" => self.disruptive = Some(Disruptive::Deny),
            "drop" => self.disruptive = Some(Disruptive::Drop),
            "redirect" => {
                need(value)?;
                self.disruptive = Some(Disruptive::Redirect);
            }
            "allow" => {
                let scope = match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    None => AllowScope::All,
                    Some("phase") => AllowScope::Phase,
                    Some("request") => AllowScope::Request,
                    Some(other) => return Err(format!("bad allow scope `{other}`")),
                };
                self.disruptive = Some(Disruptive::Allow(scope));
            }
            "status" => {
                let v = need(value)?;
                self.status = Some(v.parse().map_err(|_| format!("bad status `{v}`"))?);
            }
            "msg" => self.msg = Some(MacroText::parse(&need(value)?)?),
            "logdata" => self.logdata = Some(MacroText::parse(&need(value)?)?),
            "tag" => self.tags.push(need(value)?),
            "severity" => {
                let v = need(value)?;
                let level = match v.parse::<u8>() {
                    Ok(n @ 0..=7) => n,
                    _ => SEVERITIES
                        .iter()
                        .position(|s| s.eq_ignore_ascii_case(&v))
                        .ok_or_else(|| format!("bad severity `{v}`"))?
                        as u8,
                };
                self.severity = Some(level);
            }
            "capture" => self.capture = true,
            "multimatch" => self.multi_match = true,
            "t" => {
                let v = need(value)?;
                if v.eq_ignore_ascii_case("none") {
                    self.transforms.clear();
                    self.transforms_reset = true;
                } else {
                    let t = Transform::parse(&v)
                        .ok_or_else(|| format!("unsupported transformation `{v}`"))?;
                    self.transforms.push(t);
                }
            }
            "log" => self.log = Some(true),
            "nolog" => self.log = Some(false),
            "skip" => {
                let v = need(value)?;
                self.skip = v.parse().map_err(|_| format!("bad skip count `{v}`"))?;
            }
            "skipafter" => self.skip_after = Some(need(value)?),
            "setvar" => self
                .runtime
                .push(Runtime::SetVar(parse_setvar(&need(value)?)?)),
            "setenv" => {
                let v = need(value)?;
                let (k, val) = v.split_once('=').unwrap_or((&v, "1"));
                self.runtime.push(Runtime::SetEnv(
                    MacroText::parse(k)?,
                    MacroText::parse(val)?,
                ));
            }
            "ctl" => self.runtime.push(Runtime::Ctl(parse_ctl(&need(value)?)?)),
            // Metadata and logging settings with no effect on matching.
            "ver"
            | "rev"
            | "maturity"
            | "accuracy"
            | "auditlog"
            | "noauditlog"
            | "expirevar"
            | "initcol"
            | "sanitisearg"
            | "sanitisematched"
            | "sanitiserequestheader"
            | "sanitiseresponseheader"
            | "sanitisematchedbytes"
            | "setuid"
            | "setsid"
            | "deprecatevar"
            | "append"
            | "prepend"
            | "xmlns"
            | "exec"
            | "pause" => {}
            other => return Err(format!("unsupported action `{other}`")),
        }
        Ok(())
    }
}

fn parse_setvar(text: &str) -> Result<SetVar, String> {
    let (delete, body) = match text.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (target, op, value) = if delete {
        (body, SetOp::Delete, "")
    } else if let Some((t, v)) = body.split_once('=') {
        if let Some(v) = v.strip_prefix('+') {
            (t, SetOp::Add, v)
        } else if let Some(v) = v.strip_prefix('-') {
            (t, SetOp::Subtract, v)
        } else {
            (t, SetOp::Assign, v)
        }
    } else {
        (body, SetOp::Assign, "1")
    };
    let (collection, name) = target
        .split_once('.')
        .ok_or_else(|| format!("setvar `{text}` names no collection"))?;
    let collection = match Var::from_name(collection.trim()) {
        Some(v @ (Var::Tx | Var::Ip | Var::Global | Var::Session | Var::User | Var::Resource)) => v,
        _ => {
            return Err(format!(
                "setvar `{text}` writes to an unsupported collection"
            ));
        }
    };
    let name = MacroText::parse(&name.trim().to_ascii_lowercase())?;
    Ok(SetVar {
        collection,
        literal_name: name.literal().map(Arc::from),
        name,
        op,
        value: MacroText::parse(value)?,
    })
}

fn on_off(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        _ => Err(format!("expected On or Off, got `{v}`")),
    }
}

/// Parses a `VAR:member` exclusion target as used by ctl and SecRuleUpdateTarget*.
fn parse_removal_target(text: &str) -> Result<(Var, Selector), String> {
    let t = Target::parse(text)?;
    Ok((t.var, t.selector))
}

fn parse_ctl(text: &str) -> Result<Ctl, String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("ctl `{text}` has no value"))?;
    let value = value.trim();
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "ruleengine" => Ctl::RuleEngine(
            EngineMode::parse(value).ok_or_else(|| format!("bad rule engine mode `{value}`"))?,
        ),
        "ruleremovebyid" => Ctl::RemoveRules(RuleSelector::Ids(IdRange::parse_list(value)?)),
        "ruleremovebytag" => Ctl::RemoveRules(RuleSelector::Tag(value.to_string())),
        "ruleremovetargetbyid" | "ruleremovetargetbytag" => {
            let (rules, target) = value
                .split_once(';')
                .ok_or_else(|| format!("ctl `{text}` needs `rule;TARGET`"))?;
            let selector = if name.trim().eq_ignore_ascii_case("ruleremovetargetbyid") {
                RuleSelector::Ids(IdRange::parse_list(rules)?)
            } else {
                RuleSelector::Tag(rules.to_string())
            };
            let (var, member) = parse_removal_target(target)?;
            Ctl::RemoveTarget(selector, var, member)
        }
        "requestbodyprocessor" => {
            Ctl::RequestBodyProcessor(match value.to_ascii_uppercase().as_str() {
                "URLENCODED" => BodyProcessor::UrlEncoded,
                "MULTIPART" => BodyProcessor::Multipart,
                "JSON" => BodyProcessor::Json,
                "XML" => BodyProcessor::Xml,
                _ => return Err(format!("unsupported request body processor `{value}`")),
            })
        }
        "requestbodyaccess" => Ctl::RequestBodyAccess(on_off(value)?),
        "forcerequestbodyvariable" => {
            on_off(value)?;
            Ctl::NoEffect
        }
        "auditengine" | "auditlogparts" => Ctl::NoEffect,
        other => return Err(format!("unsupported ctl `{other}`")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quoted_values_with_commas() {
        let parts = split("id:1, msg:'a, b', setvar:'tx.x=+%{tx.y}',t:none ,pass").unwrap();
        assert_eq!(parts[1], ("msg".into(), Some("a, b".into())));
        assert_eq!(parts[2].1.as_deref(), Some("tx.x=+%{tx.y}"));
        assert_eq!(parts[4], ("pass".into(), None));
    }

    #[test]
    fn parses_setvar_forms_and_ctl() {
        let a = Actions::parse(
            "id:5,phase:request,setvar:tx.a=+1,setvar:'!tx.b',setvar:tx.c=-%{tx.d},\
             ctl:ruleRemoveTargetById=942100;ARGS:pwd,severity:CRITICAL",
        )
        .unwrap();
        assert_eq!((a.id, a.phase, a.severity), (Some(5), Some(2), Some(2)));
        let ops: Vec<SetOp> = a
            .runtime
            .iter()
            .filter_map(|r| match r {
                Runtime::SetVar(s) => Some(s.op),
                _ => None,
            })
            .collect();
        assert_eq!(ops, vec![SetOp::Add, SetOp::Delete, SetOp::Subtract]);
        assert!(matches!(
            a.runtime[3],
            Runtime::Ctl(Ctl::RemoveTarget(
                RuleSelector::Ids(_),
                Var::Args,
                Selector::Key(_)
            ))
        ));
    }

    #[test]
    fn unknown_actions_are_errors() {
        assert!(
            Actions::parse("id:1,frobnicate")
                .unwrap_err()
                .contains("frobnicate")
        );
        assert!(Actions::parse("id:1,phase:9").is_err());
    }
}
