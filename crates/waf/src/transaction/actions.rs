//! Macro expansion and the actions that run for every match.

use std::io::Write as _;

use super::Transaction;
use super::members::Members;
use crate::action::{Ctl, Runtime, SetOp, SetVar};
use crate::macros::{MacroText, Part};
use crate::rule::Rule;
use crate::variable::{Selector, Target, Var};

impl Transaction<'_> {
    pub(super) fn expand_text(&self, m: &MacroText, rule: &Rule) -> String {
        match m.literal() {
            Some(s) => s.to_string(),
            None => String::from_utf8_lossy(&self.expand(m, Some(rule))).into_owned(),
        }
    }

    /// Expands macros to bytes; unknown members expand to nothing.
    pub(super) fn expand(&self, m: &MacroText, rule: Option<&Rule>) -> Vec<u8> {
        let mut out = Vec::new();
        self.expand_into(m, rule, &mut out);
        out
    }

    /// Appends the expansion to `out`.
    pub(super) fn expand_into(&self, m: &MacroText, rule: Option<&Rule>, out: &mut Vec<u8>) {
        for part in m.parts() {
            match part {
                Part::Literal(s) => out.extend_from_slice(s.as_bytes()),
                Part::Var(Var::Rule, Some(key)) => {
                    let Some(rule) = rule else { continue };
                    let is = |name: &str| key.eq_ignore_ascii_case(name);
                    if is("id") {
                        let _ = write!(out, "{}", rule.id);
                    } else if is("msg") {
                        if let Some(msg) = &rule.actions.msg {
                            self.expand_into(msg, None, out);
                        }
                    } else if is("logdata") {
                        if let Some(l) = &rule.actions.logdata {
                            self.expand_into(l, None, out);
                        }
                    } else if is("severity") {
                        if let Some(s) = rule.actions.severity {
                            let _ = write!(out, "{s}");
                        }
                    } else if is("phase") {
                        let _ = write!(out, "{}", rule.phase);
                    }
                }
                Part::Var(var, key) => {
                    if !var.is_collection() {
                        if let Some(v) = self.scalar(*var) {
                            out.extend_from_slice(&v);
                        }
                        continue;
                    }
                    if let (Var::Tx, Some(k)) = (var, key) {
                        out.extend_from_slice(self.tx.get(k).unwrap_or_default());
                        continue;
                    }
                    let selector = match key {
                        Some(k) => Selector::Key(k.clone()),
                        None => Selector::All,
                    };
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
    }

    pub(super) fn run_action(&mut self, action: &Runtime, rule: &Rule) {
        match action {
            Runtime::SetVar(s) => self.set_var(s, rule),
            Runtime::SetEnv(k, v) => {
                let k = String::from_utf8_lossy(&self.expand(k, Some(rule))).into_owned();
                let v = self.expand(v, Some(rule));
                self.env.set(&k, &v);
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

    /// Runs a `setvar`. CRS runs hundreds per request, nearly all with a literal name and
    /// a literal or single-macro value, so those take no allocation.
    pub(super) fn set_var(&mut self, s: &SetVar, rule: &Rule) {
        let expanded_name;
        let name = match s.name.literal() {
            Some(name) => name,
            None => {
                expanded_name =
                    String::from_utf8_lossy(&self.expand(&s.name, Some(rule))).into_owned();
                &expanded_name
            }
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let value: &[u8] = match s.value.literal() {
            Some(value) => value.as_bytes(),
            None => {
                self.expand_into(&s.value, Some(rule), &mut scratch);
                &scratch
            }
        };
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
            SetOp::Assign => members.set_with(name, s.literal_name.as_ref(), |v| {
                v.extend_from_slice(value)
            }),
            SetOp::Delete => members.remove(name),
            SetOp::Add | SetOp::Subtract => {
                let current = members.get(name).map_or(0, parse_number);
                let delta = parse_number(value);
                let result = if s.op == SetOp::Add {
                    current.saturating_add(delta)
                } else {
                    current.saturating_sub(delta)
                };
                members.set_with(name, s.literal_name.as_ref(), |v| {
                    // Writing to a Vec cannot fail.
                    let _ = write!(v, "{result}");
                });
            }
        }
        self.scratch = scratch;
    }
}

/// Numbers in TX are decimal integers; anything else counts as 0, as in ModSecurity.
fn parse_number(v: &[u8]) -> i64 {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}
