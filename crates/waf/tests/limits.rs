//! What a hostile request body can make the engine do: each limit (SecArgumentsLimit, JSON
//! and XML depth, the bytes a body may yield) refuses under SecRequestBodyLimitAction
//! Reject, sets REQBODY_ERROR otherwise, and bounds the work and memory one body costs.
//! Work is measured by counting the bytes the engine allocates on this thread (a counting
//! allocator), not by the clock, so the bounds hold on any machine.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use waf::{Limit, RuleSet, Transaction, Verdict};

/// Counts the bytes allocated on each thread, and the most live at once.
struct Counting;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(grown: isize) {
    let _ = ALLOCATED.try_with(|a| a.set(a.get() + grown.max(0).unsigned_abs()));
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + grown);
        let _ = PEAK.try_with(|p| p.set(p.get().max(live.get())));
    });
}

// SAFETY: every call is passed on to the system allocator unchanged; the counters are
// thread-local cells that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's layout is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: as for `dealloc`, and `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// What running `f` cost on this thread: bytes allocated in all, and the most held at
/// once beyond what was held before.
fn cost<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let allocated = ALLOCATED.with(Cell::get);
    let live = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(live));
    let out = f();
    let allocated = ALLOCATED.with(Cell::get) - allocated;
    let peak = (PEAK.with(Cell::get) - live).max(0).unsigned_abs();
    (out, allocated, peak)
}

const CRS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/crs");

/// Body processors as ModSecurity recommends, and the rule that refuses a body that did
/// not parse, as CRS's setup expects.
const PROCESSORS: &str = r#"
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
"#;
const BODY_ERROR_DENIES: &str = r#"SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',logdata:'%{reqbody_error_msg}'""#;
const BODY_ERROR_LOGS: &str = r#"SecRule REQBODY_ERROR "!@eq 0" "id:200012,phase:2,t:none,log,pass,msg:'%{reqbody_error_msg}'""#;

fn rules(text: &str) -> RuleSet {
    match RuleSet::from_text(text, Path::new("limits.conf")) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

/// Engine mode and limit action, then the processors, then `extra`.
fn setup(engine: &str, action: &str, extra: &str) -> RuleSet {
    rules(&format!(
        "SecRuleEngine {engine}\nSecRequestBodyLimitAction {action}\n{PROCESSORS}\n{extra}\n"
    ))
}

/// The verdicts of phases 1 and 2 for a POST of `body`.
fn post<'r>(
    rules: &'r RuleSet,
    uri: &str,
    content_type: &str,
    body: &[u8],
) -> (Transaction<'r>, Verdict) {
    let mut tx = rules.transaction();
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
    tx.connection(ip, 5555, IpAddr::V4(Ipv4Addr::LOCALHOST), 80);
    tx.request_line("POST", uri, "HTTP/1.1");
    tx.request_header("Host", b"shop.example");
    tx.request_header("User-Agent", b"Mozilla/5.0 (test)");
    tx.request_header("Accept", b"*/*");
    tx.request_header("Content-Type", content_type.as_bytes());
    tx.request_header("Content-Length", body.len().to_string().as_bytes());
    let mut verdict = tx.process_request_headers();
    if verdict == Verdict::Continue {
        verdict = tx.append_request_body(body);
    }
    if verdict == Verdict::Continue {
        verdict = tx.process_request_body();
    }
    (tx, verdict)
}

fn ids(tx: &Transaction<'_>) -> Vec<u32> {
    tx.matched_rules().iter().map(|m| m.id).collect()
}

fn status(verdict: &Verdict) -> Option<(u16, u32)> {
    match verdict {
        Verdict::Interrupt(i) => Some((i.status, i.rule_id)),
        Verdict::Continue => None,
    }
}

/// `{"AAAA…": [0, 0, …]}`: one long key over many array items. Every item is named by the
/// whole key, so the names add up to `key × items` bytes.
fn json_bomb(key: usize, items: usize) -> Vec<u8> {
    format!(
        "{{\"{}\": [{}]}}",
        "A".repeat(key),
        vec!["0"; items].join(",")
    )
    .into_bytes()
}

