//! SecLang operators (`@rx`, `@pm`, `@detectSQLi`, ...): the test a rule applies to each
//! transformed variable. Everything that can be prepared from the rule text (regexes, phrase
//! automata, IP sets, byte sets) is built once at load time; parameters holding `%{macros}`
//! are resolved per evaluation through the caller's expander.

mod injection;
mod ip;
mod pattern;
mod rx;
mod validate;

use std::path::Path;

use self::ip::IpSet;
use self::pattern::PhraseSet;
use self::rx::Rx;
use self::validate::ByteSet;

/// A parsed operator with its parameter prepared for fast evaluation.
#[derive(Debug)]
pub struct Operator {
    negated: bool,
    /// The parameter as written, which is what `expand` resolves for dynamic parameters.
    param: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Rx(Rx),
    Pm(PhraseSet),
    Text(TextOp, Param<Vec<u8>>),
    Number(NumberOp, Param<i64>),
    ValidateByteRange(ByteSet),
    ValidateUrlEncoding,
    ValidateUtf8Encoding,
    IpMatch(IpSet),
    DetectSqli,
    DetectXss,
    UnconditionalMatch,
    NoMatch,
}

/// A parameter known at load time, or one to expand from its raw text at each evaluation.
#[derive(Debug)]
enum Param<T> {
    Static(T),
    Dynamic,
}

/// Operators that compare the input with a string parameter.
#[derive(Debug, Clone, Copy)]
enum TextOp {
    StrEq,
    StrMatch,
    Contains,
    ContainsWord,
    BeginsWith,
    EndsWith,
    Within,
}

/// Operators that compare the input with an integer parameter.
#[derive(Debug, Clone, Copy)]
enum NumberOp {
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
}

/// Operators ModSecurity has that this engine deliberately lacks, with the reason given to
/// whoever loads a rule using one.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("rbl", "it needs DNS lookups on the request path"),
    ("geoLookup", "no GeoIP database is configured"),
    (
        "gsbLookup",
        "Google Safe Browsing lookups are not available",
    ),
    ("inspectFile", "it runs external programs"),
    ("fuzzyHash", "no fuzzy hashing support"),
    ("verifyCC", "credit card checks are not implemented"),
    ("verifyCPF", "CPF checks are not implemented"),
    ("verifySSN", "SSN checks are not implemented"),
    ("verifySVNR", "SVNR checks are not implemented"),
    ("validateDTD", "XML validation is not available"),
    ("validateSchema", "XML validation is not available"),
    ("validateHash", "hash validation is not available"),
    ("rsub", "substitution operators are not available"),
    (
        "rxGlobal",
        "capturing every match is not implemented; @rx matches the same inputs",
    ),
];

