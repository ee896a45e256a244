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
use crate::macros::MacroText;

/// A parsed operator with its parameter prepared for fast evaluation.
#[derive(Debug)]
pub struct Operator {
    /// The operator's name as SecLang spells it, for logs.
    name: &'static str,
    negated: bool,
    /// The parameter as written, which is what `expand` resolves for dynamic parameters.
    param: String,
    /// The parameter's macros, parsed once, when it has any.
    macros: Option<MacroText>,
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
        let (canonical, kind) = match name.to_ascii_lowercase().as_str() {
            "rx" => ("rx", Kind::Rx(Rx::new(param, false)?)),
            "rxglobal" => ("rxGlobal", Kind::Rx(Rx::new(param, true)?)),
            "pm" => ("pm", Kind::Pm(PhraseSet::from_param(param)?)),
            "pmfromfile" | "pmf" => (
                "pmFromFile",
                Kind::Pm(PhraseSet::from_files(param, rules_dir)?),
            ),
            "streq" => ("streq", text(TextOp::StrEq)),
            "strmatch" => ("strmatch", text(TextOp::StrMatch)),
            "contains" => ("contains", text(TextOp::Contains)),
            "containsword" => ("containsWord", text(TextOp::ContainsWord)),
            "beginswith" => ("beginsWith", text(TextOp::BeginsWith)),
            "endswith" => ("endsWith", text(TextOp::EndsWith)),
            "within" => ("within", text(TextOp::Within)),
            "eq" => ("eq", number(NumberOp::Eq)),
            "ge" => ("ge", number(NumberOp::Ge)),
            "gt" => ("gt", number(NumberOp::Gt)),
            "le" => ("le", number(NumberOp::Le)),
            "lt" => ("lt", number(NumberOp::Lt)),
            "validatebyterange" => (
                "validateByteRange",
                Kind::ValidateByteRange(ByteSet::parse(param)?),
            ),
            "validateurlencoding" => ("validateUrlEncoding", Kind::ValidateUrlEncoding),
            "validateutf8encoding" => ("validateUtf8Encoding", Kind::ValidateUtf8Encoding),
            "ipmatch" => ("ipMatch", Kind::IpMatch(IpSet::parse_list(param)?)),
            "ipmatchfromfile" | "ipmatchf" => (
                "ipMatchFromFile",
                Kind::IpMatch(IpSet::from_file(param, rules_dir)?),
            ),
            "detectsqli" => ("detectSQLi", Kind::DetectSqli),
            "detectxss" => ("detectXSS", Kind::DetectXss),
            "unconditionalmatch" => ("unconditionalMatch", Kind::UnconditionalMatch),
            "nomatch" => ("noMatch", Kind::NoMatch),
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
        let macros = param
            .contains("%{")
            .then(|| MacroText::parse(param).ok())
            .flatten();
        Ok(Operator {
            name: canonical,
            negated,
            param: param.to_owned(),
            macros,
            kind,
        })
    }