#[test]
fn the_json_bomb_is_refused_at_once_under_reject() {
    let rules = setup("On", "Reject", "");
    let bomb = json_bomb(20_000, 20_000);
    assert!(bomb.len() < 64 * 1024);
    let ((tx, verdict), allocated, peak) = cost(|| post(&rules, "/", "application/json", &bomb));
    assert_eq!(status(&verdict), Some((413, 0)));
    assert_eq!(tx.exceeded_limit(), Some(Limit::ArgumentBytes));
    // The names it may make are 1 MiB plus four times the body; everything else is small.
    assert!(allocated < 4 << 20, "{allocated} bytes allocated");
    assert!(peak < 4 << 20, "{peak} bytes held");
}

#[test]
fn a_body_past_a_limit_gets_reqbody_error_without_reject() {
    // ProcessPartial: the processor stops, REQBODY_ERROR is set, rule 200002 refuses.
    let rules = setup("On", "ProcessPartial", BODY_ERROR_DENIES);
    let (tx, verdict) = post(&rules, "/", "application/json", &json_bomb(20_000, 20_000));
    assert_eq!(status(&verdict), Some((400, 200002)));
    assert_eq!(tx.exceeded_limit(), Some(Limit::ArgumentBytes));
    // Without such a rule the values that fitted are inspected and the request passes.
    let rules = setup("On", "ProcessPartial", BODY_ERROR_LOGS);
    let (tx, verdict) = post(&rules, "/", "application/json", &json_bomb(20_000, 20_000));
    assert_eq!(verdict, Verdict::Continue);
    assert_eq!(ids(&tx), [200012]);
    assert!(
        tx.matched_rules()[0].msg.contains("limit exceeded"),
        "{:?}",
        tx.matched_rules()[0].msg
    );
}

