//! Turns SecLang files into a compiled rule set: directives, includes, defaults, chains
//! and the load-time rule edits (SecRuleRemove*, SecRuleUpdate*).

mod lexer;

use std::path::{Path, PathBuf};

use crate::action::{Actions, Disruptive, EngineMode, IdRange};
use crate::error::LoadError;
use crate::operator::Operator;
use crate::rule::{Entry, LimitAction, Rule, Settings};
use crate::variable::Target;

const MAX_INCLUDE_DEPTH: usize = 16;

/// Builds rules directive by directive, as ModSecurity does: each directive sees the
/// defaults and rules that came before it.
#[derive(Default)]
pub(crate) struct Loader {
    pub settings: Settings,
    pub entries: Vec<Entry>,
    defaults: [Option<Actions>; 6],
    /// Rules of a chain still waiting for their last link.
    chain: Vec<Rule>,
    depth: usize,
}

/// Where a directive came from, for errors.
struct Origin<'a> {
    file: &'a Path,
    line: usize,
}

impl Origin<'_> {
    fn error(&self, message: impl Into<String>) -> LoadError {
        LoadError {
            file: self.file.to_path_buf(),
            line: self.line,
            message: message.into(),
        }
    }
}

impl Loader {
    /// Loads one rule file by path.
    pub(crate) fn load_file(&mut self, path: &Path) -> Result<(), LoadError> {
        let text = std::fs::read_to_string(path).map_err(|e| LoadError {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read rule file: {e}"),
        })?;
        self.load_text(&text, path)
    }

    /// Loads rule text; `origin` names it in errors and anchors relative paths.
    pub(crate) fn load_text(&mut self, text: &str, origin: &Path) -> Result<(), LoadError> {
        let directives = lexer::directives(text).map_err(|(line, message)| LoadError {
            file: origin.to_path_buf(),
            line,
            message,
        })?;
        for d in directives {
            let at = Origin {
                file: origin,
                line: d.line,
            };
            self.directive(&d.name, &d.args, &at)?;
        }
        Ok(())
    }

    /// Checks nothing is left half-done and returns the rule list.
    pub(crate) fn finish(self, origin: &Path) -> Result<(Settings, Vec<Entry>), LoadError> {
        if let Some(last) = self.chain.last() {
            return Err(LoadError {
                file: origin.to_path_buf(),
                line: 0,
                message: format!("rule {} ends with `chain` but no rule follows", last.id),
            });
        }
        Ok((self.settings, self.entries))
    }

