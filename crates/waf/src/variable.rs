//! The variables a rule can inspect, and how a rule selects among their members.

use regex::bytes::Regex;

macro_rules! variables {
    ($( $variant:ident = $name:literal, $collection:literal; )*) => {
        /// One SecLang variable. Collections hold named members; the others hold one value.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(clippy::enum_variant_names)]
        pub(crate) enum Var { $( $variant, )* }

        impl Var {
            /// Looks a variable up by its SecLang name, in any case.
            pub(crate) fn from_name(name: &str) -> Option<Var> {
                $( if name.eq_ignore_ascii_case($name) { return Some(Var::$variant); } )*
                None
            }

            /// The canonical upper-case name, as used in MATCHED_VAR_NAME.
            pub(crate) fn name(self) -> &'static str {
                match self { $( Var::$variant => $name, )* }
            }

            /// Whether the variable is a collection with named members.
            #[inline]
            pub(crate) fn is_collection(self) -> bool {
                match self { $( Var::$variant => $collection, )* }
            }
        }
    };
}

variables! {
    Args = "ARGS", true;
    ArgsNames = "ARGS_NAMES", true;
    ArgsGet = "ARGS_GET", true;
    ArgsGetNames = "ARGS_GET_NAMES", true;
    ArgsPost = "ARGS_POST", true;
    ArgsPostNames = "ARGS_POST_NAMES", true;
    ArgsCombinedSize = "ARGS_COMBINED_SIZE", false;
    RequestHeaders = "REQUEST_HEADERS", true;
    RequestHeadersNames = "REQUEST_HEADERS_NAMES", true;
    RequestCookies = "REQUEST_COOKIES", true;
    RequestCookiesNames = "REQUEST_COOKIES_NAMES", true;
    RequestUri = "REQUEST_URI", false;
    RequestUriRaw = "REQUEST_URI_RAW", false;
    RequestFilename = "REQUEST_FILENAME", false;
    RequestBasename = "REQUEST_BASENAME", false;
    RequestLine = "REQUEST_LINE", false;
    RequestMethod = "REQUEST_METHOD", false;
    RequestProtocol = "REQUEST_PROTOCOL", false;
    QueryString = "QUERY_STRING", false;
    RequestBody = "REQUEST_BODY", false;
    RequestBodyLength = "REQUEST_BODY_LENGTH", false;
    FullRequest = "FULL_REQUEST", false;
    FullRequestLength = "FULL_REQUEST_LENGTH", false;
    Files = "FILES", true;
    FilesNames = "FILES_NAMES", true;
    FilesSizes = "FILES_SIZES", true;
    FilesTmpNames = "FILES_TMPNAMES", true;
    FilesTmpContent = "FILES_TMP_CONTENT", true;
    FilesCombinedSize = "FILES_COMBINED_SIZE", false;
    MultipartPartHeaders = "MULTIPART_PART_HEADERS", true;
    MultipartFilename = "MULTIPART_FILENAME", false;
    MultipartName = "MULTIPART_NAME", false;
    MultipartStrictError = "MULTIPART_STRICT_ERROR", false;
    MultipartUnmatchedBoundary = "MULTIPART_UNMATCHED_BOUNDARY", false;
    MultipartBoundaryQuoted = "MULTIPART_BOUNDARY_QUOTED", false;
    MultipartBoundaryWhitespace = "MULTIPART_BOUNDARY_WHITESPACE", false;
    MultipartDataBefore = "MULTIPART_DATA_BEFORE", false;
    MultipartDataAfter = "MULTIPART_DATA_AFTER", false;
    MultipartHeaderFolding = "MULTIPART_HEADER_FOLDING", false;
    MultipartLfLine = "MULTIPART_LF_LINE", false;
    MultipartCrlfLfLines = "MULTIPART_CRLF_LF_LINES", false;
    MultipartMissingSemicolon = "MULTIPART_MISSING_SEMICOLON", false;
    MultipartInvalidQuoting = "MULTIPART_INVALID_QUOTING", false;
    MultipartInvalidPart = "MULTIPART_INVALID_PART", false;
    MultipartInvalidHeaderFolding = "MULTIPART_INVALID_HEADER_FOLDING", false;
    MultipartFileLimitExceeded = "MULTIPART_FILE_LIMIT_EXCEEDED", false;
    ReqbodyError = "REQBODY_ERROR", false;
    ReqbodyErrorMsg = "REQBODY_ERROR_MSG", false;
    ReqbodyProcessor = "REQBODY_PROCESSOR", false;
    ReqbodyProcessorError = "REQBODY_PROCESSOR_ERROR", false;
    InboundDataError = "INBOUND_DATA_ERROR", false;
    OutboundDataError = "OUTBOUND_DATA_ERROR", false;
    UrlencodedError = "URLENCODED_ERROR", false;
    Xml = "XML", true;
    Tx = "TX", true;
    Ip = "IP", true;
    Global = "GLOBAL", true;
    Session = "SESSION", true;
    User = "USER", true;
    Resource = "RESOURCE", true;
    Env = "ENV", true;
    Rule = "RULE", true;
    MatchedVar = "MATCHED_VAR", false;
    MatchedVarName = "MATCHED_VAR_NAME", false;
    MatchedVars = "MATCHED_VARS", true;
    MatchedVarsNames = "MATCHED_VARS_NAMES", true;
    RemoteAddr = "REMOTE_ADDR", false;
    RemotePort = "REMOTE_PORT", false;
    RemoteHost = "REMOTE_HOST", false;
    RemoteUser = "REMOTE_USER", false;
    ServerName = "SERVER_NAME", false;
    ServerPort = "SERVER_PORT", false;
    ServerAddr = "SERVER_ADDR", false;
    AuthType = "AUTH_TYPE", false;
    PathInfo = "PATH_INFO", false;
    UniqueId = "UNIQUE_ID", false;
    Duration = "DURATION", false;
    HighestSeverity = "HIGHEST_SEVERITY", false;
    Time = "TIME", false;
    TimeDay = "TIME_DAY", false;
    TimeEpoch = "TIME_EPOCH", false;
    TimeHour = "TIME_HOUR", false;
    TimeMin = "TIME_MIN", false;
    TimeMon = "TIME_MON", false;
    TimeSec = "TIME_SEC", false;
    TimeWday = "TIME_WDAY", false;
    TimeYear = "TIME_YEAR", false;
    ResponseStatus = "RESPONSE_STATUS", false;
    ResponseHeaders = "RESPONSE_HEADERS", true;
    ResponseHeadersNames = "RESPONSE_HEADERS_NAMES", true;
    ResponseBody = "RESPONSE_BODY", false;
    ResponseContentType = "RESPONSE_CONTENT_TYPE", false;
    ResponseContentLength = "RESPONSE_CONTENT_LENGTH", false;
    ResponseProtocol = "RESPONSE_PROTOCOL", false;
    StatusLine = "STATUS_LINE", false;
    WebserverErrorLog = "WEBSERVER_ERROR_LOG", true;
}