#[test]
fn without_reject_the_rules_inspect_what_was_read_before_the_limit() {
    let rules = setup(
        "On",
        "ProcessPartial",
        "SecArgumentsLimit 2\nSecRequestBodyXmlDepthLimit 2\n\
         SecRule ARGS|XML:/* \"@contains attack\" \"id:7,phase:2,deny,status:403,log\"",
    );
    let multipart = b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nattack\r\n--XX\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n1\r\n--XX\r\nContent-Disposition: form-data; name=\"c\"\r\n\r\n1\r\n--XX--\r\n";
    for (content_type, body, limit) in [
        (
            "multipart/form-data; boundary=XX",
            &multipart[..],
            Limit::Arguments,
        ),
        ("application/json", br#"["attack",1,2]"#, Limit::Arguments),
        (
            "application/x-www-form-urlencoded",
            b"a=attack&b=1&c=2",
            Limit::Arguments,
        ),
        ("text/xml", b"<a>attack<b><c/></b></a>", Limit::XmlDepth),
    ] {
        let (tx, verdict) = post(&rules, "/", content_type, body);
        assert_eq!(status(&verdict), Some((403, 7)), "{content_type}");
        assert_eq!(tx.exceeded_limit(), Some(limit), "{content_type}");
    }
}

#[test]
fn detection_only_logs_a_body_past_a_limit() {
    let rules = setup("DetectionOnly", "Reject", BODY_ERROR_DENIES);
    let (tx, verdict) = post(&rules, "/", "application/json", &json_bomb(20_000, 20_000));
    assert_eq!(verdict, Verdict::Continue);
    assert_eq!(ids(&tx), [200002]);
    assert_eq!(tx.exceeded_limit(), Some(Limit::ArgumentBytes));
}

#[test]
fn arguments_past_sec_arguments_limit_are_refused() {
    let rules = setup("On", "Reject", "SecArgumentsLimit 3");
    let form = "application/x-www-form-urlencoded";
    assert_eq!(post(&rules, "/", form, b"a=1&b=2&c=3").1, Verdict::Continue);
    let (tx, verdict) = post(&rules, "/", form, b"a=1&b=2&c=3&d=4");
    assert_eq!(status(&verdict), Some((413, 0)));
    assert_eq!(tx.exceeded_limit(), Some(Limit::Arguments));
    // The query's arguments count too.
    let (_, verdict) = post(&rules, "/?q=1", form, b"a=1&b=2&c=3");
    assert_eq!(status(&verdict), Some((413, 0)));
    let (_, verdict) = post(&rules, "/?a&b&c&d", form, b"");
    assert_eq!(status(&verdict), Some((414, 0)), "refused with the headers");
    let (_, verdict) = post(&rules, "/", "application/json", b"[1,2,3,4]");
    assert_eq!(status(&verdict), Some((413, 0)));
    let (_, verdict) = post(
        &rules,
        "/",
        "multipart/form-data; boundary=XX",
        b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XX\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n1\r\n--XX\r\nContent-Disposition: form-data; name=\"c\"\r\n\r\n1\r\n--XX\r\nContent-Disposition: form-data; name=\"d\"\r\n\r\n1\r\n--XX--\r\n",
    );
    assert_eq!(status(&verdict), Some((413, 0)));
    let (_, verdict) = post(&rules, "/", "text/xml", b"<a w='1' x='2' y='3' z='4'/>");
    assert_eq!(status(&verdict), Some((413, 0)));
    // ModSecurity's default when no directive says.
    let rules = setup("On", "Reject", "");
    let many = vec!["x=1"; 1000].join("&");
    assert_eq!(
        post(&rules, "/", form, many.as_bytes()).1,
        Verdict::Continue
    );
    let many = vec!["x=1"; 1001].join("&");
    assert_eq!(
        status(&post(&rules, "/", form, many.as_bytes()).1),
        Some((413, 0))
    );
}

#[test]
fn nesting_past_the_depth_limits_is_refused() {
    let rules = setup(
        "On",
        "Reject",
        "SecRequestBodyJsonDepthLimit 4\nSecRequestBodyXmlDepthLimit 4",
    );
    let (_, verdict) = post(&rules, "/", "application/json", b"[[[[1]]]]");
    assert_eq!(verdict, Verdict::Continue);
    let (tx, verdict) = post(&rules, "/", "application/json", b"[[[[[1]]]]]");
    assert_eq!(status(&verdict), Some((413, 0)));
    assert_eq!(tx.exceeded_limit(), Some(Limit::JsonDepth));
    let (_, verdict) = post(&rules, "/", "text/xml", b"<a><b><c><d/></c></b></a>");
    assert_eq!(verdict, Verdict::Continue);
    let (tx, verdict) = post(&rules, "/", "text/xml", b"<a><b><c><d><e/></d></c></b></a>");
    assert_eq!(status(&verdict), Some((413, 0)));
    assert_eq!(tx.exceeded_limit(), Some(Limit::XmlDepth));
    // The defaults: 128 for JSON, 256 for XML.
    let rules = setup("On", "Reject", "");
    let json = |d: usize| format!("{}{}", "[".repeat(d), "]".repeat(d));
    let xml = |d: usize| format!("{}{}", "<a>".repeat(d), "</a>".repeat(d));
    let run = |ct, body: String| status(&post(&rules, "/", ct, body.as_bytes()).1);
    assert_eq!(run("application/json", json(128)), None);
    assert_eq!(run("application/json", json(129)), Some((413, 0)));
    assert_eq!(run("application/xml", xml(256)), None);
    assert_eq!(run("application/xml", xml(257)), Some((413, 0)));
}

#[test]
fn limit_directives_take_positive_numbers() {
    for bad in [
        "SecArgumentsLimit 0",
        "SecArgumentsLimit many",
        "SecRequestBodyJsonDepthLimit 0",
        "SecRequestBodyXmlDepthLimit -1",
    ] {
        let err = RuleSet::from_text(bad, Path::new("bad.conf")).err();
        assert!(err.is_some(), "{bad} loaded");
    }
}

#[test]
fn a_message_past_the_argument_limit_is_refused() {
    let rules = setup("On", "Reject", "SecArgumentsLimit 2");
    let mut tx = rules.transaction();
    tx.request_line("POST", "/pkg.Service/Call", "HTTP/2.0");
    tx.request_header("content-type", b"application/grpc");
    assert_eq!(tx.process_request_headers(), Verdict::Continue);
    let two = [
        ("1".to_string(), b"a".to_vec()),
        ("2".to_string(), b"b".to_vec()),
    ];
    assert_eq!(tx.process_message(&two, b"raw"), Verdict::Continue);
    let three = [
        two[0].clone(),
        two[1].clone(),
        ("3".to_string(), b"c".to_vec()),
    ];
    assert_eq!(status(&tx.process_message(&three, b"raw")), Some((413, 0)));
    assert_eq!(tx.exceeded_limit(), Some(Limit::Arguments));
}

fn crs_rules(engine: &str) -> RuleSet {
    let crs = PathBuf::from(CRS);
    let text = format!(
        "SecRuleEngine {engine}\nSecRequestBodyLimitAction Reject\n{PROCESSORS}\n{BODY_ERROR_DENIES}\n\
         Include {crs}/crs-setup.conf.example\nInclude {crs}/rules/*.conf\n",
        crs = crs.display()
    );
    match RuleSet::from_text(&text, &crs.join("limits.conf")) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

/// The bomb through the whole CRS, as the gateway runs it: refused before any rule runs
/// over its names; in DetectionOnly the rules run over what fitted the budget only.
#[test]
fn the_json_bomb_through_the_crs_costs_what_a_small_body_does() {
    let bomb = json_bomb(20_000, 20_000);
    let rules = crs_rules("On");
    let ((_, verdict), allocated, _) = cost(|| post(&rules, "/", "application/json", &bomb));
    assert_eq!(status(&verdict), Some((413, 0)));
    assert!(allocated < 8 << 20, "{allocated} bytes allocated");
    let rules = crs_rules("DetectionOnly");
    let ((tx, verdict), allocated, peak) = cost(|| post(&rules, "/", "application/json", &bomb));
    assert_eq!(verdict, Verdict::Continue);
    assert!(ids(&tx).contains(&200002), "{:?}", ids(&tx));
    // Rules transform the names they inspect, so the names are copied a few times over;
    // the unbounded names alone would be 400 MB.
    assert!(allocated < 128 << 20, "{allocated} bytes allocated");
    assert!(peak < 16 << 20, "{peak} bytes held");
}

/// Bodies shaped like the bomb, and arbitrary JSON-ish bytes: the engine's allocations
/// for one body stay within a bound set by the budget, whatever the shape.
fn bomb_shapes() -> impl Strategy<Value = Vec<u8>> {
    (0usize..5000, 0usize..5000, 0usize..200).prop_map(|(key, items, depth)| {
        let mut s = format!("{{\"{}\":", "K".repeat(key));
        s.push_str(&"[".repeat(depth));
        s.push_str(&vec!["0"; items].join(","));
        s.push_str(&"]".repeat(depth));
        s.push('}');
        s.into_bytes()
    })
}

fn json_ish() -> impl Strategy<Value = Vec<u8>> {
    let alphabet = b"{}[],:\"\\ 0123456789.eE-truefalsnuAK".to_vec();
    prop::collection::vec(prop::sample::select(alphabet), 0..2000)
}

/// What one body may cost: the names and values it may yield (1 MiB and four times its
/// length), twice over for growing buffers, plus a little per argument and per byte.
fn work_bound(len: usize) -> usize {
    2 * ((1 << 20) + 4 * len) + 256 * 1000 + 8 * len
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_json_body_costs_at_most_its_budget(body in prop_oneof![bomb_shapes(), json_ish()]) {
        thread_local! {
            static RULES: &'static RuleSet = Box::leak(Box::new(setup("On", "ProcessPartial", "")));
        }
        let rules = RULES.with(|r| *r);
        let ((tx, _), allocated, peak) = cost(|| post(rules, "/", "application/json", &body));
        prop_assert!(allocated <= work_bound(body.len()), "{} bytes allocated", allocated);
        prop_assert!(peak <= work_bound(body.len()), "{} bytes held", peak);
        drop(tx);
    }
}
