//! The suite around the test files: where they are, nginx's overrides and why each is
//! applied or dropped ([`CLASSIFIED`]), and the per-family table a replay prints, shared
//! by the replays of the suite (the gateway's includes this module by path).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Output, Overrides, TestFile};

/// TESTS-README.md's body processors: XML and JSON bodies parsed into arguments.
pub const BODY_PROCESSORS: &str = r#"
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
"#;

/// What TESTS-README.md puts after the CRS setup: the tests' SecAction 900005
/// (DetectionOnly, paranoia level 4 and the test limits) and the recommended body-error rules.
pub const AFTER_CRS_SETUP: &str = r#"
SecAction "id:900005,phase:1,nolog,pass,ctl:ruleEngine=DetectionOnly,ctl:ruleRemoveById=910000,\
  setvar:tx.blocking_paranoia_level=4,setvar:tx.crs_validate_utf8_encoding=1,setvar:tx.arg_name_length=100,\
  setvar:tx.arg_length=400,setvar:tx.total_arg_length=64000,setvar:tx.max_num_args=255,\
  setvar:tx.max_file_size=64100,setvar:tx.combined_file_sizes=65535"
SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',logdata:'%{reqbody_error_msg}',severity:2"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:200003,phase:2,t:none,log,deny,status:400,msg:'Multipart request body failed strict validation'"
SecRule MULTIPART_UNMATCHED_BOUNDARY "@eq 1" "id:200004,phase:2,t:none,log,deny,msg:'Multipart parser detected a possible unmatched boundary.'"
"#;

/// Tests of one rule family (or all) by result.
#[derive(Default)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// The suite's test files that hold tests, parsed, by family, in order.
pub fn parsed_test_files(crs: &Path) -> Vec<(String, TestFile)> {
    test_files(crs)
        .into_iter()
        .filter_map(|(family, file)| {
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let placeholder = text
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
            if placeholder {
                return None;
            }
            let parsed =
                serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            Some((family, parsed))
        })
        .collect()
}

/// Every test file of the suite, by family (the rule file's number, e.g. `942`), in order.
pub fn test_files(crs: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(crs.join("tests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let family = name.split('-').nth(1).unwrap_or(&name).to_string();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        out.extend(
            files
                .into_iter()
                .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
                .map(|f| (family.clone(), f)),
        );
    }
    out
}

/// Why nginx-overrides.yaml (ModSecurity v3 on nginx) replaces a test's output: what
/// the override describes decides whether a replay applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// nginx's own HTTP handling before any module runs: it describes the server, so a
    /// replay applies it where its server handles the request the same way, and
    /// otherwise judges by what its server does.
    Server(Handling),
    /// A limitation or bug of libmodsecurity3: never applied; the engine meets the
    /// test's own output.
    Engine,
    /// Needs a test-config value: never applied; the value is set as TESTS-README.md
    /// says (SecAction 900005 in [`AFTER_CRS_SETUP`]), so the test runs as written.
    TestConfig,
}

/// Ways nginx handles a request before ModSecurity sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// nginx refuses the request itself (400, 505).
    Refuses,
    /// nginx passes on a request that Apache, whose results the test states, refuses.
    Accepts,
    /// nginx drops header names holding `_` or `.`.
    DropsHeaderNames,
    /// nginx gives an absolute-form target without a path the path `/`.
    AddsRootPath,
    /// nginx hands repeated headers over one by one, where Apache joins them into one.
    KeepsRepeatedHeaders,
}

impl Handling {
    /// What a server did, said of it: the same as nginx (`shared`) or not.
    fn done(self, shared: bool) -> &'static str {
        match (self, shared) {
            (Handling::Refuses, true) => "refuses it too",
            (Handling::Refuses, false) => "passes it to the WAF",
            (Handling::Accepts, true) => "passes it to the WAF too",
            (Handling::Accepts, false) => "refuses it before the WAF",
            (Handling::DropsHeaderNames, true) => "drops those headers too",
            (Handling::DropsHeaderNames, false) => "keeps those headers",
            (Handling::AddsRootPath, true) => "adds the path `/` too",
            (Handling::AddsRootPath, false) => "passes the target as sent",
            (Handling::KeepsRepeatedHeaders, true) => "hands repeated headers over one by one too",
            (Handling::KeepsRepeatedHeaders, false) => "joins repeated headers",
        }
    }
}

/// One entry of nginx-overrides.yaml, classified.
pub struct Classified {
    /// The entry's rule id and test ids, as the file lists them.
    pub rule_id: u32,
    pub test_ids: &'static [u32],
    /// What the override describes, which decides where it is applied.
    pub class: Class,
    /// Why it is of that class, in one line.
    pub reason: &'static str,
}