/// Which members of a collection a target takes.
#[derive(Debug, Clone)]
pub(crate) enum Selector {
    All,
    /// A member name, compared without regard to case.
    Key(String),
    Regex(Regex),
    /// An XPath expression (only for XML).
    XPath(String),
}

impl Selector {
    /// Whether a member name is selected.
    #[inline]
    pub(crate) fn selects(&self, name: &str) -> bool {
        match self {
            Selector::All | Selector::XPath(_) => true,
            Selector::Key(key) => key.eq_ignore_ascii_case(name),
            Selector::Regex(re) => re.is_match(name.as_bytes()),
        }
    }
}

/// One entry of a rule's target list, such as `&ARGS`, `!REQUEST_HEADERS:Referer` or
/// `TX:/^score_/`.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub var: Var,
    pub selector: Selector,
    /// `&VAR`: the number of selected members instead of their values.
    pub count: bool,
    /// `!VAR:name`: removes members from the other targets of the same variable.
    pub exclude: bool,
}

impl Target {
    /// Parses one target. Errors name what is unsupported.
    pub(crate) fn parse(text: &str) -> Result<Target, String> {
        let mut rest = text.trim();
        let exclude = rest.starts_with('!');
        if exclude {
            rest = &rest[1..];
        }
        let count = rest.starts_with('&');
        if count {
            rest = &rest[1..];
        }
        let (name, selector) = match rest.split_once(':') {
            Some((name, sel)) => (name, Some(sel)),
            None => (rest, None),
        };
        let var = Var::from_name(name).ok_or_else(|| format!("unsupported variable `{name}`"))?;
        let selector = match selector {
            None | Some("") => Selector::All,
            // The document's text (`/*`) and every attribute value (`//@*`) are what rule
            // sets such as CRS inspect; other XPath expressions would need a full XPath
            // engine and are refused rather than approximated.
            Some(sel) if var == Var::Xml => match sel {
                "/*" | "//@*" => Selector::XPath(sel.to_string()),
                _ => {
                    return Err(format!(
                        "unsupported XPath `{sel}` (only /* and //@* are supported)"
                    ));
                }
            },
            Some(sel) if sel.len() >= 2 && sel.starts_with('/') && sel.ends_with('/') => {
                let pattern = &sel[1..sel.len() - 1];
                let re = regex::bytes::RegexBuilder::new(pattern)
                    .case_insensitive(true)
                    .build()
                    .map_err(|e| format!("bad selector regex in `{text}`: {e}"))?;
                Selector::Regex(re)
            }
            Some(sel) => {
                let sel = sel.trim_matches('\'');
                Selector::Key(sel.to_string())
            }
        };
        if !var.is_collection() && !matches!(selector, Selector::All) {
            return Err(format!(
                "variable `{name}` has no members to select in `{text}`"
            ));
        }
        if exclude && matches!(selector, Selector::All) {
            return Err(format!("exclusion `{text}` names no member"));
        }
        Ok(Target {
            var,
            selector,
            count,
            exclude,
        })
    }

    /// Parses a `|`-separated target list.
    pub(crate) fn parse_list(text: &str) -> Result<Vec<Target>, String> {
        text.split('|')
            .filter(|t| !t.trim().is_empty())
            .map(Target::parse)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counts_exclusions_and_selectors() {
        let t = Target::parse_list("&ARGS|!REQUEST_HEADERS:Referer|TX:/^a_/|XML:/*").unwrap();
        assert!(t[0].count && t[0].var == Var::Args);
        assert!(t[1].exclude && t[1].selector.selects("referer"));
        assert!(t[2].selector.selects("A_b") && !t[2].selector.selects("b"));
        assert!(matches!(t[3].selector, Selector::XPath(ref x) if x == "/*"));
    }

    #[test]
    fn rejects_unknown_variables() {
        assert!(Target::parse("NOPE").unwrap_err().contains("NOPE"));
        assert!(Target::parse("REQUEST_URI:x").is_err());
        assert!(Target::parse("XML:/a/b").unwrap_err().contains("XPath"));
    }
}