    fn directive(&mut self, name: &str, args: &[String], at: &Origin) -> Result<(), LoadError> {
        let arg = |i: usize| -> Result<&str, LoadError> {
            args.get(i)
                .map(String::as_str)
                .ok_or_else(|| at.error(format!("{name} needs more arguments")))
        };
        let on_off = |v: &str| match v.to_ascii_lowercase().as_str() {
            "on" => Ok(true),
            "off" => Ok(false),
            _ => Err(at.error(format!("{name} expects On or Off, got `{v}`"))),
        };
        let number = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| at.error(format!("{name} expects a number, got `{v}`")))
        };
        // A limit of 0 would refuse every request that has what it counts.
        let positive = |v: &str| match number(v)? {
            0 => Err(at.error(format!("{name} must be at least 1"))),
            n => Ok(n),
        };
        let limit_action = |v: &str| match v.to_ascii_lowercase().as_str() {
            "reject" => Ok(LimitAction::Reject),
            "processpartial" => Ok(LimitAction::ProcessPartial),
            _ => Err(at.error(format!(
                "{name} expects Reject or ProcessPartial, got `{v}`"
            ))),
        };
        if !self.chain.is_empty() && !name.eq_ignore_ascii_case("SecRule") {
            return Err(at.error(format!("a chained rule must follow, found {name}")));
        }
        if let Some(max) = max_args(name)
            && args.len() > max
        {
            return Err(at.error(format!(
                "{name} takes at most {max} argument(s), got {}",
                args.len()
            )));
        }
        match name.to_ascii_lowercase().as_str() {
            "secruleengine" => {
                self.settings.engine = EngineMode::parse(arg(0)?)
                    .ok_or_else(|| at.error(format!("bad SecRuleEngine mode `{}`", args[0])))?;
            }
            "secrequestbodyaccess" => self.settings.request_body_access = on_off(arg(0)?)?,
            "secresponsebodyaccess" => self.settings.response_body_access = on_off(arg(0)?)?,
            "secrequestbodylimit" => self.settings.request_body_limit = number(arg(0)?)?,
            "secrequestbodynofileslimit" => {
                self.settings.request_body_no_files_limit = number(arg(0)?)?
            }
            "secrequestbodylimitaction" => {
                self.settings.request_body_limit_action = limit_action(arg(0)?)?
            }
            "secresponsebodylimit" => self.settings.response_body_limit = number(arg(0)?)?,
            "secresponsebodylimitaction" => {
                self.settings.response_body_limit_action = limit_action(arg(0)?)?
            }
            "secresponsebodymimetype" => {
                self.settings.response_body_mime_types = args
                    .iter()
                    .flat_map(|a| a.split_whitespace())
                    .map(str::to_ascii_lowercase)
                    .collect();
            }
            "secargumentslimit" => self.settings.arguments_limit = positive(arg(0)?)?,
            "secrequestbodyjsondepthlimit" => self.settings.json_depth_limit = positive(arg(0)?)?,
            "secrequestbodyxmldepthlimit" => self.settings.xml_depth_limit = positive(arg(0)?)?,
            "secargumentseparator" => {
                let v = arg(0)?;
                if v.len() != 1 {
                    return Err(at.error(format!(
                        "SecArgumentSeparator must be one character, got `{v}`"
                    )));
                }
                self.settings.argument_separator = v.as_bytes()[0];
            }
            // Accepted and without effect: no persistent collections, no audit or debug
            // log, no temporary files.
            "seccollectiontimeout"
            | "seccomponentsignature"
            | "secdebuglog"
            | "secdebugloglevel"
            | "secauditengine"
            | "secauditlog"
            | "secauditlog2"
            | "secauditlogparts"
            | "secauditlogrelevantstatus"
            | "secauditlogtype"
            | "secauditlogformat"
            | "secauditlogstoragedir"
            | "secauditlogdirmode"
            | "secauditlogfilemode"
            | "sectmpdir"
            | "secdatadir"
            | "secuploaddir"
            | "secuploadkeepfiles"
            | "secuploadfilemode"
            | "secpcrematchlimit"
            | "secpcrematchlimitrecursion"
            | "secunicodemapfile"
            | "secstatusengine"
            | "secrequestbodyinmemorylimit"
            | "secxmlexternalentity"
            | "secuploadfilelimit"
            | "sechttpblkey" => {}
            "secdefaultaction" => {
                let actions = Actions::parse(arg(0)?).map_err(|e| at.error(e))?;
                let phase = actions.phase.unwrap_or(2);
                if actions.disruptive.is_none() {
                    return Err(at.error("SecDefaultAction needs a disruptive action"));
                }
                self.defaults[usize::from(phase)] = Some(actions);
            }
            "secaction" => {
                let actions = Actions::parse(arg(0)?).map_err(|e| at.error(e))?;
                let rule = self.build(Vec::new(), None, actions, at)?;
                self.push(rule, at)?;
            }
            "secrule" => {
                let targets = Target::parse_list(arg(0)?).map_err(|e| at.error(e))?;
                let operator = self.operator(arg(1)?, at)?;
                let actions = Actions::parse(args.get(2).map(String::as_str).unwrap_or(""))
                    .map_err(|e| at.error(e))?;
                let rule = self.build(targets, Some(operator), actions, at)?;
                self.push(rule, at)?;
            }
            "secmarker" => self.entries.push(Entry::Marker(arg(0)?.to_string())),
            "secruleremovebyid" => {
                let ranges = IdRange::parse_list(&args.join(" ")).map_err(|e| at.error(e))?;
                self.entries.retain(|e| match e {
                    Entry::Rule(r) => !ranges.iter().any(|range| range.contains(r.id)),
                    Entry::Marker(_) => true,
                });
            }
            "secruleremovebytag" => {
                let tag = arg(0)?;
                self.entries.retain(|e| match e {
                    Entry::Rule(r) => !r.actions.tags.iter().any(|t| t == tag),
                    Entry::Marker(_) => true,
                });
            }
            "secruleremovebymsg" => {
                let msg = arg(0)?;
                self.entries.retain(|e| match e {
                    Entry::Rule(r) => r.actions.msg.as_ref().and_then(|m| m.literal()) != Some(msg),
                    Entry::Marker(_) => true,
                });
            }
            "secruleupdatetargetbyid" | "secruleupdatetargetbytag" | "secruleupdatetargetbymsg" => {
                let key = arg(0)?;
                let targets = Target::parse_list(arg(1)?).map_err(|e| at.error(e))?;
                let by = name.to_ascii_lowercase();
                let ranges = if by.ends_with("byid") {
                    IdRange::parse_list(key).map_err(|e| at.error(e))?
                } else {
                    Vec::new()
                };
                for rule in self.rules_mut() {
                    let hit = if by.ends_with("byid") {
                        ranges.iter().any(|r| r.contains(rule.id))
                    } else if by.ends_with("bytag") {
                        rule.actions.tags.iter().any(|t| t == key)
                    } else {
                        rule.actions.msg.as_ref().and_then(|m| m.literal()) == Some(key)
                    };
                    if hit {
                        for t in &targets {
                            if t.exclude {
                                rule.exclusions.push(t.clone());
                            } else {
                                rule.targets.push(t.clone());
                            }
                        }
                    }
                }
            }
            "secruleupdateactionbyid" => {
                let ranges = IdRange::parse_list(arg(0)?).map_err(|e| at.error(e))?;
                let update = Actions::parse(arg(1)?).map_err(|e| at.error(e))?;
                if update.chain || update.id.is_some() || update.phase.is_some() {
                    return Err(
                        at.error("SecRuleUpdateActionById cannot change id, phase or chain")
                    );
                }
                for rule in self.rules_mut() {
                    if ranges.iter().any(|r| r.contains(rule.id)) {
                        update_actions(rule, &update);
                    }
                }
            }
            "include" => self.include(arg(0)?, at)?,
            other => return Err(at.error(format!("unsupported directive `{other}`"))),
        }
        Ok(())
    }

    fn rules_mut(&mut self) -> impl Iterator<Item = &mut Rule> {
        self.entries.iter_mut().filter_map(|e| match e {
            Entry::Rule(r) => Some(&mut **r),
            Entry::Marker(_) => None,
        })
    }

    fn operator(&self, text: &str, at: &Origin) -> Result<Operator, LoadError> {
        let text = text.trim_start();
        let (negated, text) = match text.strip_prefix('!') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, text),
        };
        let (name, param) = match text.strip_prefix('@') {
            Some(rest) => {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                let param = rest[end..]
                    .strip_prefix(|c: char| c.is_whitespace())
                    .unwrap_or("");
                (&rest[..end], param)
            }
            None => ("rx", text),
        };
        let dir = at.file.parent().unwrap_or(Path::new("."));
        Operator::parse(name, param, negated, dir)
            .map_err(|e| at.error(format!("operator @{name}: {e}")))
    }

    /// Applies the phase's defaults and checks what a rule must have.
    fn build(
        &self,
        targets: Vec<Target>,
        operator: Option<Operator>,
        actions: Actions,
        at: &Origin,
    ) -> Result<Rule, LoadError> {
        let head = self.chain.first();
        let phase = match head {
            Some(h) => {
                if actions.phase.is_some() || actions.id.is_some() {
                    return Err(at.error("a chained rule cannot set id or phase"));
                }
                if actions.disruptive.is_some_and(|d| d != Disruptive::Pass) {
                    return Err(at.error("only the first rule of a chain can be disruptive"));
                }
                h.phase
            }
            None => actions.phase.unwrap_or(2),
        };
        let id = match head {
            Some(h) => h.id,
            None => actions.id.ok_or_else(|| at.error("rule has no id"))?,
        };
        let defaults = self.defaults[usize::from(phase)].as_ref();
        let default_disruptive = defaults
            .and_then(|d| d.disruptive)
            .unwrap_or(Disruptive::Pass);
        let disruptive = match actions.disruptive {
            None => default_disruptive,
            Some(Disruptive::Block) => match default_disruptive {
                Disruptive::Block => Disruptive::Deny,
                other => other,
            },
            Some(d) => d,
        };
        let mut transforms = Vec::new();
        if let Some(d) = defaults.filter(|_| !actions.transforms_reset) {
            transforms.extend(d.transforms.iter().cloned());
        }
        transforms.extend(actions.transforms.iter().cloned());
        let log = actions.log.or(defaults.and_then(|d| d.log)).unwrap_or(true);
        let status = actions.status.or(defaults.and_then(|d| d.status));
        let (exclusions, targets): (Vec<Target>, Vec<Target>) =
            targets.into_iter().partition(|t| t.exclude);
        Ok(Rule {
            id,
            phase,
            targets,
            exclusions,
            operator,
            transforms,
            transform_chain: 0,
            disruptive,
            status,
            log,
            chained: None,
            skip_after_index: None,
            actions,
        })
    }

    /// Adds a rule, folding chains into their first rule.
    fn push(&mut self, rule: Rule, at: &Origin) -> Result<(), LoadError> {
        let continues = rule.actions.chain;
        self.chain.push(rule);
        if continues {
            return Ok(());
        }
        let mut rule = self.chain.pop().ok_or_else(|| at.error("empty chain"))?;
        while let Some(mut parent) = self.chain.pop() {
            parent.chained = Some(Box::new(rule));
            rule = parent;
        }
        if self
            .entries
            .iter()
            .any(|e| matches!(e, Entry::Rule(r) if r.id == rule.id))
        {
            return Err(at.error(format!("duplicate rule id {}", rule.id)));
        }
        self.entries.push(Entry::Rule(Box::new(rule)));
        Ok(())
    }

    fn include(&mut self, pattern: &str, at: &Origin) -> Result<(), LoadError> {
        if self.depth >= MAX_INCLUDE_DEPTH {
            return Err(at.error("includes nest too deeply"));
        }
        let base = at.file.parent().unwrap_or(Path::new("."));
        let full = base.join(pattern);
        let files = expand_glob(&full).map_err(|e| at.error(e))?;
        if files.is_empty() {
            return Err(at.error(format!("Include `{pattern}` matches no file")));
        }
        self.depth += 1;
        for file in files {
            self.load_file(&file)?;
        }
        self.depth -= 1;
        Ok(())
    }
}