const XML_BODY: &str = "libmodsecurity3 fills REQUEST_BODY for XML bodies too, so the rule matches element and attribute names in it";

/// Every entry of nginx-overrides.yaml, classified. [`overrides`] checks that the file
/// and this table list the same entries, so a new override is classified before it
/// counts.
pub const CLASSIFIED: &[Classified] = &[
    Classified {
        rule_id: 920100,
        test_ids: &[4],
        class: Class::Server(Handling::Refuses),
        reason: "nginx answers a CONNECT itself (400)",
    },
    Classified {
        rule_id: 920100,
        test_ids: &[8],
        class: Class::Server(Handling::Accepts),
        reason: "nginx passes on a path with a colon and a #fragment, which Apache refuses (400)",
    },
    Classified {
        rule_id: 920100,
        test_ids: &[14],
        class: Class::Server(Handling::Refuses),
        reason: "nginx refuses the request line of a method that is not a capital word (`|GET`) with 400",
    },
    Classified {
        rule_id: 920100,
        test_ids: &[16],
        class: Class::Server(Handling::AddsRootPath),
        reason: "nginx reads the target `http://localhost` as `http://localhost/`, a valid request line",
    },
    Classified {
        rule_id: 920181,
        test_ids: &[1],
        class: Class::Server(Handling::Refuses),
        reason: "nginx refuses a request with both Content-Length and Transfer-Encoding (400)",
    },
    Classified {
        rule_id: 920270,
        test_ids: &[4],
        class: Class::Server(Handling::Accepts),
        reason: "nginx passes on a Host holding `%00`, which Apache refuses (400)",
    },
    Classified {
        rule_id: 920274,
        test_ids: &[1],
        class: Class::Server(Handling::Accepts),
        reason: "nginx passes on a Host holding `%1F`, which Apache refuses (400)",
    },
    Classified {
        rule_id: 920290,
        test_ids: &[4],
        class: Class::Server(Handling::Refuses),
        reason: "nginx refuses an HTTP/1.1 request without Host (400)",
    },
    Classified {
        rule_id: 920360,
        test_ids: &[1],
        class: Class::TestConfig,
        reason: "SecAction 900005 of TESTS-README.md sets tx.arg_name_length=100",
    },
    Classified {
        rule_id: 920380,
        test_ids: &[1],
        class: Class::TestConfig,
        reason: "SecAction 900005 of TESTS-README.md sets tx.max_num_args=255 (the test sends 256)",
    },
    Classified {
        rule_id: 920430,
        test_ids: &[8],
        class: Class::Server(Handling::Refuses),
        reason: "nginx refuses an HTTP version it does not speak (505)",
    },
    Classified {
        rule_id: 920610,
        test_ids: &[2],
        class: Class::Server(Handling::Accepts),
        reason: "nginx passes on a request target with a #fragment, which Apache refuses (400)",
    },
    Classified {
        rule_id: 920620,
        test_ids: &[1],
        class: Class::Server(Handling::KeepsRepeatedHeaders),
        reason: "nginx hands both Content-Type headers over, where Apache joins them into one",
    },
    Classified {
        rule_id: 933110,
        test_ids: &[3, 13, 14, 20, 21, 22, 24, 25, 26, 27],
        class: Class::Server(Handling::DropsHeaderNames),
        reason: "nginx drops the headers X_Filename and X.Filename",
    },
    Classified {
        rule_id: 933220,
        test_ids: &[2, 4],
        class: Class::Server(Handling::DropsHeaderNames),
        reason: "nginx drops the headers X_Filename and X.Filename",
    },
    Classified {
        rule_id: 934131,
        test_ids: &[5],
        class: Class::Engine,
        reason: "transformations of libmodsecurity3 (coreruleset#3376); CRS 4.28.0 has no rule 934131",
    },
    Classified {
        rule_id: 934131,
        test_ids: &[7],
        class: Class::Engine,
        reason: "transformations of libmodsecurity3 (coreruleset#3376); CRS 4.28.0 has no rule 934131",
    },
    Classified {
        rule_id: 942131,
        test_ids: &[3, 5, 7],
        class: Class::Engine,
        reason: "libmodsecurity3 logs the first rule of a chain even when the chain fails",
    },
    Classified {
        rule_id: 944100,
        test_ids: &[11, 12, 15, 16],
        class: Class::Engine,
        reason: XML_BODY,
    },
    Classified {
        rule_id: 944110,
        test_ids: &[11, 12, 15, 16],
        class: Class::Engine,
        reason: XML_BODY,
    },
    Classified {
        rule_id: 944120,
        test_ids: &[
            6, 7, 23, 24, 40, 41, 57, 58, 74, 75, 91, 92, 108, 109, 125, 126,
        ],
        class: Class::Engine,
        reason: XML_BODY,
    },
    Classified {
        rule_id: 944140,
        test_ids: &[3, 8],
        class: Class::Server(Handling::DropsHeaderNames),
        reason: "nginx drops the header X_Filename",
    },
    Classified {
        rule_id: 944210,
        test_ids: &[6, 7, 23, 24, 40, 41],
        class: Class::Engine,
        reason: XML_BODY,
    },
    Classified {
        rule_id: 980170,
        test_ids: &[1, 2],
        class: Class::Engine,
        reason: "libmodsecurity3 writes no log line for a rule with noauditlog",
    },
];

