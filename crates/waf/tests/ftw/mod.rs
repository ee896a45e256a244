//! The go-ftw test file format (ftw-tests-schema v2), as far as the CRS tests use it,
//! and how go-ftw turns a stage's input into an HTTP request.

use std::fmt;

use base64::Engine as _;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

#[derive(Debug, Deserialize)]
pub struct TestFile {
    pub rule_id: u32,
    pub tests: Vec<Test>,
}

#[derive(Debug, Deserialize)]
pub struct Test {
    pub test_id: u32,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Deserialize)]
pub struct Stage {
    pub input: Input,
    pub output: Output,
}

#[derive(Debug, Deserialize, Default)]
pub struct Input {
    pub port: Option<u16>,
    pub method: Option<String>,
    pub uri: Option<String>,
    pub version: Option<String>,
    #[serde(default, deserialize_with = "ordered_map")]
    pub headers: Vec<(String, String)>,
    pub data: Option<String>,
    pub encoded_request: Option<String>,
    pub autocomplete_headers: Option<bool>,
}

#[derive(Debug, Deserialize, Default, Clone)]
pub struct Output {
    pub status: Option<u16>,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub expect_error: bool,
}

#[derive(Debug, Deserialize, Default, Clone)]
pub struct Log {
    #[serde(default)]
    pub expect_ids: Vec<u32>,
    #[serde(default)]
    pub no_expect_ids: Vec<u32>,
    pub match_regex: Option<String>,
    pub no_match_regex: Option<String>,
}

/// `*-overrides.yaml`: outputs a platform replaces, with the reason.
#[derive(Debug, Deserialize)]
pub struct Overrides {
    pub test_overrides: Vec<Override>,
}

#[derive(Debug, Deserialize)]
pub struct Override {
    pub rule_id: u32,
    pub test_ids: Vec<u32>,
    pub reason: String,
    /// Absent when the platform cannot run the test at all (the reason says why).
    pub output: Option<Output>,
}

/// Header maps keep their order (rules look at the first occurrence of a name).
fn ordered_map<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of header names to values")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = map.next_entry::<String, Scalar>()? {
                out.push((k, v.0));
            }
            Ok(out)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }
    d.deserialize_map(V)
}

/// A header value written as a string, a number or a boolean.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Any {
            S(String),
            I(i64),
            F(f64),
            B(bool),
            N(()),
        }
        Ok(Scalar(match Any::deserialize(d)? {
            Any::S(s) => s,
            Any::I(i) => i.to_string(),
            Any::F(f) => f.to_string(),
            Any::B(b) => b.to_string(),
            Any::N(()) => String::new(),
        }))
    }
}

/// An HTTP request as go-ftw would send it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub port: u16,
}

impl Input {
    /// Builds the request: an `encoded_request` is sent as is; otherwise go-ftw adds
    /// Content-Length, a form Content-Type for a body without one, and Connection: close unless `autocomplete_headers: false`.
    pub fn request(&self) -> Result<Request, String> {
        let port = self.port.unwrap_or(80);
        if let Some(encoded) = &self.encoded_request {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(encoded.split_whitespace().collect::<String>())
                .map_err(|e| format!("bad encoded_request: {e}"))?;
            let mut r = parse_raw(&raw)?;
            r.port = port;
            return Ok(r);
        }
        let mut headers = self.headers.clone();
        let body = expand_templates(self.data.as_deref().unwrap_or("")).into_bytes();
        if self.autocomplete_headers.unwrap_or(true) {
            let has =
                |h: &[(String, String)], n: &str| h.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
            if !body.is_empty() && !has(&headers, "content-length") {
                headers.push(("Content-Length".into(), body.len().to_string()));
            }
            if !body.is_empty() && !has(&headers, "content-type") {
                headers.push((
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ));
            }
            if !has(&headers, "connection") {
                headers.push(("Connection".into(), "close".into()));
            }
        }
        Ok(Request {
            method: self.method.clone().unwrap_or_else(|| "GET".into()),
            uri: self.uri.clone().unwrap_or_else(|| "/".into()),
            version: self.version.clone().unwrap_or_else(|| "HTTP/1.1".into()),
            headers,
            body,
            port,
        })
    }
}

/// go-ftw data may hold `{{ "x" | repeat N }}` to build large bodies.
fn expand_templates(data: &str) -> String {
    let re = regex::Regex::new(r#"\{\{\s*"([^"]*)"\s*\|\s*repeat\s+(\d+)\s*\}\}"#).unwrap();
    re.replace_all(data, |c: &regex::Captures| {
        c[1].repeat(c[2].parse().unwrap_or(0))
    })
    .into_owned()
}

/// Reads a raw HTTP/1 request: request line, header lines, blank line, body.
fn parse_raw(raw: &[u8]) -> Result<Request, String> {
    let head_end = find(raw, b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| find(raw, b"\n\n").map(|i| (i, i + 2)))
        .unwrap_or((raw.len(), raw.len()));
    let head = String::from_utf8_lossy(&raw[..head_end.0]).into_owned();
    let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
    let line = lines.next().ok_or("empty raw request")?;
    let mut parts = line.splitn(3, ' ');
    let method = parts.next().unwrap_or("").to_string();
    let uri = parts.next().unwrap_or("").to_string();
    let version = parts.next().unwrap_or("").to_string();
    let headers = lines
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(':') {
            Some((k, v)) => (k.to_string(), v.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect();
    Ok(Request {
        method,
        uri,
        version,
        headers,
        body: raw[head_end.1..].to_vec(),
        port: 80,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