impl Operator {
    /// Parses an operator and prepares its parameter. `name` is given without `@` (`rx` when a
    /// rule names no operator); relative file names are resolved against `rules_dir`, the
    /// directory of the rule file. Unknown or unsupported operators are errors, so a rule set is
    /// never silently weakened.
    pub fn parse(
        name: &str,
        param: &str,
        negated: bool,
        rules_dir: &Path,
    ) -> Result<Operator, String> {
        let dynamic = param.contains("%{");
        let text = |op| {
            let p = if dynamic {
                Param::Dynamic
            } else {
                Param::Static(param.as_bytes().to_vec())
            };
            Kind::Text(op, p)
        };
        let number = |op| {
            let p = if dynamic {
                Param::Dynamic
            } else {
                Param::Static(parse_int(param.as_bytes()))
            };
            Kind::Number(op, p)
        };
        let kind = match name.to_ascii_lowercase().as_str() {
            "rx" => Kind::Rx(Rx::new(param)?),
            "pm" => Kind::Pm(PhraseSet::from_param(param)?),
            "pmfromfile" | "pmf" => Kind::Pm(PhraseSet::from_files(param, rules_dir)?),
            "streq" => text(TextOp::StrEq),
            "strmatch" => text(TextOp::StrMatch),
            "contains" => text(TextOp::Contains),
            "containsword" => text(TextOp::ContainsWord),
            "beginswith" => text(TextOp::BeginsWith),
            "endswith" => text(TextOp::EndsWith),
            "within" => text(TextOp::Within),
            "eq" => number(NumberOp::Eq),
            "ge" => number(NumberOp::Ge),
            "gt" => number(NumberOp::Gt),
            "le" => number(NumberOp::Le),
            "lt" => number(NumberOp::Lt),
            "validatebyterange" => Kind::ValidateByteRange(ByteSet::parse(param)?),
            "validateurlencoding" => Kind::ValidateUrlEncoding,
            "validateutf8encoding" => Kind::ValidateUtf8Encoding,
            "ipmatch" => Kind::IpMatch(IpSet::parse_list(param)?),
            "ipmatchfromfile" | "ipmatchf" => Kind::IpMatch(IpSet::from_file(param, rules_dir)?),
            "detectsqli" => Kind::DetectSqli,
            "detectxss" => Kind::DetectXss,
            "unconditionalmatch" => Kind::UnconditionalMatch,
            "nomatch" => Kind::NoMatch,
            other => {
                return Err(
                    match UNSUPPORTED
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(other))
                    {
                        Some((n, why)) => format!("operator @{n} is not supported: {why}"),
                        None => format!("unknown operator @{name}"),
                    },
                );
            }
        };
        Ok(Operator {
            negated,
            param: param.to_owned(),
            kind,
        })
    }

    /// Whether the parameter holds `%{...}` macros the caller must expand per evaluation.
    pub fn needs_expansion(&self) -> bool {
        match &self.kind {
            Kind::Rx(rx) => rx.is_dynamic(),
            Kind::Text(_, p) => matches!(p, Param::Dynamic),
            Kind::Number(_, p) => matches!(p, Param::Dynamic),
            _ => false,
        }
    }

    /// Tests `input`, returning whether the rule matches (negation applied). When the parameter
    /// needs expansion, `expand` turns the raw parameter into its value. With `want_captures`,
    /// `captures` receives what ModSecurity would put in TX.0 and up: the regex groups 0..=9
    /// for `@rx`, otherwise the matched text or fingerprint. A negated operator captures nothing.
    pub fn evaluate(
        &self,
        input: &[u8],
        expand: &dyn Fn(&str) -> String,
        want_captures: bool,
        captures: &mut Vec<Vec<u8>>,
    ) -> bool {
        let want = want_captures && !self.negated;
        let matched = match &self.kind {
            Kind::Rx(rx) => rx.matches(input, &self.param, expand, want.then_some(&mut *captures)),
            Kind::Pm(set) => match set.find(input) {
                Some(phrase) => {
                    if want {
                        captures.push(phrase.to_vec());
                    }
                    true
                }
                None => false,
            },
            Kind::Text(op, p) => {
                let expanded;
                let param = match p {
                    Param::Static(v) => v.as_slice(),
                    Param::Dynamic => {
                        expanded = expand(&self.param);
                        expanded.as_bytes()
                    }
                };
                let matched = text_matches(*op, input, param);
                if matched && want {
                    captures.push(match op {
                        TextOp::Within | TextOp::StrEq | TextOp::BeginsWith | TextOp::EndsWith => {
                            input.to_vec()
                        }
                        _ => param.to_vec(),
                    });
                }
                matched
            }
            Kind::Number(op, p) => {
                let param = match p {
                    Param::Static(v) => *v,
                    Param::Dynamic => parse_int(expand(&self.param).as_bytes()),
                };
                number_matches(*op, parse_int(input), param)
            }
            Kind::ValidateByteRange(set) => set.first_outside(input).is_some(),
            Kind::ValidateUrlEncoding => !validate::url_encoding_valid(input),
            Kind::ValidateUtf8Encoding => !validate::utf8_valid(input),
            Kind::IpMatch(set) => set.contains_text(input),
            Kind::DetectSqli => match injection::sqli_fingerprint(input) {
                Some(fingerprint) => {
                    if want {
                        captures.push(fingerprint);
                    }
                    true
                }
                None => false,
            },
            Kind::DetectXss => injection::is_xss(input),
            Kind::UnconditionalMatch => true,
            Kind::NoMatch => false,
        };
        matched != self.negated
    }
}

fn text_matches(op: TextOp, input: &[u8], param: &[u8]) -> bool {
    match op {
        TextOp::StrEq => input == param,
        TextOp::StrMatch | TextOp::Contains => find(input, param).is_some(),
        TextOp::ContainsWord => contains_word(input, param),
        TextOp::BeginsWith => input.starts_with(param),
        TextOp::EndsWith => input.ends_with(param),
        TextOp::Within => find(param, input).is_some(),
    }
}

fn number_matches(op: NumberOp, input: i64, param: i64) -> bool {
    match op {
        NumberOp::Eq => input == param,
        NumberOp::Ge => input >= param,
        NumberOp::Gt => input > param,
        NumberOp::Le => input <= param,
        NumberOp::Lt => input < param,
    }
}

/// The first occurrence of `needle` in `haystack`; an empty needle is found at 0.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    memchr::memmem::find(haystack, needle)
}