/// How a replay's HTTP server handles what nginx handles its own way (refusals are
/// seen per request, so they are not listed).
pub struct Server {
    /// How the report names the server.
    pub name: &'static str,
    /// Whether it drops header names holding `_` or `.` ([`Handling::DropsHeaderNames`]).
    pub drops_header_names: bool,
    /// Whether it hands `http://host` on as `http://host/` ([`Handling::AddsRootPath`]).
    pub adds_root_path: bool,
    /// Whether it hands repeated headers on one by one
    /// ([`Handling::KeepsRepeatedHeaders`]).
    pub keeps_repeated_headers: bool,
}

impl Server {
    /// Whether this server handled a request as nginx does in the way `handling` names;
    /// `refused`: whether it refused the request before the WAF.
    pub fn shares(&self, handling: Handling, refused: bool) -> bool {
        match handling {
            Handling::Refuses => refused,
            Handling::Accepts => !refused,
            Handling::DropsHeaderNames => self.drops_header_names,
            Handling::AddsRootPath => self.adds_root_path,
            Handling::KeepsRepeatedHeaders => self.keeps_repeated_headers,
        }
    }
}

/// An override of one test, with its classification.
pub struct TestOverride {
    /// The entry of [`CLASSIFIED`] the test is listed in.
    pub entry: &'static Classified,
    /// nginx's output, or `None` where nginx cannot run the test at all.
    pub output: Option<Output>,
    /// The override's own reason, as nginx-overrides.yaml gives it.
    pub nginx_reason: String,
}

/// The output a test is judged by, after the overrides.
pub enum Expected<'a> {
    Output(&'a Output),
    Skip(String),
}

