//! `@pm` and `@pmFromFile`: case-insensitive multi-phrase search with one Aho-Corasick
//! automaton, however many phrases a rule lists.

use std::path::Path;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// A compiled set of phrases.
#[derive(Debug)]
pub(super) struct PhraseSet {
    automaton: AhoCorasick,
    phrases: Vec<Vec<u8>>,
}

impl PhraseSet {
    /// Phrases from an `@pm` parameter: separated by whitespace, with `|hex bytes|` sequences
    /// and `\` escaping `:`, `;`, `\` or `"`; quotes around the whole parameter are dropped.
    pub(super) fn from_param(param: &str) -> Result<PhraseSet, String> {
        let content = unescape_pm(param);
        let phrases = content
            .split(|b| b.is_ascii_whitespace())
            .filter(|p| !p.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        PhraseSet::new(phrases)
    }

    /// Phrases from data files, one per line; blank lines and lines starting with `#` (after
    /// optional whitespace) are skipped. `param` lists one or more files separated by spaces,
    /// relative to the directory of the rule file.
    pub(super) fn from_files(param: &str, rules_dir: &Path) -> Result<PhraseSet, String> {
        let mut phrases = Vec::new();
        for name in param.split_ascii_whitespace() {
            if name.starts_with("http://") || name.starts_with("https://") {
                return Err(format!(
                    "phrase file {name}: downloading rule data is not supported"
                ));
            }
            let path = rules_dir.join(name);
            let data = std::fs::read(&path)
                .map_err(|e| format!("cannot read phrase file {}: {e}", path.display()))?;
            for line in data.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if is_comment_or_blank(line) {
                    continue;
                }
                phrases.push(line.to_vec());
            }
        }
        PhraseSet::new(phrases)
    }

    fn new(phrases: Vec<Vec<u8>>) -> Result<PhraseSet, String> {
        if phrases.is_empty() {
            return Err("no phrases to match".to_owned());
        }
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&phrases)
            .map_err(|e| format!("cannot build the phrase matcher: {e}"))?;
        Ok(PhraseSet { automaton, phrases })
    }

    /// The first phrase found in `input`, as written in the rule or file.
    pub(super) fn find(&self, input: &[u8]) -> Option<&[u8]> {
        let m = self.automaton.find(input)?;
        self.phrases.get(m.pattern().as_usize()).map(Vec::as_slice)
    }
}

fn is_comment_or_blank(line: &[u8]) -> bool {
    match line.iter().find(|b| !b.is_ascii_whitespace()) {
        None => true,
        Some(&b) => b == b'#',
    }
}

/// Resolves `@pm`'s `|41 42|` hex sequences and `\` escapes (of `:`, `;`, `\` and `"`), after
/// dropping quotes around the whole parameter. Like ModSecurity, a parameter these rules do not
/// fit (a bad hex digit or escape) is taken literally.
fn unescape_pm(param: &str) -> Vec<u8> {
    let raw = param.as_bytes();
    let start = raw
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(raw.len());
    let mut p = &raw[start..];
    if p.len() >= 2 && p[0] == b'"' && p[p.len() - 1] == b'"' {
        p = &p[1..p.len() - 1];
    }
    if p.is_empty() {
        return raw.to_vec();
    }
    let mut out = Vec::with_capacity(p.len());
    let mut in_hex = false;
    let mut escaped = false;
    let mut nibble: Option<u8> = None;
    for &b in p {
        if b == b'|' {
            in_hex = !in_hex;
        } else if !escaped && b == b'\\' {
            escaped = true;
        } else if in_hex {
            let Some(v) = (b as char).to_digit(16) else {
                return raw.to_vec();
            };
            match nibble.take() {
                Some(hi) => out.push((hi << 4) | v as u8),
                None => nibble = Some(v as u8),
            }
        } else if escaped {
            if !matches!(b, b':' | b';' | b'\\' | b'"') {
                return raw.to_vec();
            }
            out.push(b);
            escaped = false;
        } else {
            out.push(b);
        }
    }
    out
}