/// How many arguments a directive takes at most (`None`: any number). Extra arguments
/// are refused rather than ignored: they usually mean a quoting mistake.
fn max_args(name: &str) -> Option<usize> {
    match name.to_ascii_lowercase().as_str() {
        "secrule" => Some(3),
        "secruleupdatetargetbyid" | "secruleupdatetargetbytag" | "secruleupdatetargetbymsg" => {
            Some(2)
        }
        "secruleupdateactionbyid" => Some(2),
        "secresponsebodymimetype" | "secruleremovebyid" => None,
        n if n.starts_with("secaudit") || n.starts_with("secdebug") => None,
        _ => Some(1),
    }
}

/// `SecRuleUpdateActionById`: the new actions replace the old ones of the same kind.
fn update_actions(rule: &mut Rule, update: &Actions) {
    if let Some(d) = update.disruptive {
        rule.disruptive = match d {
            Disruptive::Block => rule.disruptive,
            other => other,
        };
    }
    if update.msg.is_some() {
        rule.actions.msg = update.msg.clone();
    }
    if update.logdata.is_some() {
        rule.actions.logdata = update.logdata.clone();
    }
    if update.severity.is_some() {
        rule.actions.severity = update.severity;
    }
    if update.status.is_some() {
        rule.status = update.status;
    }
    if let Some(log) = update.log {
        rule.log = log;
    }
    rule.actions.tags.extend(update.tags.iter().cloned());
    if update.transforms_reset {
        rule.transforms.clear();
    }
    rule.transforms.extend(update.transforms.iter().cloned());
    rule.actions.runtime.extend(update.runtime.iter().cloned());
}

/// Expands `*` and `?` in the last path component; other components are literal.
fn expand_glob(path: &Path) -> Result<Vec<PathBuf>, String> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !name.contains(['*', '?']) {
        return Ok(if path.exists() {
            vec![path.to_path_buf()]
        } else {
            Vec::new()
        });
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let read = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut out: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| wildcard(name.as_bytes(), n.as_bytes()))
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    Ok(out)
}

/// Whether `text` matches a shell-style pattern of `*` (any run) and `?` (any one byte).
pub fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard(&pattern[1..], text) || (!text.is_empty() && wildcard(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => wildcard(&pattern[1..], &text[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_a_shell() {
        assert!(wildcard(b"REQUEST-*.conf", b"REQUEST-901-INIT.conf"));
        assert!(!wildcard(b"REQUEST-*.conf", b"REQUEST-901.conf.example"));
        assert!(wildcard(b"a?c", b"abc"));
    }
}