/// The overrides of nginx-overrides.yaml by (rule id, test id), each with its entry of
/// [`CLASSIFIED`]. Panics when the file and the table do not list the same entries.
pub fn overrides(crs: &Path) -> BTreeMap<(u32, u32), TestOverride> {
    let path = crs.join("nginx-overrides.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let parsed: Overrides =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = BTreeMap::new();
    let mut seen = vec![false; CLASSIFIED.len()];
    for o in parsed.test_overrides {
        let Some(at) = CLASSIFIED
            .iter()
            .position(|c| c.rule_id == o.rule_id && c.test_ids == o.test_ids.as_slice())
        else {
            panic!(
                "nginx-overrides.yaml: {} {:?} is not classified in ftw::suite::CLASSIFIED",
                o.rule_id, o.test_ids
            );
        };
        seen[at] = true;
        for &t in &o.test_ids {
            out.insert(
                (o.rule_id, t),
                TestOverride {
                    entry: &CLASSIFIED[at],
                    output: o.output.clone(),
                    nginx_reason: o.reason.trim().to_string(),
                },
            );
        }
    }
    if let Some(at) = seen.iter().position(|s| !s) {
        let c = &CLASSIFIED[at];
        panic!(
            "ftw::suite::CLASSIFIED: {} {:?} is not in nginx-overrides.yaml",
            c.rule_id, c.test_ids
        );
    }
    out
}

/// Which overrides a replay applied and which it dropped, test by test.
#[derive(Default)]
pub struct Ledger {
    decisions: BTreeMap<(u32, u32), (bool, String)>,
}

impl Ledger {
    /// The output to judge a stage by: the override's where it applies to this replay's
    /// `server` (`refused`: whether the server refused the request before the WAF),
    /// otherwise the test's own. Records the decision.
    pub fn expected<'a>(
        &mut self,
        key: (u32, u32),
        own: &'a Output,
        found: Option<&'a TestOverride>,
        server: &Server,
        refused: bool,
    ) -> Expected<'a> {
        let Some(o) = found else {
            return Expected::Output(own);
        };
        let applied = match o.entry.class {
            Class::Server(handling) => server.shares(handling, refused),
            Class::Engine | Class::TestConfig => false,
        };
        let why = match o.entry.class {
            Class::Server(handling) => format!("{} {}", server.name, handling.done(applied)),
            Class::Engine => "the engine meets the test's own output".to_string(),
            Class::TestConfig => "SecAction 900005 sets the value; the test runs as written".into(),
        };
        self.decisions.insert(key, (applied, why));
        match (applied, &o.output) {
            (false, _) => Expected::Output(own),
            (true, Some(output)) => Expected::Output(output),
            (true, None) => Expected::Skip(format!(
                "nginx-overrides.yaml gives no output ({}), and {} handles it as nginx does",
                o.nginx_reason, server.name
            )),
        }
    }

    /// The list of overrides applied and dropped, entry by entry, with the tests of an
    /// entry that are not in this suite.
    pub fn report(&self) -> String {
        let mut out = String::from("overrides of nginx-overrides.yaml:\n");
        let (mut applied, mut dropped, mut absent) = (0, 0, 0);
        for c in CLASSIFIED {
            let class = match c.class {
                Class::Server(h) => format!("server ({h:?})"),
                Class::Engine => "engine".to_string(),
                Class::TestConfig => "test config".to_string(),
            };
            writeln!(
                out,
                "  {} {:?} [{class}] {}",
                c.rule_id, c.test_ids, c.reason
            )
            .unwrap();
            let mut missing = Vec::new();
            for &t in c.test_ids {
                match self.decisions.get(&(c.rule_id, t)) {
                    Some((true, why)) => {
                        applied += 1;
                        writeln!(out, "    applied {}-{t}: {why}", c.rule_id).unwrap();
                    }
                    Some((false, why)) => {
                        dropped += 1;
                        writeln!(out, "    dropped {}-{t}: {why}", c.rule_id).unwrap();
                    }
                    None => {
                        absent += 1;
                        missing.push(t);
                    }
                }
            }
            if !missing.is_empty() {
                writeln!(out, "    not in this suite: {missing:?}").unwrap();
            }
        }
        writeln!(
            out,
            "  tests: {applied} applied, {dropped} dropped, {absent} not in this suite"
        )
        .unwrap();
        out
    }
}

/// The per-family table, and the overall pass rate of the tests that ran.
pub fn table(families: &BTreeMap<String, Tally>) -> (String, f64) {
    let mut table = format!(
        "{:<8} {:>7} {:>7} {:>7} {:>7}\n",
        "family", "passed", "failed", "skipped", "rate"
    );
    let mut total = Tally::default();
    for (family, t) in families {
        let run = t.passed + t.failed;
        let rate = if run == 0 {
            1.0
        } else {
            t.passed as f64 / run as f64
        };
        writeln!(
            table,
            "{family:<8} {:>7} {:>7} {:>7} {:>6.1}%",
            t.passed,
            t.failed,
            t.skipped,
            rate * 100.0
        )
        .unwrap();
        total.passed += t.passed;
        total.failed += t.failed;
        total.skipped += t.skipped;
    }
    let rate = total.passed as f64 / (total.passed + total.failed).max(1) as f64;
    writeln!(
        table,
        "{:<8} {:>7} {:>7} {:>7} {:>6.1}%",
        "total",
        total.passed,
        total.failed,
        total.skipped,
        rate * 100.0
    )
    .unwrap();
    (table, rate)
}

/// What the suite's backend answers.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The suite's backend: `/reflect` answers with the status, headers and body posted to it
/// as JSON (a `Content-Type` of text/html unless given); every other path answers 200 with
/// an empty HTML page.
pub fn backend_answer(path: &str, body: &[u8]) -> Answer {
    let mut answer = Answer {
        status: 200,
        headers: vec![("Content-Type".into(), "text/html".into())],
        body: Vec::new(),
    };
    let Some(doc) = path
        .starts_with("/reflect")
        .then(|| serde_json::from_slice::<serde_json::Value>(body).ok())
        .flatten()
    else {
        return answer;
    };
    if let Some(s) = doc["status"].as_u64() {
        answer.status = u16::try_from(s).unwrap_or(200);
    }
    if let Some(given) = doc["headers"].as_object() {
        answer.headers = given
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                )
            })
            .collect();
        if !given.keys().any(|k| k.eq_ignore_ascii_case("content-type")) {
            answer
                .headers
                .push(("Content-Type".into(), "text/html".into()));
        }
    }
    if let Some(text) = doc["body"].as_str() {
        answer.body = text.as_bytes().to_vec();
    }
    answer
}