    /// The operator's name as SecLang spells it (`rx`, `pmFromFile`, ...), for logs.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The parameter's macros, parsed at load, for callers that expand them.
    pub(crate) fn macros(&self) -> Option<&MacroText> {
        self.macros.as_ref()
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
    /// for `@rx` (a group that took no part is empty; with `@rxGlobal` the last match to set
    /// each group wins), the phrase found by `@pm`, the
    /// fingerprint from `@detectSQLi`, the input for `@detectXSS`; other operators, and negated
    /// ones, capture nothing.
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
                text_matches(*op, input, param)
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
            Kind::DetectXss => {
                let matched = injection::is_xss(input);
                if matched && want {
                    captures.push(input.to_vec());
                }
                matched
            }
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

#[cfg(test)]
mod tests {
    //! Expected verdicts follow ModSecurity's documented operator behaviour; the libinjection
    //! fingerprints are those the C library reports for the same inputs.

    use std::path::{Path, PathBuf};

    use super::Operator;

    fn op(name: &str, param: &str) -> Operator {
        Operator::parse(name, param, false, Path::new("."))
            .unwrap_or_else(|e| panic!("@{name} {param:?}: {e}"))
    }

    fn no_macros(raw: &str) -> String {
        panic!("expansion asked for {raw:?} without macros")
    }

    fn matches(o: &Operator, input: &[u8]) -> bool {
        o.evaluate(input, &no_macros, false, &mut Vec::new())
    }

    fn captured(o: &Operator, input: &[u8]) -> Option<Vec<Vec<u8>>> {
        let mut caps = Vec::new();
        o.evaluate(input, &no_macros, true, &mut caps)
            .then_some(caps)
    }

    /// A directory of its own under the system temp dir, for data-file operators.
    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("waf-operator-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn unknown_and_unsupported_operators_are_errors() {
        let err = Operator::parse("rxx", "a", false, Path::new(".")).unwrap_err();
        assert!(err.contains("unknown operator @rxx"), "{err}");
        let err = Operator::parse("rbl", "sbl.example", false, Path::new(".")).unwrap_err();
        assert!(
            err.contains("@rbl is not supported") && err.contains("DNS"),
            "{err}"
        );
        let err = Operator::parse("rx", "(a", false, Path::new(".")).unwrap_err();
        assert!(err.contains("invalid regular expression"), "{err}");
        let err = Operator::parse("ipMatch", "10.0.0.0/33", false, Path::new(".")).unwrap_err();
        assert!(err.contains("10.0.0.0/33"), "{err}");
        let err =
            Operator::parse("validateByteRange", "10-300", false, Path::new(".")).unwrap_err();
        assert!(err.contains("300"), "{err}");
        let err = Operator::parse(
            "pmFromFile",
            "missing.data",
            false,
            Path::new("/nonexistent"),
        )
        .unwrap_err();
        assert!(err.contains("/nonexistent/missing.data"), "{err}");
    }

    #[test]
    fn names_are_case_insensitive_and_negation_inverts() {
        assert!(matches(&op("STREQ", "a"), b"a"));
        assert_eq!(
            op("VALIDATEUTF8ENCODING", "").name(),
            "validateUtf8Encoding"
        );
        let negated = Operator::parse("streq", "a", true, Path::new(".")).unwrap();
        assert!(!matches(&negated, b"a"));
        assert!(matches(&negated, b"b"));
    }

    #[test]
    fn rx_matches_bytes_across_lines_with_pcre_options() {
        let o = op("rx", "(?i)union\\s+select");
        assert!(matches(&o, b"1 UNION\n SELECT"));
        assert!(!matches(&o, b"unionselect"));
        // DOTALL: `.` crosses newlines; MULTILINE: `^` and `$` work per line.
        assert!(matches(&op("rx", "a.b"), b"a\nb"));
        assert!(matches(&op("rx", "^b$"), b"a\nb\nc"));
        // Bytes, not code points, as PCRE without UTF.
        assert!(matches(
            &op("rx", "\\x{bc}[^\\x{be}]*\\x{be}"),
            b"\xbcscript\xbe"
        ));
        assert!(!matches(&op("rx", "^\\x{bc}$"), "\u{bc}".as_bytes()));
        assert!(matches(&op("rx", "[é]"), b"\xa9"));
        assert!(matches(&op("rx", "\\xff"), b"a\xff"));
        // An empty pattern matches everything, as in ModSecurity.
        assert!(matches(&op("rx", ""), b"anything"));
    }

    #[test]
    fn rx_captures_whole_match_and_groups_up_to_nine() {
        let o = op("rx", "(a)(b)?(c)");
        assert_eq!(
            captured(&o, b"xac"),
            Some(vec![b"ac".to_vec(), b"a".to_vec(), vec![], b"c".to_vec()])
        );
        let many = op("rx", "(1)(2)(3)(4)(5)(6)(7)(8)(9)(0)(x)");
        let caps = captured(&many, b"1234567890x").unwrap();
        assert_eq!(caps.len(), 10);
        assert_eq!(caps[9], b"9");
        let negated = Operator::parse("rx", "a", true, Path::new(".")).unwrap();
        let mut caps = Vec::new();
        assert!(negated.evaluate(b"b", &no_macros, true, &mut caps));
        assert!(caps.is_empty());
    }

    #[test]
    fn rx_global_captures_from_every_match() {
        let o = op("rxGlobal", "([a-z])([0-9])?");
        assert_eq!(
            captured(&o, b"a1 b c2 d"),
            Some(vec![b"d".to_vec(), b"d".to_vec(), b"2".to_vec()])
        );
        assert!(!matches(&o, b"123"));
    }

    #[test]
    fn rx_with_macros_compiles_the_expanded_pattern() {
        let o = op("rx", "^%{tx.allowed}$");
        assert!(o.needs_expansion());
        let expand = |raw: &str| {
            assert_eq!(raw, "^%{tx.allowed}$");
            "^(?:GET|POST)$".to_owned()
        };
        assert!(o.evaluate(b"GET", &expand, false, &mut Vec::new()));
        assert!(!o.evaluate(b"PUT", &expand, false, &mut Vec::new()));
        // An expansion that is not a valid regex never matches.
        assert!(!o.evaluate(b"(", &|_: &str| "(".to_owned(), false, &mut Vec::new()));
    }

    #[test]
    fn pm_matches_phrases_case_insensitively() {
        let o = op("pm", "gzip compress deflate br zstd");
        assert!(matches(&o, b"x-GZIP"));
        assert!(!matches(&o, b"identity"));
        assert_eq!(captured(&o, b"Deflate, x"), Some(vec![b"deflate".to_vec()]));
        let hex = op("pm", "|4142|c x\\:y");
        assert!(matches(&hex, b"zzabCzz"));
        assert!(matches(&hex, b"X:Y"));
        // ModSecurity takes a parameter with a space inside |...| literally.
        assert!(matches(&op("pm", "|41 42|"), b"|41"));
        let quoted = op("pm", "\"<!-- <![cdata[\"");
        assert!(matches(&quoted, b"x<![CDATA[y"));
        // A bad escape makes ModSecurity take the parameter literally.
        assert!(matches(&op("pm", "a\\qb"), b"A\\QB"));
    }

    #[test]
    fn pm_from_file_reads_phrases_relative_to_the_rule_file() {
        let dir = scratch_dir("pmf");
        std::fs::write(
            dir.join("words.data"),
            "# comment\n\n  # indented comment\n/etc/passwd\r\ncmd.exe\n",
        )
        .unwrap();
        std::fs::write(dir.join("more.data"), "wget\n").unwrap();
        for name in ["pmFromFile", "pmf"] {
            let o = Operator::parse(name, "words.data more.data", false, &dir).unwrap();
            assert!(matches(&o, b"GET /ETC/PASSWD"));
            assert!(matches(&o, b"c:\\Cmd.exe"));
            assert!(matches(&o, b"wget http://x"));
            assert!(!matches(&o, b"comment"));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn string_comparisons() {
        assert!(matches(&op("streq", "POST"), b"POST"));
        assert!(!matches(&op("streq", "POST"), b"post"));
        assert!(matches(&op("contains", "-->"), b"a-->b"));
        assert!(matches(&op("strmatch", "WebZIP"), b"Mozilla WebZIP/4.0"));
        assert!(matches(&op("beginsWith", "#:~:text="), b"#:~:text=x"));
        assert!(!matches(&op("beginsWith", "abc"), b"ab"));
        assert!(matches(&op("endsWith", ".pdf"), b"file.pdf"));
        assert!(!matches(&op("endsWith", ".pdf"), b"pdf"));
        assert!(matches(&op("within", "GET HEAD POST"), b"HEAD"));
        assert!(!matches(&op("within", "GET HEAD POST"), b"PUT"));
        assert!(matches(&op("within", "GET"), b""));
        // Like ModSecurity, string comparisons leave TX.0 alone.
        assert_eq!(captured(&op("contains", "ab"), b"xaby"), Some(vec![]));
    }

    #[test]
    fn contains_word_needs_non_letters_around_the_word() {
        let o = op("containsWord", "select");
        assert!(matches(&o, b"select"));
        assert!(matches(&o, b"1 select 2"));
        assert!(matches(&o, b"(select)"));
        assert!(matches(&o, b"1select"));
        assert!(!matches(&o, b"selection"));
        assert!(!matches(&o, b"deselect"));
        assert!(matches(&o, b"deselect select"));
        assert!(matches(&op("containsWord", ""), b"x"));
        assert!(!matches(&o, b""));
    }

    #[test]
    fn text_operators_expand_macros() {
        let o = op("endsWith", ".%{request_headers.host}");
        assert!(o.needs_expansion());
        let expand = |_: &str| ".example.com".to_owned();
        assert!(o.evaluate(b"www.example.com", &expand, false, &mut Vec::new()));
        assert!(!o.evaluate(b"example.org", &expand, false, &mut Vec::new()));
        assert!(!op("streq", "plain").needs_expansion());
    }

    #[test]
    fn numeric_comparisons_read_integers_like_modsecurity() {
        assert!(matches(&op("eq", "0"), b"abc"));
        assert!(matches(&op("eq", "12"), b"12abc"));
        assert!(matches(&op("eq", "-3"), b" -3"));
        assert!(matches(&op("eq", "0"), b"99999999999"));
        assert!(matches(&op("gt", "5"), b"6"));
        assert!(!matches(&op("gt", "5"), b"5"));
        assert!(matches(&op("ge", "5"), b"5"));
        assert!(matches(&op("lt", "5"), b"4"));
        assert!(matches(&op("le", "5"), b"5"));
        assert!(!matches(&op("le", "5"), b"6"));
        let o = op("ge", "%{tx.inbound_anomaly_score_threshold}");
        assert!(o.needs_expansion());
        assert!(o.evaluate(b"5", &|_: &str| "5".to_owned(), false, &mut Vec::new()));
        assert!(!o.evaluate(b"4", &|_: &str| "5".to_owned(), false, &mut Vec::new()));
    }

    #[test]
    fn validate_byte_range_matches_bytes_outside_the_ranges() {
        let o = op("validateByteRange", "1-255");
        assert!(!matches(&o, b"abc\xff"));
        assert!(matches(&o, b"a\0b"));
        let o = op("validateByteRange", "9,10,13,32-126,128-255");
        assert!(!matches(&o, b"GET /\t\r\n\x80"));
        assert!(matches(&o, b"a\x7fb"));
        assert!(matches(&o, b"\x0b"));
        assert!(!matches(&o, b""));
    }

    #[test]
    fn validate_url_encoding_matches_broken_escapes() {
        let o = op("validateUrlEncoding", "");
        assert!(!matches(&o, b"a%20b%7E"));
        assert!(matches(&o, b"a%zzb"));
        assert!(matches(&o, b"a%4"));
        assert!(matches(&o, b"%"));
        assert!(!matches(&o, b"plain"));
    }

    #[test]
    fn validate_utf8_encoding_matches_malformed_utf8() {
        let o = op("validateUtf8Encoding", "");
        assert!(!matches(&o, "héllo €😀".as_bytes()));
        assert!(matches(&o, b"\xc0\xaf"), "overlong");
        assert!(matches(&o, b"\xe0\x80\xaf"), "overlong three-byte");
        assert!(matches(&o, b"\xe2\x82"), "truncated");
        assert!(matches(&o, b"\xed\xa0\x80"), "surrogate");
        assert!(matches(&o, b"\xf5\x80\x80\x80"), "lead above 0xf4");
        assert!(matches(&o, b"a\x80"), "stray continuation byte");
        assert!(matches(&o, b"\xc3("), "bad continuation byte");
    }

    #[test]
    fn ip_match_checks_v4_and_v6_blocks() {
        let o = op("ipMatch", "127.0.0.1,::1, 10.0.0.0/8 ,2001:db8::/32");
        assert!(matches(&o, b"127.0.0.1"));
        assert!(matches(&o, b"10.200.3.4"));
        assert!(!matches(&o, b"11.0.0.1"));
        assert!(matches(&o, b"::1"));
        assert!(matches(&o, b"2001:db8:ffff::1"));
        assert!(!matches(&o, b"2001:db9::1"));
        assert!(!matches(&o, b"not an address"));
        assert!(matches(&op("ipMatch", "0.0.0.0/0"), b"8.8.8.8"));

        let dir = scratch_dir("ipf");
        std::fs::write(
            dir.join("ips.txt"),
            "# blocked\n192.168.0.0/16\n\n203.0.113.7\n",
        )
        .unwrap();
        let f = Operator::parse("ipMatchFromFile", "ips.txt", false, &dir).unwrap();
        assert!(matches(&f, b"192.168.44.1"));
        assert!(matches(&f, b"203.0.113.7"));
        assert!(!matches(&f, b"203.0.113.8"));
        std::fs::write(dir.join("bad.txt"), "10.0.0.1\nnope\n").unwrap();
        let err = Operator::parse("ipMatchFromFile", "bad.txt", false, &dir).unwrap_err();
        assert!(err.contains("bad.txt:2"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn detect_sqli_reports_the_libinjection_fingerprint() {
        let o = op("detectSQLi", "");
        assert_eq!(captured(&o, b"1' or '1'='1"), Some(vec![b"s&sos".to_vec()]));
        assert_eq!(
            captured(&o, b"-1 UNION SELECT 1,2,3--"),
            Some(vec![b"1UE1c".to_vec()])
        );
        assert_eq!(captured(&o, b"admin'--"), Some(vec![b"sc".to_vec()]));
        assert_eq!(
            captured(&o, b"1 into outfile 'asd'"),
            Some(vec![b"1ks".to_vec()])
        );
        assert_eq!(
            captured(&o, b"1 INTO OUTFILE 'asd'"),
            Some(vec![b"1ks".to_vec()])
        );
        assert!(!matches(&o, b"hello world"));
        assert!(!matches(&o, b"O'Reilly"));
        assert!(!matches(&o, b""));
    }

    #[test]
    fn detect_xss_flags_script_injection() {
        let o = op("detectXSS", "");
        let script = b"<script>alert(1)</script>";
        assert_eq!(captured(&o, script), Some(vec![script.to_vec()]));
        assert!(matches(&o, b"\"><img src=x onerror=alert(1)>"));
        assert!(!matches(&o, b"hello world"));
        assert!(!matches(&o, b"1' or '1'='1"));
    }

    #[test]
    fn operators_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Operator>();
    }

    #[test]
    fn unconditional_and_no_match() {
        assert!(matches(&op("unconditionalMatch", ""), b""));
        assert!(!matches(&op("noMatch", ""), b"x"));
    }
}
