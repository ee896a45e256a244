//! The compiled, shareable rule set.

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use crate::error::LoadError;
use crate::parse::Loader;
use crate::rule::{Entry, Rule, Settings};
use crate::transaction::Transaction;
use crate::transform::Transform;

/// Rules compiled once and shared by every transaction (it is `Send + Sync`; wrap it in
/// an `Arc` to share across threads or to swap it on reload).
#[derive(Debug)]
pub struct RuleSet {
    pub(crate) settings: Settings,
    /// Entries per phase (index 0 is phase 1); markers are in every phase.
    pub(crate) phases: [Vec<Entry>; 5],
}

impl RuleSet {
    /// Loads rule files in order, as if each were `Include`d by one configuration.
    pub fn load(files: &[impl AsRef<Path>]) -> Result<RuleSet, LoadError> {
        let mut loader = Loader::default();
        let mut last = Path::new("");
        for file in files {
            last = file.as_ref();
            loader.load_file(last)?;
        }
        Self::compile(loader, last)
    }

    /// Loads rules from text; `origin` names the text in errors and anchors relative
    /// paths such as `@pmFromFile` data files and `Include`s.
    pub fn from_text(text: &str, origin: &Path) -> Result<RuleSet, LoadError> {
        let mut loader = Loader::default();
        loader.load_text(text, origin)?;
        Self::compile(loader, origin)
    }

    /// Starts a transaction: one request and its response.
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction::new(Rules::Borrowed(self))
    }

    /// Starts a transaction that holds the rule set itself, for callers whose transaction
    /// must outlive any borrow (one kept in a streaming body, or across tasks).
    pub fn owned_transaction(self: &Arc<Self>) -> Transaction<'static> {
        Transaction::new(Rules::Shared(Arc::clone(self)))
    }

    /// The arguments a request may have (SecArgumentsLimit), so that a caller reading
    /// arguments itself (such as a gateway reading protobuf fields for
    /// [`Transaction::process_message`]) can stop reading where the engine stops.
    pub fn arguments_limit(&self) -> usize {
        self.settings.arguments_limit
    }

    /// How many rules (chains counted once) the set holds.
    pub fn rule_count(&self) -> usize {
        self.phases
            .iter()
            .flatten()
            .filter(|e| matches!(e, Entry::Rule(_)))
            .count()
    }

    fn compile(loader: Loader, origin: &Path) -> Result<RuleSet, LoadError> {
        let (settings, entries) = loader.finish(origin)?;
        let mut phases: [Vec<Entry>; 5] = Default::default();
        for entry in entries {
            match entry {
                Entry::Rule(rule) => {
                    let phase = usize::from(rule.phase.clamp(1, 5)) - 1;
                    phases[phase].push(Entry::Rule(rule));
                }
                Entry::Marker(name) => {
                    for list in &mut phases {
                        list.push(Entry::Marker(name.clone()));
                    }
                }
            }
        }
        let mut chains = Vec::new();
        for list in &mut phases {
            resolve_skip_after(list);
            for entry in list.iter_mut() {
                if let Entry::Rule(rule) = entry {
                    number_transform_chains(rule, &mut chains);
                }
            }
        }
        Ok(RuleSet { settings, phases })
    }
}

/// The rule set a transaction runs: borrowed, or shared so the transaction owns it.
#[derive(Debug, Clone)]
pub(crate) enum Rules<'r> {
    Borrowed(&'r RuleSet),
    Shared(Arc<RuleSet>),
}

impl Deref for Rules<'_> {
    type Target = RuleSet;

    fn deref(&self) -> &RuleSet {
        match self {
            Rules::Borrowed(rules) => rules,
            Rules::Shared(rules) => rules,
        }
    }
}

/// Gives each distinct transformation list an id, for the transaction's result cache.
fn number_transform_chains(rule: &mut Rule, chains: &mut Vec<Vec<Transform>>) {
    let id = match chains.iter().position(|c| *c == rule.transforms) {
        Some(i) => i,
        None => {
            chains.push(rule.transforms.clone());
            chains.len() - 1
        }
    };
    rule.transform_chain = u32::try_from(id).unwrap_or(u32::MAX);
    if let Some(next) = &mut rule.chained {
        number_transform_chains(next, chains);
    }
}

/// Points each `skipAfter` at its marker's position; a missing marker skips the rest
/// of the phase, as ModSecurity does.
fn resolve_skip_after(list: &mut [Entry]) {
    let len = list.len();
    let markers: Vec<(usize, String)> = list
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Entry::Marker(m) => Some((i, m.clone())),
            Entry::Rule(_) => None,
        })
        .collect();
    for (i, entry) in list.iter_mut().enumerate() {
        if let Entry::Rule(rule) = entry
            && let Some(target) = &rule.actions.skip_after
        {
            let found = markers.iter().find(|(at, m)| *at > i && m == target);
            rule.skip_after_index = Some(found.map_or(len, |(at, _)| *at));
        }
    }
}
