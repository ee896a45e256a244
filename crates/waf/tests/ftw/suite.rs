//! The suite around the test files: where they are, the platform's overrides, and the
//! per-family table a replay prints, shared by the replays of the suite.

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

/// What nginx-overrides.yaml says about a test.
pub enum Replaced {
    Output(Output),
    Skip(String),
}

/// Overrides that record a logging bug of ModSecurity v3 rather than a constraint of
/// the platform: this engine logs as the rules say, so these tests keep their own output.
const V3_LOG_BUGS: &[(u32, &str)] = &[
    (
        942131,
        "v3 logs the first rule of a chain even when the chain fails",
    ),
    (980170, "v3 writes no log line for a rule with noauditlog"),
];

pub fn overrides(crs: &Path) -> BTreeMap<(u32, u32), Replaced> {
    let text = std::fs::read_to_string(crs.join("nginx-overrides.yaml")).unwrap();
    let parsed: Overrides = serde_saphyr::from_str(&text).unwrap();
    let mut out = BTreeMap::new();
    for o in parsed.test_overrides {
        if V3_LOG_BUGS.iter().any(|(id, _)| *id == o.rule_id) {
            continue;
        }
        for t in o.test_ids {
            let replaced = match &o.output {
                Some(output) => Replaced::Output(output.clone()),
                None => Replaced::Skip(format!(
                    "ModSecurity v3 on nginx cannot run it: {}",
                    o.reason.trim()
                )),
            };
            out.insert((o.rule_id, t), replaced);
        }
    }
    out
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