/// Whether `word` occurs in `input` with no ASCII letter right before or after it (ModSecurity
/// counts digits and `_` as boundaries).
fn contains_word(input: &[u8], word: &[u8]) -> bool {
    if word.is_empty() {
        return true;
    }
    let is_word = |b: &u8| b.is_ascii_alphabetic();
    memchr::memmem::find_iter(input, word).any(|pos| {
        let before = pos.checked_sub(1).and_then(|p| input.get(p));
        let after = input.get(pos + word.len());
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// Reads an integer the way ModSecurity's comparison operators do (`std::stoi`): leading
/// whitespace, an optional sign, then digits up to the first other character. Text that does
/// not start with a number, or a number outside 32 bits, counts as 0.
fn parse_int(text: &[u8]) -> i64 {
    let start = text
        .iter()
        .position(|&b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'));
    let Some(start) = start else { return 0 };
    let s = &text[start..];
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut value: i64 = 0;
    for &d in &digits[..len] {
        value = value * 10 + i64::from(d - b'0');
        if value > i64::from(i32::MAX) + 1 {
            return 0;
        }
    }
    let value = if negative { -value } else { value };
    if i32::try_from(value).is_err() {
        0
    } else {
        value
    }
}

#[cfg(test)]
mod crs_tests {
    //! Loads every operator and transformation of the OWASP Core Rule Set with a minimal line
    //! scanner (the real rule parser lives elsewhere), so a CRS upgrade that needs something new
    //! fails here first.

    use std::path::{Path, PathBuf};

    use super::Operator;
    use crate::transform::Transform;

    fn rules_dir() -> PathBuf {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/crs/rules"
        ))
    }

    /// Each directive of each `.conf` file, with continuation lines joined.
    fn directives(dir: &Path) -> Vec<(String, String)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "conf"))
            .collect();
        files.sort();
        assert!(
            files.len() > 20,
            "CRS rule files not found in {}",
            dir.display()
        );
        let mut out = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let mut current = String::new();
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
                    continue;
                }
                match line.strip_suffix('\\') {
                    Some(head) => current.push_str(head),
                    None => {
                        current.push_str(line);
                        let place = format!("{}:{}", file.display(), n + 1);
                        out.push((place, std::mem::take(&mut current)));
                    }
                }
            }
        }
        out
    }

    /// Splits a directive into its arguments: whitespace-separated, double quotes grouping,
    /// `\"` standing for a quote inside them.
    fn arguments(directive: &str) -> Vec<String> {
        let mut args = Vec::new();
        let mut chars = directive.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(first) = chars.next() else { break };
            let mut arg = String::new();
            if first == '"' {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' if chars.peek() == Some(&'"') => arg.push(chars.next().unwrap()),
                        '"' => break,
                        _ => arg.push(c),
                    }
                }
            } else {
                arg.push(first);
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    arg.push(c);
                }
            }
            args.push(arg);
        }
        args
    }

    /// The operator name (without `@`), parameter and negation of a SecRule operator argument.
    fn split_operator(arg: &str) -> (String, String, bool) {
        let (negated, rest) = match arg.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, arg),
        };
        match rest.strip_prefix('@') {
            Some(op) => {
                let (name, param) = op.split_once(' ').unwrap_or((op, ""));
                (name.to_owned(), param.to_owned(), negated)
            }
            None => ("rx".to_owned(), rest.to_owned(), negated),
        }
    }

    #[test]
    fn every_crs_operator_and_transformation_loads() {
        let dir = rules_dir();
        let mut operators = 0;
        let mut regexes = 0;
        let mut transforms = 0;
        for (place, directive) in directives(&dir) {
            let args = arguments(&directive);
            let actions = match args.first().map(String::as_str) {
                Some("SecRule") => {
                    let (name, param, negated) = split_operator(&args[2]);
                    if let Err(e) = Operator::parse(&name, &param, negated, &dir) {
                        panic!("{place}: @{name} {param:?}: {e}");
                    }
                    operators += 1;
                    regexes += usize::from(name == "rx");
                    args.get(3)
                }
                Some("SecAction") => args.get(1),
                _ => None,
            };
            for action in actions.map(|a| a.split(',')).into_iter().flatten() {
                if let Some(name) = action.trim().strip_prefix("t:") {
                    if name != "none" {
                        assert!(
                            Transform::parse(name).is_some(),
                            "{place}: unknown transformation t:{name}"
                        );
                    }
                    transforms += 1;
                }
            }
        }
        // CRS 4.x has several hundred rules; far fewer means the scanner missed them.
        assert!(operators > 500, "only {operators} operators found");
        assert!(regexes > 250, "only {regexes} regexes found");
        assert!(transforms > 500, "only {transforms} transformations found");
    }
}
