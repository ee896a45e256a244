//! What each variable holds for the current transaction.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use super::members::Member;
use super::{Transaction, selects_rule};
use crate::action::BodyProcessor;
use crate::body::Pair;
use crate::rule::Rule;
use crate::variable::{Selector, Target, Var};

/// One value a target yields: `var:key` and the bytes to inspect.
pub(super) struct Value<'a> {
    pub(super) var: Var,
    pub(super) key: Cow<'a, str>,
    pub(super) value: Cow<'a, [u8]>,
}

impl<'r> Transaction<'r> {
    pub(super) fn excluded(&self, rule: Option<&Rule>, var: Var, name: &str) -> bool {
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
    pub(super) fn collect<'a>(
        &'a self,
        rule: Option<&Rule>,
        target: &'a Target,
        out: &mut Vec<Value<'a>>,
    ) {
        self.visit(rule, target, &mut |v| out.push(v));
    }

    /// Hands each value one target yields, after exclusions, to `f` (for `&VAR`, the
    /// count). Rules inspect the values as they come, so no list of them is built.
    pub(super) fn visit<'a>(
        &'a self,
        rule: Option<&Rule>,
        target: &'a Target,
        f: &mut dyn FnMut(Value<'a>),
    ) {
        if !target.count {
            return self.values(rule, target, f);
        }
        if !target.var.is_collection() && self.excluded(rule, target.var, "") {
            return;
        }
        let mut n = 0usize;
        self.values(rule, target, &mut |_| n += 1);
        let key = match &target.selector {
            Selector::Key(k) if target.var.is_collection() => k.as_str(),
            _ => "",
        };
        f(Value {
            var: target.var,
            key: Cow::Borrowed(key),
            value: number(n),
        });
    }

    /// The values of a target, without `&` counting.
    fn values<'a>(&'a self, rule: Option<&Rule>, target: &Target, f: &mut dyn FnMut(Value<'a>)) {
        let var = target.var;
        if !var.is_collection() {
            // `ctl:ruleRemoveTarget*` can take a whole single-valued variable away.
            if !self.excluded(rule, var, "")
                && let Some(value) = self.scalar(var)
            {
                f(Value {
                    var,
                    key: Cow::Borrowed(""),
                    value,
                });
            }
            return;
        }
        let mut push = |key: &'a str, value: Cow<'a, [u8]>| {
            if target.selector.selects(key) && !self.excluded(rule, var, key) {
                f(Value {
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
        let written = |list: &'a [Member], push: &mut dyn FnMut(&'a str, Cow<'a, [u8]>)| {
            for (k, v) in list {
                push(k, Cow::Borrowed(v.as_slice()));
            }
        };
        match var {
            Var::Args => {
                pairs(&self.args_get, false, &mut push);
                pairs(&self.args_post, false, &mut push);
            }
            Var::ArgsNames => {
                pairs(&self.args_get, true, &mut push);
                if !self.args_post_structural {
                    pairs(&self.args_post, true, &mut push);
                }
            }
            Var::ArgsGet => pairs(&self.args_get, false, &mut push),
            Var::ArgsGetNames => pairs(&self.args_get, true, &mut push),
            Var::ArgsPost => pairs(&self.args_post, false, &mut push),
            Var::ArgsPostNames if !self.args_post_structural => {
                pairs(&self.args_post, true, &mut push)
            }
            Var::RequestHeaders => pairs(&self.request_headers, false, &mut push),
            Var::RequestHeadersNames => pairs(&self.request_headers, true, &mut push),
            Var::RequestCookies => pairs(&self.cookies, false, &mut push),
            Var::RequestCookiesNames => pairs(&self.cookies, true, &mut push),
            Var::ResponseHeaders => pairs(&self.response_headers, false, &mut push),
            Var::ResponseHeadersNames => pairs(&self.response_headers, true, &mut push),
            Var::MultipartPartHeaders => pairs(&self.parsed.part_headers, false, &mut push),
            Var::Tx => written(self.tx.select(&target.selector), &mut push),
            Var::Env => written(self.env.select(&target.selector), &mut push),
            Var::MatchedVars => pairs(self.matched_vars.as_slice(), false, &mut push),
            Var::MatchedVarsNames => pairs(self.matched_vars.as_slice(), true, &mut push),
            Var::Ip | Var::Global | Var::Session | Var::User | Var::Resource => {
                if let Some((_, m)) = self.other.iter().find(|(v, _)| *v == var) {
                    written(m.select(&target.selector), &mut push);
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
    }

    /// The value of a single-valued variable; `None` when it does not exist.
    pub(super) fn scalar(&self, var: Var) -> Option<Cow<'_, [u8]>> {
        let b = |s: &'_ str| -> Option<Cow<'_, [u8]>> { Some(Cow::Owned(s.as_bytes().to_vec())) };
        let flag = |f: bool| Some(Cow::Borrowed(if f { &b"1"[..] } else { &b"0"[..] }));
        let number = |n: usize| Some(number(n));
        match var {
            Var::RequestMethod => Some(Cow::Borrowed(self.method.as_bytes())),
            Var::RequestProtocol => Some(Cow::Borrowed(self.protocol.as_bytes())),
            Var::RequestUriRaw => Some(Cow::Borrowed(self.uri.as_bytes())),
            Var::RequestUri => Some(Cow::Borrowed(strip_authority(&self.uri).as_bytes())),
            Var::RequestLine => Some(Cow::Borrowed(self.line.as_bytes())),
            Var::QueryString => Some(Cow::Borrowed(
                self.uri.split_once('?').map_or("", |(_, q)| q).as_bytes(),
            )),
            Var::RequestFilename => Some(Cow::Borrowed(&self.filename)),
            Var::RequestBasename => {
                let start = self
                    .filename
                    .iter()
                    .rposition(|&c| c == b'/')
                    .map_or(0, |i| i + 1);
                Some(Cow::Borrowed(&self.filename[start..]))
            }
            Var::RequestBody => self
                .raw_body_is_inspected()
                .then_some(Cow::Borrowed(&self.body)),
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
                .or_else(|| self.default_processor())
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
    pub(super) fn uri_path(&self) -> &str {
        let uri = strip_authority(&self.uri);
        uri.split(['?', '#']).next().unwrap_or("")
    }
}

/// A count or length as text; the small ones rules read most take no allocation.
fn number(n: usize) -> Cow<'static, [u8]> {
    const DIGITS: [&[u8]; 10] = [b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9"];
    match DIGITS.get(n) {
        Some(digit) => Cow::Borrowed(digit),
        None => Cow::Owned(n.to_string().into_bytes()),
    }
}

/// `http://host/path?q` -> `/path?q`.
pub(super) fn strip_authority(uri: &str) -> &str {
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

pub(super) fn percent_decode(input: &[u8]) -> Vec<u8> {
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
pub(super) fn parse_cookies(header: &[u8], out: &mut Vec<Pair>) {
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

pub(super) fn time_var(var: Var) -> Vec<u8> {
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
pub(super) fn civil_from_days(z: i64) -> (i64, u32, u32) {
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
